//! Rewriting stored objects in the form a write gives them now: after a new encryption key
//! became the writing one, every Secret is sealed again under it (`skiff secrets rotate-key`).

use serde::Serialize;
use skiff_api::resources::ResourceKind;
use skiff_raft_store::{Compare, Op, Txn};

use super::Registry;
use crate::error::ApiError;

/// Passes over the objects at most: a write sealed under the old key just before the switch
/// may commit after a pass read past it; the next pass rewrites it.
const PASSES: usize = 5;

/// What a rewrite did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rewritten {
    /// Objects sealed again under the writing key.
    pub rewritten: u64,
    /// Objects already in their current form (or deleted meanwhile).
    pub unchanged: u64,
    /// The key the objects are now under (`None`: stored in clear text).
    pub key: Option<String>,
}

impl Registry {
    /// Rewrites every object of `kind` under the writing key, pass after pass until one finds
    /// nothing left to rewrite; `rewritten` sums the passes, `unchanged` is the last one's.
    pub async fn rewrite_all_at_rest(&self, kind: &ResourceKind) -> Result<Rewritten, ApiError> {
        let mut rewritten = 0;
        for _ in 0..PASSES {
            let pass = self.rewrite_at_rest(kind).await?;
            rewritten += pass.rewritten;
            if pass.rewritten == 0 {
                return Ok(Rewritten { rewritten, ..pass });
            }
        }
        Err(ApiError::Unavailable(format!(
            "{} kept being written under an old key after {PASSES} passes ({rewritten} \
             rewritten); run the rewrite again",
            kind.plural
        )))
    }

    /// Rewrites every object of `kind` that is not under the writing key, each with a
    /// compare-and-swap on its revision while the API serves: an object changed meanwhile is
    /// read again (a concurrent write already used the writing key, or is rewritten from its
    /// new value), so no write is lost or replaced by stale data.
    async fn rewrite_at_rest(&self, kind: &ResourceKind) -> Result<Rewritten, ApiError> {
        self.read_barrier().await?;
        let prefix = kind.store_prefix(None);
        let (kvs, _) = self.store.range(prefix.as_bytes()).await?;
        let mut done = Rewritten {
            key: self.encryption.write_key(prefix.as_bytes()),
            ..Rewritten::default()
        };
        for kv in kvs {
            let mut current = Some(kv);
            while let Some(kv) = current.take() {
                if self.encryption.is_current(&kv.key, &kv.value) {
                    done.unchanged += 1;
                    break;
                }
                let plain = self.encryption.open(&kv.key, kv.value)?;
                let value = self.encryption.seal(&kv.key, plain)?;
                let response = self
                    .store
                    .txn(Txn {
                        compare: vec![Compare::ModRevision {
                            key: kv.key.clone(),
                            revision: kv.mod_revision,
                        }],
                        success: vec![Op::Put {
                            key: kv.key.clone(),
                            value,
                        }],
                        failure: vec![],
                    })
                    .await?;
                if response.succeeded {
                    done.rewritten += 1;
                    break;
                }
                current = self.store.get(&kv.key).await?;
                if current.is_none() {
                    done.unchanged += 1;
                }
            }
        }
        Ok(done)
    }
}
