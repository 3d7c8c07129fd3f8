//! The authorizer's view of the cluster: informers (list + watch) of Roles, ClusterRoles,
//! their bindings and Pods, kept on every member so that no request reads the store.

use std::sync::Arc;

use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use tokio_util::sync::CancellationToken;

use super::node::PodSource;
use super::rbac::PolicySource;
use crate::registry::Registry;
use crate::runtime::informer::{object_key, Informer};

/// Informer-backed RBAC objects and pods; cheap to clone.
#[derive(Clone)]
pub struct Cache {
    cluster_roles: Arc<Informer<ClusterRole>>,
    roles: Arc<Informer<Role>>,
    cluster_role_bindings: Arc<Informer<ClusterRoleBinding>>,
    role_bindings: Arc<Informer<RoleBinding>>,
    pods: Arc<Informer<Pod>>,
}

impl Cache {
    /// Starts the informers; they stop with `shutdown`.
    pub fn start(registry: &Registry, shutdown: &CancellationToken) -> Cache {
        Cache {
            cluster_roles: Informer::start(registry.clone(), shutdown.clone()),
            roles: Informer::start(registry.clone(), shutdown.clone()),
            cluster_role_bindings: Informer::start(registry.clone(), shutdown.clone()),
            role_bindings: Informer::start(registry.clone(), shutdown.clone()),
            pods: Informer::start(registry.clone(), shutdown.clone()),
        }
    }

    /// Waits until every informer has listed once.
    pub async fn synced(&self) {
        self.cluster_roles.synced().await;
        self.roles.synced().await;
        self.cluster_role_bindings.synced().await;
        self.role_bindings.synced().await;
        self.pods.synced().await;
    }
}

impl PolicySource for Cache {
    fn cluster_role_bindings(&self) -> Vec<Arc<ClusterRoleBinding>> {
        self.cluster_role_bindings.list(|_| true)
    }

    fn role_bindings(&self, namespace: &str) -> Vec<Arc<RoleBinding>> {
        self.role_bindings
            .list(|b| b.metadata.namespace.as_deref() == Some(namespace))
    }

    fn cluster_role(&self, name: &str) -> Option<Arc<ClusterRole>> {
        self.cluster_roles.get(name)
    }

    fn role(&self, namespace: &str, name: &str) -> Option<Arc<Role>> {
        self.roles.get(&object_key(Some(namespace), name))
    }
}

impl PodSource for Cache {
    fn pods_on(&self, node: &str) -> Vec<Arc<Pod>> {
        self.pods
            .list(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
    }

    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.pods.get(&object_key(Some(namespace), name))
    }
}
