//! Updates of an object or of its status.

use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_raft_store::KeyValue;

use super::codec::{decode, strip_version};
use super::{admission, finalizers, is_service, object, scope, Registry, Subresource};
use crate::error::ApiError;

impl Registry {
    /// Replaces an object (or its status). A `metadata.resourceVersion` in `obj` that is not
    /// the current one fails with 409; an absent one means an unconditional update.
    pub async fn update(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        obj: Value,
        subresource: Subresource,
    ) -> Result<Value, ApiError> {
        let expected = object::resource_version(&obj).map_err(ApiError::BadRequest)?;
        // Compared against the current object, not a replica that may trail the client.
        self.read_barrier().await?;
        let current = self.get_kv(kind, namespace, name).await?;
        if expected.is_some_and(|rv| rv != current.mod_revision) {
            return Err(ApiError::stale(kind, name));
        }
        self.update_from(kind, namespace, name, &current, obj, subresource)
            .await
    }

    pub(super) async fn update_from(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        current: &KeyValue,
        obj: Value,
        subresource: Subresource,
    ) -> Result<Value, ApiError> {
        let old = decode(current)?;
        let mut new = admission::prepare_update(kind, namespace, name, &old, obj, subresource)?;
        if strip_version(&new) == strip_version(&old) {
            return Ok(old);
        }
        self.record_write(kind, Some(&old), &mut new, subresource)?;
        let key = kind.store_key(scope(kind, namespace), name);
        let stored = if subresource == Subresource::Main {
            self.admit_limit_ranges(kind, &mut new, Some(&old)).await?;
            let ns = scope(kind, namespace);
            self.write_charged(kind, ns, &key, &new, Some((current, &old)))
                .await?
        } else {
            self.put_if(&key, current.mod_revision, &new).await?
        };
        let Some(kv) = stored else {
            return Err(ApiError::stale(kind, name));
        };
        let stored = decode(&kv)?;
        if finalizers::ready_to_remove(&stored) {
            // The update removed the last finalizer of an object being deleted: it goes now.
            let removed = if is_service(kind) {
                self.delete_service(&kv, &stored).await?
            } else {
                self.delete_if(&kv).await?
            };
            if removed.is_none() {
                tracing::debug!(name, "a finalized object changed again before its removal");
            }
        }
        Ok(stored)
    }
}
