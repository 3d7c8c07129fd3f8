//! The probes of one container attempt: their tasks, and their verdicts as the pod's worker
//! reads them. Dropping it stops the tasks (a restarted container gets fresh probes).

use std::sync::Arc;
use std::time::Duration;

use skiff_api::k8s_openapi::api::core::v1::{Container, Probe};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::run::{Prober, Reports};
use super::{Action, ProbeKind, Settings, Target, Verdict};

/// Told each failed attempt of a probe, with the kubelet's wording of why.
pub type EventSink = Arc<dyn Fn(ProbeKind, &str) + Send + Sync>;

/// One probe's verdict and settings.
struct Handle {
    verdict: watch::Receiver<Verdict>,
    settings: Settings,
}

/// The running probes of one container attempt.
pub struct ContainerProbes {
    container_id: String,
    startup: Option<Handle>,
    liveness: Option<Handle>,
    readiness: Option<Handle>,
    /// The worker acted on a failed liveness or startup probe.
    pub killed: bool,
    _tasks: JoinSet<()>,
}

impl ContainerProbes {
    /// Starts the probes `spec` declares for its running container `target` (started now);
    /// `None` when it declares none.
    pub fn start(spec: &Container, target: Target, reports: Reports) -> Option<Self> {
        let declared = [
            spec.startup_probe.as_ref(),
            spec.liveness_probe.as_ref(),
            spec.readiness_probe.as_ref(),
        ];
        if declared.iter().all(Option::is_none) {
            return None;
        }
        let begin = Instant::now();
        let mut tasks = JoinSet::new();
        let mut spawn =
            |kind: ProbeKind, probe: Option<&Probe>, gate: Option<watch::Receiver<Verdict>>| {
                let probe = probe?;
                let settings = Settings::of(probe);
                let action = Action::resolve(probe, spec, &target.pod_ip, settings.timeout);
                let (tx, rx) = watch::channel(Verdict::Unknown);
                let prober = Prober {
                    kind,
                    settings,
                    action,
                    target: target.clone(),
                };
                tasks.spawn(prober.run(begin, gate, tx, reports.clone()));
                Some(Handle {
                    verdict: rx,
                    settings,
                })
            };
        let startup = spawn(ProbeKind::Startup, spec.startup_probe.as_ref(), None);
        let gate = || startup.as_ref().map(|h| h.verdict.clone());
        let liveness = spawn(ProbeKind::Liveness, spec.liveness_probe.as_ref(), gate());
        let readiness = spawn(ProbeKind::Readiness, spec.readiness_probe.as_ref(), gate());
        Some(ContainerProbes {
            container_id: target.container_id,
            startup,
            liveness,
            readiness,
            killed: false,
            _tasks: tasks,
        })
    }

    /// The runtime's id of the container these probe.
    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    /// Whether the startup probe succeeded (or there is none).
    pub fn started(&self) -> bool {
        passed(self.startup.as_ref())
    }

    /// Whether the container is ready: started, and its readiness probe succeeded (or there
    /// is none).
    pub fn ready(&self) -> bool {
        self.started() && passed(self.readiness.as_ref())
    }

    /// The probe whose failure means the container must be killed (startup, else liveness),
    /// and the grace that probe sets for the kill.
    pub fn failed(&self) -> Option<(ProbeKind, Option<Duration>)> {
        [
            (ProbeKind::Startup, self.startup.as_ref()),
            (ProbeKind::Liveness, self.liveness.as_ref()),
        ]
        .into_iter()
        .find_map(|(kind, handle)| {
            let handle = handle?;
            matches!(*handle.verdict.borrow(), Verdict::Failure(_))
                .then_some((kind, handle.settings.termination_grace))
        })
    }
}

fn passed(handle: Option<&Handle>) -> bool {
    handle.is_none_or(|h| *h.verdict.borrow() == Verdict::Success)
}
