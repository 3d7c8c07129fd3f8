//! ResourceQuota arithmetic: what an object uses of a namespace's quotas (object counts and
//! pods' cpu and memory), and whether one more fits.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{format_milli, milli};
use crate::resources::{self, ResourceKind};

/// Quota resource names and amounts, in thousandths (see [`super::milli`]).
pub type Usage = BTreeMap<String, u64>;

/// Core kinds Kubernetes also counts under their bare plural (`pods`, `services`, ...).
const LEGACY_COUNTS: &[&str] = &[
    "pods",
    "services",
    "configmaps",
    "secrets",
    "persistentvolumeclaims",
    "replicationcontrollers",
    "resourcequotas",
];

/// The compute resources a pod's containers are charged for, with the container field each
/// comes from (`requests` falls back to `limits`, as a pod's defaulted requests do).
const COMPUTE: &[(&str, &str, &str)] = &[
    ("requests.cpu", "requests", "cpu"),
    ("cpu", "requests", "cpu"),
    ("requests.memory", "requests", "memory"),
    ("memory", "requests", "memory"),
    ("limits.cpu", "limits", "cpu"),
    ("limits.memory", "limits", "memory"),
];

/// Why an object does not fit a quota.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// Using the object would go over `hard`.
    #[error("exceeded quota: {quota}, requested: {requested}, used: {used}, limited: {limited}")]
    Exceeded {
        quota: String,
        requested: String,
        used: String,
        limited: String,
    },
    /// A quota limits a compute resource that some containers do not ask for.
    #[error("failed quota: {quota}: must specify {missing}")]
    Unspecified { quota: String, missing: String },
}

/// `count/pods`, or `count/deployments.apps`.
pub fn count_name(kind: &ResourceKind) -> String {
    if kind.group.is_empty() {
        format!("count/{}", kind.plural)
    } else {
        format!("count/{}.{}", kind.plural, kind.group)
    }
}

/// The kind whose objects a quota resource counts: pods for `pods` and the compute
/// resources, `deployments.apps` for `count/deployments.apps`; `None` for names not counted.
pub fn kind_of(resource: &str) -> Option<&'static ResourceKind> {
    if COMPUTE.iter().any(|(name, _, _)| *name == resource) {
        return resources::by_name("pods");
    }
    if resource.starts_with("services.") {
        return resources::by_name("services");
    }
    if resource == "requests.storage" || resource.contains(STORAGE_CLASS_SUFFIX) {
        return resources::by_name("persistentvolumeclaims");
    }
    let kind = match resource.strip_prefix("count/") {
        Some(name) => resources::by_name(name)?,
        None if LEGACY_COUNTS.contains(&resource) => resources::by_name(resource)?,
        None => return None,
    };
    (usage(kind, &Value::Null).contains_key(resource)).then_some(kind)
}

/// What `obj` (of `kind`) uses: one of its count, and for a pod that is not terminal its
/// containers' cpu and memory; a terminal pod uses nothing.
pub fn usage(kind: &ResourceKind, obj: &Value) -> Usage {
    let mut out = Usage::new();
    if kind.kind == "Pod" && kind.group.is_empty() {
        let phase = obj.pointer("/status/phase").and_then(Value::as_str);
        if matches!(phase, Some("Succeeded" | "Failed")) {
            return out;
        }
        for (name, field, resource) in COMPUTE {
            out.insert(name.to_string(), pod_amount(obj, field, resource));
        }
    }
    out.insert(count_name(kind), 1000);
    if kind.group.is_empty() && LEGACY_COUNTS.contains(&kind.plural) {
        out.insert(kind.plural.to_string(), 1000);
    }
    if kind.group.is_empty() && kind.kind == "Service" {
        out.extend(service_usage(obj));
    }
    if kind.group.is_empty() && kind.kind == "PersistentVolumeClaim" {
        out.extend(claim_usage(obj));
    }
    out
}

/// What Kubernetes charges per storage class: `<class>` + this + `requests.storage` or
/// `persistentvolumeclaims`.
const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// A Service's `services.loadbalancers` (1 for type LoadBalancer) and `services.nodeports`
/// (its ports for NodePort and LoadBalancer types; with `allocateLoadBalancerNodePorts:
/// false`, only the ports that set a nodePort).
fn service_usage(svc: &Value) -> Usage {
    let mut out = Usage::new();
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    match svc.pointer("/spec/type").and_then(Value::as_str) {
        Some("NodePort") => {
            out.insert("services.nodeports".into(), ports.len() as u64 * 1000);
        }
        Some("LoadBalancer") => {
            out.insert("services.loadbalancers".into(), 1000);
            let allocate = svc
                .pointer("/spec/allocateLoadBalancerNodePorts")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let node_ports = if allocate {
                ports.len()
            } else {
                ports
                    .iter()
                    .filter(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0)
                    .count()
            };
            out.insert("services.nodeports".into(), node_ports as u64 * 1000);
        }
        _ => {}
    }
    out
}

/// A PersistentVolumeClaim's `requests.storage`, and its storage class's
/// `<class>.storageclass.storage.k8s.io/requests.storage` and `/persistentvolumeclaims`.
fn claim_usage(claim: &Value) -> Usage {
    let mut out = Usage::new();
    let storage = claim
        .pointer("/spec/resources/requests/storage")
        .and_then(Value::as_str)
        .and_then(|q| milli(q).ok())
        .unwrap_or(0);
    out.insert("requests.storage".into(), storage);
    let class = claim
        .pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
        .or_else(|| claim.pointer("/spec/storageClassName"))
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty());
    if let Some(class) = class {
        let prefix = format!("{class}{STORAGE_CLASS_SUFFIX}");
        out.insert(format!("{prefix}requests.storage"), storage);
        out.insert(format!("{prefix}persistentvolumeclaims"), 1000);
    }
    out
}

/// Containers that do not ask for a compute resource `quota` limits:
/// `limits.cpu for: main` items; empty when `obj` is not a pod.
fn unspecified(kind: &ResourceKind, hard: &Usage, obj: &Value) -> Vec<String> {
    if kind.kind != "Pod" || !kind.group.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for (name, field, resource) in COMPUTE {
        if !hard.contains_key(*name) {
            continue;
        }
        let names: Vec<&str> = containers(obj)
            .filter(|c| container_amount(c, field, resource).is_none())
            .map(|c| c.get("name").and_then(Value::as_str).unwrap_or_default())
            .collect();
        if !names.is_empty() {
            out.push(format!("{name} for: {}", names.join(",")));
        }
    }
    out
}

/// The quota's `spec.hard`, parsed; unparsable amounts are left out (validation refuses them).
pub fn hard(quota: &Value) -> Usage {
    quota
        .pointer("/spec/hard")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(r, q)| Some((r.clone(), milli(q.as_str()?).ok()?)))
        .collect()
}

/// Checks `requested` (what `obj` of `kind` uses) against `quota` given what the namespace
/// already `used`, and returns the quota with `status.hard` and `status.used` charged.
pub fn charge(
    quota: &Value,
    kind: &ResourceKind,
    obj: &Value,
    requested: &Usage,
    used: &Usage,
) -> Result<Value, QuotaError> {
    let name = quota
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let hard = hard(quota);
    let missing = unspecified(kind, &hard, obj);
    if !missing.is_empty() {
        return Err(QuotaError::Unspecified {
            quota: name,
            missing: missing.join("; "),
        });
    }
    let mut over = Vec::new();
    let mut next_used = Map::new();
    for (resource, limit) in &hard {
        let before = used.get(resource).copied().unwrap_or(0);
        let asked = requested.get(resource).copied().unwrap_or(0);
        if asked > 0 && before + asked > *limit {
            over.push((resource, asked, before, *limit));
        }
        next_used.insert(
            resource.clone(),
            json!(format_milli(resource, before + asked)),
        );
    }
    if !over.is_empty() {
        let list = |pick: fn(&(&String, u64, u64, u64)) -> u64| {
            over.iter()
                .map(|o| format!("{}={}", o.0, format_milli(o.0, pick(o))))
                .collect::<Vec<_>>()
                .join(",")
        };
        return Err(QuotaError::Exceeded {
            quota: name,
            requested: list(|o| o.1),
            used: list(|o| o.2),
            limited: list(|o| o.3),
        });
    }
    let mut next = quota.clone();
    next["status"] = json!({
        "hard": quota.pointer("/spec/hard").cloned().unwrap_or(json!({})),
        "used": next_used,
    });
    Ok(next)
}

/// Whether an update can change what an object of `kind` uses, so that updates are charged
/// too (Kubernetes' evaluators for Services and PersistentVolumeClaims handle updates, and
/// pods' for an update that moves a pod into a scope); the object counts of other kinds are
/// charged on create only.
pub fn charged_on_update(kind: &ResourceKind) -> bool {
    kind.group.is_empty() && matches!(kind.kind, "Pod" | "Service" | "PersistentVolumeClaim")
}

/// What `new` uses beyond `old`: each resource's growth, none where it shrank (Kubernetes'
/// `SubtractWithNonNegativeResult`), so an update is charged only what it adds.
pub fn growth(new: &Usage, old: &Usage) -> Usage {
    new.iter()
        .map(|(r, v)| {
            (
                r.clone(),
                v.saturating_sub(old.get(r).copied().unwrap_or(0)),
            )
        })
        .collect()
}

/// Sum of what `objects` of `kind` use.
pub fn total(kind: &ResourceKind, objects: &[Value]) -> Usage {
    let mut sum = Usage::new();
    for obj in objects {
        for (r, v) in usage(kind, obj) {
            *sum.entry(r).or_default() += v;
        }
    }
    sum
}

fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn container_amount(container: &Value, field: &str, resource: &str) -> Option<u64> {
    let get = |f: &str| {
        container
            .pointer(&format!("/resources/{f}/{resource}"))
            .and_then(Value::as_str)
            .and_then(|q| milli(q).ok())
    };
    match field {
        "requests" => get("requests").or_else(|| get("limits")),
        _ => get(field),
    }
}

/// The pod's charge for one resource: its app containers together, or its largest init
/// container if that is more (init containers run one at a time).
fn pod_amount(pod: &Value, field: &str, resource: &str) -> u64 {
    let app: u64 = containers(pod)
        .filter_map(|c| container_amount(c, field, resource))
        .sum();
    let init = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| container_amount(c, field, resource))
        .max()
        .unwrap_or(0);
    app.max(init)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_name;

    fn pods() -> &'static ResourceKind {
        by_name("pods").unwrap()
    }

    fn quota(hard: Value) -> Value {
        json!({"metadata": {"name": "q"}, "spec": {"hard": hard}})
    }

    fn pod(resources: Value) -> Value {
        json!({"spec": {"containers": [{"name": "main", "resources": resources}]}})
    }

    #[test]
    fn the_third_pod_exceeds_pods_2() {
        let q = quota(json!({"pods": "2"}));
        let p = pod(json!({}));
        let req = usage(pods(), &p);
        let used = total(pods(), &[p.clone(), p.clone()]);
        let err = charge(&q, pods(), &p, &req, &used).unwrap_err();
        assert_eq!(
            err.to_string(),
            "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
        );
        let one = total(pods(), std::slice::from_ref(&p));
        let charged = charge(&q, pods(), &p, &req, &one).unwrap();
        assert_eq!(
            charged["status"],
            json!({"hard": {"pods": "2"}, "used": {"pods": "2"}})
        );
    }

    #[test]
    fn terminal_pods_use_nothing() {
        let mut done = pod(json!({"requests": {"cpu": "1"}}));
        done["status"] = json!({"phase": "Succeeded"});
        assert!(usage(pods(), &done).is_empty());
    }

    #[test]
    fn compute_sums_requests_falling_back_to_limits() {
        let q = quota(json!({"requests.cpu": "1", "limits.memory": "1Gi"}));
        let p = pod(json!({"limits": {"cpu": "600m", "memory": "512Mi"}}));
        let req = usage(pods(), &p);
        assert_eq!(req["requests.cpu"], 600);
        let used = total(pods(), std::slice::from_ref(&p));
        let err = charge(&q, pods(), &p, &req, &used).unwrap_err();
        assert_eq!(
            err.to_string(),
            "exceeded quota: q, requested: requests.cpu=600m, used: requests.cpu=600m, limited: requests.cpu=1"
        );
        let charged = charge(&q, pods(), &p, &req, &Usage::new()).unwrap();
        assert_eq!(
            charged["status"]["used"],
            json!({"limits.memory": "512Mi", "requests.cpu": "600m"})
        );
    }

    #[test]
    fn a_pod_without_a_limited_resource_is_named() {
        let q = quota(json!({"limits.cpu": "2"}));
        let p = pod(json!({"requests": {"cpu": "100m"}}));
        let err = charge(&q, pods(), &p, &usage(pods(), &p), &Usage::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed quota: q: must specify limits.cpu for: main"
        );
    }

    #[test]
    fn other_kinds_count_by_group() {
        let deployments = by_name("deployments").unwrap();
        let u = usage(deployments, &json!({}));
        assert_eq!(u.keys().collect::<Vec<_>>(), vec!["count/deployments.apps"]);
        assert_eq!(kind_of("count/deployments.apps"), Some(deployments));
        assert_eq!(kind_of("limits.cpu"), Some(pods()));
        assert_eq!(kind_of("count/deployments"), None);
        assert_eq!(kind_of("services.nodeports"), by_name("services"));
        assert_eq!(kind_of("services.other"), by_name("services"));
        let cms = by_name("configmaps").unwrap();
        assert_eq!(usage(cms, &json!({})).len(), 2);
    }

    #[test]
    fn services_charge_node_ports_and_load_balancers() {
        let services = by_name("services").unwrap();
        let lb = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}});
        let u = usage(services, &lb);
        assert_eq!(u["services.loadbalancers"], 1000);
        assert_eq!(u["services.nodeports"], 2000);
        let np = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        assert_eq!(usage(services, &np)["services.nodeports"], 1000);
        let no_alloc = json!({"spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false,
            "ports": [{"port": 80}, {"port": 81, "nodePort": 30001}]}});
        assert_eq!(usage(services, &no_alloc)["services.nodeports"], 1000);
        let cluster_ip = json!({"spec": {"ports": [{"port": 80}]}});
        assert!(!usage(services, &cluster_ip).contains_key("services.nodeports"));
        let q = quota(json!({"services.loadbalancers": "1"}));
        let used = total(services, std::slice::from_ref(&lb));
        let err = charge(&q, services, &lb, &u, &used).unwrap_err();
        assert_eq!(
            err.to_string(),
            "exceeded quota: q, requested: services.loadbalancers=1, used: services.loadbalancers=1, limited: services.loadbalancers=1"
        );
    }

    #[test]
    fn an_update_is_charged_its_growth_only() {
        let services = by_name("services").unwrap();
        let np = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        let lb = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 81}]}});
        let grown = growth(&usage(services, &lb), &usage(services, &np));
        assert_eq!(grown["services.loadbalancers"], 1000);
        assert_eq!(grown["services.nodeports"], 1000);
        assert_eq!(grown["services"], 0);
        let back = growth(&usage(services, &np), &usage(services, &lb));
        assert!(back.values().all(|v| *v == 0), "{back:?}");
        assert!(charged_on_update(services));
        assert!(!charged_on_update(by_name("configmaps").unwrap()));
        assert!(!charged_on_update(by_name("deployments").unwrap()));
    }

    #[test]
    fn claims_charge_storage_overall_and_per_class() {
        let claims = by_name("persistentvolumeclaims").unwrap();
        let gold = json!({"spec": {"storageClassName": "gold",
            "resources": {"requests": {"storage": "2Gi"}}}});
        let u = usage(claims, &gold);
        assert_eq!(u["requests.storage"], 2 * 1024 * 1024 * 1024 * 1000);
        assert_eq!(
            u["gold.storageclass.storage.k8s.io/persistentvolumeclaims"],
            1000
        );
        assert_eq!(
            kind_of("gold.storageclass.storage.k8s.io/requests.storage"),
            Some(claims)
        );
        let q = quota(json!({"gold.storageclass.storage.k8s.io/requests.storage": "3Gi"}));
        let used = total(claims, std::slice::from_ref(&gold));
        let err = charge(&q, claims, &gold, &u, &used).unwrap_err();
        assert_eq!(
            err.to_string(),
            "exceeded quota: q, requested: gold.storageclass.storage.k8s.io/requests.storage=2Gi, used: gold.storageclass.storage.k8s.io/requests.storage=2Gi, limited: gold.storageclass.storage.k8s.io/requests.storage=3Gi"
        );
        let plain = json!({"spec": {"resources": {"requests": {"storage": "1Gi"}}}});
        let q = quota(json!({"gold.storageclass.storage.k8s.io/requests.storage": "1Mi"}));
        let pu = usage(claims, &plain);
        assert!(charge(&q, claims, &plain, &pu, &used).is_ok());
    }
}
