//! A probe's timing and thresholds, with Kubernetes' defaults for what a spec leaves out.

use std::time::Duration;

use skiff_api::k8s_openapi::api::core::v1::Probe;
use skiff_api::probes::{
    DEFAULT_FAILURE_THRESHOLD, DEFAULT_PERIOD_SECONDS, DEFAULT_SUCCESS_THRESHOLD,
    DEFAULT_TIMEOUT_SECONDS,
};

/// When and how often one probe runs, and what its outcomes count for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// From the container's start to the first attempt.
    pub initial_delay: Duration,
    /// Longest one attempt may take; past it, the attempt failed.
    pub timeout: Duration,
    /// Between two attempts.
    pub period: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// The grace of a kill after this probe failed, when the probe sets its own.
    pub termination_grace: Option<Duration>,
}

impl Settings {
    pub fn of(probe: &Probe) -> Self {
        let seconds = |value: Option<i32>, default: i32, min: i32| {
            let value = value.filter(|v| *v != 0).unwrap_or(default).max(min);
            Duration::from_secs(value as u64)
        };
        let count = |value: Option<i32>, default: i32| {
            value.filter(|v| *v != 0).unwrap_or(default).max(1) as u32
        };
        Settings {
            initial_delay: seconds(probe.initial_delay_seconds, 0, 0),
            timeout: seconds(probe.timeout_seconds, DEFAULT_TIMEOUT_SECONDS, 1),
            period: seconds(probe.period_seconds, DEFAULT_PERIOD_SECONDS, 1),
            success_threshold: count(probe.success_threshold, DEFAULT_SUCCESS_THRESHOLD),
            failure_threshold: count(probe.failure_threshold, DEFAULT_FAILURE_THRESHOLD),
            termination_grace: probe
                .termination_grace_period_seconds
                .filter(|g| *g > 0)
                .map(|g| Duration::from_secs(g as u64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_fields_take_kubernetes_defaults() {
        let s = Settings::of(&Probe::default());
        assert_eq!(s.initial_delay, Duration::ZERO);
        assert_eq!(s.timeout, Duration::from_secs(1));
        assert_eq!(s.period, Duration::from_secs(10));
        assert_eq!((s.success_threshold, s.failure_threshold), (1, 3));
        assert_eq!(s.termination_grace, None);
        let set = Settings::of(&Probe {
            initial_delay_seconds: Some(5),
            period_seconds: Some(2),
            failure_threshold: Some(1),
            termination_grace_period_seconds: Some(7),
            ..Default::default()
        });
        assert_eq!(set.initial_delay, Duration::from_secs(5));
        assert_eq!(set.period, Duration::from_secs(2));
        assert_eq!(set.failure_threshold, 1);
        assert_eq!(set.termination_grace, Some(Duration::from_secs(7)));
    }
}
