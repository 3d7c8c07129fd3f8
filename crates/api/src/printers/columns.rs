//! Table columns per kind, as `kubectl get` shows them.

use serde_json::Value;

use super::pod_columns::pod_row;
use super::workload_columns::{daemonset_row, deployment_row, replicaset_row, statefulset_row};
use super::{age, batch_columns, ingress_columns, quota_columns, service_columns, storage_columns};

/// Renders one object as a table row (`true`: with the wide columns).
pub type RowFn = fn(&Value, bool) -> Vec<String>;

/// Header and row function for a kind.
pub struct Columns {
    pub header: Vec<&'static str>,
    pub row: RowFn,
}

pub(super) fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(super) fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

pub(super) fn name(obj: &Value) -> String {
    s(&obj["metadata"]["name"])
}

pub(super) fn age_of(obj: &Value) -> String {
    age::since(obj["metadata"]["creationTimestamp"].as_str())
}

pub(super) fn or_none(text: String) -> String {
    if text.is_empty() {
        "<none>".into()
    } else {
        text
    }
}

/// The columns of a kind (by `kind` name), with the wide extras when `wide`.
pub fn for_kind(kind: &str, wide: bool) -> Columns {
    let (mut header, row): (Vec<&'static str>, RowFn) = match kind {
        "Pod" => (vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"], pod_row),
        "Deployment" => (
            vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
            deployment_row,
        ),
        "ReplicaSet" => (
            vec!["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
            replicaset_row,
        ),
        "DaemonSet" => (
            vec![
                "NAME",
                "DESIRED",
                "CURRENT",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "NODE SELECTOR",
                "AGE",
            ],
            daemonset_row,
        ),
        "StatefulSet" => (vec!["NAME", "READY", "AGE"], statefulset_row),
        "ControllerRevision" => (vec!["NAME", "CONTROLLER", "REVISION", "AGE"], |o, _| {
            let owner = o["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["controller"] == true)
                .map(|r| format!("{}/{}", s(&r["kind"]).to_lowercase(), s(&r["name"])));
            vec![
                name(o),
                owner.unwrap_or_else(|| "<none>".into()),
                int(&o["revision"]).to_string(),
                age_of(o),
            ]
        }),
        "Node" => (vec!["NAME", "STATUS", "ROLES", "AGE", "VERSION"], node_row),
        "Namespace" => (vec!["NAME", "STATUS", "AGE"], |o, _| {
            vec![name(o), or_active(&o["status"]["phase"]), age_of(o)]
        }),
        "ConfigMap" => (vec!["NAME", "DATA", "AGE"], |o, _| {
            let count = o["data"].as_object().map_or(0, |d| d.len())
                + o["binaryData"].as_object().map_or(0, |d| d.len());
            vec![name(o), count.to_string(), age_of(o)]
        }),
        "Secret" => (vec!["NAME", "TYPE", "DATA", "AGE"], |o, _| {
            let count = o["data"].as_object().map_or(0, |d| d.len());
            vec![name(o), s(&o["type"]), count.to_string(), age_of(o)]
        }),
        "ServiceAccount" => (vec!["NAME", "SECRETS", "AGE"], |o, _| {
            let count = o["secrets"].as_array().map_or(0, |s| s.len());
            vec![name(o), count.to_string(), age_of(o)]
        }),
        "Service" => (
            vec![
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE",
            ],
            service_columns::service_row,
        ),
        "Endpoints" => (
            vec!["NAME", "ENDPOINTS", "AGE"],
            service_columns::endpoints_row,
        ),
        "EndpointSlice" => (
            vec!["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"],
            service_columns::endpoint_slice_row,
        ),
        "Ingress" => (
            vec!["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"],
            ingress_columns::ingress_row,
        ),
        "CertificateSigningRequest" => (
            vec![
                "NAME",
                "AGE",
                "SIGNERNAME",
                "REQUESTOR",
                "REQUESTEDDURATION",
                "CONDITION",
            ],
            super::certificate_columns::csr_row,
        ),
        "IngressClass" => (
            vec!["NAME", "CONTROLLER", "PARAMETERS", "AGE"],
            ingress_columns::ingress_class_row,
        ),
        "Event" => (
            vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
            event_row,
        ),
        "Job" => (
            vec!["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
            batch_columns::job_row,
        ),
        "CronJob" => (
            vec![
                "NAME",
                "SCHEDULE",
                "TIMEZONE",
                "SUSPEND",
                "ACTIVE",
                "LAST SCHEDULE",
                "AGE",
            ],
            batch_columns::cronjob_row,
        ),
        "PodDisruptionBudget" => (
            vec![
                "NAME",
                "MIN AVAILABLE",
                "MAX UNAVAILABLE",
                "ALLOWED DISRUPTIONS",
                "AGE",
            ],
            |o, _| {
                let or_na = |v: &Value| if v.is_null() { "N/A".into() } else { s(v) };
                vec![
                    name(o),
                    or_na(&o["spec"]["minAvailable"]),
                    or_na(&o["spec"]["maxUnavailable"]),
                    int(&o["status"]["disruptionsAllowed"]).to_string(),
                    age_of(o),
                ]
            },
        ),
        "ResourceQuota" => (
            vec!["NAME", "AGE", "REQUEST", "LIMIT"],
            quota_columns::quota_row,
        ),
        "LimitRange" => (vec!["NAME", "CREATED AT"], quota_columns::limit_range_row),
        "Lease" => (vec!["NAME", "HOLDER", "AGE"], |o, _| {
            vec![name(o), s(&o["spec"]["holderIdentity"]), age_of(o)]
        }),
        "RuntimeClass" => (vec!["NAME", "HANDLER", "AGE"], |o, _| {
            vec![name(o), s(&o["handler"]), age_of(o)]
        }),
        "PersistentVolume" => (
            vec![
                "NAME",
                "CAPACITY",
                "ACCESS MODES",
                "RECLAIM POLICY",
                "STATUS",
                "CLAIM",
                "STORAGECLASS",
                "AGE",
            ],
            storage_columns::volume_row,
        ),
        "PersistentVolumeClaim" => (
            vec![
                "NAME",
                "STATUS",
                "VOLUME",
                "CAPACITY",
                "ACCESS MODES",
                "STORAGECLASS",
                "AGE",
            ],
            storage_columns::claim_row,
        ),
        "StorageClass" => (
            vec![
                "NAME",
                "PROVISIONER",
                "RECLAIMPOLICY",
                "VOLUMEBINDINGMODE",
                "AGE",
            ],
            storage_columns::class_row,
        ),
        _ => (vec!["NAME", "AGE"], |o, _| vec![name(o), age_of(o)]),
    };
    if wide {
        match kind {
            "Pod" => header.extend(["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]),
            "Deployment" | "ReplicaSet" | "DaemonSet" => {
                header.extend(["CONTAINERS", "IMAGES", "SELECTOR"])
            }
            "StatefulSet" => header.extend(["CONTAINERS", "IMAGES"]),
            "Node" => header.extend([
                "INTERNAL-IP",
                "EXTERNAL-IP",
                "OS-IMAGE",
                "KERNEL-VERSION",
                "CONTAINER-RUNTIME",
            ]),
            "Service" => header.extend(["SELECTOR"]),
            _ => {}
        }
    }
    Columns { header, row }
}

fn or_active(phase: &Value) -> String {
    match phase.as_str() {
        Some(p) if !p.is_empty() => p.to_string(),
        _ => "Active".into(),
    }
}

fn node_row(node: &Value, wide: bool) -> Vec<String> {
    let ready = node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .map(|c| {
            if c["status"] == "True" {
                "Ready"
            } else {
                "NotReady"
            }
        })
        .unwrap_or("Unknown");
    let status = if node["spec"]["unschedulable"] == true {
        format!("{ready},SchedulingDisabled")
    } else {
        ready.to_string()
    };
    let roles: Vec<String> = node["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| {
            k.strip_prefix("node-role.kubernetes.io/")
                .map(str::to_string)
        })
        .collect();
    let info = &node["status"]["nodeInfo"];
    let mut row = vec![
        name(node),
        status,
        or_none(roles.join(",")),
        age_of(node),
        s(&info["kubeletVersion"]),
    ];
    if wide {
        let address = |kind: &str| {
            node["status"]["addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["type"] == kind)
                .map(|a| s(&a["address"]))
                .unwrap_or_default()
        };
        row.push(or_none(address("InternalIP")));
        row.push(or_none(address("ExternalIP")));
        for field in ["osImage", "kernelVersion", "containerRuntimeVersion"] {
            row.push(or_unknown(s(&info[field])));
        }
    }
    row
}

fn or_unknown(text: String) -> String {
    if text.is_empty() {
        "<unknown>".into()
    } else {
        text
    }
}

fn event_row(event: &Value, _wide: bool) -> Vec<String> {
    let object = &event["involvedObject"];
    vec![
        age::since(
            event["lastTimestamp"]
                .as_str()
                .or(event["metadata"]["creationTimestamp"].as_str()),
        ),
        s(&event["type"]),
        s(&event["reason"]),
        format!(
            "{}/{}",
            s(&object["kind"]).to_lowercase(),
            s(&object["name"])
        ),
        s(&event["message"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statefulsets_and_their_revisions() {
        let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3, "template": {"spec": {
            "containers": [{"name": "c", "image": "file:/db.wasm"}]}}},
            "status": {"readyReplicas": 2}});
        let wide = for_kind("StatefulSet", true);
        assert_eq!(
            wide.header,
            ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]
        );
        let row = (wide.row)(&sts, true);
        assert_eq!(
            (&row[..2], &row[3..]),
            (
                &["db".to_string(), "2/3".into()][..],
                &["c".to_string(), "file:/db.wasm".into()][..]
            )
        );
        let revision = json!({"metadata": {"name": "db-abc", "ownerReferences": [
            {"kind": "StatefulSet", "name": "db", "controller": true}]}, "revision": 2});
        let columns = for_kind("ControllerRevision", false);
        assert_eq!(
            &(columns.row)(&revision, false)[..3],
            ["db-abc", "statefulset/db", "2"]
        );
    }

    #[test]
    fn pods_nodes_and_services_have_kubectls_wide_columns_and_others_name_and_age() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1",
            "readinessGates": [{"conditionType": "x/ready"}], "containers": [{"name": "c"}]},
            "status": {"podIP": "10.0.0.5", "conditions": [{"type": "x/ready", "status": "True"}]}});
        let columns = for_kind("Pod", true);
        assert_eq!(columns.header.len(), 9);
        assert_eq!(
            &(columns.row)(&pod, true)[5..],
            ["10.0.0.5", "n1", "<none>", "1/1"]
        );
        let node = json!({"metadata": {"name": "n1"}, "status": {"nodeInfo": {
            "kubeletVersion": "v1.34", "osImage": "Debian"}, "addresses": [
            {"type": "InternalIP", "address": "10.1.0.1"}],
            "conditions": [{"type": "Ready", "status": "True"}]}});
        let columns = for_kind("Node", true);
        assert_eq!(
            columns.header,
            [
                "NAME",
                "STATUS",
                "ROLES",
                "AGE",
                "VERSION",
                "INTERNAL-IP",
                "EXTERNAL-IP",
                "OS-IMAGE",
                "KERNEL-VERSION",
                "CONTAINER-RUNTIME"
            ]
        );
        let row = (columns.row)(&node, true);
        assert_eq!(
            (&row[..3], &row[4..]),
            (
                &["n1".to_string(), "Ready".into(), "<none>".into()][..],
                &[
                    "v1.34",
                    "10.1.0.1",
                    "<none>",
                    "Debian",
                    "<unknown>",
                    "<unknown>"
                ]
                .map(String::from)[..]
            )
        );
        let svc = json!({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.96.0.9",
            "selector": {"app": "web"}, "ports": [{"port": 80}]}});
        let columns = for_kind("Service", true);
        assert_eq!(columns.header.last(), Some(&"SELECTOR"));
        assert_eq!(
            (columns.row)(&svc, true).last().map(String::as_str),
            Some("app=web")
        );
        assert_eq!(for_kind("Widget", true).header, ["NAME", "AGE"]);
    }

    #[test]
    fn runtime_classes_show_their_handler() {
        let columns = for_kind("RuntimeClass", false);
        assert_eq!(columns.header, ["NAME", "HANDLER", "AGE"]);
        let class = json!({"metadata": {"name": "wasmtime"}, "handler": "wasm"});
        assert_eq!(&(columns.row)(&class, false)[..2], ["wasmtime", "wasm"]);
    }
}
