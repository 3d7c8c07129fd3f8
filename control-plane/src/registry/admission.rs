//! Admission: what the server sets, defaults and checks before an object is stored.

use rand::Rng;
use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_api::{defaults, validation};

use super::object;
use super::Subresource;
use crate::error::ApiError;

/// Namespaces that exist from the start and may not be deleted.
pub const PROTECTED_NAMESPACES: &[&str] = &["default", "kube-system"];

/// Kinds whose `status` is written only through the `/status` subresource.
fn has_status_subresource(kind: &ResourceKind) -> bool {
    matches!(
        kind.kind,
        "Pod" | "Node" | "Namespace" | "Service" | "Deployment" | "ReplicaSet"
    )
}

/// Fills server-owned metadata, defaults and validates a new object.
pub fn prepare_create(
    kind: &ResourceKind,
    path_namespace: Option<&str>,
    obj: &mut Value,
) -> Result<(), ApiError> {
    check_type(kind, obj)?;
    settle_namespace(kind, path_namespace, obj)?;
    if object::name(obj).is_none() {
        if let Some(prefix) = object::meta_str(obj, "generateName").filter(|p| !p.is_empty()) {
            let name = format!("{prefix}{}", random_suffix());
            object::set_meta(obj, "name", name);
        }
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
    if kind.kind == "Pod" {
        // A new pod starts Pending, whatever the client sent as status.
        obj["status"] = serde_json::json!({ "phase": "Pending" });
    } else if has_status_subresource(kind) && kind.kind != "Node" {
        if let Some(map) = obj.as_object_mut() {
            map.remove("status");
        }
    }
    defaults::apply_defaults(kind, obj);
    validate(kind, obj)
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
            next
        }
        Subresource::Main => {
            if has_status_subresource(kind) {
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
            defaults::apply_defaults(kind, &mut new);
            if new.get("spec") != old.get("spec") {
                let generation = old
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                object::set_meta(&mut new, "generation", generation + 1);
            }
            check_immutable(kind, old, &new)?;
            new
        }
    };
    object::remove_meta(&mut next, "resourceVersion");
    validate(kind, &next)?;
    Ok(next)
}

/// Fields Kubernetes forbids changing once set.
fn check_immutable(kind: &ResourceKind, old: &Value, new: &Value) -> Result<(), ApiError> {
    if kind.kind != "Pod" {
        return Ok(());
    }
    let old_node = old.pointer("/spec/nodeName").and_then(Value::as_str);
    let new_node = new.pointer("/spec/nodeName").and_then(Value::as_str);
    if old_node.is_some_and(|n| !n.is_empty()) && old_node != new_node {
        return Err(ApiError::invalid(
            kind,
            object::name(new).unwrap_or_default(),
            vec![validation::FieldError {
                field: "spec.nodeName".into(),
                reason: validation::FieldErrorReason::Forbidden,
                message: "may not be changed once the pod is bound".into(),
            }],
        ));
    }
    Ok(())
}

fn validate(kind: &ResourceKind, obj: &Value) -> Result<(), ApiError> {
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

/// Five characters as Kubernetes' `generateName` uses (no vowels, no look-alikes).
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::thread_rng();
    (0..5)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The grace period a pod deletion gets: 0 for pods no node runs.
pub fn pod_grace_period(pod: &Value, requested: Option<i64>) -> i64 {
    let bound = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !bound {
        return 0;
    }
    requested
        .or_else(|| {
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30)
        .max(0)
}

/// The pod marked for graceful deletion, or `None` if it is already marked with a grace no longer than `grace`.
pub fn mark_terminating(pod: &Value, grace: i64) -> Option<Value> {
    let current = pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    if object::meta_str(pod, "deletionTimestamp").is_some() && current.is_some_and(|c| c <= grace) {
        return None;
    }
    let mut marked = pod.clone();
    let at = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(grace))
        .map(|t| {
            jiff::Timestamp::from_second(t.as_second())
                .unwrap_or(t)
                .to_string()
        })
        .unwrap_or_else(|_| object::now_rfc3339());
    object::set_meta(&mut marked, "deletionTimestamp", at);
    object::set_meta(&mut marked, "deletionGracePeriodSeconds", grace);
    Some(marked)
}

/// Sets the `PodScheduled=True` condition a binding implies.
pub fn mark_scheduled(pod: &mut Value) {
    let condition = serde_json::json!({
        "type": "PodScheduled",
        "status": "True",
        "lastTransitionTime": object::now_rfc3339(),
    });
    let status = &mut pod["status"];
    if !status.is_object() {
        *status = serde_json::json!({ "phase": "Pending" });
    }
    let conditions = &mut status["conditions"];
    let mut kept: Vec<Value> = conditions
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    kept.push(condition);
    *conditions = Value::Array(kept);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn suffixes_use_the_kubernetes_alphabet() {
        let s = random_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }

    #[test]
    fn unbound_pods_have_no_grace() {
        let pod = json!({"spec": {"terminationGracePeriodSeconds": 10}});
        assert_eq!(pod_grace_period(&pod, None), 0);
        let bound = json!({"spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 10}});
        assert_eq!(pod_grace_period(&bound, None), 10);
        assert_eq!(pod_grace_period(&bound, Some(0)), 0);
    }

    #[test]
    fn marking_twice_keeps_the_first_mark_unless_shorter() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n"}});
        let marked = mark_terminating(&pod, 30).expect("first mark");
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 30);
        assert!(mark_terminating(&marked, 30).is_none());
        let shorter = mark_terminating(&marked, 5).expect("shorter grace");
        assert_eq!(shorter["metadata"]["deletionGracePeriodSeconds"], 5);
    }
}
