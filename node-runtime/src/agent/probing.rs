//! The pod worker's side of health probes: it starts a running container's probes (afresh
//! for each new attempt), drops them when the container stops, and kills a container whose
//! liveness or startup probe failed, with the kubelet's events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::lifecycle;
use super::probes::{ContainerProbes, ProbeKind, Reports, Target};
use super::worker::Worker;
use crate::runtime::ContainerState;

/// The same probe failure is recorded as an `Unhealthy` event at most this often (the
/// kubelet's event correlator folds repeats into one event's count; Skiff's events have none).
const UNHEALTHY_REPEAT: Duration = Duration::from_secs(60);

impl Worker {
    /// Keeps each container's probes in step with its attempt, and kills a container whose
    /// liveness or startup probe failed (its restart is then the lifecycle's, by policy).
    pub(super) async fn probe(&mut self, now: Instant) {
        let Some(runtime) = self.runtime.clone() else {
            return;
        };
        for i in 0..self.records.len() {
            let r = &self.records[i];
            let running = match (&r.id, &r.state) {
                (Some(id), Some(ContainerState::Running { .. })) => Some(id.clone()),
                _ => None,
            };
            let Some(id) = running else {
                self.records[i].probes = None;
                continue;
            };
            if r.probes.as_ref().map(ContainerProbes::container_id) != Some(id.as_str()) {
                let target = Target {
                    pod_ip: self
                        .pod_ip
                        .clone()
                        .unwrap_or_else(|| self.ctx.host_ip.clone()),
                    runtime: runtime.clone(),
                    container_id: id.clone(),
                };
                let reports = self.probe_reports();
                let r = &mut self.records[i];
                r.probes = ContainerProbes::start(&r.spec, target, reports);
            }
            let failed = self.records[i]
                .probes
                .as_ref()
                .filter(|p| !p.killed)
                .and_then(ContainerProbes::failed);
            if let Some((kind, grace)) = failed {
                self.kill_unhealthy(i, &id, kind, grace, now).await;
            }
        }
    }

    /// Stops record `i`'s container `id` after its `kind` probe failed, within the probe's
    /// grace or else the pod's.
    async fn kill_unhealthy(
        &mut self,
        i: usize,
        id: &str,
        kind: ProbeKind,
        grace: Option<Duration>,
        now: Instant,
    ) {
        let Some(runtime) = self.runtime.clone() else {
            return;
        };
        let restarts = self.records[i].role.policy(self.policy()).restarts_any();
        let r = &mut self.records[i];
        if let Some(probes) = r.probes.as_mut() {
            probes.killed = true;
        }
        let suffix = if restarts { ", will be restarted" } else { "" };
        self.ctx.events.normal(
            &self.pod,
            "Killing",
            format!(
                "Container {} failed {} probe{suffix}",
                r.spec.name,
                kind.lower()
            ),
        );
        let pod_grace = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds);
        let grace = grace.unwrap_or_else(|| lifecycle::termination_grace(None, pod_grace));
        if let Err(err) = runtime.stop_container(&id.to_string(), grace).await {
            tracing::warn!(pod = %self.name, %err, "stopping an unhealthy container failed");
        }
        self.observe(i, now).await;
    }

    /// Where this pod's probes report: `Unhealthy` events for failed attempts (a repeat of
    /// the same failure at most every `UNHEALTHY_REPEAT`), and a wake-up of this worker.
    fn probe_reports(&self) -> Reports {
        let events = self.ctx.events.clone();
        let pod = self.pod.clone();
        let last: Mutex<HashMap<ProbeKind, (String, Instant)>> = Mutex::default();
        Reports {
            wake: self.probe_wake.clone(),
            events: Arc::new(move |kind, why| {
                let now = Instant::now();
                let mut last = last.lock().expect("probe events lock");
                let repeat = last
                    .get(&kind)
                    .is_some_and(|(said, at)| said == why && now < *at + UNHEALTHY_REPEAT);
                if repeat {
                    return;
                }
                last.insert(kind, (why.to_string(), now));
                events.warning(
                    &pod,
                    "Unhealthy",
                    format!("{} probe failed: {why}", kind.title()),
                );
            }),
        }
    }
}
