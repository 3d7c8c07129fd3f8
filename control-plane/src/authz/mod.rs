//! Authorization: who may do what. Every API request is checked with its user's identity;
//! `system:masters` may do anything, node identities are decided by the node authorizer, and
//! everyone else by RBAC over an informer cache of Roles, ClusterRoles and their bindings.

mod aggregation;
pub mod attributes;
mod cache;
mod coverage;
pub mod defaults;
mod denial;
pub mod escalation;
mod index;
pub mod node;
pub mod rbac;
pub mod reconcile;
pub mod rules;

use skiff_api::k8s_openapi::api::core::v1::{Node, Pod, ServiceAccount};
use skiff_api::k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub use aggregation::spawn as spawn_aggregation;
pub use attributes::{Attributes, ResourceAttributes, Target};
pub use denial::forbidden;

use self::cache::Cache;
use self::index::RbacIndex;
use self::node::{NodeDecision, PodSource};
use self::rbac::PolicySource;
use crate::identity::{UserInfo, MASTERS_GROUP};
use crate::registry::Registry;

/// Decides requests from the cluster's RBAC objects; cheap to clone.
#[derive(Clone)]
pub struct Authorizer {
    cache: Cache,
}

impl Authorizer {
    /// Starts the informers the authorizer reads; they stop with `shutdown`.
    pub fn start(registry: &Registry, shutdown: &CancellationToken) -> Authorizer {
        Authorizer {
            cache: Cache::start(registry, shutdown),
        }
    }

    /// Waits until the cache holds the cluster's RBAC objects.
    pub async fn synced(&self) {
        self.cache.synced().await;
    }

    /// Whether `user` may do `attrs`.
    pub fn allows(&self, user: &UserInfo, attrs: &Attributes) -> bool {
        if user.in_group(MASTERS_GROUP) {
            return true;
        }
        decide(&self.cache, &self.cache.rbac_index(), user, attrs)
    }

    /// The rules RBAC grants `user` in `namespace` (cluster-wide ones only for ""); every
    /// permission for `system:masters`.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<PolicyRule> {
        if user.in_group(MASTERS_GROUP) {
            return coverage::full_authority();
        }
        self.cache.rbac_index().rules(user, namespace)
    }

    /// The ServiceAccount `namespace/name` as the informer cache holds it (it may trail the
    /// store by a watch event; a miss is no proof of absence).
    pub fn cached_service_account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<Arc<ServiceAccount>> {
        self.cache.service_account(namespace, name)
    }

    /// The pod `namespace/name` as the informer cache holds it (as `cached_service_account`).
    pub fn cached_pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.cache.pod(namespace, name)
    }

    /// The Node `name` as the informer cache holds it (as `cached_service_account`).
    pub fn cached_node(&self, name: &str) -> Option<Arc<Node>> {
        self.cache.node(name)
    }

    /// The rules of the role a binding in `namespace` (empty for a ClusterRoleBinding)
    /// references, if it exists.
    pub fn role_rules(&self, namespace: &str, role_ref: &RoleRef) -> Option<Vec<PolicyRule>> {
        let rules = match role_ref.kind.as_str() {
            "Role" if !namespace.is_empty() => {
                self.cache.role(namespace, &role_ref.name)?.rules.clone()
            }
            "ClusterRole" => self.cache.cluster_role(&role_ref.name)?.rules.clone(),
            _ => return None,
        };
        Some(rules.unwrap_or_default())
    }
}

/// The decision of the node authorizer over `pods`, then RBAC's over `rbac`.
fn decide(pods: &impl PodSource, rbac: &RbacIndex, user: &UserInfo, attrs: &Attributes) -> bool {
    if let Some(node) = node::node_name(user) {
        match node::decide(pods, node, attrs) {
            NodeDecision::Allow => return true,
            NodeDecision::Deny => return false,
            NodeDecision::NoOpinion => {}
        }
    }
    rbac.allows(user, attrs)
}
