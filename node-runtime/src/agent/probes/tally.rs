//! Counting consecutive outcomes against a probe's thresholds (the kubelet's `resultRun`).

use super::{Outcome, Verdict};

/// Consecutive outcomes of one probe.
#[derive(Debug, Clone)]
pub struct Tally {
    success_threshold: u32,
    failure_threshold: u32,
    /// The last outcome was a success, and how many of its kind ran in a row.
    last: Option<(bool, u32)>,
}

impl Tally {
    pub fn new(success_threshold: u32, failure_threshold: u32) -> Self {
        Tally {
            success_threshold: success_threshold.max(1),
            failure_threshold: failure_threshold.max(1),
            last: None,
        }
    }

    /// Counts `outcome`; the verdict when its run reached its threshold, else `None` (the
    /// probe's standing is unchanged).
    pub fn record(&mut self, outcome: Outcome) -> Option<Verdict> {
        let success = outcome == Outcome::Success;
        let run = match self.last {
            Some((was, run)) if was == success => run.saturating_add(1),
            _ => 1,
        };
        self.last = Some((success, run));
        match outcome {
            Outcome::Success if run >= self.success_threshold => Some(Verdict::Success),
            Outcome::Failure(why) if run >= self.failure_threshold => Some(Verdict::Failure(why)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail() -> Outcome {
        Outcome::Failure("no".into())
    }

    #[test]
    fn thresholds_count_consecutive_outcomes_only() {
        let mut t = Tally::new(2, 3);
        assert_eq!(t.record(fail()), None);
        assert_eq!(t.record(fail()), None);
        assert_eq!(t.record(Outcome::Success), None, "a success breaks the run");
        assert_eq!(t.record(fail()), None);
        assert_eq!(t.record(fail()), None);
        assert_eq!(t.record(fail()), Some(Verdict::Failure("no".into())));
        assert_eq!(t.record(fail()), Some(Verdict::Failure("no".into())));
        assert_eq!(t.record(Outcome::Success), None);
        assert_eq!(t.record(Outcome::Success), Some(Verdict::Success));
    }
}
