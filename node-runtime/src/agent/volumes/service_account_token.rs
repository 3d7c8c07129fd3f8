//! `serviceAccountToken` projected sources (the kubelet's token manager): a token for the
//! pod's ServiceAccount, bound to the pod (TokenRequest with `boundObjectRef`), kept per
//! (pod, audience, lifetime) and asked for again once 80% of its lifetime is near (a volume
//! resync early, so the file is rewritten before that point), as the kubelet does.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};
use skiff_api::k8s_openapi::api::core::v1::{Pod, ServiceAccountTokenProjection};
use skiff_client::Client;
use tokio::time::Instant;

use super::VolumeError;

/// A token is asked for again this long before 80% of its lifetime: one volume resync.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// The lifetime a source that names none asks for (Kubernetes' one hour).
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

/// What a token is kept under: the pod, its account, the audience and the lifetime asked for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    pod_uid: String,
    account: String,
    audience: Option<String>,
    expiration_seconds: i64,
}

struct Cached {
    token: String,
    refresh_at: Instant,
    expires_at: Instant,
}

/// The tokens of the node's pods.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<Key, Cached>>,
}

/// When a token that lives `lifetime` from `now` is asked for again.
fn refresh_at(now: Instant, lifetime: Duration) -> Instant {
    let eighty_percent = lifetime.mul_f64(0.8);
    now + eighty_percent.saturating_sub(REFRESH_MARGIN)
}

impl TokenCache {
    /// The token `source` projects for `pod`, asked for through the API when there is no
    /// fresh one.
    pub async fn token(
        &self,
        client: &Client,
        pod: &Pod,
        source: &ServiceAccountTokenProjection,
    ) -> Result<String, VolumeError> {
        let meta = &pod.metadata;
        let (namespace, name, uid) = (
            meta.namespace.as_deref().unwrap_or("default"),
            meta.name.as_deref().unwrap_or_default(),
            meta.uid.as_deref().unwrap_or_default(),
        );
        let spec = pod.spec.as_ref();
        let account = spec
            .and_then(|s| s.service_account_name.as_deref())
            .unwrap_or("default");
        let expiration_seconds = source
            .expiration_seconds
            .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
        let key = Key {
            pod_uid: uid.to_string(),
            account: account.to_string(),
            audience: source.audience.clone().filter(|a| !a.is_empty()),
            expiration_seconds,
        };
        let request = json!({
            "audiences": key.audience.iter().collect::<Vec<_>>(),
            "expirationSeconds": expiration_seconds,
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": name, "uid": uid},
        });
        self.get_or_fetch(key, || async {
            let answer = client
                .create_token(namespace, account, request)
                .await
                .map_err(|source| VolumeError::Api {
                    what: format!("a token for serviceaccount {namespace}/{account}"),
                    source,
                })?;
            issued(&answer, expiration_seconds)
                .ok_or_else(|| VolumeError::NoToken(format!("{namespace}/{account}")))
        })
        .await
    }

    /// The cached token for `key`, or the one `fetch` gets (with its lifetime).
    async fn get_or_fetch<F, Fut>(&self, key: Key, fetch: F) -> Result<String, VolumeError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(String, Duration), VolumeError>>,
    {
        let now = Instant::now();
        {
            let mut entries = self.entries.lock().expect("token cache lock");
            entries.retain(|_, c| c.expires_at > now);
            if let Some(cached) = entries.get(&key).filter(|c| c.refresh_at > now) {
                return Ok(cached.token.clone());
            }
        }
        let (token, lifetime) = fetch().await?;
        let cached = Cached {
            token: token.clone(),
            refresh_at: refresh_at(now, lifetime),
            expires_at: now + lifetime,
        };
        self.entries
            .lock()
            .expect("token cache lock")
            .insert(key, cached);
        Ok(token)
    }
}

/// The token of a TokenRequest's answer and how long it lives (from its
/// `expirationTimestamp`, else the lifetime asked for); none if the answer holds no token.
fn issued(answer: &Value, asked_seconds: i64) -> Option<(String, Duration)> {
    let token = answer
        .pointer("/status/token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())?
        .to_string();
    let asked = Duration::from_secs(asked_seconds.max(0) as u64);
    let lifetime = answer
        .pointer("/status/expirationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|expires| expires.as_second() - jiff::Timestamp::now().as_second())
        .filter(|left| *left > 0)
        .map_or(asked, |left| Duration::from_secs(left as u64));
    Some((token, lifetime))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn key() -> Key {
        Key {
            pod_uid: "u1".into(),
            account: "default".into(),
            audience: None,
            expiration_seconds: 3607,
        }
    }

    async fn fetch(cache: &TokenCache, calls: &AtomicUsize) -> String {
        cache
            .get_or_fetch(key(), || async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                Ok((format!("token-{n}"), Duration::from_secs(3600)))
            })
            .await
            .expect("token")
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_is_kept_until_just_before_eighty_percent_of_its_lifetime() {
        let cache = TokenCache::default();
        let calls = AtomicUsize::new(0);
        assert_eq!(fetch(&cache, &calls).await, "token-0");
        // 80% of an hour is 2880 s; the token is asked for again a resync (60 s) before.
        tokio::time::advance(Duration::from_secs(2819)).await;
        assert_eq!(fetch(&cache, &calls).await, "token-0");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(fetch(&cache, &calls).await, "token-1");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_request_keeps_nothing() {
        let cache = TokenCache::default();
        let failed = cache
            .get_or_fetch(key(), || async {
                Err(VolumeError::Downward {
                    path: "token".into(),
                    message: "refused".into(),
                })
            })
            .await;
        assert!(failed.is_err());
        let calls = AtomicUsize::new(0);
        assert_eq!(fetch(&cache, &calls).await, "token-0");
    }

    #[test]
    fn the_lifetime_comes_from_the_answer() {
        let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(600);
        let answer = json!({"status": {"token": "t",
            "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}});
        let (token, lifetime) = issued(&answer, 3607).expect("a token");
        assert_eq!(token, "t");
        assert!((598..=600).contains(&lifetime.as_secs()), "{lifetime:?}");
        let (_, asked) = issued(&json!({"status": {"token": "t"}}), 3607).expect("a token");
        assert_eq!(asked, Duration::from_secs(3607));
        assert!(issued(&json!({"status": {"token": ""}}), 3607).is_none());
        assert!(issued(&json!({"status": {}}), 3607).is_none());
    }
}
