//! Deriving a pod's API status (the typed `PodStatus`) from what its worker knows.

use std::time::SystemTime;

use jiff::Timestamp;
use skiff_api::k8s_openapi::api::core::v1::{
    ContainerState as ApiContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus as ApiContainerStatus, HostIP, PodCondition, PodIP,
    PodStatus,
};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::lifecycle::{self, Observed, RestartPolicy, Role};
use crate::runtime::ContainerState;

/// What the worker knows about one container, for status.
#[derive(Debug, Clone, Default)]
pub struct ContainerReport {
    pub name: String,
    pub role: Role,
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
    pub last_terminated: Option<ContainerStateTerminated>,
    /// What its probes say of the current attempt.
    pub probed: Probed,
}

/// What a container's probes say (both true for a container without probes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probed {
    /// The startup probe succeeded.
    pub started: bool,
    /// Started, and the readiness probe succeeded.
    pub ready: bool,
}

impl Default for Probed {
    fn default() -> Self {
        Probed {
            started: true,
            ready: true,
        }
    }
}

impl ContainerReport {
    /// Running, and ready by its probes.
    fn ready(&self) -> bool {
        matches!(self.state, Some(ContainerState::Running { .. }))
            && self.waiting.is_none()
            && self.probed.ready
    }
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

/// The runtime state of a container the API shows terminated (an init container that
/// completed before an agent restart).
pub fn exited(terminated: &ContainerStateTerminated) -> ContainerState {
    let at = |t: Option<&Time>| t.map_or(SystemTime::UNIX_EPOCH, |t| SystemTime::from(t.0));
    ContainerState::Exited {
        started_at: at(terminated.started_at.as_ref()),
        finished_at: at(terminated.finished_at.as_ref()),
        exit_code: terminated.exit_code,
        reason: terminated.reason.clone().unwrap_or_default(),
        message: terminated.message.clone().unwrap_or_default(),
    }
}

/// A time as the API keeps it: whole seconds.
fn time(t: SystemTime) -> Time {
    let seconds = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Time(Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// Now, in whole seconds.
pub fn now() -> Time {
    time(SystemTime::now())
}

/// `state.terminated` of an exited container (`container_id` as `<runtime>://<id>`).
pub fn terminated(
    state: &ContainerState,
    container_id: Option<&str>,
) -> Option<ContainerStateTerminated> {
    match state {
        ContainerState::Exited {
            started_at,
            finished_at,
            exit_code,
            reason,
            message,
        } => Some(ContainerStateTerminated {
            exit_code: *exit_code,
            reason: Some(reason.clone()),
            message: (!message.is_empty()).then(|| message.clone()),
            started_at: Some(time(*started_at)),
            finished_at: Some(time(*finished_at)),
            container_id: container_id.map(str::to_string),
            signal: None,
        }),
        _ => None,
    }
}

/// The API status of one container; `initialized`: whether the pod's init containers are
/// done (before, a container not yet made waits with `PodInitializing`).
fn container_status(report: &ContainerReport, initialized: bool) -> ApiContainerStatus {
    let waiting = |reason: &str, message: Option<&str>| ApiContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message: message.map(str::to_string),
        }),
        ..Default::default()
    };
    let state = match (&report.waiting, &report.state) {
        (Some((reason, message)), _) => waiting(reason, Some(message)),
        (None, Some(ContainerState::Running { started_at })) => ApiContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(time(*started_at)),
            }),
            ..Default::default()
        },
        (None, Some(exited @ ContainerState::Exited { .. })) => ApiContainerState {
            terminated: terminated(exited, report.container_id.as_deref()),
            ..Default::default()
        },
        (None, _) if initialized || report.container_id.is_some() => {
            waiting("ContainerCreating", None)
        }
        (None, _) => waiting("PodInitializing", None),
    };
    let running =
        matches!(report.state, Some(ContainerState::Running { .. })) && report.waiting.is_none();
    let completed = report.role == Role::Init
        && matches!(
            report.state,
            Some(ContainerState::Exited { exit_code: 0, .. })
        );
    ApiContainerStatus {
        name: report.name.clone(),
        image: report.image.clone(),
        image_id: report.image_id.clone().unwrap_or_default(),
        container_id: report.container_id.clone(),
        ready: report.ready() || completed,
        started: Some(running && report.probed.started),
        restart_count: report.restart_count as i32,
        state: Some(state),
        last_state: Some(ApiContainerState {
            terminated: report.last_terminated.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn condition(kind: &str, ok: bool, previous: &[PodCondition], now: &Time) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let since = previous
        .iter()
        .find(|c| c.type_ == kind && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    PodCondition {
        type_: kind.to_string(),
        status: status.to_string(),
        last_transition_time: Some(since),
        ..Default::default()
    }
}

/// A readiness condition that is false, with Kubernetes' reason and the containers that are
/// not ready.
fn not_ready_because(mut condition: PodCondition, unready: &[&str]) -> PodCondition {
    if condition.status == "False" && !unready.is_empty() {
        condition.reason = Some("ContainersNotReady".into());
        condition.message = Some(format!(
            "containers with unready status: [{}]",
            unready.join(" ")
        ));
    }
    condition
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
    start_time: &Time,
    previous: Option<&PodStatus>,
    now: &Time,
) -> PodStatus {
    let observed: Vec<(Role, Observed)> = reports
        .iter()
        .map(|r| (r.role, observed(r.state.as_ref())))
        .collect();
    let ever_started = reports
        .iter()
        .any(|r| r.role == Role::App && r.container_id.is_some());
    let phase = lifecycle::phase(policy, &observed, ever_started);
    let initialized = lifecycle::initialized(&observed);
    let unready: Vec<&str> = reports
        .iter()
        .filter(|r| r.role != Role::Init && !r.ready())
        .map(|r| r.name.as_str())
        .collect();
    let ready = reports.iter().any(|r| r.role == Role::App) && unready.is_empty();
    let (init, apps): (Vec<&ContainerReport>, Vec<&ContainerReport>) =
        reports.iter().partition(|r| r.role != Role::App);
    let statuses = |reports: Vec<&ContainerReport>| -> Vec<ApiContainerStatus> {
        reports
            .into_iter()
            .map(|r| container_status(r, initialized))
            .collect()
    };
    let old = previous
        .and_then(|p| p.conditions.as_deref())
        .unwrap_or_default();
    PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(vec![
            condition("PodScheduled", true, old, now),
            condition("Initialized", initialized, old, now),
            not_ready_because(condition("ContainersReady", ready, old, now), &unready),
            not_ready_because(condition("Ready", ready, old, now), &unready),
        ]),
        host_ip: Some(addresses.host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: addresses.host_ip.to_string(),
        }]),
        pod_ip: Some(addresses.pod_ip.to_string()),
        pod_ips: Some(vec![PodIP {
            ip: addresses.pod_ip.to_string(),
        }]),
        start_time: Some(start_time.clone()),
        init_container_statuses: (!init.is_empty()).then(|| statuses(init)),
        container_statuses: Some(statuses(apps)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const HOST: Addresses<'static> = Addresses {
        host_ip: "h",
        pod_ip: "h",
    };

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).expect("time"))
    }

    fn json(status: PodStatus) -> Value {
        serde_json::to_value(status).expect("serializes")
    }

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
        let status = json(pod_status(
            RestartPolicy::Always,
            &[running],
            addresses,
            &at(1),
            None,
            &at(2),
        ));
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["conditions"][3]["status"], "True");
        assert_eq!(status["containerStatuses"][0]["ready"], true);
        assert!(status["containerStatuses"][0]["state"]["running"]["startedAt"].is_string());
        assert_eq!(status["containerStatuses"][0]["containerID"], "wasm://id1");
        assert_eq!(status["hostIP"], "127.0.0.1");
        assert_eq!(status["podIP"], "10.0.0.7");
        assert_eq!(status["startTime"], "1970-01-01T00:00:01Z");
    }

    #[test]
    fn a_running_container_is_ready_only_as_its_probes_say() {
        let mut r = report(
            Some(ContainerState::Running {
                started_at: SystemTime::now(),
            }),
            None,
        );
        r.probed = Probed {
            started: false,
            ready: false,
        };
        let status = json(pod_status(
            RestartPolicy::Always,
            std::slice::from_ref(&r),
            HOST,
            &at(1),
            None,
            &at(2),
        ));
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["containerStatuses"][0]["ready"], false);
        assert_eq!(status["containerStatuses"][0]["started"], false);
        for condition in [2, 3] {
            let c = &status["conditions"][condition];
            assert_eq!(c["status"], "False");
            assert_eq!(c["reason"], "ContainersNotReady");
            assert_eq!(c["message"], "containers with unready status: [c]");
        }
        r.probed.started = true;
        let status = json(pod_status(
            RestartPolicy::Always,
            std::slice::from_ref(&r),
            HOST,
            &at(1),
            None,
            &at(2),
        ));
        assert_eq!(status["containerStatuses"][0]["started"], true);
        assert_eq!(status["containerStatuses"][0]["ready"], false);
        r.probed.ready = true;
        let status = json(pod_status(
            RestartPolicy::Always,
            &[r],
            HOST,
            &at(1),
            None,
            &at(2),
        ));
        assert_eq!(status["containerStatuses"][0]["ready"], true);
        assert_eq!(status["conditions"][3]["status"], "True");
        assert!(status["conditions"][3]["reason"].is_null());
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
        let status = json(pod_status(
            RestartPolicy::Always,
            &[r],
            HOST,
            &at(1),
            None,
            &at(2),
        ));
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
            &at(1),
            None,
            &at(10),
        );
        // What the API gives back is what the worker compares with.
        let stored: PodStatus = serde_json::from_value(json(first.clone())).expect("round trip");
        let second = pod_status(
            RestartPolicy::Always,
            &[running],
            HOST,
            &at(1),
            Some(&stored),
            &at(20),
        );
        assert_eq!(
            json(second.clone())["conditions"][3]["lastTransitionTime"],
            "1970-01-01T00:00:10Z"
        );
        assert_eq!(
            stored, second,
            "an unchanged pod yields an identical status (no write)"
        );
    }
}
