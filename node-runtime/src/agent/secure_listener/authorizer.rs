//! The listener's webhook authorization, as the kubelet's: each user's access is asked of
//! the API with a SubjectAccessReview (as the node's own identity) and the answer cached,
//! allowed for five minutes and denied for thirty seconds (the kubelet's defaults).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use skiff_client::{Client, ClientError};
use tokio::time::Instant;

use super::access::NodeAccess;

const ALLOWED_FOR: Duration = Duration::from_secs(300);
const DENIED_FOR: Duration = Duration::from_secs(30);
/// Past this many cached answers the cache starts over (bounded memory).
const MAX_CACHED: usize = 4096;

/// Who is asking: a certificate's CN and O fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requester {
    /// The user its certificate names (its CN).
    pub user: String,
    /// Its groups (the certificate's O entries).
    pub groups: Vec<String>,
}

type Key = (Requester, NodeAccess);

/// Asks the API whether users may reach this node, with a short-lived cache.
pub struct Authorizer {
    client: Client,
    node: String,
    cache: Mutex<HashMap<Key, (bool, Instant)>>,
}

impl Authorizer {
    /// An authorizer for `node`'s listener asking the API as `client`.
    pub fn new(client: Client, node: String) -> Self {
        Authorizer {
            client,
            node,
            cache: Mutex::default(),
        }
    }

    /// Whether `who` may have `access` to this node.
    pub async fn allows(&self, who: &Requester, access: &NodeAccess) -> Result<bool, ClientError> {
        let key = (who.clone(), access.clone());
        if let Some((allowed, until)) = self.lock().get(&key) {
            if Instant::now() < *until {
                return Ok(*allowed);
            }
        }
        let attributes = json!({
            "verb": access.verb,
            "group": "",
            "resource": "nodes",
            "subresource": access.subresource,
            "name": self.node,
        });
        let allowed = self
            .client
            .subject_access_review(&who.user, &who.groups, attributes)
            .await?;
        let ttl = if allowed { ALLOWED_FOR } else { DENIED_FOR };
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(key, (allowed, Instant::now() + ttl));
        Ok(allowed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (bool, Instant)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}
