//! The authorizer's view of the cluster: informers (list + watch) of Roles, ClusterRoles,
//! their bindings, Pods and Ingresses, kept on every member so that no request reads the store.

use std::sync::Arc;

use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::k8s_openapi::api::networking::v1::Ingress;
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
    ingresses: Arc<Informer<Ingress>>,
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
            ingresses: Informer::start(registry.clone(), shutdown.clone()),
        }
    }

    /// Waits until every informer has listed once.
    pub async fn synced(&self) {
        self.cluster_roles.synced().await;
        self.roles.synced().await;
        self.cluster_role_bindings.synced().await;
        self.role_bindings.synced().await;
        self.pods.synced().await;
        self.ingresses.synced().await;
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

    fn ingress_tls_secret(&self, namespace: &str, name: &str) -> bool {
        !self
            .ingresses
            .list(|i| {
                i.metadata.namespace.as_deref() == Some(namespace)
                    && i.spec
                        .iter()
                        .flat_map(|s| s.tls.iter().flatten())
                        .any(|t| t.secret_name.as_deref() == Some(name))
            })
            .is_empty()
    }
}
