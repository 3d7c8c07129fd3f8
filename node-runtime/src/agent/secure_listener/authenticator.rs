//! The listener's webhook token authentication, as the kubelet's
//! (`--authentication-token-webhook`): a bearer token is asked of the API with a TokenReview
//! (as the node's own identity) and the answer cached, keyed by the token's SHA-256 digest,
//! authenticated for two minutes and unauthenticated for thirty seconds (the kubelet's
//! defaults).

use std::time::Duration;

use sha2::{Digest, Sha256};
use skiff_client::{Client, ClientError, ReviewSubject, TokenReviewAnswer};

use super::ttl_cache::TtlCache;

const AUTHENTICATED_FOR: Duration = Duration::from_secs(120);
const UNAUTHENTICATED_FOR: Duration = Duration::from_secs(30);

/// Asks the API whose bearer tokens are, with a short-lived cache.
pub struct TokenAuthenticator {
    client: Client,
    cache: TtlCache<[u8; 32], Option<ReviewSubject>>,
}

impl TokenAuthenticator {
    /// An authenticator asking the API as `client`.
    pub fn new(client: Client) -> Self {
        TokenAuthenticator {
            client,
            cache: TtlCache::new(),
        }
    }

    /// The user `token` authenticates, or `None` if the API says it authenticates no one.
    pub async fn authenticate(&self, token: &str) -> Result<Option<ReviewSubject>, ClientError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(known) = self.cache.get(&key) {
            return Ok(known);
        }
        let who = match self.client.token_review(token).await? {
            TokenReviewAnswer::Authenticated(user) => Some(ReviewSubject::from(user)),
            TokenReviewAnswer::Unauthenticated(reason) => {
                tracing::debug!(%reason, "a bearer token on the node's listener did not authenticate");
                None
            }
        };
        let ttl = if who.is_some() {
            AUTHENTICATED_FOR
        } else {
            UNAUTHENTICATED_FOR
        };
        self.cache.put(key, who.clone(), ttl);
        Ok(who)
    }
}
