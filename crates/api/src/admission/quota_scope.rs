//! ResourceQuota scopes (`spec.scopes` and `spec.scopeSelector`): which pods a quota tracks,
//! and the validation Kubernetes applies to them.

use serde_json::Value;

use crate::resources::ResourceKind;

/// Scopes Kubernetes defines (`CrossNamespacePodAffinity` is refused at validation).
const SCOPES: &[&str] = &[
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
];

/// Quota resources a scope other than `BestEffort` may limit (`BestEffort` limits `pods` only).
const POD_RESOURCES: &[&str] = &[
    "pods",
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// Standard quota resource names: a scope is checked against these only, as Kubernetes does.
const STANDARD: &[&str] = &[
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
];

/// One requirement: a scope, an operator, values (a plain `scopes` entry is `Exists`).
struct Requirement<'a> {
    scope: &'a str,
    operator: &'a str,
    values: Vec<&'a str>,
}

fn requirements(quota: &Value) -> Vec<Requirement<'_>> {
    let plain = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|scope| Requirement {
            scope,
            operator: "Exists",
            values: Vec::new(),
        });
    let selected = quota
        .pointer("/spec/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| Requirement {
            scope: e
                .get("scopeName")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            operator: e
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            values: e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect(),
        });
    plain.chain(selected).collect()
}

/// Whether `quota` tracks `obj` of `kind`: an unscoped quota tracks every object; a scoped
/// one tracks only pods matching all its scopes and selector requirements.
pub fn matches(quota: &Value, kind: &ResourceKind, obj: &Value) -> bool {
    let reqs = requirements(quota);
    if reqs.is_empty() {
        return true;
    }
    if kind.kind != "Pod" || !kind.group.is_empty() {
        return false;
    }
    reqs.iter().all(|r| requirement_matches(r, obj))
}

fn requirement_matches(req: &Requirement<'_>, pod: &Value) -> bool {
    let holds = match req.scope {
        "Terminating" | "NotTerminating" => {
            let terminating = pod
                .pointer("/spec/activeDeadlineSeconds")
                .and_then(Value::as_i64)
                .is_some_and(|s| s >= 0);
            terminating == (req.scope == "Terminating")
        }
        "BestEffort" | "NotBestEffort" => best_effort(pod) == (req.scope == "BestEffort"),
        // Kubernetes matches a label set that always holds the key, so `Exists` matches
        // every pod and `DoesNotExist` none; `In`/`NotIn` compare the pod's class name.
        "PriorityClass" => {
            let class = pod
                .pointer("/spec/priorityClassName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return match req.operator {
                "In" => req.values.contains(&class),
                "NotIn" => !req.values.contains(&class),
                "Exists" => true,
                _ => false,
            };
        }
        _ => false,
    };
    match req.operator {
        "Exists" | "In" => holds,
        "DoesNotExist" | "NotIn" => !holds,
        _ => false,
    }
}

/// A pod's QoS class is BestEffort: no container (init or app) asks for or limits cpu or
/// memory above zero.
fn best_effort(pod: &Value) -> bool {
    ["/spec/containers", "/spec/initContainers"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .all(|c| {
            ["requests", "limits"].iter().all(|f| {
                ["cpu", "memory"].iter().all(|r| {
                    c.pointer(&format!("/resources/{f}/{r}"))
                        .and_then(Value::as_str)
                        .and_then(|q| super::milli(q).ok())
                        .is_none_or(|v| v == 0)
                })
            })
        })
}

/// A field error in a quota's scopes: the field path and Kubernetes' message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeError {
    /// `spec.scopes` or `spec.scopeSelector.matchExpressions[0].operator`.
    pub field: String,
    /// Why, as Kubernetes words it.
    pub message: String,
}

/// Kubernetes' validation of `spec.scopes` and `spec.scopeSelector` of a quota.
pub fn validate(quota: &Value) -> Vec<ScopeError> {
    let mut out = Vec::new();
    let mut err = |field: String, message: &str| {
        out.push(ScopeError {
            field,
            message: message.to_string(),
        })
    };
    let hard: Vec<String> = quota
        .pointer("/spec/hard")
        .and_then(Value::as_object)
        .map(|h| h.keys().cloned().collect())
        .unwrap_or_default();
    let scopes: Vec<&str> = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let selected: Vec<&str> = requirements(quota)
        .iter()
        .skip(scopes.len())
        .map(|r| r.scope)
        .collect();
    for (path, names) in [
        ("spec.scopes".to_string(), &scopes),
        ("spec.scopeSelector".to_string(), &selected),
    ] {
        for scope in names.iter() {
            if !SCOPES.contains(scope) {
                err(path.clone(), "unsupported scope");
            } else if *scope == "CrossNamespacePodAffinity" {
                err(
                    path.clone(),
                    "scope CrossNamespacePodAffinity is not supported by skiff",
                );
            }
            let fits = |r: &str| match *scope {
                "BestEffort" => r == "pods",
                _ => POD_RESOURCES.contains(&r),
            };
            if hard
                .iter()
                .any(|r| STANDARD.contains(&r.as_str()) && !fits(r))
            {
                err(path.clone(), "unsupported scope applied to resource");
            }
        }
        for (a, b) in [
            ("BestEffort", "NotBestEffort"),
            ("Terminating", "NotTerminating"),
        ] {
            if names.contains(&a) && names.contains(&b) {
                err(path.clone(), "conflicting scopes");
            }
        }
    }
    for (i, r) in requirements(quota).iter().skip(scopes.len()).enumerate() {
        let path = format!("spec.scopeSelector.matchExpressions[{i}]");
        match r.operator {
            "In" | "NotIn" if r.values.is_empty() => err(
                format!("{path}.values"),
                "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
            ),
            "In" | "NotIn" => {}
            "Exists" | "DoesNotExist" if !r.values.is_empty() => err(
                format!("{path}.values"),
                "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
            ),
            "Exists" | "DoesNotExist" => {}
            _ => err(
                format!("{path}.operator"),
                "supported values: \"DoesNotExist\", \"Exists\", \"In\", \"NotIn\"",
            ),
        }
        if matches!(
            r.scope,
            "Terminating" | "NotTerminating" | "BestEffort" | "NotBestEffort"
        ) && matches!(r.operator, "In" | "NotIn")
        {
            err(
                format!("{path}.operator"),
                "must be 'Exist' or 'DoesNotExist' for this scope",
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_name;
    use serde_json::json;

    fn pods() -> &'static ResourceKind {
        by_name("pods").unwrap()
    }

    fn quota(spec: Value) -> Value {
        json!({"metadata": {"name": "q"}, "spec": spec})
    }

    fn pod(spec: Value) -> Value {
        json!({"spec": spec})
    }

    #[test]
    fn terminating_scopes_follow_active_deadline() {
        let term = quota(json!({"hard": {"pods": "1"}, "scopes": ["Terminating"]}));
        let not = quota(json!({"hard": {"pods": "1"}, "scopes": ["NotTerminating"]}));
        let job = pod(json!({"activeDeadlineSeconds": 30, "containers": []}));
        let server = pod(json!({"containers": []}));
        assert!(matches(&term, pods(), &job));
        assert!(!matches(&term, pods(), &server));
        assert!(matches(&not, pods(), &server));
        assert!(!matches(&not, pods(), &job));
    }

    #[test]
    fn best_effort_scopes_follow_qos() {
        let be = quota(json!({"hard": {"pods": "1"}, "scopes": ["BestEffort"]}));
        let nbe = quota(json!({"hard": {"pods": "1"}, "scopes": ["NotBestEffort"]}));
        let bare = pod(json!({"containers": [{"name": "a"}]}));
        let sized = pod(json!({"containers": [{"name": "a"},
            {"name": "b", "resources": {"limits": {"memory": "1Mi"}}}]}));
        let init = pod(json!({"containers": [{"name": "a"}],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1"}}}]}));
        assert!(matches(&be, pods(), &bare));
        assert!(!matches(&be, pods(), &sized));
        assert!(!matches(&be, pods(), &init));
        assert!(matches(&nbe, pods(), &sized));
        assert!(!matches(&nbe, pods(), &bare));
    }

    #[test]
    fn priority_class_selector_operators() {
        let sel = |op: &str, values: Value| {
            quota(
                json!({"hard": {"pods": "1"}, "scopeSelector": {"matchExpressions": [
                {"scopeName": "PriorityClass", "operator": op, "values": values}]}}),
            )
        };
        let high = pod(json!({"priorityClassName": "high"}));
        let none = pod(json!({}));
        assert!(matches(&sel("In", json!(["high"])), pods(), &high));
        assert!(!matches(&sel("In", json!(["high"])), pods(), &none));
        assert!(matches(&sel("NotIn", json!(["high"])), pods(), &none));
        assert!(!matches(&sel("NotIn", json!(["high"])), pods(), &high));
        assert!(matches(&sel("Exists", json!([])), pods(), &none));
        assert!(!matches(&sel("DoesNotExist", json!([])), pods(), &high));
    }

    #[test]
    fn scoped_quotas_track_only_pods() {
        let q = quota(json!({"hard": {"pods": "1"}, "scopes": ["NotTerminating"]}));
        assert!(!matches(&q, by_name("services").unwrap(), &json!({})));
        let plain = quota(json!({"hard": {"services": "1"}}));
        assert!(matches(&plain, by_name("services").unwrap(), &json!({})));
    }

    #[test]
    fn validation_as_kubernetes() {
        let fields = |spec: Value| {
            validate(&quota(spec))
                .into_iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
        };
        assert!(fields(json!({"hard": {"pods": "1"}, "scopes": ["BestEffort"]})).is_empty());
        assert_eq!(
            fields(json!({"hard": {"requests.cpu": "1"}, "scopes": ["BestEffort"]})),
            vec!["spec.scopes: unsupported scope applied to resource"]
        );
        assert_eq!(
            fields(json!({"hard": {"pods": "1"}, "scopes": ["Terminating", "NotTerminating"]})),
            vec!["spec.scopes: conflicting scopes"]
        );
        assert_eq!(
            fields(json!({"hard": {"pods": "1"}, "scopes": ["Sometimes"]})),
            vec!["spec.scopes: unsupported scope"]
        );
        assert_eq!(
            fields(json!({"hard": {"pods": "1"}, "scopeSelector": {"matchExpressions": [
                {"scopeName": "PriorityClass", "operator": "In"}]}})),
            vec!["spec.scopeSelector.matchExpressions[0].values: must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"]
        );
        assert_eq!(
            fields(
                json!({"hard": {"pods": "1"}, "scopeSelector": {"matchExpressions": [
                {"scopeName": "CrossNamespacePodAffinity", "operator": "Exists"}]}})
            ),
            vec!["spec.scopeSelector: scope CrossNamespacePodAffinity is not supported by skiff"]
        );
    }
}
