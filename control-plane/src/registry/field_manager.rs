//! Field ownership on the registry's writes: the manager a request writes as, recorded in
//! `managedFields` by creates and updates, and server-side apply.

use serde_json::Value;
use skiff_api::resources::ResourceKind;

use super::{object, strategic_merge, strategy, Guard, Registry, Subresource};
use crate::apply::{self, managed, Applier, ApplyError, Scope, Writer};
use crate::error::ApiError;

/// How many times an apply retries against concurrent writers before giving up with 409.
const APPLY_RETRIES: usize = 5;

/// The manager of a request's writes (`fieldManager`, or the client's user agent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldManager {
    /// The manager's name.
    pub name: String,
    /// The subresource written through, if the write is not through the object's own path
    /// (`scale`; `status` follows from the write itself).
    pub subresource: Option<&'static str>,
}

impl Registry {
    /// This registry with its creates and updates recorded as `Update` entries of `manager`
    /// in `managedFields` (no manager: writes keep the entries as they are).
    pub fn with_field_manager(&self, manager: Option<FieldManager>) -> Registry {
        Registry {
            field_manager: manager,
            ..self.clone()
        }
    }

    /// This registry with its writes recorded as made through `subresource` (`scale`).
    pub(super) fn through(&self, subresource: &'static str) -> Registry {
        let manager = self.field_manager.clone().map(|m| FieldManager {
            subresource: Some(subresource),
            ..m
        });
        self.with_field_manager(manager)
    }

    /// Records a create (`old` is `None`) or update of `new` in its `managedFields` as this
    /// registry's manager's write; without a manager the stored entries are kept unless the
    /// write replaces or clears them.
    pub(super) fn record_write(
        &self,
        kind: &ResourceKind,
        old: Option<&Value>,
        new: &mut Value,
        subresource: Subresource,
    ) -> Result<(), ApiError> {
        let bad = |e: managed::ManagedFieldsError| ApiError::BadRequest(e.to_string());
        let Some(manager) = &self.field_manager else {
            return match old {
                Some(old) => managed::settle(old, new).map_err(bad),
                None => Ok(()),
            };
        };
        let (scope, through) = match subresource {
            Subresource::Main => (main_scope(kind), manager.subresource),
            Subresource::Status => (Scope::Status, Some("status")),
            Subresource::Approval => return Ok(()),
        };
        let api_version = kind.api_version();
        let now = object::now_rfc3339();
        let writer = Writer {
            manager: &manager.name,
            api_version: &api_version,
            subresource: through,
            scope,
            schema: schema(kind),
            now: &now,
        };
        managed::record_update(old, new, &writer).map_err(bad)
    }

    /// Server-side apply of `config` (a full or partial object) by `manager`: creates the
    /// object when it is missing, else merges the configuration in, removes what this
    /// manager applied before and no longer names, and answers 409 for fields other managers
    /// own with other values unless `force`. Returns the object and whether it was created.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        mut config: Value,
        manager: &str,
        force: bool,
        guard: Guard<'_>,
    ) -> Result<(Value, bool), ApiError> {
        check_config(kind, name, &config)?;
        let pinned = object::resource_version(&config).map_err(ApiError::BadRequest)?;
        for field in ["resourceVersion", "managedFields"] {
            object::remove_meta(&mut config, field);
        }
        // The apply writes its own entries; the plain writes below must not add an Update.
        let plain = self.with_field_manager(None);
        let api_version = kind.api_version();
        for _ in 0..APPLY_RETRIES {
            let now = object::now_rfc3339();
            let applier = Applier {
                manager,
                api_version: &api_version,
                scope: main_scope(kind),
                schema: schema(kind),
                now: &now,
                force,
            };
            self.read_barrier().await?;
            match self.get_kv(kind, namespace, name).await {
                Err(ApiError::NotFound { .. }) if pinned.is_none() => {
                    let mut obj = apply::apply(None, &config, &applier).map_err(to_api_error)?;
                    for field in ["apiVersion", "kind"] {
                        obj[field] = config[field].clone();
                    }
                    object::set_meta(&mut obj, "name", name);
                    if let Some(ns) = namespace.filter(|_| kind.namespaced) {
                        object::set_meta(&mut obj, "namespace", ns);
                    }
                    guard(&obj)?;
                    match plain.create(kind, namespace, obj).await {
                        Err(ApiError::AlreadyExists { .. }) => continue,
                        other => return other.map(|created| (created, true)),
                    }
                }
                Err(e) => return Err(e),
                Ok(_) => {}
            }
            let patched = plain
                .patch_with(kind, namespace, name, pinned, Subresource::Main, |obj| {
                    *obj = apply::apply(Some(obj), &config, &applier).map_err(to_api_error)?;
                    guard(obj)
                })
                .await;
            match patched {
                // Deleted between the read and the write: created on the next round.
                Err(ApiError::NotFound { .. }) if pinned.is_none() => continue,
                other => return other.map(|updated| (updated, false)),
            }
        }
        Err(ApiError::stale(kind, name))
    }
}

/// An apply configuration must be of the kind on the URL and name the object it addresses.
fn check_config(kind: &ResourceKind, name: &str, config: &Value) -> Result<(), ApiError> {
    if !config.is_object() {
        return Err(ApiError::BadRequest(
            "the apply configuration must be an object".into(),
        ));
    }
    let expected = kind.api_version();
    match config.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v == expected => {}
        other => {
            return Err(ApiError::BadRequest(format!(
                "apiVersion: the apply configuration's apiVersion ({}) must be {expected}",
                other.unwrap_or("unset")
            )))
        }
    }
    match config.get("kind").and_then(Value::as_str) {
        Some(k) if k == kind.kind => {}
        other => {
            return Err(ApiError::BadRequest(format!(
                "kind: the apply configuration's kind ({}) must be {}",
                other.unwrap_or("unset"),
                kind.kind
            )))
        }
    }
    match object::name(config) {
        Some(n) if n != name => Err(ApiError::BadRequest(format!(
            "metadata.name: the name of the object ({n}) does not match the name on the URL \
             ({name})"
        ))),
        _ => Ok(()),
    }
}

fn to_api_error(err: ApplyError) -> ApiError {
    match err {
        ApplyError::Conflicts(conflicts) => ApiError::ApplyConflict(conflicts),
        ApplyError::ManagedFields(e) => ApiError::BadRequest(e.to_string()),
    }
}

/// The part of an object its own path writes.
fn main_scope(kind: &ResourceKind) -> Scope {
    Scope::Main {
        status_separate: strategy::of(kind).has_status_subresource(),
    }
}

/// The schema type of `kind` in the table of patch strategies (a kind not in it has no
/// merging lists).
fn schema(kind: &ResourceKind) -> &'static str {
    strategic_merge::merge_keys::root(kind.kind).unwrap_or("")
}
