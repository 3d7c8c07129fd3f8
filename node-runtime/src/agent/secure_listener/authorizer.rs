//! The listener's webhook authorization, as the kubelet's: each user's access is asked of
//! the API with a SubjectAccessReview (as the node's own identity) and the answer cached,
//! allowed for five minutes and denied for thirty seconds (the kubelet's defaults).

use std::time::Duration;

use serde_json::json;
use skiff_client::{Client, ClientError, ReviewSubject};

use super::access::NodeAccess;
use super::ttl_cache::TtlCache;

const ALLOWED_FOR: Duration = Duration::from_secs(300);
const DENIED_FOR: Duration = Duration::from_secs(30);

type Key = (ReviewSubject, NodeAccess);

/// Asks the API whether users may reach this node, with a short-lived cache.
pub struct Authorizer {
    client: Client,
    node: String,
    cache: TtlCache<Key, bool>,
}

impl Authorizer {
    /// An authorizer for `node`'s listener asking the API as `client`.
    pub fn new(client: Client, node: String) -> Self {
        Authorizer {
            client,
            node,
            cache: TtlCache::new(),
        }
    }

    /// Whether `who` may have `access` to this node.
    pub async fn allows(
        &self,
        who: &ReviewSubject,
        access: &NodeAccess,
    ) -> Result<bool, ClientError> {
        let key = (who.clone(), access.clone());
        if let Some(allowed) = self.cache.get(&key) {
            return Ok(allowed);
        }
        let attributes = json!({
            "verb": access.verb,
            "group": "",
            "resource": "nodes",
            "subresource": access.subresource,
            "name": self.node,
        });
        let allowed = self.client.subject_access_review(who, attributes).await?;
        let ttl = if allowed { ALLOWED_FOR } else { DENIED_FOR };
        self.cache.put(key, allowed, ttl);
        Ok(allowed)
    }
}
