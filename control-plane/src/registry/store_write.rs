//! The store writes every create and update ends in: one compare-and-put, with the
//! quota charges (and a Service's allocations) in the same transaction.

use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_raft_store::{Compare, KeyValue, Op, OpResult, Txn};

use super::{codec, is_service, object, quota, Registry};
use crate::error::ApiError;

/// How often a create charges its namespace's quotas again when a concurrent create moved
/// them first (Kubernetes' quota admission retries on conflict too).
const QUOTA_ATTEMPTS: u32 = 64;

impl Registry {
    /// Writes `obj` at `key` with what it is charged in its namespace's quotas, in one store
    /// transaction: a create (`previous` `None`) if the key is absent, an update of the
    /// `previous` stored object (its revision and value) if the key is still at it. A
    /// Service's allocations are written with it. `None` if the key moved (a create's name
    /// is taken, an update's object changed); the quotas are charged again when they moved.
    pub(super) async fn write_charged(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        key: &str,
        obj: &Value,
        previous: Option<(&KeyValue, &Value)>,
    ) -> Result<Option<KeyValue>, ApiError> {
        let expected = previous.map_or(0, |(kv, _)| kv.mod_revision);
        let old = previous.map(|(_, old)| old);
        let mut quota_attempts = 0;
        loop {
            let charges = match namespace {
                Some(ns) => self.charge_quotas(kind, ns, obj, old).await?,
                None => Vec::new(),
            };
            let charged = match previous {
                Some((current, old)) if is_service(kind) => {
                    self.update_service(kind, current, old, obj, &charges)
                        .await?
                }
                None if is_service(kind) => self.create_service(kind, key, obj, &charges).await?,
                _ if charges.is_empty() || self.dry_run => {
                    match self.put_if(key, expected, obj).await? {
                        Some(kv) => quota::Charged::Stored(kv),
                        None => quota::Charged::ObjectMoved,
                    }
                }
                _ => self.put_charged(key, expected, obj, &charges).await?,
            };
            match charged {
                quota::Charged::Stored(kv) => return Ok(Some(kv)),
                quota::Charged::ObjectMoved => return Ok(None),
                quota::Charged::QuotaMoved if quota_attempts < QUOTA_ATTEMPTS => {
                    quota_attempts += 1;
                }
                quota::Charged::QuotaMoved => {
                    return Err(ApiError::Conflict {
                        resource: crate::error::qualified(kind),
                        name: object::name(obj).unwrap_or_default().to_string(),
                        message: "the namespace's quotas kept changing; try again".into(),
                    })
                }
            }
        }
    }

    /// Puts `obj` at `key` if the key's revision is `expected` (0: absent); `None` on mismatch.
    pub(super) async fn put_if(
        &self,
        key: &str,
        expected: u64,
        obj: &Value,
    ) -> Result<Option<KeyValue>, ApiError> {
        let plain = codec::encode(obj)?;
        if self.dry_run {
            return self.check_put(key, expected, plain).await;
        }
        let value = self.encryption.seal(key.as_bytes(), plain.clone())?;
        let response = self
            .store
            .txn(Txn {
                compare: vec![Compare::ModRevision {
                    key: key.as_bytes().to_vec(),
                    revision: expected,
                }],
                success: vec![Op::Put {
                    key: key.as_bytes().to_vec(),
                    value,
                }],
                failure: vec![],
            })
            .await?;
        if !response.succeeded {
            return Ok(None);
        }
        match response.results.into_iter().next() {
            // Answered in clear: what was written is what the caller asked for.
            Some(OpResult::Put { mut kv, .. }) => {
                kv.value = plain;
                Ok(Some(kv))
            }
            other => Err(ApiError::Internal(format!(
                "store answered a put with {other:?}"
            ))),
        }
    }
}
