//! `skiff get pods` rows and the STATUS column, as kubectl derives them from a pod's status.

use serde_json::Value;

use super::columns::{age_of, int, name, or_none, s};

/// The STATUS column of a pod: the most telling container reason, as kubectl shows it.
fn pod_status(pod: &Value) -> String {
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        return "Terminating".into();
    }
    let mut reason = pod["status"]["reason"]
        .as_str()
        .or(pod["status"]["phase"].as_str())
        .unwrap_or("Pending")
        .to_string();
    if let Some(init) = init_status(pod) {
        let initialized = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Initialized" && c["status"] == "True");
        if !initialized {
            return init;
        }
    }
    for status in pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let state = &status["state"];
        if let Some(waiting) = state["waiting"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty())
        {
            reason = waiting.to_string();
        } else if !state["terminated"].is_null() {
            reason = match state["terminated"]["reason"]
                .as_str()
                .filter(|r| !r.is_empty())
            {
                Some(r) => r.to_string(),
                None => format!("ExitCode:{}", int(&state["terminated"]["exitCode"])),
            };
        }
    }
    if reason == "Pending" && pod["spec"]["nodeName"].is_null() {
        let unschedulable = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "PodScheduled" && c["status"] == "False");
        if unschedulable {
            return "Pending".into();
        }
    }
    reason
}

/// The STATUS of a pod still in its init containers (`Init:1/2`, `Init:CrashLoopBackOff`,
/// `Init:Error`), as kubectl prints it; `None` once they are all done.
fn init_status(pod: &Value) -> Option<String> {
    let specs = pod["spec"]["initContainers"].as_array()?;
    let statuses = pod["status"]["initContainerStatuses"].as_array();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses
            .into_iter()
            .flatten()
            .find(|s| s["name"] == spec["name"])
            .unwrap_or(&Value::Null);
        let state = &status["state"];
        let terminated = &state["terminated"];
        let waiting = state["waiting"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty() && *r != "PodInitializing");
        if !terminated.is_null() && int(&terminated["exitCode"]) == 0 {
            continue;
        }
        if spec["restartPolicy"] == "Always" && status["started"] == true {
            continue;
        }
        return Some(if !terminated.is_null() {
            match terminated["reason"].as_str().filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None => format!("Init:ExitCode:{}", int(&terminated["exitCode"])),
            }
        } else if let Some(waiting) = waiting {
            format!("Init:{waiting}")
        } else {
            format!("Init:{i}/{}", specs.len())
        });
    }
    None
}

/// A pod row: NAME READY STATUS RESTARTS AGE (wide: IP NODE NOMINATED NODE READINESS GATES).
pub(super) fn pod_row(pod: &Value, wide: bool) -> Vec<String> {
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let init_statuses = pod["status"]["initContainerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let sidecars: Vec<&Value> = pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["restartPolicy"] == "Always")
        .collect();
    let total = pod["spec"]["containers"].as_array().map_or(0, Vec::len) + sidecars.len();
    let ready_sidecars = init_statuses
        .iter()
        .filter(|s| s["ready"] == true && sidecars.iter().any(|c| c["name"] == s["name"]))
        .count();
    let ready = statuses.iter().filter(|c| c["ready"] == true).count() + ready_sidecars;
    let restarts: i64 = statuses
        .iter()
        .chain(&init_statuses)
        .map(|c| int(&c["restartCount"]))
        .sum();
    let mut row = vec![
        name(pod),
        format!("{ready}/{total}"),
        pod_status(pod),
        restarts.to_string(),
        age_of(pod),
    ];
    if wide {
        row.push(or_none(s(&pod["status"]["podIP"])));
        row.push(or_none(s(&pod["spec"]["nodeName"])));
        row.push(or_none(s(&pod["status"]["nominatedNodeName"])));
        row.push(readiness_gates(pod));
    }
    row
}

/// `1/2`: the pod's readiness gates whose condition is True, of all its gates.
fn readiness_gates(pod: &Value) -> String {
    let gates: Vec<&Value> = pod["spec"]["readinessGates"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    if gates.is_empty() {
        return "<none>".into();
    }
    let conditions = pod["status"]["conditions"].as_array();
    let met = gates
        .iter()
        .filter(|g| {
            conditions
                .into_iter()
                .flatten()
                .any(|c| c["type"] == g["conditionType"] && c["status"] == "True")
        })
        .count();
    format!("{met}/{}", gates.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_status_shows_init_progress_as_kubectl() {
        let pod = |init: Value, initialized: bool| {
            json!({"metadata": {"name": "p"},
                "spec": {"nodeName": "n", "initContainers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "app"}]},
                "status": {"phase": "Pending", "initContainerStatuses": init,
                    "conditions": [{"type": "Initialized", "status": if initialized { "True" } else { "False" }}],
                    "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]}})
        };
        let done =
            json!({"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
        let waiting = |reason: &str| json!({"name": "b", "state": {"waiting": {"reason": reason}}});
        let cases = [
            (
                json!([waiting("PodInitializing"), waiting("PodInitializing")]),
                false,
                "Init:0/2",
            ),
            (
                json!([done.clone(), {"name": "b", "state": {"running": {}}}]),
                false,
                "Init:1/2",
            ),
            (
                json!([done.clone(), waiting("CrashLoopBackOff")]),
                false,
                "Init:CrashLoopBackOff",
            ),
            (
                json!([done.clone(), {"name": "b", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]),
                false,
                "Init:Error",
            ),
            (
                json!([done.clone(), {"name": "b", "state": {"terminated": {"exitCode": 0}}}]),
                true,
                "PodInitializing",
            ),
        ];
        for (init, initialized, expected) in cases {
            assert_eq!(pod_status(&pod(init, initialized)), expected);
        }
        let sidecar = json!({"metadata": {"name": "p"},
            "spec": {"nodeName": "n", "initContainers": [{"name": "s", "restartPolicy": "Always"}], "containers": [{"name": "app"}]},
            "status": {"phase": "Running",
                "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [{"name": "s", "ready": true, "started": true, "restartCount": 1, "state": {"running": {}}}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}]}});
        let row = pod_row(&sidecar, false);
        assert_eq!(row[1..4], ["2/2", "Running", "1"]);
    }

    #[test]
    fn pod_status_shows_the_container_reason() {
        let crash = json!({"status": {"phase": "Running", "containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(pod_status(&crash), "CrashLoopBackOff");
        let done = json!({"status": {"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]}});
        assert_eq!(pod_status(&done), "Completed");
        let oom = json!({"status": {"phase": "Running", "containerStatuses": [{"state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}});
        assert_eq!(pod_status(&oom), "OOMKilled");
        let bare = json!({"status": {"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"exitCode": 3}}}]}});
        assert_eq!(pod_status(&bare), "ExitCode:3");
        let deleting = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Running"}});
        assert_eq!(pod_status(&deleting), "Terminating");
        assert_eq!(
            pod_status(&json!({"status": {"phase": "Running"}})),
            "Running"
        );
    }

    #[test]
    fn pod_rows() {
        let pod = json!({"metadata": {"name": "web-1"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "containerStatuses": [
                {"ready": true, "restartCount": 2, "state": {"running": {}}}, {"ready": false, "restartCount": 1, "state": {"running": {}}}]}});
        let row = pod_row(&pod, true);
        assert_eq!(&row[..4], ["web-1", "1/2", "Running", "3"]);
        assert_eq!(&row[5..], ["10.0.0.1", "n1", "<none>", "<none>"]);
    }
}
