//! Authorization: who may do what. Every API request is checked with its user's identity;
//! `system:masters` may do anything, node identities are decided by the node authorizer, and
//! everyone else by RBAC over an informer cache of Roles, ClusterRoles and their bindings.

mod aggregation;
pub mod attributes;
mod cache;
pub mod defaults;
mod denial;
pub mod node;
pub mod rbac;
pub mod rules;

use tokio_util::sync::CancellationToken;

pub use aggregation::spawn as spawn_aggregation;
pub use attributes::{Attributes, ResourceAttributes, Target};
pub use denial::forbidden;

use self::cache::Cache;
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
        decide(&self.cache, user, attrs)
    }
}

/// The decision of the authorizer chain over `source`.
fn decide(source: &(impl PolicySource + PodSource), user: &UserInfo, attrs: &Attributes) -> bool {
    if user.in_group(MASTERS_GROUP) {
        return true;
    }
    if let Some(node) = node::node_name(user) {
        match node::decide(source, node, attrs) {
            NodeDecision::Allow => return true,
            NodeDecision::Deny => return false,
            NodeDecision::NoOpinion => {}
        }
    }
    rbac::allows(source, user, attrs)
}
