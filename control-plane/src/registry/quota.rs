//! Namespace policies at admission: LimitRange defaults and bounds for pods, and
//! ResourceQuota charges written in the same store transaction as the object they admit.

use serde_json::Value;
use skiff_api::admission::{limit_range, quota, quota_scope};
use skiff_api::resources::{self, ResourceKind};
use skiff_raft_store::{Compare, KeyValue, Op, OpResult, Txn};

use super::{codec, object, pods, quotas as resource_quotas, ListOptions, Registry};
use crate::error::{qualified, ApiError};

/// A quota with its new `status.used`, to be written if it is still at `revision`.
pub(super) struct Charge {
    key: String,
    revision: u64,
    quota: Value,
}

impl Charge {
    /// Whether the quota's current value `now` is still the one charged.
    pub(super) fn unchanged(&self, now: Option<&KeyValue>) -> bool {
        now.map_or(0, |kv| kv.mod_revision) == self.revision
    }

    /// The compare (the quota is still at the revision charged) and the put of its new status.
    pub(super) fn txn_parts(&self, registry: &Registry) -> Result<(Compare, Op), ApiError> {
        let value = codec::encode(&self.quota)?;
        Ok((
            Compare::ModRevision {
                key: self.key.as_bytes().to_vec(),
                revision: self.revision,
            },
            Op::Put {
                key: self.key.as_bytes().to_vec(),
                value: registry.encryption.seal(self.key.as_bytes(), value)?,
            },
        ))
    }
}

/// How a write with quota charges ended.
pub(super) enum Charged {
    /// Written; the object as stored.
    Stored(KeyValue),
    /// The object is not at the revision expected: a create's name is taken, or the object
    /// an update read changed since.
    ObjectMoved,
    /// A quota changed since it was read: charge again.
    QuotaMoved,
}

impl Registry {
    /// Fills a new pod's missing requests and limits from its namespace's LimitRanges, then
    /// refuses a pod or a PersistentVolumeClaim (403) if it breaks their bounds. An update
    /// (`old` the stored object) is checked only when it expands a claim: a pod's containers
    /// and their resources are fixed once it is created.
    pub(super) async fn admit_limit_ranges(
        &self,
        kind: &ResourceKind,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let claim = kind == claims();
        let checked = match old {
            None => claim || kind == pods(),
            Some(old) => claim && requested_storage(obj) > requested_storage(old),
        };
        if !checked {
            return Ok(());
        }
        let Some(ns) = object::namespace(obj).map(str::to_string) else {
            return Ok(());
        };
        // Most namespaces have no LimitRange: a one-key check of this member's store (the
        // store the list below reads) spares them the range read.
        if !self.any_stored(limit_ranges(), Some(&ns)).await? {
            return Ok(());
        }
        let (ranges, _) = self
            .list(limit_ranges(), Some(&ns), &ListOptions::default())
            .await?;
        if ranges.is_empty() {
            return Ok(());
        }
        let violations = if claim {
            limit_range::claim_violations(&ranges, obj)
        } else {
            limit_range::apply_defaults(&ranges, obj);
            limit_range::violations(&ranges, obj)
        };
        if violations.is_empty() {
            return Ok(());
        }
        Err(ApiError::Forbidden {
            resource: qualified(kind),
            name: object::name(obj).unwrap_or_default().to_string(),
            message: violations.join(", "),
        })
    }

    /// Charges `obj` to the quotas of its namespace that limit what it uses: 403 if it does
    /// not fit one; otherwise the quotas to write with it (none when no quota applies).
    /// An update (`old` the stored object) is charged what it adds to each quota: its growth
    /// where `old` was counted by the quota already, all it uses where the update moves it
    /// into the quota's scope; an update that adds nothing charges nothing.
    pub(super) async fn charge_quotas(
        &self,
        kind: &ResourceKind,
        namespace: &str,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<Vec<Charge>, ApiError> {
        if old.is_some() && !quota::charged_on_update(kind) {
            return Ok(Vec::new());
        }
        // Quotas first, then usage, from this member's store (no read barrier): the usage
        // read is at least as new as the quotas, and a charged write that is missing from it
        // moved the quotas, so the write below fails its compare and this charges again.
        // A namespace without quotas is told so by a one-key check of the same local store,
        // as recent as the list it spares, so creates there pay no range read.
        if !self.any_stored(resource_quotas(), Some(namespace)).await? {
            return Ok(Vec::new());
        }
        let (quotas, _) = self
            .list(resource_quotas(), Some(namespace), &ListOptions::default())
            .await?;
        let uses = quota::usage(kind, obj);
        let mut applying = Vec::new();
        for q in quotas {
            let hard = quota::hard(&q);
            if !hard.keys().any(|r| uses.contains_key(r)) || !quota_scope::matches(&q, kind, obj) {
                continue;
            }
            let requested = match old.filter(|old| quota_scope::matches(&q, kind, old)) {
                Some(old) => {
                    let grown = quota::growth(&uses, &quota::usage(kind, old));
                    if !hard.keys().any(|r| grown.get(r).is_some_and(|v| *v > 0)) {
                        continue;
                    }
                    grown
                }
                None => uses.clone(),
            };
            applying.push((q, requested));
        }
        if applying.is_empty() {
            return Ok(Vec::new());
        }
        let (existing, _) = self
            .list(kind, Some(namespace), &ListOptions::default())
            .await?;
        let mut charges = Vec::new();
        for (q, requested) in applying {
            let scoped: Vec<Value> = existing
                .iter()
                .filter(|o| quota_scope::matches(&q, kind, o))
                .cloned()
                .collect();
            let used = quota::total(kind, &scoped);
            let charged = quota::charge(&q, kind, obj, &requested, &used).map_err(|e| {
                ApiError::Forbidden {
                    resource: qualified(kind),
                    name: object::name(obj).unwrap_or_default().to_string(),
                    message: e.to_string(),
                }
            })?;
            let name = object::name(&q).unwrap_or_default();
            charges.push(Charge {
                key: resource_quotas().store_key(Some(namespace), name),
                revision: object::resource_version(&q)
                    .map_err(ApiError::Internal)?
                    .unwrap_or(0),
                quota: charged,
            });
        }
        Ok(charges)
    }

    /// Writes `obj` at `key` if the key is at revision `expected` (0: absent), with the
    /// charged quotas (if unchanged), in one txn.
    pub(super) async fn put_charged(
        &self,
        key: &str,
        expected: u64,
        obj: &Value,
        charges: &[Charge],
    ) -> Result<Charged, ApiError> {
        let plain = codec::encode(obj)?;
        let mut txn = Txn {
            compare: vec![Compare::ModRevision {
                key: key.as_bytes().to_vec(),
                revision: expected,
            }],
            success: vec![Op::Put {
                key: key.as_bytes().to_vec(),
                value: self.encryption.seal(key.as_bytes(), plain.clone())?,
            }],
            failure: vec![],
        };
        for charge in charges {
            let (compare, op) = charge.txn_parts(self)?;
            txn.compare.push(compare);
            txn.success.push(op);
        }
        let response = self.store.txn(txn).await?;
        if response.succeeded {
            return match response.results.into_iter().next() {
                // Answered in clear: what was written is what the caller asked for.
                Some(OpResult::Put { mut kv, .. }) => {
                    kv.value = plain;
                    Ok(Charged::Stored(kv))
                }
                other => Err(ApiError::Internal(format!(
                    "store answered a put with {other:?}"
                ))),
            };
        }
        let now = self.store.get(key.as_bytes()).await?;
        if now.map_or(0, |kv| kv.mod_revision) != expected {
            return Ok(Charged::ObjectMoved);
        }
        Ok(Charged::QuotaMoved)
    }

    /// A ResourceQuota's `status` as it is: its `hard`, and what its namespace uses of it
    /// (Kubernetes' quota controller computes the same).
    pub async fn quota_status(&self, namespace: &str, quota: &Value) -> Result<Value, ApiError> {
        let mut used = serde_json::Map::new();
        for (resource, _) in quota::hard(quota) {
            let Some(kind) = quota::kind_of(&resource) else {
                continue;
            };
            let (existing, _) = self
                .list(kind, Some(namespace), &ListOptions::default())
                .await?;
            let scoped: Vec<Value> = existing
                .into_iter()
                .filter(|o| quota_scope::matches(quota, kind, o))
                .collect();
            let amount = quota::total(kind, &scoped)
                .get(&resource)
                .copied()
                .unwrap_or(0);
            used.insert(
                resource.clone(),
                Value::String(skiff_api::admission::format_milli(&resource, amount)),
            );
        }
        Ok(serde_json::json!({
            "hard": quota.pointer("/spec/hard").cloned().unwrap_or(Value::Null),
            "used": used,
        }))
    }
}

fn limit_ranges() -> &'static ResourceKind {
    resources::by_name("limitranges").expect("limitranges are served")
}

/// A claim's `spec.resources.requests.storage` in thousandths of a byte; 0 if unset or
/// unparsable (validation refuses that).
fn requested_storage(claim: &Value) -> u64 {
    quota::usage(claims(), claim)
        .get("requests.storage")
        .copied()
        .unwrap_or(0)
}

fn claims() -> &'static ResourceKind {
    resources::by_name("persistentvolumeclaims").expect("persistentvolumeclaims are served")
}
