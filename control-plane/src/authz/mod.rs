//! Authorization: who may do what. Every API request is checked with its user's identity;
//! `system:masters` may do anything, node identities are decided by the node authorizer, and
//! everyone else by RBAC over an informer cache of Roles, ClusterRoles and their bindings.

mod aggregation;
pub mod attributes;
mod cache;
pub mod defaults;
mod denial;
mod index;
pub mod node;
pub mod rbac;
pub mod rules;

use tokio_util::sync::CancellationToken;

pub use aggregation::spawn as spawn_aggregation;
pub use attributes::{Attributes, ResourceAttributes, Target};
pub use denial::forbidden;

use self::cache::Cache;
use self::index::RbacIndex;
use self::node::{NodeDecision, PodSource};
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
