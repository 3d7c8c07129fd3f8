//! `skiff get pv`, `get pvc` and `get sc` rows, as kubectl prints them.

use serde_json::Value;

use super::age;

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn age_of(obj: &Value) -> String {
    age::since(obj["metadata"]["creationTimestamp"].as_str())
}

/// `RWO,RWX` as kubectl abbreviates access modes.
fn access_modes(modes: &Value) -> String {
    modes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|mode| match mode {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS AGE
pub fn volume_row(pv: &Value, _wide: bool) -> Vec<String> {
    let spec = &pv["spec"];
    let claim = &spec["claimRef"];
    let claim = match (claim["namespace"].as_str(), claim["name"].as_str()) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        (None, Some(name)) => name.to_string(),
        _ => String::new(),
    };
    vec![
        text(&pv["metadata"]["name"]),
        text(&spec["capacity"]["storage"]),
        access_modes(&spec["accessModes"]),
        spec["persistentVolumeReclaimPolicy"]
            .as_str()
            .unwrap_or("Retain")
            .to_string(),
        pv["status"]["phase"]
            .as_str()
            .unwrap_or("Pending")
            .to_string(),
        claim,
        text(&spec["storageClassName"]),
        age_of(pv),
    ]
}

/// NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS AGE
pub fn claim_row(pvc: &Value, _wide: bool) -> Vec<String> {
    let status = &pvc["status"];
    vec![
        text(&pvc["metadata"]["name"]),
        status["phase"].as_str().unwrap_or("Pending").to_string(),
        text(&pvc["spec"]["volumeName"]),
        text(&status["capacity"]["storage"]),
        access_modes(&status["accessModes"]),
        text(&pvc["spec"]["storageClassName"]),
        age_of(pvc),
    ]
}

/// NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE AGE, `(default)` after the default's name.
pub fn class_row(sc: &Value, _wide: bool) -> Vec<String> {
    let mut name = text(&sc["metadata"]["name"]);
    if sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true" {
        name.push_str(" (default)");
    }
    vec![
        name,
        text(&sc["provisioner"]),
        sc["reclaimPolicy"].as_str().unwrap_or("Delete").to_string(),
        sc["volumeBindingMode"]
            .as_str()
            .unwrap_or("Immediate")
            .to_string(),
        age_of(sc),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_read_like_kubectl() {
        let pv = json!({"metadata": {"name": "pvc-1"}, "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce", "ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "local-path",
            "claimRef": {"namespace": "default", "name": "data"}},
            "status": {"phase": "Bound"}});
        assert_eq!(
            volume_row(&pv, false)[..7],
            [
                "pvc-1",
                "1Gi",
                "RWO,RWX",
                "Delete",
                "Bound",
                "default/data",
                "local-path"
            ]
        );
        let pvc = json!({"metadata": {"name": "data"}, "spec": {"volumeName": "pvc-1",
            "storageClassName": "local-path"}, "status": {"phase": "Bound",
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}});
        assert_eq!(
            claim_row(&pvc, false)[..6],
            ["data", "Bound", "pvc-1", "1Gi", "RWO", "local-path"]
        );
        let waiting = json!({"metadata": {"name": "new"}, "spec": {}});
        assert_eq!(claim_row(&waiting, false)[..3], ["new", "Pending", ""]);
        let sc = json!({"metadata": {"name": "local-path",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "skiff.dev/local-path", "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer"});
        assert_eq!(
            class_row(&sc, false)[..4],
            [
                "local-path (default)",
                "skiff.dev/local-path",
                "Delete",
                "WaitForFirstConsumer"
            ]
        );
    }
}
