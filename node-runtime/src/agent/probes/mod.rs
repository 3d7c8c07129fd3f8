//! Container health probes, as the kubelet runs them: per running container, one task per
//! probe (startup, liveness, readiness) on `tokio::time`, each waiting its initial delay,
//! then trying its handler (httpGet, tcpSocket or exec) every period within its timeout and
//! turning consecutive outcomes into a verdict at its thresholds. A startup probe holds the
//! other two until it succeeds. The pod's worker reads the verdicts (`ContainerProbes`):
//! readiness makes the container ready, a failed liveness or startup probe gets it killed.

mod action;
mod container;
mod exec;
mod http;
mod run;
mod settings;
mod tally;
mod tcp;

pub use action::{Action, ActionError, Target};
pub use container::{ContainerProbes, EventSink};
pub use run::Reports;
pub use settings::Settings;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    /// The name the kubelet's events give it (`Liveness probe failed: ...`).
    pub fn title(self) -> &'static str {
        match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        }
    }

    /// The name in the kill message (`Container c failed liveness probe`).
    pub fn lower(self) -> &'static str {
        match self {
            ProbeKind::Startup => "startup",
            ProbeKind::Liveness => "liveness",
            ProbeKind::Readiness => "readiness",
        }
    }
}

/// One attempt's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Failed, with the kubelet's wording of why.
    Failure(String),
}

/// A probe's standing, from its thresholds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Verdict {
    /// Not yet decided (the first attempt has not reached a threshold).
    #[default]
    Unknown,
    Success,
    /// Failed, with the last attempt's reason.
    Failure(String),
}

#[cfg(test)]
mod tests;
