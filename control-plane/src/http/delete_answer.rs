//! What a DELETE of one object answers, as Kubernetes' generic registry does: the object while
//! it still exists (a graceful deletion, finalizers still to run) and, for the kinds whose
//! storage sets `ReturnDeletedObject`, the object deleted; otherwise a `Status` of `Success`
//! naming what went (`details.kind` is the resource, as Kubernetes writes it).

use serde_json::{json, Value};
use skiff_api::resources::ResourceKind;

/// The kinds whose Kubernetes storage answers a delete with the deleted object.
const RETURNS_DELETED_OBJECT: &[&str] = &[
    "Namespace",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Pod",
    "PodTemplate",
    "ResourceQuota",
    "Service",
    "ServiceAccount",
    "StorageClass",
];

/// The answer to deleting `object` (as the registry returned it) of `kind`.
pub fn answer(kind: &ResourceKind, object: Value) -> Value {
    let meta = &object["metadata"];
    if RETURNS_DELETED_OBJECT.contains(&kind.kind) || !meta["deletionTimestamp"].is_null() {
        return object;
    }
    let mut details = json!({"name": meta["name"], "kind": kind.plural});
    if !kind.group.is_empty() {
        details["group"] = json!(kind.group);
    }
    if let Some(uid) = meta["uid"].as_str() {
        details["uid"] = json!(uid);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

#[cfg(test)]
mod tests {
    use skiff_api::resources;

    use super::*;

    fn object(deleting: bool) -> Value {
        let mut obj = json!({"metadata": {"name": "a", "uid": "u1", "resourceVersion": "9"}});
        if deleting {
            obj["metadata"]["deletionTimestamp"] = json!("2026-12-01T00:00:00Z");
        }
        obj
    }

    #[test]
    fn an_object_gone_at_once_is_answered_with_a_status_naming_it() {
        let deployments = resources::by_name("deployments").expect("served");
        assert_eq!(
            answer(deployments, object(false)),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": "a", "group": "apps", "kind": "deployments", "uid": "u1"}})
        );
        let configmaps = resources::by_name("configmaps").expect("served");
        assert_eq!(
            answer(configmaps, object(false))["details"],
            json!({"name": "a", "kind": "configmaps", "uid": "u1"})
        );
    }

    #[test]
    fn an_object_still_there_or_of_a_returning_kind_is_answered_itself() {
        let deployments = resources::by_name("deployments").expect("served");
        assert_eq!(answer(deployments, object(true)), object(true));
        for kind in ["pods", "services", "namespaces", "serviceaccounts"] {
            let kind = resources::by_name(kind).expect("served");
            assert_eq!(
                answer(kind, object(false)),
                object(false),
                "{}",
                kind.plural
            );
        }
    }
}
