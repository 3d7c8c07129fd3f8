//! LimitRange as Kubernetes' LimitRanger admission plugin applies it: `Container` limits
//! fill a container's missing limits (`default`) and requests (`defaultRequest`, else the
//! default limit), then bound them (`min`, `max`, `maxLimitRequestRatio`); `Pod` limits bound
//! a pod's containers summed; `PersistentVolumeClaim` limits bound a claim's storage request.

use serde_json::{Map, Value};

use super::{format_milli, milli};

/// Defaults a LimitRange's `Container` items as Kubernetes does: a resource with a `max` but
/// no `default` gets the max as its default limit; one with no `defaultRequest` gets the
/// default limit, else the `min`.
pub fn default_range(range: &mut Value) {
    let Some(items) = range
        .pointer_mut("/spec/limits")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for item in items.iter_mut().filter_map(Value::as_object_mut) {
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            continue;
        }
        let field = |item: &Map<String, Value>, f: &str| {
            item.get(f)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let mut defaults = field(item, "max");
        defaults.extend(field(item, "default"));
        let mut requests = field(item, "min");
        requests.extend(defaults.clone());
        requests.extend(field(item, "defaultRequest"));
        for (name, set) in [("default", defaults), ("defaultRequest", requests)] {
            if !set.is_empty() {
                item.insert(name.to_string(), Value::Object(set));
            }
        }
    }
}

/// Fills `pod`'s containers' missing requests and limits from the `Container` items of
/// `ranges` (LimitRange objects), in order; the first default for a resource wins.
pub fn apply_defaults(ranges: &[Value], pod: &mut Value) {
    for item in container_items(ranges) {
        let defaults = item.get("default").and_then(Value::as_object);
        let default_requests = item.get("defaultRequest").and_then(Value::as_object);
        for container in containers_mut(pod) {
            let resources = container
                .entry("resources")
                .or_insert_with(|| Value::Object(Map::new()));
            let Some(resources) = resources.as_object_mut() else {
                continue;
            };
            if let Some(defaults) = defaults {
                fill(resources, "limits", defaults);
            }
            // As Kubernetes defaults the range itself: a missing defaultRequest is the default.
            let mut requests = defaults.cloned().unwrap_or_default();
            requests.extend(default_requests.cloned().unwrap_or_default());
            fill(resources, "requests", &requests);
        }
    }
}

/// Every way `pod` breaks the `Container` bounds (each container) and the `Pod` bounds (its
/// containers summed) of `ranges`, worded as Kubernetes words them
/// (`maximum memory usage per Container is 512Mi, but limit is 1Gi`).
pub fn violations(ranges: &[Value], pod: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for item in container_items(ranges) {
        for container in containers(pod) {
            let requests = container.pointer("/resources/requests");
            let limits = container.pointer("/resources/limits");
            // A request falls back to the limit, as Kubernetes' pod defaulting sets it
            // before admission.
            bound_violations(
                "Container",
                item,
                |r| amount(requests, r).or_else(|| amount(limits, r)),
                |r| amount(limits, r),
                &mut out,
            );
        }
    }
    for item in items(ranges, "Pod") {
        bound_violations(
            "Pod",
            item,
            |r| pod_total(pod, r, true),
            |r| pod_total(pod, r, false),
            &mut out,
        );
    }
    out
}

/// Every way `claim` breaks the `PersistentVolumeClaim` bounds of `ranges`: `min` and `max`
/// against its requests (Kubernetes ignores a claim's limits here and defaults nothing).
pub fn claim_violations(ranges: &[Value], claim: &Value) -> Vec<String> {
    let requests = claim.pointer("/spec/resources/requests");
    let mut out = Vec::new();
    for item in items(ranges, "PersistentVolumeClaim") {
        for (resource, min) in bounds(item, "min") {
            min_violation(
                "PersistentVolumeClaim",
                &resource,
                min,
                amount(requests, &resource),
                None,
                &mut out,
            );
        }
        for (resource, max) in bounds(item, "max") {
            let text = format_milli(&resource, max);
            match amount(requests, &resource) {
                None => out.push(format!(
                    "maximum {resource} usage per PersistentVolumeClaim is {text}.  No request is specified"
                )),
                Some(r) if r > max => out.push(format!(
                    "maximum {resource} usage per PersistentVolumeClaim is {text}, but request is {}",
                    format_milli(&resource, r)
                )),
                Some(_) => {}
            }
        }
    }
    out
}

/// One resource amount of a `requests` or `limits` map, in thousandths.
fn amount(set: Option<&Value>, resource: &str) -> Option<u64> {
    set.and_then(|s| s.get(resource))
        .and_then(Value::as_str)
        .and_then(|q| milli(q).ok())
}

/// A pod's request (or limit) of `resource` as Kubernetes' LimitRanger sums it: its app
/// containers together, or its largest init container if more; `None` if no container sets
/// it. A request falls back to the limit, as a pod's defaulted requests do.
fn pod_total(pod: &Value, resource: &str, request: bool) -> Option<u64> {
    let of = |c: &Value| {
        let limit = amount(c.pointer("/resources/limits"), resource);
        if request {
            amount(c.pointer("/resources/requests"), resource).or(limit)
        } else {
            limit
        }
    };
    let list = |f: &str| {
        pod.pointer(&format!("/spec/{f}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(of)
            .collect::<Vec<u64>>()
    };
    let (app, init) = (list("containers"), list("initContainers"));
    if app.is_empty() && init.is_empty() {
        return None;
    }
    let sum: u64 = app.iter().sum();
    Some(init.into_iter().fold(sum, u64::max))
}

/// The `min` message of Kubernetes' LimitRanger for one resource.
fn min_violation(
    kind: &str,
    resource: &str,
    min: u64,
    request: Option<u64>,
    limit: Option<u64>,
    out: &mut Vec<String>,
) {
    let text = format_milli(resource, min);
    match request {
        None => out.push(format!(
            "minimum {resource} usage per {kind} is {text}.  No request is specified"
        )),
        Some(r) if r < min => out.push(format!(
            "minimum {resource} usage per {kind} is {text}, but request is {}",
            format_milli(resource, r)
        )),
        Some(_) => {}
    }
    if let Some(l) = limit.filter(|l| *l < min) {
        out.push(format!(
            "minimum {resource} usage per {kind} is {text}, but limit is {}",
            format_milli(resource, l)
        ));
    }
}

/// The `min`, `max` and `maxLimitRequestRatio` bounds of one `Container` or `Pod` item.
fn bound_violations(
    kind: &str,
    item: &Value,
    requests: impl Fn(&str) -> Option<u64>,
    limits: impl Fn(&str) -> Option<u64>,
    out: &mut Vec<String>,
) {
    for (resource, min) in bounds(item, "min") {
        min_violation(
            kind,
            &resource,
            min,
            requests(&resource),
            limits(&resource),
            out,
        );
    }
    for (resource, max) in bounds(item, "max") {
        let text = format_milli(&resource, max);
        match limits(&resource) {
            None => out.push(format!(
                "maximum {resource} usage per {kind} is {text}.  No limit is specified"
            )),
            Some(l) if l > max => out.push(format!(
                "maximum {resource} usage per {kind} is {text}, but limit is {}",
                format_milli(&resource, l)
            )),
            Some(_) => {}
        }
    }
    for (resource, ratio) in bounds(item, "maxLimitRequestRatio") {
        let text = format_milli("", ratio);
        let prefix = format!("{resource} max limit to request ratio per {kind} is {text}");
        match (requests(&resource), limits(&resource)) {
            (None | Some(0), _) => out.push(format!(
                "{prefix}, but no request is specified or request is 0"
            )),
            (_, None | Some(0)) => {
                out.push(format!("{prefix}, but no limit is specified or limit is 0"))
            }
            // limit / request > ratio, with the ratio in thousandths.
            (Some(r), Some(l)) if u128::from(l) * 1000 > u128::from(ratio) * u128::from(r) => out
                .push(format!(
                    "{prefix}, but provided ratio is {:.6}",
                    l as f64 / r as f64
                )),
            _ => {}
        }
    }
}

/// The `spec.limits` items of type `kind`.
fn items<'a>(ranges: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    ranges
        .iter()
        .filter_map(|r| r.pointer("/spec/limits").and_then(Value::as_array))
        .flatten()
        .filter(move |item| item.get("type").and_then(Value::as_str) == Some(kind))
}

/// The `spec.limits` items of type `Container`.
fn container_items(ranges: &[Value]) -> impl Iterator<Item = &Value> {
    items(ranges, "Container")
}

/// `(resource, thousandths)` of one bound map of a limit item; unparsable entries are skipped
/// (validation refuses them when the LimitRange is written).
fn bounds(item: &Value, field: &str) -> Vec<(String, u64)> {
    item.get(field)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(resource, q)| Some((resource.clone(), milli(q.as_str()?).ok()?)))
        .collect()
}

fn fill(resources: &mut Map<String, Value>, field: &str, from: &Map<String, Value>) {
    if from.is_empty() {
        return;
    }
    let set = resources
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(set) = set.as_object_mut() {
        for (resource, q) in from {
            set.entry(resource.clone()).or_insert_with(|| q.clone());
        }
    }
}

fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    ["containers", "initContainers"]
        .into_iter()
        .filter_map(|f| pod.get("spec")?.get(f)?.as_array())
        .flatten()
}

fn containers_mut(pod: &mut Value) -> Vec<&mut Map<String, Value>> {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    spec.iter_mut()
        .filter(|(f, _)| *f == "containers" || *f == "initContainers")
        .filter_map(|(_, v)| v.as_array_mut())
        .flatten()
        .filter_map(Value::as_object_mut)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn range(item: Value) -> Vec<Value> {
        vec![json!({"spec": {"limits": [item]}})]
    }

    fn pod(resources: Value) -> Value {
        json!({"spec": {"containers": [{"name": "main", "image": "x", "resources": resources}]}})
    }

    #[test]
    fn defaults_fill_only_what_is_missing() {
        let ranges = range(json!({
            "type": "Container",
            "default": {"cpu": "500m", "memory": "256Mi"},
            "defaultRequest": {"cpu": "100m"}
        }));
        let mut p = pod(json!({"limits": {"memory": "1Gi"}}));
        apply_defaults(&ranges, &mut p);
        let r = &p["spec"]["containers"][0]["resources"];
        assert_eq!(r["limits"], json!({"cpu": "500m", "memory": "1Gi"}));
        // memory request falls back to the default limit, cpu to defaultRequest.
        assert_eq!(r["requests"], json!({"cpu": "100m", "memory": "256Mi"}));
    }

    #[test]
    fn a_range_defaults_from_max_and_min() {
        let mut r = json!({"spec": {"limits": [{"type": "Container",
            "max": {"memory": "512Mi", "cpu": "2"}, "min": {"cpu": "100m"},
            "default": {"cpu": "1"}}]}});
        default_range(&mut r);
        let item = &r["spec"]["limits"][0];
        assert_eq!(item["default"], json!({"cpu": "1", "memory": "512Mi"}));
        assert_eq!(
            item["defaultRequest"],
            json!({"cpu": "1", "memory": "512Mi"})
        );
        let mut only_min =
            json!({"spec": {"limits": [{"type": "Container", "min": {"cpu": "100m"}}]}});
        default_range(&mut only_min);
        assert_eq!(
            only_min["spec"]["limits"][0]["defaultRequest"],
            json!({"cpu": "100m"})
        );
        assert!(only_min["spec"]["limits"][0].get("default").is_none());
    }

    #[test]
    fn pod_items_are_not_container_defaults() {
        let ranges = range(json!({"type": "Pod", "default": {"cpu": "1"}}));
        let mut p = pod(json!({}));
        apply_defaults(&ranges, &mut p);
        assert_eq!(p["spec"]["containers"][0]["resources"], json!({}));
    }

    #[test]
    fn max_is_worded_as_kubernetes_words_it() {
        let ranges = range(json!({"type": "Container", "max": {"memory": "512Mi"}}));
        let p = pod(json!({"limits": {"memory": "1Gi"}}));
        assert_eq!(
            violations(&ranges, &p),
            vec!["maximum memory usage per Container is 512Mi, but limit is 1Gi"]
        );
        let fits = pod(json!({"limits": {"memory": "512Mi"}}));
        assert!(violations(&ranges, &fits).is_empty());
        let unset = pod(json!({}));
        assert_eq!(
            violations(&ranges, &unset),
            vec!["maximum memory usage per Container is 512Mi.  No limit is specified"]
        );
    }

    #[test]
    fn min_checks_requests_and_limits() {
        let ranges = range(json!({"type": "Container", "min": {"cpu": "100m"}}));
        let p = pod(json!({"requests": {"cpu": "50m"}, "limits": {"cpu": "0.05"}}));
        assert_eq!(
            violations(&ranges, &p),
            vec![
                "minimum cpu usage per Container is 100m, but request is 50m",
                "minimum cpu usage per Container is 100m, but limit is 50m",
            ]
        );
    }

    #[test]
    fn ratio_bounds_limit_over_request() {
        let ranges = range(json!({"type": "Container", "maxLimitRequestRatio": {"memory": "2"}}));
        let ok = pod(json!({"requests": {"memory": "1Gi"}, "limits": {"memory": "2Gi"}}));
        assert!(violations(&ranges, &ok).is_empty());
        let over = pod(json!({"requests": {"memory": "1Gi"}, "limits": {"memory": "4Gi"}}));
        assert_eq!(
            violations(&ranges, &over),
            vec!["memory max limit to request ratio per Container is 2, but provided ratio is 4.000000"]
        );
        let no_limit = pod(json!({"requests": {"memory": "1Gi"}}));
        assert_eq!(
            violations(&ranges, &no_limit),
            vec!["memory max limit to request ratio per Container is 2, but no limit is specified or limit is 0"]
        );
        let pod_range = range(json!({"type": "Pod", "maxLimitRequestRatio": {"cpu": "3"}}));
        assert_eq!(
            violations(&pod_range, &pod(json!({}))),
            vec!["cpu max limit to request ratio per Pod is 3, but no request is specified or request is 0"]
        );
        let limit_only = pod(json!({"limits": {"memory": "4Gi"}}));
        assert!(
            violations(&ranges, &limit_only).is_empty(),
            "request = limit"
        );
    }

    #[test]
    fn pod_items_bound_the_sum_of_containers() {
        let ranges = range(json!({"type": "Pod", "max": {"cpu": "1"}, "min": {"memory": "64Mi"}}));
        let p = json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"cpu": "600m", "memory": "32Mi"}}},
            {"name": "b", "resources": {"limits": {"cpu": "600m", "memory": "16Mi"}}}]}});
        assert_eq!(
            violations(&ranges, &p),
            vec![
                "minimum memory usage per Pod is 64Mi, but request is 48Mi",
                "minimum memory usage per Pod is 64Mi, but limit is 48Mi",
                "maximum cpu usage per Pod is 1, but limit is 1200m",
            ]
        );
        let fits = json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}}],
            "initContainers": [{"name": "i", "resources": {"limits": {"cpu": "900m"}}}]}});
        assert!(violations(&ranges, &fits).is_empty());
        let init_over = json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}}],
            "initContainers": [{"name": "i", "resources": {"limits": {"cpu": "2"}}}]}});
        assert_eq!(
            violations(&ranges, &init_over),
            vec!["maximum cpu usage per Pod is 1, but limit is 2"]
        );
    }

    #[test]
    fn claim_items_bound_the_storage_request() {
        let ranges = range(json!({"type": "PersistentVolumeClaim",
            "min": {"storage": "1Gi"}, "max": {"storage": "2Gi"}}));
        let claim = |size: &str| json!({"spec": {"resources": {"requests": {"storage": size}}}});
        assert_eq!(
            claim_violations(&ranges, &claim("5Gi")),
            vec!["maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 5Gi"]
        );
        assert_eq!(
            claim_violations(&ranges, &claim("500Mi")),
            vec!["minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"]
        );
        assert!(claim_violations(&ranges, &claim("2Gi")).is_empty());
        assert_eq!(
            claim_violations(&ranges, &json!({"spec": {}})),
            vec![
                "minimum storage usage per PersistentVolumeClaim is 1Gi.  No request is specified",
                "maximum storage usage per PersistentVolumeClaim is 2Gi.  No request is specified",
            ]
        );
    }
}
