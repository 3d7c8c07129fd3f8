//! Patches: JSON merge patches (RFC 7386), strategic merge patches and JSON Patches
//! (RFC 6902), applied as a read-modify-write on one revision.

use serde_json::Value;
use skiff_api::resources::ResourceKind;

use super::codec::decode;
use super::{object, strategic_merge, Registry, Subresource};
use crate::error::ApiError;

/// A check of a patched object before it is written (RBAC escalation prevention); a refusal
/// leaves the object as it was.
pub type Guard<'a> = &'a (dyn Fn(&Value) -> Result<(), ApiError> + Send + Sync);

/// A guard that lets every patched object through (the server's own patches).
pub fn unguarded(_: &Value) -> Result<(), ApiError> {
    Ok(())
}

/// How many times a merge patch retries against concurrent writers before giving up with 409.
const PATCH_RETRIES: usize = 5;

impl Registry {
    /// Applies a JSON merge patch (RFC 7386) to the object or its status, retrying on
    /// concurrent writes unless the patch itself pins a `resourceVersion`.
    pub async fn patch(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
        subresource: Subresource,
    ) -> Result<Value, ApiError> {
        self.patch_guarded(kind, namespace, name, patch, subresource, &unguarded)
            .await
    }

    /// `patch`, with `guard` seeing the patched object before it is written.
    pub async fn patch_guarded(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
        subresource: Subresource,
        guard: Guard<'_>,
    ) -> Result<Value, ApiError> {
        let pinned = object::resource_version(patch).map_err(ApiError::BadRequest)?;
        self.patch_with(kind, namespace, name, pinned, subresource, |obj| {
            json_patch::merge(obj, patch);
            guard(obj)
        })
        .await
    }

    /// Applies a strategic merge patch with the patch strategies of `kind`, retrying on
    /// concurrent writes unless the patch pins a `resourceVersion`. A kind with no patch
    /// strategies gets 415, as Kubernetes answers for custom resources. `guard` sees the
    /// patched object before it is written.
    pub async fn strategic_patch(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
        subresource: Subresource,
        guard: Guard<'_>,
    ) -> Result<Value, ApiError> {
        let root = strategic_merge::merge_keys::root(kind.kind).ok_or_else(|| {
            ApiError::UnsupportedMediaType(format!(
                "strategic merge patch is not supported for {}; use a JSON merge patch or a \
                 JSON Patch",
                kind.kind
            ))
        })?;
        let pinned = object::resource_version(patch).map_err(ApiError::BadRequest)?;
        self.patch_with(kind, namespace, name, pinned, subresource, |obj| {
            *obj = strategic_merge::apply(obj, patch, root)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            guard(obj)
        })
        .await
    }

    /// Applies a JSON Patch (RFC 6902) atomically: its `test` operations see the same version
    /// its other operations change (a compare-and-swap on any field); a failed test is 422.
    /// `guard` sees the patched object before it is written.
    pub async fn json_patch(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        patch: &json_patch::Patch,
        subresource: Subresource,
        guard: Guard<'_>,
    ) -> Result<Value, ApiError> {
        self.patch_with(kind, namespace, name, None, subresource, |obj| {
            json_patch::patch(obj, patch).map_err(|e| ApiError::PatchFailed(e.to_string()))?;
            guard(obj)
        })
        .await
    }

    /// Reads, changes with `apply`, and writes back on the same revision, retrying on
    /// concurrent writes unless `pinned` to a revision. The read follows a read barrier, so a
    /// patch that fails (a JSON Patch `test`) failed against the current object, not a stale
    /// replica.
    pub(super) async fn patch_with(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        pinned: Option<u64>,
        subresource: Subresource,
        apply: impl Fn(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        for _ in 0..PATCH_RETRIES {
            self.read_barrier().await?;
            let current = self.get_kv(kind, namespace, name).await?;
            if pinned.is_some_and(|rv| rv != current.mod_revision) {
                return Err(ApiError::stale(kind, name));
            }
            let mut obj = decode(&current)?;
            apply(&mut obj)?;
            match self
                .update_from(kind, namespace, name, &current, obj, subresource)
                .await
            {
                Err(ApiError::Conflict { .. }) if pinned.is_none() => continue,
                other => return other,
            }
        }
        Err(ApiError::stale(kind, name))
    }
}
