//! The node's heartbeats as the kubelet sends them: its Lease in `kube-node-lease` renewed every
//! quarter of the lease's duration (10 s of 40 s by default), and its Node status written when
//! it changed and otherwise every report interval (5 minutes by default, the kubelet's
//! `nodeStatusReportFrequency`). The control plane's node grace (40 s) counts from either.
//! After a gap longer than the lease (the agent paused, or cut off from every server) the
//! control plane may have marked the node `Unknown`, so the next status is written whatever
//! it holds, as the kubelet finds the Node it reads back changed and writes it.

use std::time::Duration;

use skiff_api::k8s_openapi::api::core::v1::NodeStatus;
use skiff_client::Client;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lease;
use super::node::{self, NodeSpec};

/// Pause before renewing again after a failed renewal (the kubelet retries within seconds
/// rather than waiting a whole interval), at most the renew interval.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// How often a node heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeats {
    /// The Lease's `leaseDurationSeconds` (the kubelet's `nodeLeaseDurationSeconds`, 40 s);
    /// the Lease is renewed every quarter of it.
    pub lease_duration: Duration,
    /// The longest time between two Node status writes when nothing changed (the kubelet's
    /// `nodeStatusReportFrequency`, 5 minutes).
    pub status_report: Duration,
}

impl Default for Heartbeats {
    fn default() -> Self {
        Heartbeats {
            lease_duration: Duration::from_secs(40),
            status_report: Duration::from_secs(5 * 60),
        }
    }
}

impl Heartbeats {
    /// How often the Lease is renewed (and the status checked for changes): a quarter of the
    /// lease's duration, as the kubelet does.
    pub fn renew_interval(&self) -> Duration {
        self.lease_duration / 4
    }
}

/// The Node status with its heartbeat times left out: what a change is measured on.
fn fingerprint(status: &NodeStatus) -> String {
    let mut status = status.clone();
    for condition in status.conditions.iter_mut().flatten() {
        condition.last_heartbeat_time = None;
    }
    serde_json::to_string(&status).unwrap_or_default()
}

/// Decides when the Node status is written: when it changed since the last write, or when
/// the report interval has passed since then.
#[derive(Debug)]
struct StatusReports {
    every: Duration,
    /// The last written status (fingerprinted) and when it was written.
    last: Option<(String, Instant)>,
}

impl StatusReports {
    fn new(every: Duration) -> Self {
        StatusReports { every, last: None }
    }

    /// Whether `status` (a fingerprint) is to be written at `now`.
    fn due(&self, status: &str, now: Instant) -> bool {
        match &self.last {
            None => true,
            Some((written, at)) => written != status || now.duration_since(*at) >= self.every,
        }
    }

    /// Records that `status` was written at `now`.
    fn written(&mut self, status: String, now: Instant) {
        self.last = Some((status, now));
    }

    /// Makes the next status due whatever it holds (the stored one may have been changed by
    /// the control plane meanwhile).
    fn forget(&mut self) {
        self.last = None;
    }
}

/// Heartbeats for the node of `spec` until `stop`; its status was just written at registration.
pub(super) fn spawn(client: Client, spec: NodeSpec, every: Heartbeats, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut reports = StatusReports::new(every.status_report);
        reports.written(fingerprint(&node::node_status(&spec)), Instant::now());
        let lease_seconds = i32::try_from(every.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let mut renewed = Instant::now();
        loop {
            let mut pause = every.renew_interval();
            match lease::renew(&client, &spec.name, lease_seconds).await {
                Ok(()) => {
                    let now = Instant::now();
                    if now.duration_since(renewed) > every.lease_duration {
                        tracing::info!(
                            away = ?now.duration_since(renewed),
                            "the node's lease had lapsed: writing its status again"
                        );
                        reports.forget();
                    }
                    renewed = now;
                }
                Err(err) => {
                    tracing::warn!(%err, "node lease renewal failed");
                    pause = pause.min(RETRY_AFTER_FAILURE);
                }
            }
            let status = node::node_status(&spec);
            let print = fingerprint(&status);
            let now = Instant::now();
            if reports.due(&print, now) {
                match node::report(&client, &spec, status).await {
                    Ok(()) => reports.written(print, now),
                    Err(err) => tracing::warn!(%err, "node status report failed"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.cancelled() => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::k8s_openapi::api::core::v1::NodeCondition;
    use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn status(ready: &str, beat_second: i64) -> NodeStatus {
        NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: ready.into(),
                last_heartbeat_time: Some(Time(
                    jiff::Timestamp::from_second(beat_second).expect("a time"),
                )),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn the_lease_is_renewed_every_quarter_of_its_duration() {
        let every = Heartbeats::default();
        assert_eq!(every.renew_interval(), Duration::from_secs(10));
        assert_eq!(every.status_report, Duration::from_secs(300));
        let short = Heartbeats {
            lease_duration: Duration::from_secs(4),
            ..every
        };
        assert_eq!(short.renew_interval(), Duration::from_secs(1));
    }

    #[test]
    fn a_heartbeat_time_alone_is_no_change() {
        assert_eq!(
            fingerprint(&status("True", 10)),
            fingerprint(&status("True", 20))
        );
        assert_ne!(
            fingerprint(&status("True", 10)),
            fingerprint(&status("False", 10))
        );
    }

    #[test]
    fn status_is_written_on_change_or_when_the_report_interval_passed() {
        let start = Instant::now();
        let every = Duration::from_secs(300);
        let mut reports = StatusReports::new(every);
        let ready = fingerprint(&status("True", 0));
        assert!(reports.due(&ready, start), "nothing written yet");
        reports.written(ready.clone(), start);

        let later = |secs| start + Duration::from_secs(secs);
        assert!(!reports.due(&ready, later(10)), "unchanged, 10 s after");
        assert!(!reports.due(&ready, later(299)), "unchanged, within 5 min");
        let pressure = fingerprint(&status("False", 20));
        assert!(reports.due(&pressure, later(20)), "changed");
        assert!(
            reports.due(&ready, later(300)),
            "the report interval passed"
        );

        reports.written(ready.clone(), later(300));
        assert!(!reports.due(&ready, later(310)), "the interval restarts");
        assert!(reports.due(&ready, later(600)));

        reports.written(ready.clone(), later(600));
        reports.forget();
        assert!(
            reports.due(&ready, later(601)),
            "after a lapse, unchanged is due"
        );
    }
}
