//! Pods: they start Pending, stay on the node they are bound to, are deleted gracefully while a
//! node runs them, and are watched per node.

use serde_json::Value;
use skiff_api::k8s_openapi::api::core::v1::PodCondition;
use skiff_api::quantity;
use skiff_api::resources::ResourceKind;
use skiff_api::validation::{FieldError, FieldErrorReason};

use super::Strategy;
use crate::error::ApiError;
use crate::registry::{object, ListOptions};

/// Seconds a bound pod gets to stop when neither the request nor its spec says.
const DEFAULT_GRACE_SECONDS: i64 = 30;

pub struct PodStrategy;

impl Strategy for PodStrategy {
    fn has_status_subresource(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        // A new pod starts Pending, whatever the client sent as status.
        obj["status"] = serde_json::json!({ "phase": "Pending" });
    }

    /// An update that leaves the account or a container's resources out keeps what admission
    /// gave the pod (as a re-applied manifest without `serviceAccountName`, or without the
    /// requests a LimitRange filled in, does).
    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        for field in ["serviceAccountName", "serviceAccount"] {
            let (Some(kept), Some(spec)) = (
                old.pointer("/spec").and_then(|s| s.get(field)),
                new.get_mut("spec").and_then(Value::as_object_mut),
            ) else {
                continue;
            };
            if spec.get(field).is_none_or(|v| v.is_null() || v == "") {
                spec.insert(field.to_string(), kept.clone());
            }
        }
        for list in CONTAINER_LISTS {
            let Some(containers) = new.pointer_mut(&format!("/spec/{list}")) else {
                continue;
            };
            for container in containers.as_array_mut().into_iter().flatten() {
                let Some(kept) = old_container(old, list, container.get("name"))
                    .and_then(|c| c.get("resources"))
                    .filter(|r| !unset(r))
                else {
                    continue;
                };
                keep_missing_resources(container, kept);
            }
        }
    }

    fn validate_update(
        &self,
        kind: &ResourceKind,
        old: &Value,
        new: &Value,
    ) -> Result<(), ApiError> {
        let forbidden = |field: &str, message: &str| {
            ApiError::invalid(
                kind,
                object::name(new).unwrap_or_default(),
                vec![FieldError {
                    field: field.into(),
                    reason: FieldErrorReason::Forbidden,
                    message: message.into(),
                }],
            )
        };
        let old_node = old.pointer("/spec/nodeName").and_then(Value::as_str);
        let new_node = new.pointer("/spec/nodeName").and_then(Value::as_str);
        if old_node.is_some_and(|n| !n.is_empty()) && old_node != new_node {
            return Err(forbidden(
                "spec.nodeName",
                "may not be changed once the pod is bound",
            ));
        }
        // The account is the pod's identity (its tokens): fixed at creation, as in Kubernetes.
        for field in ["serviceAccountName", "serviceAccount"] {
            let pointer = format!("/spec/{field}");
            if old.pointer(&pointer) != new.pointer(&pointer) {
                return Err(forbidden(
                    &format!("spec.{field}"),
                    "may not be changed once the pod is created",
                ));
            }
        }
        // What a pod asks of its node (and is charged to its namespace's quotas) is fixed at
        // creation too: no container comes or goes, and none is resized in place.
        for list in CONTAINER_LISTS {
            let containers = |pod: &Value| -> Vec<Value> {
                pod.pointer(&format!("/spec/{list}"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            let (before, after) = (containers(old), containers(new));
            let names = |cs: &[Value]| -> Vec<Option<Value>> {
                cs.iter().map(|c| c.get("name").cloned()).collect()
            };
            if names(&before) != names(&after) {
                return Err(forbidden(
                    &format!("spec.{list}"),
                    "containers may not be added, removed or renamed once the pod is created",
                ));
            }
            for (i, (was, is)) in before.iter().zip(&after).enumerate() {
                if amounts(was) != amounts(is) {
                    return Err(forbidden(
                        &format!("spec.{list}[{i}].resources"),
                        "may not be changed once the pod is created (pods are not resized in place)",
                    ));
                }
            }
        }
        Ok(())
    }

    fn runtime_class(&self, pod: &Value) -> Option<String> {
        pod.pointer("/spec/runtimeClassName")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
    }

    /// 0 for pods no node runs; else the request's, the spec's, or 30 s.
    fn delete_grace_period(&self, pod: &Value, requested: Option<i64>) -> i64 {
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
            .unwrap_or(DEFAULT_GRACE_SECONDS)
            .max(0)
    }

    fn node_index(&self, options: &ListOptions) -> Option<String> {
        options
            .field_selector
            .as_ref()?
            .get("spec.nodeName")
            .map(str::to_string)
    }
}

/// The object marked for graceful deletion, or `None` if it is already marked with a grace no longer than `grace`.
pub fn mark_terminating(obj: &Value, grace: i64) -> Option<Value> {
    let current = obj
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    if object::meta_str(obj, "deletionTimestamp").is_some() && current.is_some_and(|c| c <= grace) {
        return None;
    }
    let mut marked = obj.clone();
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

/// The pod spec's lists of containers whose names and resources are fixed at creation.
const CONTAINER_LISTS: [&str; 2] = ["containers", "initContainers"];

/// Whether a container's `resources` says nothing (absent, null or empty).
fn unset(resources: &Value) -> bool {
    resources.is_null() || resources.as_object().is_some_and(|r| r.values().all(unset))
}

/// Puts into `container` each request and limit of `kept` (what the pod had) that it leaves
/// out, as when a LimitRange filled in requests a re-applied manifest does not have.
fn keep_missing_resources(container: &mut Value, kept: &Value) {
    for section in ["requests", "limits"] {
        let Some(kept) = kept.get(section).and_then(Value::as_object) else {
            continue;
        };
        let resources = &mut container["resources"];
        if !resources.is_object() {
            *resources = Value::Object(Default::default());
        }
        let amounts = &mut resources[section];
        if !amounts.is_object() {
            *amounts = Value::Object(Default::default());
        }
        if let Some(amounts) = amounts.as_object_mut() {
            for (name, quantity) in kept {
                amounts
                    .entry(name.clone())
                    .or_insert_with(|| quantity.clone());
            }
        }
    }
}

/// A container's requests and limits as amounts (`1` and `1000m` CPU are the same), other
/// `resources` fields as written.
fn amounts(container: &Value) -> Vec<(String, String, Result<u64, String>)> {
    let mut out = Vec::new();
    let Some(resources) = container.get("resources").and_then(Value::as_object) else {
        return out;
    };
    for (section, value) in resources {
        let Some(entries) = value.as_object() else {
            if !value.is_null() {
                out.push((section.clone(), String::new(), Err(value.to_string())));
            }
            continue;
        };
        for (name, quantity) in entries {
            let text = quantity
                .as_str()
                .map_or_else(|| quantity.to_string(), str::to_string);
            let parsed = if name == "cpu" {
                quantity::parse_cpu_millis(&text)
            } else {
                quantity::parse_bytes(&text)
            };
            out.push((section.clone(), name.clone(), parsed.map_err(|_| text)));
        }
    }
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

/// The container of `old`'s `list` named `name`.
fn old_container<'a>(old: &'a Value, list: &str, name: Option<&Value>) -> Option<&'a Value> {
    old.pointer(&format!("/spec/{list}"))?
        .as_array()?
        .iter()
        .find(|c| c.get("name") == name)
}

/// Sets the `PodScheduled=True` condition a binding implies.
pub fn mark_scheduled(pod: &mut Value) {
    let condition = PodCondition {
        type_: "PodScheduled".into(),
        status: "True".into(),
        last_transition_time: Some(skiff_api::time::now()),
        ..Default::default()
    };
    let condition = serde_json::to_value(condition).expect("a PodCondition serializes");
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
    use skiff_api::resources::by_name;

    #[test]
    fn the_service_account_is_kept_and_may_not_change() {
        let kind = by_name("pods").expect("pods");
        let old = json!({"metadata": {"name": "p"},
            "spec": {"serviceAccountName": "robot", "serviceAccount": "robot"}});
        let mut reapplied = json!({"metadata": {"name": "p"}, "spec": {}});
        PodStrategy.prepare_for_update(&old, &mut reapplied);
        assert_eq!(reapplied["spec"]["serviceAccountName"], "robot");
        assert!(PodStrategy.validate_update(kind, &old, &reapplied).is_ok());
        let mut changed = reapplied.clone();
        changed["spec"]["serviceAccountName"] = json!("admin");
        PodStrategy.prepare_for_update(&old, &mut changed);
        let err = PodStrategy
            .validate_update(kind, &old, &changed)
            .expect_err("refused");
        assert!(err.to_string().contains("serviceAccountName"), "{err}");
    }

    #[test]
    fn containers_and_their_resources_are_fixed_but_may_be_left_out() {
        let kind = by_name("pods").expect("pods");
        let old = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "file:/a.wasm",
             "resources": {"requests": {"memory": "64Mi"}, "limits": {"memory": "64Mi"}}}]}});
        // Re-applied without the requests a LimitRange filled in: kept; a new image is fine.
        let mut reapplied = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "file:/b.wasm"}]}});
        PodStrategy.prepare_for_update(&old, &mut reapplied);
        assert_eq!(
            reapplied["spec"]["containers"][0]["resources"],
            old["spec"]["containers"][0]["resources"]
        );
        assert!(PodStrategy.validate_update(kind, &old, &reapplied).is_ok());

        // A manifest with its limits but not the requests a LimitRange filled in, written
        // in other units: the same amounts.
        let mut limits_only = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "file:/a.wasm", "resources": {"limits": {"memory": "65536Ki"}}}]}});
        PodStrategy.prepare_for_update(&old, &mut limits_only);
        assert_eq!(
            limits_only["spec"]["containers"][0]["resources"]["requests"]["memory"],
            "64Mi"
        );
        assert!(PodStrategy
            .validate_update(kind, &old, &limits_only)
            .is_ok());

        let mut bigger = reapplied.clone();
        bigger["spec"]["containers"][0]["resources"]["limits"]["memory"] = json!("8Gi");
        let err = PodStrategy
            .validate_update(kind, &old, &bigger)
            .expect_err("refused");
        assert!(
            err.to_string().contains("spec.containers[0].resources"),
            "{err}"
        );

        let mut added = reapplied.clone();
        added["spec"]["containers"]
            .as_array_mut()
            .expect("containers")
            .push(json!({"name": "b", "image": "file:/b.wasm"}));
        let err = PodStrategy
            .validate_update(kind, &old, &added)
            .expect_err("refused");
        assert!(err.to_string().contains("spec.containers"), "{err}");
    }

    #[test]
    fn unbound_pods_have_no_grace() {
        let pod = json!({"spec": {"terminationGracePeriodSeconds": 10}});
        assert_eq!(PodStrategy.delete_grace_period(&pod, None), 0);
        let bound = json!({"spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 10}});
        assert_eq!(PodStrategy.delete_grace_period(&bound, None), 10);
        assert_eq!(PodStrategy.delete_grace_period(&bound, Some(0)), 0);
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

    #[test]
    fn scheduling_replaces_the_pod_scheduled_condition() {
        let mut pod = json!({"status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"},
            {"type": "Other", "status": "True"}
        ]}});
        mark_scheduled(&mut pod);
        let conditions = pod["status"]["conditions"].as_array().expect("conditions");
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[0]["type"], "Other");
        let scheduled = &conditions[1];
        assert_eq!(
            (scheduled["type"].as_str(), scheduled["status"].as_str()),
            (Some("PodScheduled"), Some("True"))
        );
        assert!(scheduled["lastTransitionTime"].is_string());
        assert!(scheduled.get("reason").is_none());
    }

    #[test]
    fn a_bound_pod_keeps_its_node() {
        let kind = by_name("pods").expect("pods");
        let bound = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}});
        let moved = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n2"}});
        assert!(PodStrategy.validate_update(kind, &bound, &moved).is_err());
        let unbound = json!({"metadata": {"name": "p"}, "spec": {}});
        assert!(PodStrategy.validate_update(kind, &unbound, &moved).is_ok());
    }
}
