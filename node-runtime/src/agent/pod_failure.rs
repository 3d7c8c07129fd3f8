//! A pod failing for good on this node, as the kubelet fails it: rejected at admission
//! (`OutOfpods`, `OutOfcpu`, `OutOfmemory`) or evicted (`Evicted`). Its phase becomes `Failed`
//! with that reason and message, and it no longer counts on the node.

use std::time::Duration;

use super::worker::Worker;
use crate::runtime::ContainerState;

impl Worker {
    /// Admits the pod to the node, or fails it with the kubelet's reason when it does not fit.
    /// A pod already running here (re-attached after an agent restart, or Running in the API)
    /// was admitted before and is admitted again.
    pub(super) fn admit(&mut self) {
        let running = self.sandbox.is_some()
            || self.pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        match self.ctx.admission.admit(&self.uid, &self.pod, running) {
            Ok(admitted) => self.admitted = Some(admitted),
            Err(rejection) => {
                tracing::info!(pod = %self.name, reason = rejection.reason, "pod rejected");
                self.fail(rejection.reason, rejection.message);
            }
        }
    }

    /// Evicts the pod: its containers are killed at once (a hard eviction has no grace).
    pub(super) async fn evict(&mut self, message: String) {
        tracing::warn!(pod = %self.name, %message, "evicting pod");
        if let Some(runtime) = self.runtime.clone() {
            for r in &self.records {
                let Some(id) = r.id.as_ref() else {
                    continue;
                };
                if matches!(r.state, Some(ContainerState::Running { .. })) {
                    if let Err(err) = runtime.stop_container(id, Duration::ZERO).await {
                        tracing::warn!(pod = %self.name, %err, "stopping an evicted container failed");
                    }
                }
            }
        }
        let now = tokio::time::Instant::now();
        for i in 0..self.records.len() {
            self.observe(i, now).await;
        }
        self.fail("Evicted", message);
    }

    /// The pod fails for good with `reason`: an Event now, the status at the next publish.
    /// Its probes stop.
    fn fail(&mut self, reason: &str, message: String) {
        self.ctx.events.warning(&self.pod, reason, message.clone());
        for r in &mut self.records {
            r.probes = None;
        }
        self.failure = Some((reason.to_string(), message));
        self.release();
    }

    /// The pod no longer counts on the node.
    pub(super) fn release(&mut self) {
        if self.admitted.take().is_some() {
            self.ctx.admission.release(&self.uid);
        }
    }
}
