//! Defaulting: the values Kubernetes fills in when a manifest leaves them out.

use k8s_openapi::ByteString;
use serde_json::{json, Map, Value};

use crate::batch::{
    DEFAULT_BACKOFF_LIMIT, DEFAULT_CONCURRENCY_POLICY, DEFAULT_FAILED_JOBS_HISTORY_LIMIT,
    DEFAULT_PARALLELISM, DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT,
};
use crate::image::{default_pull_policy, runtime_class_for_image};
use crate::probes::default_probes;
use crate::resources::ResourceKind;

/// Fills defaults in place; never overwrites a value that is set.
pub fn apply_defaults(kind: &ResourceKind, obj: &mut Value) {
    match kind.kind {
        "Pod" => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec);
            }
        }
        "LimitRange" => crate::admission::limit_range::default_range(obj),
        "Endpoints" => default_endpoints_ports(obj),
        "Deployment" => {
            let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
                return;
            };
            set_default(spec, "replicas", json!(1));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
            default_rolling_update(
                spec,
                "strategy",
                &[("maxSurge", json!("25%")), ("maxUnavailable", json!("25%"))],
            );
            default_template(spec);
        }
        "ReplicaSet" => {
            let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
                return;
            };
            set_default(spec, "replicas", json!(1));
            default_template(spec);
        }
        "DaemonSet" => {
            let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
                return;
            };
            set_default(spec, "revisionHistoryLimit", json!(10));
            default_rolling_update(
                spec,
                "updateStrategy",
                &[("maxUnavailable", json!(1)), ("maxSurge", json!(0))],
            );
            default_template(spec);
        }
        "StatefulSet" => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                default_statefulset_spec(spec);
            }
        }
        "Job" => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                default_job_spec(spec);
            }
        }
        "CronJob" => {
            let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
                return;
            };
            set_default(spec, "concurrencyPolicy", json!(DEFAULT_CONCURRENCY_POLICY));
            set_default(spec, "suspend", json!(false));
            set_default(
                spec,
                "successfulJobsHistoryLimit",
                json!(DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT),
            );
            set_default(
                spec,
                "failedJobsHistoryLimit",
                json!(DEFAULT_FAILED_JOBS_HISTORY_LIMIT),
            );
            if let Some(job) = spec
                .get_mut("jobTemplate")
                .and_then(|t| t.get_mut("spec"))
                .and_then(Value::as_object_mut)
            {
                default_job_spec(job);
            }
        }
        "Secret" => {
            if let Some(map) = obj.as_object_mut() {
                set_default(map, "type", json!("Opaque"));
                fold_string_data(map);
            }
        }
        _ => {}
    }
}

/// A Secret's write-only `stringData` moved into `data` (base64), its keys winning over the
/// same keys of `data`, as Kubernetes does; left in place when malformed, for validation to name.
fn fold_string_data(secret: &mut Map<String, Value>) {
    let strings_ok = matches!(secret.get("stringData"),
        Some(Value::Object(strings)) if strings.values().all(Value::is_string));
    let data_ok = matches!(
        secret.get("data"),
        None | Some(Value::Null | Value::Object(_))
    );
    if !(strings_ok && data_ok) {
        return;
    }
    let Some(Value::Object(strings)) = secret.remove("stringData") else {
        return;
    };
    let mut data = match secret.remove("data") {
        Some(Value::Object(data)) => data,
        _ => Map::new(),
    };
    for (key, value) in strings {
        if let Value::String(text) = value {
            let encoded = serde_json::to_value(ByteString(text.into_bytes()));
            data.insert(key, encoded.unwrap_or_default());
        }
    }
    secret.insert("data".into(), Value::Object(data));
}

/// Kubernetes' Job defaults: one completion, one pod at a time, six retries.
fn default_job_spec(spec: &mut Map<String, Value>) {
    let completions_set = spec.get("completions").is_some_and(|v| !v.is_null());
    let parallelism_set = spec.get("parallelism").is_some_and(|v| !v.is_null());
    if !completions_set && !parallelism_set {
        set_default(spec, "completions", json!(DEFAULT_PARALLELISM));
    }
    set_default(spec, "parallelism", json!(DEFAULT_PARALLELISM));
    set_default(spec, "backoffLimit", json!(DEFAULT_BACKOFF_LIMIT));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    default_template(spec);
}

/// Kubernetes' StatefulSet defaults: one replica, ordered pod management, a rolling update
/// from the top ordinal down (partition 0), claims kept when pods or the set go.
fn default_statefulset_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "replicas", json!(1));
    set_default(spec, "podManagementPolicy", json!("OrderedReady"));
    set_default(spec, "revisionHistoryLimit", json!(10));
    default_rolling_update(spec, "updateStrategy", &[("partition", json!(0))]);
    let retention = spec
        .entry("persistentVolumeClaimRetentionPolicy")
        .or_insert_with(|| json!({}));
    if let Some(retention) = retention.as_object_mut() {
        set_default(retention, "whenDeleted", json!("Retain"));
        set_default(retention, "whenScaled", json!("Retain"));
    }
    default_template(spec);
}

/// `spec[key]` defaulted to a `RollingUpdate` strategy, whose `rollingUpdate` gets `fields`
/// unless the strategy names another type (Deployments, DaemonSets and StatefulSets).
fn default_rolling_update(spec: &mut Map<String, Value>, key: &str, fields: &[(&str, Value)]) {
    let Some(strategy) = spec.entry(key).or_insert_with(|| json!({})).as_object_mut() else {
        return;
    };
    set_default(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type") != Some(&json!("RollingUpdate")) {
        return;
    }
    if let Some(rolling) = strategy
        .entry("rollingUpdate")
        .or_insert_with(|| json!({}))
        .as_object_mut()
    {
        for (field, value) in fields {
            set_default(rolling, field, value.clone());
        }
    }
}

fn default_template(spec: &mut Map<String, Value>) {
    if let Some(pod_spec) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
        default_pod_spec(pod_spec);
    }
}

fn default_pod_spec(spec: &mut Value) {
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    if spec.get("hostNetwork") == Some(&json!(true)) {
        default_host_network_ports(spec);
    }
    let first_image = spec
        .get("containers")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("image"))
        .and_then(Value::as_str)
        .and_then(runtime_class_for_image);
    if let Some(class) = first_image {
        set_default(spec, "runtimeClassName", json!(class));
    }
    for init in spec
        .get_mut("initContainers")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
    {
        default_probes(init);
    }
    for container in spec
        .get_mut("containers")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let Some(container) = container.as_object_mut() else {
            continue;
        };
        default_probes(container);
        let policy = container
            .get("image")
            .and_then(Value::as_str)
            .map_or("IfNotPresent", default_pull_policy);
        set_default(container, "imagePullPolicy", json!(policy));
        for port in container
            .get_mut("ports")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(port) = port.as_object_mut() {
                set_default(port, "protocol", json!("TCP"));
            }
        }
    }
}

/// Every Endpoints port's protocol defaults to TCP, as Kubernetes defaults it.
fn default_endpoints_ports(obj: &mut Value) {
    let subsets = obj.get_mut("subsets").and_then(Value::as_array_mut);
    for subset in subsets.into_iter().flatten() {
        let ports = subset.get_mut("ports").and_then(Value::as_array_mut);
        for port in ports.into_iter().flatten().filter_map(Value::as_object_mut) {
            set_default(port, "protocol", json!("TCP"));
        }
    }
}

/// A `hostNetwork` pod's ports are on the node: each hostPort defaults to its containerPort.
fn default_host_network_ports(spec: &mut Map<String, Value>) {
    for key in ["initContainers", "containers"] {
        let containers = spec.get_mut(key).and_then(Value::as_array_mut);
        for container in containers.into_iter().flatten() {
            let ports = container.get_mut("ports").and_then(Value::as_array_mut);
            for port in ports.into_iter().flatten().filter_map(Value::as_object_mut) {
                if let Some(container_port) = port.get("containerPort").cloned() {
                    set_default(port, "hostPort", container_port);
                }
            }
        }
    }
}

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_name;

    #[test]
    fn secret_string_data_is_folded_into_data() {
        let kind = by_name("secrets").expect("kind");
        let mut secret = json!({"data": {"a": "b2xk", "b": "Yg=="}, "stringData": {"a": "new"}});
        apply_defaults(kind, &mut secret);
        assert_eq!(
            secret,
            json!({"type": "Opaque", "data": {"a": "bmV3", "b": "Yg=="}})
        );
        // Malformed stringData stays for validation to name.
        let mut bad = json!({"stringData": {"a": 1}});
        apply_defaults(kind, &mut bad);
        assert_eq!(bad["stringData"], json!({"a": 1}));
    }

    #[test]
    fn deployment_defaults() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "file:/a.wasm", "ports": [{"containerPort": 80}]}]}}}});
        apply_defaults(by_name("deployment").expect("kind"), &mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(pod["runtimeClassName"], "wasmtime");
        assert_eq!(pod["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
    }

    #[test]
    fn host_network_ports_default_their_host_port() {
        let mut pod = json!({"spec": {"hostNetwork": true, "containers": [{"name": "c",
            "image": "file:/a.wasm", "ports": [{"containerPort": 80}, {"containerPort": 81, "hostPort": 81}]}]}});
        apply_defaults(by_name("pod").expect("kind"), &mut pod);
        let ports = &pod["spec"]["containers"][0]["ports"];
        assert_eq!(ports[0]["hostPort"], 80);
        assert_eq!(ports[1]["hostPort"], 81);
        let mut own = json!({"spec": {"containers": [{"name": "c", "image": "file:/a.wasm",
            "ports": [{"containerPort": 80}]}]}});
        apply_defaults(by_name("pod").expect("kind"), &mut own);
        assert!(own["spec"]["containers"][0]["ports"][0]["hostPort"].is_null());
    }

    #[test]
    fn statefulset_defaults() {
        let mut sts =
            json!({"spec": {"serviceName": "db", "template": {"spec": {"containers": []}}}});
        apply_defaults(by_name("sts").expect("kind"), &mut sts);
        let spec = &sts["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");
        let mut on_delete = json!({"spec": {"updateStrategy": {"type": "OnDelete"}}});
        apply_defaults(by_name("sts").expect("kind"), &mut on_delete);
        assert!(on_delete["spec"]["updateStrategy"]["rollingUpdate"].is_null());
    }

    #[test]
    fn pull_policy_follows_the_tag_unless_set() {
        let mut p = json!({"spec": {"containers": [
            {"name": "a", "image": "r.io/app"},
            {"name": "b", "image": "r.io/app:1"},
            {"name": "c", "image": "r.io/app", "imagePullPolicy": "Never"}]}});
        apply_defaults(by_name("pod").expect("kind"), &mut p);
        let policies: Vec<&str> = (0..3)
            .map(|i| {
                p["spec"]["containers"][i]["imagePullPolicy"]
                    .as_str()
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(policies, ["Always", "IfNotPresent", "Never"]);
    }

    #[test]
    fn endpoints_ports_default_to_tcp() {
        let mut ep =
            json!({"subsets": [{"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}]});
        apply_defaults(by_name("ep").expect("kind"), &mut ep);
        assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(ep["subsets"][0]["ports"][1]["protocol"], "UDP");
    }

    #[test]
    fn job_defaults() {
        let template = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "file:/a.wasm"}]}});
        let mut job = json!({"spec": {"template": template}});
        apply_defaults(by_name("job").expect("kind"), &mut job);
        assert_eq!(job["spec"]["completions"], 1);
        assert_eq!(job["spec"]["parallelism"], 1);
        assert_eq!(job["spec"]["backoffLimit"], 6);
        assert_eq!(job["spec"]["completionMode"], "NonIndexed");
        assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
        // A work queue Job (parallelism alone) keeps completions unset.
        let mut queue = json!({"spec": {"parallelism": 3, "template": template}});
        apply_defaults(by_name("job").expect("kind"), &mut queue);
        assert!(queue["spec"]["completions"].is_null());
        let mut cron = json!({"spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"template": template}}}});
        apply_defaults(by_name("cronjob").expect("kind"), &mut cron);
        assert_eq!(cron["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(cron["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(cron["spec"]["failedJobsHistoryLimit"], 1);
        assert_eq!(cron["spec"]["jobTemplate"]["spec"]["backoffLimit"], 6);
    }

    #[test]
    fn keeps_what_is_set() {
        let mut p = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "nginx"}]}});
        apply_defaults(by_name("pod").expect("kind"), &mut p);
        assert_eq!(p["spec"]["restartPolicy"], "Never");
        assert!(p["spec"].get("runtimeClassName").is_none());
    }
}
