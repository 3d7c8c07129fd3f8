//! The authorizer's view of the cluster: informers (list + watch) of Roles, ClusterRoles,
//! their bindings, Pods, Ingresses, ServiceAccounts and Nodes, kept on every member so that no
//! request reads the store; and the RBAC index built from the first four, rebuilt when one
//! of those kinds has changed.

use std::sync::{Arc, RwLock};

use skiff_api::k8s_openapi::api::core::v1::{Node, Pod, ServiceAccount};
use skiff_api::k8s_openapi::api::networking::v1::Ingress;
use skiff_api::k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use tokio_util::sync::CancellationToken;

use super::index::RbacIndex;
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
    /// The index and the RBAC informers' revisions it was built at.
    index: Arc<RwLock<(Revisions, Arc<RbacIndex>)>>,
    ingresses: Arc<Informer<Ingress>>,
    /// Read by ServiceAccount token authentication, as Kubernetes' token getter reads its
    /// informer.
    service_accounts: Arc<Informer<ServiceAccount>>,
    /// Read by ServiceAccount token authentication for the node a token names.
    nodes: Arc<Informer<Node>>,
}

/// The revisions of the ClusterRole, Role, ClusterRoleBinding and RoleBinding informers.
type Revisions = [u64; 4];

impl Cache {
    /// Starts the informers; they stop with `shutdown`.
    pub fn start(registry: &Registry, shutdown: &CancellationToken) -> Cache {
        Cache {
            cluster_roles: Informer::start(registry.clone(), shutdown.clone()),
            roles: Informer::start(registry.clone(), shutdown.clone()),
            cluster_role_bindings: Informer::start(registry.clone(), shutdown.clone()),
            role_bindings: Informer::start(registry.clone(), shutdown.clone()),
            pods: Informer::start(registry.clone(), shutdown.clone()),
            // Revision 0 is never current once synced: the first request builds the index.
            index: Arc::new(RwLock::new(([0; 4], Arc::default()))),
            ingresses: Informer::start(registry.clone(), shutdown.clone()),
            service_accounts: Informer::start(registry.clone(), shutdown.clone()),
            nodes: Informer::start(registry.clone(), shutdown.clone()),
        }
    }

    /// The RBAC index for the cached objects, rebuilt first if any of them changed since.
    pub fn rbac_index(&self) -> Arc<RbacIndex> {
        // Read before the objects are: a change during the build leaves the index marked
        // older than what it holds, and the next request builds again.
        let revisions = self.rbac_revisions();
        {
            let (built_at, index) = &*self.index.read().expect("rbac index lock");
            if *built_at == revisions && revisions != [0; 4] {
                return index.clone();
            }
        }
        let index = Arc::new(RbacIndex::build(self));
        let mut cached = self.index.write().expect("rbac index lock");
        // Another request may have built a newer one meanwhile; keep the newest.
        if cached.0.iter().zip(&revisions).all(|(old, new)| old <= new) {
            *cached = (revisions, index.clone());
        }
        index
    }

    fn rbac_revisions(&self) -> Revisions {
        [
            self.cluster_roles.revision(),
            self.roles.revision(),
            self.cluster_role_bindings.revision(),
            self.role_bindings.revision(),
        ]
    }

    /// Waits until every informer has listed once.
    pub async fn synced(&self) {
        self.cluster_roles.synced().await;
        self.roles.synced().await;
        self.cluster_role_bindings.synced().await;
        self.role_bindings.synced().await;
        self.pods.synced().await;
        self.ingresses.synced().await;
        self.service_accounts.synced().await;
        self.nodes.synced().await;
    }

    /// The cached ServiceAccount `namespace/name`, if the informer holds it.
    pub fn service_account(&self, namespace: &str, name: &str) -> Option<Arc<ServiceAccount>> {
        self.service_accounts
            .get(&object_key(Some(namespace), name))
    }

    /// The cached Node `name`, if the informer holds it.
    pub fn node(&self, name: &str) -> Option<Arc<Node>> {
        self.nodes.get(name)
    }
}

impl PolicySource for Cache {
    fn cluster_role_bindings(&self) -> Vec<Arc<ClusterRoleBinding>> {
        self.cluster_role_bindings.list(|_| true)
    }

    fn role_bindings(&self) -> Vec<Arc<RoleBinding>> {
        self.role_bindings.list(|_| true)
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
