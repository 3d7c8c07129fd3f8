//! Deriving a pod's API status from what its worker knows.

use std::time::SystemTime;

use serde_json::{json, Value};

use super::lifecycle::{self, Observed, RestartPolicy};
use crate::runtime::ContainerState;

/// What the worker knows about one container, for status.
#[derive(Debug, Clone, Default)]
pub struct ContainerReport {
    pub name: String,
    pub image: String,
    pub image_id: Option<String>,
    /// `<runtime>://<id>` of the current attempt.
    pub container_id: Option<String>,
    pub restart_count: u32,
    /// The runtime state of the current attempt (`None`: not created).
    pub state: Option<ContainerState>,
    /// Why it is not running, when it is waiting.
    pub waiting: Option<(String, String)>,
    /// The previous attempt's end (`lastState.terminated`).
    pub last_terminated: Option<Value>,
}

pub fn observed(state: Option<&ContainerState>) -> Observed {
    match state {
        None | Some(ContainerState::Unknown) => Observed::Absent,
        Some(ContainerState::Created) => Observed::Created,
        Some(ContainerState::Running { .. }) => Observed::Running,
        Some(ContainerState::Exited { exit_code, .. }) => Observed::Exited {
            exit_code: *exit_code,
        },
    }
}

fn time(t: SystemTime) -> String {
    let seconds = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// `state.terminated` of an exited container (`container_id` as `<runtime>://<id>`).
pub fn terminated(state: &ContainerState, container_id: Option<&str>) -> Option<Value> {
    match state {
        ContainerState::Exited {
            started_at,
            finished_at,
            exit_code,
            reason,
            message,
        } => Some(json!({
            "exitCode": exit_code,
            "reason": reason,
            "message": if message.is_empty() { Value::Null } else { json!(message) },
            "startedAt": time(*started_at),
            "finishedAt": time(*finished_at),
            "containerID": container_id,
        })),
        _ => None,
    }
}

fn container_status(report: &ContainerReport) -> Value {
    let state = match (&report.waiting, &report.state) {
        (Some((reason, message)), _) => json!({"waiting": {"reason": reason, "message": message}}),
        (None, Some(ContainerState::Running { started_at })) => {
            json!({"running": {"startedAt": time(*started_at)}})
        }
        (None, Some(exited @ ContainerState::Exited { .. })) => {
            json!({"terminated": terminated(exited, report.container_id.as_deref())})
        }
        (None, _) => json!({"waiting": {"reason": "ContainerCreating"}}),
    };
    let running =
        matches!(report.state, Some(ContainerState::Running { .. })) && report.waiting.is_none();
    json!({
        "name": report.name,
        "image": report.image,
        "imageID": report.image_id.clone().unwrap_or_default(),
        "containerID": report.container_id,
        "ready": running,
        "started": running,
        "restartCount": report.restart_count,
        "state": state,
        "lastState": report.last_terminated.as_ref().map(|t| json!({"terminated": t})).unwrap_or_else(|| json!({})),
    })
}

fn condition(kind: &str, ok: bool, previous: Option<&Value>, now: &str) -> Value {
    let status = if ok { "True" } else { "False" };
    let since = previous
        .and_then(|conditions| conditions.as_array())
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .filter(|c| c["status"] == status)
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now));
    json!({"type": kind, "status": status, "lastTransitionTime": since})
}

/// Where the pod is reachable: its node's IP and its own (the node's when it shares it).
#[derive(Debug, Clone, Copy)]
pub struct Addresses<'a> {
    pub host_ip: &'a str,
    pub pod_ip: &'a str,
}

/// The pod status to publish; `previous` is the status in the API (for transition times).
pub fn pod_status(
    policy: RestartPolicy,
    reports: &[ContainerReport],
    addresses: Addresses<'_>,
    start_time: &str,
    previous: Option<&Value>,
    now: &str,
) -> Value {
    let observed: Vec<Observed> = reports.iter().map(|r| observed(r.state.as_ref())).collect();
    let ever_started = reports.iter().any(|r| r.container_id.is_some());
    let phase = lifecycle::phase(policy, &observed, ever_started);
    let ready = !reports.is_empty()
        && reports.iter().all(|r| {
            matches!(r.state, Some(ContainerState::Running { .. })) && r.waiting.is_none()
        });
    let old_conditions = previous.and_then(|p| p.get("conditions"));
    json!({
        "phase": phase,
        "conditions": [
            condition("PodScheduled", true, old_conditions, now),
            condition("Initialized", true, old_conditions, now),
            condition("ContainersReady", ready, old_conditions, now),
            condition("Ready", ready, old_conditions, now),
        ],
        "hostIP": addresses.host_ip,
        "hostIPs": [{"ip": addresses.host_ip}],
        "podIP": addresses.pod_ip,
        "podIPs": [{"ip": addresses.pod_ip}],
        "startTime": start_time,
        "containerStatuses": reports.iter().map(container_status).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Addresses<'static> = Addresses {
        host_ip: "h",
        pod_ip: "h",
    };

    fn report(state: Option<ContainerState>, waiting: Option<(&str, &str)>) -> ContainerReport {
        ContainerReport {
            name: "c".into(),
            image: "file:/x.wasm".into(),
            container_id: state.as_ref().map(|_| "wasm://id1".to_string()),
            state,
            waiting: waiting.map(|(r, m)| (r.to_string(), m.to_string())),
            ..Default::default()
        }
    }

    #[test]
    fn running_pod_is_ready() {
        let running = report(
            Some(ContainerState::Running {
                started_at: SystemTime::now(),
            }),
            None,
        );
        let addresses = Addresses {
            host_ip: "127.0.0.1",
            pod_ip: "10.0.0.7",
        };
        let status = pod_status(
            RestartPolicy::Always,
            &[running],
            addresses,
            "t",
            None,
            "now",
        );
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["conditions"][3]["status"], "True");
        assert_eq!(status["containerStatuses"][0]["ready"], true);
        assert!(status["containerStatuses"][0]["state"]["running"]["startedAt"].is_string());
        assert_eq!(status["containerStatuses"][0]["containerID"], "wasm://id1");
        assert_eq!(status["hostIP"], "127.0.0.1");
        assert_eq!(status["podIP"], "10.0.0.7");
    }

    #[test]
    fn crash_loop_shows_waiting_reason_and_last_state() {
        let exited = ContainerState::Exited {
            started_at: SystemTime::now(),
            finished_at: SystemTime::now(),
            exit_code: 3,
            reason: "Error".into(),
            message: String::new(),
        };
        let mut r = report(
            Some(exited.clone()),
            Some(("CrashLoopBackOff", "back-off 10s")),
        );
        r.restart_count = 2;
        r.last_terminated = terminated(&exited, Some("wasm://id0"));
        let status = pod_status(RestartPolicy::Always, &[r], HOST, "t", None, "now");
        let container = &status["containerStatuses"][0];
        assert_eq!(status["phase"], "Running");
        assert_eq!(container["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(container["lastState"]["terminated"]["exitCode"], 3);
        assert_eq!(
            container["lastState"]["terminated"]["containerID"],
            "wasm://id0"
        );
        assert_eq!(container["restartCount"], 2);
        assert_eq!(status["conditions"][3]["status"], "False");
    }

    #[test]
    fn transition_times_survive_unchanged_conditions() {
        let running = report(
            Some(ContainerState::Running {
                started_at: SystemTime::now(),
            }),
            None,
        );
        let first = pod_status(
            RestartPolicy::Always,
            std::slice::from_ref(&running),
            HOST,
            "t",
            None,
            "t1",
        );
        let second = pod_status(
            RestartPolicy::Always,
            &[running],
            HOST,
            "t",
            Some(&first),
            "t2",
        );
        assert_eq!(second["conditions"][3]["lastTransitionTime"], "t1");
        assert_eq!(
            first, second,
            "an unchanged pod yields an identical status (no write)"
        );
    }
}
