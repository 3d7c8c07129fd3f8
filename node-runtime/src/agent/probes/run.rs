//! One probe's task: the initial delay (from the container's start), then an attempt every
//! period, each outcome counted against the thresholds; a changed verdict is published and
//! the pod's worker woken. A startup probe ends once it succeeded, a liveness or startup
//! probe once it failed (the container is then killed, and a new one gets new probes).

use std::sync::Arc;

use tokio::sync::{watch, Notify};
use tokio::time::{Instant, MissedTickBehavior};

use super::tally::Tally;
use super::{Action, ActionError, EventSink, Outcome, ProbeKind, Settings, Target, Verdict};

/// One probe of one container, ready to run.
pub struct Prober {
    pub kind: ProbeKind,
    pub settings: Settings,
    pub action: Result<Action, ActionError>,
    pub target: Target,
}

/// Where a probe's results go.
#[derive(Clone)]
pub struct Reports {
    /// Told each failed attempt (the kubelet's `Unhealthy` events).
    pub events: EventSink,
    /// Notified when a verdict changes.
    pub wake: Arc<Notify>,
}

impl Prober {
    /// Runs the probe; `started` is the startup probe's verdict, which holds this one back
    /// until it succeeds. `begin` is when the container started.
    pub async fn run(
        self,
        begin: Instant,
        started: Option<watch::Receiver<Verdict>>,
        verdict: watch::Sender<Verdict>,
        reports: Reports,
    ) {
        if let Some(mut started) = started {
            if started.wait_for(|v| *v == Verdict::Success).await.is_err() {
                return;
            }
        }
        tokio::time::sleep_until(begin + self.settings.initial_delay).await;
        let mut tally = Tally::new(
            self.settings.success_threshold,
            self.settings.failure_threshold,
        );
        let mut ticks = tokio::time::interval(self.settings.period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let outcome = match &self.action {
                Ok(action) => action.attempt(&self.target, self.settings.timeout).await,
                Err(err) => Outcome::Failure(err.to_string()),
            };
            if let Outcome::Failure(why) = &outcome {
                (reports.events)(self.kind, why);
            }
            let Some(now) = tally.record(outcome) else {
                continue;
            };
            let done = matches!(
                (&now, self.kind),
                (Verdict::Success, ProbeKind::Startup)
                    | (
                        Verdict::Failure(_),
                        ProbeKind::Startup | ProbeKind::Liveness
                    )
            );
            let changed = verdict.send_if_modified(|v| {
                let changed = *v != now;
                *v = now;
                changed
            });
            if changed {
                reports.wake.notify_one();
            }
            if done {
                return;
            }
        }
    }
}
