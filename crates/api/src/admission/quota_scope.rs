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
        // Kubernetes matches a label set holding the pod's class name, if it has one:
        // `Exists` is "has a class", `NotIn` also matches a pod without one.
        "PriorityClass" => {
            let class = pod
                .pointer("/spec/priorityClassName")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty());
            return match req.operator {
                "In" => class.is_some_and(|c| req.values.contains(&c)),
                "NotIn" => class.is_none_or(|c| !req.values.contains(&c)),
                "Exists" => class.is_some(),
                "DoesNotExist" => class.is_none(),
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
                    // A quantity that does not parse (or overflows) is not "none": the pod is
                    // not taken for BestEffort on it.
                    c.pointer(&format!("/resources/{f}/{r}"))
                        .and_then(Value::as_str)
                        .is_none_or(|q| super::milli(q).is_ok_and(|v| v == 0))
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

/// Kubernetes' validation of `spec.scopes` and `spec.scopeSelector` of a quota, with its
/// field paths (`spec.scopeSelector.matchExpressions.operator`, without an index, as
/// Kubernetes names them).
pub fn validate(quota: &Value) -> Vec<ScopeError> {
    let mut out = Vec::new();
    let mut err = |field: &str, message: &str| {
        out.push(ScopeError {
            field: field.to_string(),
            message: message.to_string(),
        })
    };
    let hard: Vec<String> = quota
        .pointer("/spec/hard")
        .and_then(Value::as_object)
        .map(|h| h.keys().cloned().collect())
        .unwrap_or_default();
    let misfits = |scope: &str| {
        hard.iter()
            .filter(|r| STANDARD.contains(&r.as_str()))
            .filter(|r| match scope {
                "BestEffort" => r.as_str() != "pods",
                _ => !POD_RESOURCES.contains(&r.as_str()),
            })
            .count()
    };
    let all = requirements(quota);
    let plain_count = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .map_or(0, |s| s.iter().filter(|v| v.is_string()).count());
    let (plain, selected) = all.split_at(plain_count);
    for r in plain {
        if !SCOPES.contains(&r.scope) {
            err("spec.scopes", "unsupported scope");
        }
        for _ in 0..misfits(r.scope) {
            err("spec.scopes", "unsupported scope applied to resource");
        }
    }
    const SELECTOR: &str = "spec.scopeSelector.matchExpressions";
    for r in selected {
        if !SCOPES.contains(&r.scope) {
            err(&format!("{SELECTOR}.scopeName"), "unsupported scope");
        }
        for _ in 0..misfits(r.scope) {
            err(SELECTOR, "unsupported scope applied to resource");
        }
        if matches!(
            r.scope,
            "Terminating"
                | "NotTerminating"
                | "BestEffort"
                | "NotBestEffort"
                | "CrossNamespacePodAffinity"
        ) && r.operator != "Exists"
        {
            err(
                &format!("{SELECTOR}.operator"),
                "must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, \
                 ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, \
                 ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
            );
        }
        match r.operator {
            "In" | "NotIn" if r.values.is_empty() => err(
                &format!("{SELECTOR}.values"),
                "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
            ),
            "Exists" | "DoesNotExist" if !r.values.is_empty() => err(
                &format!("{SELECTOR}.values"),
                "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
            ),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            _ => err(
                &format!("{SELECTOR}.operator"),
                "not a valid selector operator",
            ),
        }
    }
    for (path, reqs) in [("spec.scopes", plain), (SELECTOR, selected)] {
        let has = |name: &str| reqs.iter().any(|r| r.scope == name);
        for (a, b) in [
            ("BestEffort", "NotBestEffort"),
            ("Terminating", "NotTerminating"),
        ] {
            if has(a) && has(b) {
                err(path, "conflicting scopes");
            }
        }
    }
    // Skiff does not evaluate cross-namespace affinity terms: refused rather than ignored.
    if all.iter().any(|r| r.scope == "CrossNamespacePodAffinity") {
        err(
            if plain.iter().any(|r| r.scope == "CrossNamespacePodAffinity") {
                "spec.scopes"
            } else {
                SELECTOR
            },
            "scope CrossNamespacePodAffinity is not supported by skiff",
        );
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
        // A quantity too large to count is no escape into BestEffort.
        let huge = pod(json!({"containers": [{"name": "a",
            "resources": {"limits": {"memory": "100000Pi"}}}]}));
        assert!(!matches(&be, pods(), &huge));
        assert!(matches(&nbe, pods(), &huge));
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
        assert!(matches(&sel("Exists", json!([])), pods(), &high));
        assert!(!matches(&sel("Exists", json!([])), pods(), &none));
        assert!(matches(&sel("DoesNotExist", json!([])), pods(), &none));
        assert!(!matches(&sel("DoesNotExist", json!([])), pods(), &high));
        let plain = quota(json!({"hard": {"pods": "1"}, "scopes": ["PriorityClass"]}));
        assert!(matches(&plain, pods(), &high));
        assert!(!matches(&plain, pods(), &none));
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
            vec!["spec.scopeSelector.matchExpressions.values: must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"]
        );
        assert_eq!(
            fields(
                json!({"hard": {"pods": "1"}, "scopeSelector": {"matchExpressions": [
                {"scopeName": "CrossNamespacePodAffinity", "operator": "Exists"}]}})
            ),
            vec!["spec.scopeSelector.matchExpressions: scope CrossNamespacePodAffinity is not supported by skiff"]
        );
    }
}
