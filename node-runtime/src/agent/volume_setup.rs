//! The worker's side of pod volumes: set up once before the sandbox (the containers wait in
//! `ContainerCreating` with a `FailedMount` event while a source is missing, and it is
//! retried), projected files rewritten when a source or the pod's metadata changes, and the
//! pod evicted when a disk emptyDir outgrows its `sizeLimit`.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::reasons::Failure;
use super::volumes::{self, Inputs};
use super::worker::Worker;

/// Projected files are rewritten at least this often, in case a source event was missed
/// (the kubelet's sync period).
const VOLUME_RESYNC: Duration = Duration::from_secs(60);

/// How often disk emptyDirs with a `sizeLimit` are measured (the kubelet's housekeeping).
const USAGE_CHECK: Duration = Duration::from_secs(10);

/// What the projected files were last written from.
#[derive(Debug, Default)]
pub struct VolumeState {
    /// A source changed since.
    pub stale: bool,
    /// The pod's labels and annotations they were written with.
    meta: Option<(BTreeMap<String, String>, BTreeMap<String, String>)>,
    resync_at: Option<Instant>,
    /// When the disk emptyDirs with a limit are measured next.
    usage_at: Option<Instant>,
}

impl Worker {
    fn volume_inputs(&self) -> Inputs<'_> {
        Inputs {
            client: &self.ctx.client,
            pods_dir: &self.ctx.pods_dir,
            allocatable: self.ctx.admission.allocatable(),
            tokens: &self.ctx.tokens,
        }
    }

    fn pod_meta(&self) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let meta = &self.pod.metadata;
        (
            meta.labels.clone().unwrap_or_default(),
            meta.annotations.clone().unwrap_or_default(),
        )
    }

    /// Sets up the pod's volumes, once; false while it cannot.
    pub(super) async fn ensure_volumes(&mut self, now: Instant) -> bool {
        if self.volumes.is_some() {
            return true;
        }
        if self.waiting_to_retry(now) {
            return false;
        }
        if volumes::projects_files(&self.pod) {
            self.ctx.source_changes.watch_pod(&self.pod);
        }
        match volumes::prepare(&self.volume_inputs(), &self.pod).await {
            Ok(prepared) => {
                self.volumes = Some(prepared);
                self.volume_state.meta = Some(self.pod_meta());
                self.volume_state.resync_at = Some(now + VOLUME_RESYNC);
                true
            }
            Err(err) => {
                let message = format!("MountVolume.SetUp failed: {err}");
                self.all_fail_with_event("FailedMount", Failure::Sandbox, message, now);
                false
            }
        }
    }

    /// Rewrites the projected files if a source changed, the pod's labels or annotations
    /// changed, or the resync period passed.
    pub(super) async fn refresh_volumes(&mut self, now: Instant) {
        if self.volumes.is_none() || !volumes::projects_files(&self.pod) {
            return;
        }
        let meta = self.pod_meta();
        let state = &self.volume_state;
        let due = state.stale
            || state.meta.as_ref() != Some(&meta)
            || state.resync_at.is_some_and(|at| at <= now);
        if !due {
            return;
        }
        self.volume_state.stale = false;
        self.volume_state.resync_at = Some(now + VOLUME_RESYNC);
        match volumes::refresh(&self.volume_inputs(), &self.pod).await {
            Ok(changed) => {
                self.volume_state.meta = Some(meta);
                if changed {
                    tracing::debug!(pod = %self.name, "projected volume files updated");
                }
            }
            Err(err) => {
                tracing::warn!(pod = %self.name, %err, "updating projected volumes failed");
            }
        }
    }

    /// Evicts the pod if a disk emptyDir holds more than its `sizeLimit` (measured every
    /// `USAGE_CHECK`); true if it did.
    pub(super) async fn check_volume_usage(&mut self, now: Instant) -> bool {
        let limited = volumes::limited(&self.pod, &self.ctx.pods_dir);
        if limited.is_empty() || self.volumes.is_none() {
            return false;
        }
        if self.volume_state.usage_at.is_some_and(|at| at > now) {
            return false;
        }
        self.volume_state.usage_at = Some(now + USAGE_CHECK);
        let over = tokio::task::spawn_blocking(move || volumes::over_limit(&limited))
            .await
            .ok()
            .flatten();
        match over {
            Some(message) => {
                self.evict(message).await;
                true
            }
            None => false,
        }
    }

    /// When the volumes are next looked at without an event (resync or usage check).
    pub(super) fn volume_resync_at(&self) -> Option<Instant> {
        let resync = self
            .volume_state
            .resync_at
            .filter(|_| self.volumes.is_some() && volumes::projects_files(&self.pod));
        let usage = self
            .volume_state
            .usage_at
            .filter(|_| self.volumes.is_some());
        resync.into_iter().chain(usage).min()
    }
}
