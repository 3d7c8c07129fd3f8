//! Deletes: preconditions, graceful pod deletion, finalizers and propagation, then the
//! removal itself as a compare-and-swap on the object's revision.

use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_raft_store::{Compare, KeyValue, Op, Txn};

use super::codec::decode;
use super::{finalizers, is_service, object, scope, strategy, Registry};
use crate::error::ApiError;

/// Options of a delete call (`DeleteOptions`).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Seconds the workload gets to stop; `Some(0)` deletes at once.
    pub grace_period_seconds: Option<i64>,
    /// Deletes only the object with this uid (`preconditions.uid`); another object of the
    /// same name, such as a StatefulSet pod made anew, gets a 409.
    pub uid: Option<String>,
    /// Deletes only the object at this version (`preconditions.resourceVersion`); else 409.
    pub resource_version: Option<u64>,
    /// What happens to the object's dependents (`propagationPolicy`).
    pub propagation: finalizers::Propagation,
}

impl Registry {
    /// Deletes an object. A pod bound to a node is deleted gracefully: it gets a
    /// `deletionTimestamp` and its node removes it for good once its containers stopped.
    pub async fn delete(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let strategy = strategy::of(kind);
        strategy.check_delete(name)?;
        loop {
            let current = self.get_kv(kind, namespace, name).await?;
            let obj = decode(&current)?;
            if let Some(wanted) = options.uid.as_deref() {
                let actual = object::meta_str(&obj, "uid").unwrap_or_default();
                if wanted != actual {
                    return Err(ApiError::uid_mismatch(kind, name, wanted, actual));
                }
            }
            if options
                .resource_version
                .is_some_and(|rv| rv != current.mod_revision)
            {
                return Err(ApiError::Conflict {
                    resource: crate::error::qualified(kind),
                    name: name.to_string(),
                    message: format!(
                        "Precondition failed: ResourceVersion in precondition: {}, \
                         ResourceVersion in object meta: {}",
                        options.resource_version.unwrap_or_default(),
                        current.mod_revision
                    ),
                });
            }
            let grace = strategy.delete_grace_period(&obj, options.grace_period_seconds);
            if grace > 0 {
                let Some(marked) = strategy::mark_terminating(&obj, grace) else {
                    return Ok(obj);
                };
                let key = kind.store_key(scope(kind, namespace), name);
                match self.put_if(&key, current.mod_revision, &marked).await? {
                    Some(kv) => return decode(&kv),
                    None => continue,
                }
            }
            // Finalizers (and the policies that add one) keep the object, marked, until the
            // last is removed.
            if let Some(mut marked) = finalizers::mark_for_deletion(&obj, options.propagation) {
                if grace == 0 && finalizers::is_deleting(&obj) {
                    // A pod's node ending its grace period early, or a forced delete.
                    object::set_meta(&mut marked, "deletionGracePeriodSeconds", 0);
                }
                if marked == obj {
                    return Ok(obj);
                }
                let key = kind.store_key(scope(kind, namespace), name);
                match self.put_if(&key, current.mod_revision, &marked).await? {
                    Some(kv) => return decode(&kv),
                    None => continue,
                }
            }
            let deleted = if is_service(kind) {
                self.delete_service(&current, &obj).await?
            } else {
                self.delete_if(&current).await?
            };
            if let Some(revision) = deleted {
                // Stamped with the deletion's revision, so callers can wait for caches to see it.
                let mut obj = obj;
                object::set_meta(&mut obj, "resourceVersion", revision.to_string());
                return Ok(obj);
            }
        }
    }

    /// Deletes `current.key` if it is still at `current.mod_revision`; returns the deletion's revision.
    pub(super) async fn delete_if(&self, current: &KeyValue) -> Result<Option<u64>, ApiError> {
        if self.dry_run {
            let now = self.store.get(&current.key).await?;
            let unchanged = now.is_some_and(|kv| kv.mod_revision == current.mod_revision);
            return Ok(unchanged.then_some(current.mod_revision));
        }
        let response = self
            .store
            .txn(Txn {
                compare: vec![Compare::ModRevision {
                    key: current.key.clone(),
                    revision: current.mod_revision,
                }],
                success: vec![Op::Delete {
                    key: current.key.clone(),
                }],
                failure: vec![],
            })
            .await?;
        Ok(response.succeeded.then_some(response.revision))
    }
}
