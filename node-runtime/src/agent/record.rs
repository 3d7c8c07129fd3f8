//! What a pod worker keeps about one container across its attempts.

use std::path::PathBuf;

use skiff_api::k8s_openapi::api::core::v1::{
    Container, ContainerStateTerminated, ContainerStatus as ApiContainerStatus,
};
use tokio::time::Instant;

use super::lifecycle::{ContainerView, Role};
use super::probes::ContainerProbes;
use super::reasons::Failure;
use super::status;
use crate::runtime::{ContainerState, ImageRef};
use skiff_api::backoff::Backoff;

/// One container's worker-side record.
pub struct Record {
    pub spec: Container,
    pub role: Role,
    /// The runtime's id of the current attempt's container.
    pub id: Option<String>,
    pub restart_count: u32,
    /// The API shows an earlier attempt (from before an agent restart): the next start is a restart.
    pub started_before: bool,
    pub image: Option<ImageRef>,
    /// Pulled to choose the runtime, for the start that follows.
    pub pulled: Option<ImageRef>,
    pub state: Option<ContainerState>,
    pub log_path: Option<PathBuf>,
    pub previous_log: Option<PathBuf>,
    pub waiting: Option<(String, String)>,
    pub last_terminated: Option<ContainerStateTerminated>,
    pub seen_exit: bool,
    pub crashes: u32,
    pub backoff_until: Option<Instant>,
    pub retry_at: Option<Instant>,
    pub pull_failures: u32,
    /// The probes of the running attempt, if it declares any.
    pub probes: Option<ContainerProbes>,
}

impl Record {
    /// A record for `spec` in `role`, continuing the restart count the API shows (`previous`).
    /// An init container the API shows completed stays completed: it does not run again.
    pub fn new(spec: &Container, role: Role, previous: Option<&ApiContainerStatus>) -> Self {
        let started_before = previous.is_some_and(|s| {
            s.state
                .as_ref()
                .is_some_and(|st| st.running.is_some() || st.terminated.is_some())
        });
        let completed = (role == Role::Init)
            .then(|| previous?.state.as_ref()?.terminated.as_ref())
            .flatten()
            .filter(|t| t.exit_code == 0);
        Record {
            spec: spec.clone(),
            role,
            id: None,
            restart_count: previous.map(|s| s.restart_count.max(0) as u32).unwrap_or(0),
            started_before,
            image: None,
            pulled: None,
            state: completed.map(status::exited),
            log_path: None,
            previous_log: None,
            waiting: None,
            last_terminated: None,
            seen_exit: completed.is_some(),
            crashes: 0,
            backoff_until: None,
            retry_at: None,
            pull_failures: 0,
            probes: None,
        }
    }

    /// The lifecycle's view of it.
    pub fn view(&self) -> ContainerView {
        ContainerView {
            role: self.role,
            observed: status::observed(self.state.as_ref()),
            backoff_until: self.backoff_until,
            retry_at: self.retry_at,
            started: self.probes.as_ref().is_none_or(ContainerProbes::started),
        }
    }

    /// Waits with the failure's reason and tries again when it says.
    pub fn fail(&mut self, failure: Failure, message: String, backoff: &Backoff, now: Instant) {
        self.waiting = Some((failure.reason().into(), message));
        self.retry_at = Some(now + failure.retry_after(backoff));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::lifecycle::Observed;

    /// After an agent restart, an init container the API shows completed is not run again;
    /// one that failed, and app containers, are.
    #[test]
    fn completed_init_containers_stay_completed_across_agent_restarts() {
        let spec: Container =
            serde_json::from_value(serde_json::json!({"name": "c"})).expect("spec");
        let status = |exit_code: i32| -> ApiContainerStatus {
            serde_json::from_value(serde_json::json!({
                "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": exit_code, "finishedAt": "2026-01-01T00:00:01Z"}}
            }))
            .expect("status")
        };
        let done = Record::new(&spec, Role::Init, Some(&status(0)));
        assert_eq!(done.view().observed, Observed::Exited { exit_code: 0 });
        assert!(done.seen_exit, "no crash is counted for it");
        let failed = Record::new(&spec, Role::Init, Some(&status(1)));
        assert_eq!(failed.view().observed, Observed::Absent);
        let app = Record::new(&spec, Role::App, Some(&status(0)));
        assert_eq!(app.view().observed, Observed::Absent);
    }
}
