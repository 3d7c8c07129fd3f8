//! `skiff get deployments|replicasets|daemonsets|statefulsets` rows, as kubectl prints them.

use serde_json::Value;

use super::columns::{age_of, int, name, or_none, s};

/// The wide columns workloads share: CONTAINERS, IMAGES and SELECTOR.
fn workload_wide(obj: &Value, row: &mut Vec<String>) {
    let containers = obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    row.push(
        containers
            .iter()
            .map(|c| s(&c["name"]))
            .collect::<Vec<_>>()
            .join(","),
    );
    row.push(
        containers
            .iter()
            .map(|c| s(&c["image"]))
            .collect::<Vec<_>>()
            .join(","),
    );
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", s(v)))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    row.push(or_none(selector));
}

pub(super) fn deployment_row(d: &Value, wide: bool) -> Vec<String> {
    let status = &d["status"];
    let mut row = vec![
        name(d),
        format!(
            "{}/{}",
            int(&status["readyReplicas"]),
            int(&d["spec"]["replicas"])
        ),
        int(&status["updatedReplicas"]).to_string(),
        int(&status["availableReplicas"]).to_string(),
        age_of(d),
    ];
    if wide {
        workload_wide(d, &mut row);
    }
    row
}

pub(super) fn replicaset_row(rs: &Value, wide: bool) -> Vec<String> {
    let mut row = vec![
        name(rs),
        int(&rs["spec"]["replicas"]).to_string(),
        int(&rs["status"]["replicas"]).to_string(),
        int(&rs["status"]["readyReplicas"]).to_string(),
        age_of(rs),
    ];
    if wide {
        workload_wide(rs, &mut row);
    }
    row
}

pub(super) fn daemonset_row(ds: &Value, wide: bool) -> Vec<String> {
    let status = &ds["status"];
    let selector: Vec<String> = ds["spec"]["template"]["spec"]["nodeSelector"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", s(v)))
        .collect();
    let mut row = vec![
        name(ds),
        int(&status["desiredNumberScheduled"]).to_string(),
        int(&status["currentNumberScheduled"]).to_string(),
        int(&status["numberReady"]).to_string(),
        int(&status["updatedNumberScheduled"]).to_string(),
        int(&status["numberAvailable"]).to_string(),
        or_none(selector.join(",")),
        age_of(ds),
    ];
    if wide {
        workload_wide(ds, &mut row);
    }
    row
}

pub(super) fn statefulset_row(sts: &Value, wide: bool) -> Vec<String> {
    let mut row = vec![
        name(sts),
        format!(
            "{}/{}",
            int(&sts["status"]["readyReplicas"]),
            int(&sts["spec"]["replicas"])
        ),
        age_of(sts),
    ];
    if wide {
        workload_wide(sts, &mut row);
        // kubectl shows no selector for StatefulSets.
        row.pop();
    }
    row
}
