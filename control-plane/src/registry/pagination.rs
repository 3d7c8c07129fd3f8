//! Paged lists (`limit`, `continue`) as Kubernetes serves them: every page is read at the
//! revision of the first, and a token whose revision's history is gone answers 410 Expired.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_raft_store::StoreError;

use super::codec::decode;
use super::{list_prefix, ListOptions, Registry};
use crate::error::ApiError;

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    /// The objects of this page, in key order.
    pub items: Vec<Value>,
    /// The revision every page of this list is read at.
    pub revision: u64,
    /// `metadata.continue`: set when more objects follow.
    pub continue_token: Option<String>,
    /// `metadata.remainingItemCount`: how many follow, when no selector makes that a guess.
    pub remaining: Option<u64>,
}

/// Which revision a list's first page is read at: `resourceVersion` with
/// `resourceVersionMatch`, as Kubernetes serves them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadAt {
    /// The current state (no `resourceVersion`, or `0`).
    #[default]
    Latest,
    /// The current state, which must be at least this revision (`NotOlderThan`, and a
    /// `resourceVersion` without a match rule).
    NotOlderThan(u64),
    /// Exactly this revision, while the store still has its history (`Exact`).
    Exact(u64),
}

/// A requested revision the store has not reached (Kubernetes' 504 "Too large resource version").
fn too_large(requested: u64, current: u64) -> ApiError {
    ApiError::Timeout(format!(
        "Too large resource version: {requested}, current: {current}"
    ))
}

/// What a continue token carries (the shape Kubernetes' tokens have).
#[derive(Serialize, Deserialize)]
struct ContinueToken {
    v: String,
    rv: u64,
    /// The last key returned, relative to the list's store prefix.
    start: String,
}

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

impl ContinueToken {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("a token serializes"))
    }

    fn decode(token: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::BadRequest(format!("continue key {token:?} is not valid"));
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|_| invalid())?;
        let token: ContinueToken = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if token.v != TOKEN_VERSION {
            return Err(invalid());
        }
        Ok(token)
    }
}

impl Registry {
    /// Up to `limit` objects (all when `None`) after the `continue` token's position, read at
    /// its revision (or, for a first page, as `at` asks).
    pub async fn list_page(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        options: &ListOptions,
        limit: Option<usize>,
        continue_token: Option<&str>,
        at: ReadAt,
    ) -> Result<Page, ApiError> {
        let prefix = list_prefix(kind, namespace);
        let (kvs, revision, after) = match (continue_token, at) {
            (None, ReadAt::Exact(rv)) => {
                let current = self.store.revision();
                if rv > current {
                    return Err(too_large(rv, current));
                }
                let kvs = self.store.range_at(prefix.as_bytes(), rv).await?;
                (kvs, rv, None)
            }
            (None, _) => {
                let (kvs, revision) = self.store.range(prefix.as_bytes()).await?;
                if let ReadAt::NotOlderThan(rv) = at {
                    if rv > revision {
                        return Err(too_large(rv, revision));
                    }
                }
                (kvs, revision, None)
            }
            (Some(token), _) => {
                let token = ContinueToken::decode(token)?;
                let kvs = self
                    .store
                    .range_at(prefix.as_bytes(), token.rv)
                    .await
                    .map_err(|e| match e {
                        StoreError::Compacted { .. } => ApiError::ContinueExpired,
                        other => other.into(),
                    })?;
                (kvs, token.rv, Some(format!("{prefix}{}", token.start)))
            }
        };
        let kvs = kvs
            .into_iter()
            .map(|kv| self.encryption.open_kv(kv))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rest = kvs.iter().filter(|kv| {
            after
                .as_ref()
                .is_none_or(|a| kv.key.as_slice() > a.as_bytes())
        });
        let limit = limit.unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut last_key = None;
        for kv in rest.by_ref() {
            if !options.may_match(&kv.value) {
                continue;
            }
            let obj = decode(kv)?;
            if options.matches(&obj) {
                items.push(obj);
                last_key = Some(&kv.key);
                if items.len() == limit {
                    break;
                }
            }
        }
        let unfiltered = options.label_selector.is_none() && options.field_selector.is_none();
        let (more, remaining) = if unfiltered {
            let count = rest.count() as u64;
            (count > 0, (count > 0).then_some(count))
        } else {
            let mut more = false;
            for kv in rest {
                if options.may_match(&kv.value) && options.matches(&decode(kv)?) {
                    more = true;
                    break;
                }
            }
            (more, None)
        };
        let continue_token = match (more, last_key) {
            (true, Some(key)) => Some(
                ContinueToken {
                    v: TOKEN_VERSION.into(),
                    rv: revision,
                    start: String::from_utf8_lossy(&key[prefix.len()..]).into_owned(),
                }
                .encode(),
            ),
            _ => None,
        };
        Ok(Page {
            items,
            revision,
            continue_token,
            remaining,
        })
    }
}
