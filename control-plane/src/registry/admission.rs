//! Admission: what the server sets, defaults and checks before an object is stored.

use rand::Rng;
use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_api::{defaults, validation};

use super::{finalizers, object, strategy, Subresource};
use crate::error::ApiError;

/// Fills server-owned metadata and defaults of a new object (validation follows admission).
pub fn prepare_create(
    kind: &ResourceKind,
    path_namespace: Option<&str>,
    obj: &mut Value,
) -> Result<(), ApiError> {
    check_type(kind, obj)?;
    settle_namespace(kind, path_namespace, obj)?;
    if let Some(prefix) = generate_name_prefix(obj) {
        object::set_meta(obj, "name", generate_name(&prefix));
    }
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        object::remove_meta(obj, field);
    }
    object::set_meta(obj, "uid", uuid::Uuid::new_v4().to_string());
    object::set_meta(obj, "creationTimestamp", object::now_rfc3339());
    if obj.get("spec").is_some() {
        object::set_meta(obj, "generation", 1);
    }
    strategy::of(kind).prepare_for_create(obj);
    defaults::apply_defaults(kind, obj);
    Ok(())
}

/// Builds the object to store for an update of `old` with `new` through `subresource`.
pub fn prepare_update(
    kind: &ResourceKind,
    path_namespace: Option<&str>,
    path_name: &str,
    old: &Value,
    mut new: Value,
    subresource: Subresource,
) -> Result<Value, ApiError> {
    let strategy = strategy::of(kind);
    check_type(kind, &mut new)?;
    settle_namespace(kind, path_namespace, &mut new)?;
    match object::name(&new) {
        Some(name) if name != path_name => {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({name}) does not match the name on the URL ({path_name})"
            )))
        }
        _ => object::set_meta(&mut new, "name", path_name),
    }
    let mut next = match subresource {
        Subresource::Status => {
            let mut next = old.clone();
            next["status"] = new.get("status").cloned().unwrap_or(Value::Null);
            strategy.prepare_for_status_update(old, &mut next);
            strategy.validate_status_update(kind, old, &next)?;
            next
        }
        Subresource::Approval => strategy.prepare_for_approval(kind, old, &new)?,
        Subresource::Main => {
            if strategy.has_status_subresource() {
                match old.get("status") {
                    Some(status) => new["status"] = status.clone(),
                    None => {
                        if let Some(map) = new.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
            }
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old.get("metadata").and_then(|m| m.get(field)) {
                    Some(value) => object::set_meta(&mut new, field, value.clone()),
                    None => object::remove_meta(&mut new, field),
                }
            }
            strategy.prepare_for_update(old, &mut new);
            defaults::apply_defaults(kind, &mut new);
            if new.get("spec") != old.get("spec") {
                let generation = old
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                object::set_meta(&mut new, "generation", generation + 1);
            }
            strategy.validate_update(kind, old, &new)?;
            finalizers::check_update(kind, old, &new)?;
            new
        }
    };
    object::remove_meta(&mut next, "resourceVersion");
    validate(kind, &next)?;
    Ok(next)
}

/// Validates an object with field paths (422 with the causes).
pub fn validate(kind: &ResourceKind, obj: &Value) -> Result<(), ApiError> {
    validation::validate(kind, obj)
        .map_err(|causes| ApiError::invalid(kind, object::name(obj).unwrap_or_default(), causes))
}

/// Checks (or fills) `apiVersion` and `kind` against the addressed resource.
fn check_type(kind: &ResourceKind, obj: &mut Value) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    }
    let api_version = kind.api_version();
    for (field, expected) in [("apiVersion", api_version.as_str()), ("kind", kind.kind)] {
        match obj.get(field).and_then(Value::as_str) {
            None | Some("") => obj[field] = Value::String(expected.to_string()),
            Some(found) if found == expected => {}
            Some(found) => {
                return Err(ApiError::BadRequest(format!(
                    "{field} {found:?} does not match the addressed resource ({expected})"
                )))
            }
        }
    }
    Ok(())
}

/// Puts the namespace from the URL into the object (or checks they agree).
fn settle_namespace(
    kind: &ResourceKind,
    path_namespace: Option<&str>,
    obj: &mut Value,
) -> Result<(), ApiError> {
    if !kind.namespaced {
        object::remove_meta(obj, "namespace");
        return Ok(());
    }
    let body = object::namespace(obj).map(str::to_string);
    match (path_namespace, body.as_deref()) {
        (Some(path), Some(body)) if path != body => Err(ApiError::BadRequest(format!(
            "the namespace of the provided object ({body}) does not match the namespace sent on the request ({path})"
        ))),
        (Some(path), _) => {
            object::set_meta(obj, "namespace", path);
            Ok(())
        }
        (None, Some(_)) => Ok(()),
        (None, None) => {
            object::set_meta(obj, "namespace", "default");
            Ok(())
        }
    }
}

/// The `generateName` prefix of an object that names itself no other way.
pub fn generate_name_prefix(obj: &Value) -> Option<String> {
    if object::name(obj).is_some() {
        return None;
    }
    object::meta_str(obj, "generateName")
        .filter(|p| !p.is_empty())
        .map(str::to_string)
}

/// `prefix` and a random five-character suffix.
pub fn generate_name(prefix: &str) -> String {
    format!("{prefix}{}", random_suffix())
}

/// Five characters as Kubernetes' `generateName` uses (no vowels, no look-alikes).
pub(super) fn random_suffix() -> String {
    #[cfg(test)]
    if let Some(suffix) = tests::NEXT_SUFFIXES.with(|q| q.borrow_mut().pop_front()) {
        return suffix;
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::thread_rng();
    (0..5)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use super::*;

    thread_local! {
        /// Suffixes that `generateName` draws next on this thread, before random ones.
        pub static NEXT_SUFFIXES: RefCell<VecDeque<String>> = RefCell::default();
    }

    #[test]
    fn suffixes_use_the_kubernetes_alphabet() {
        let s = random_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}
