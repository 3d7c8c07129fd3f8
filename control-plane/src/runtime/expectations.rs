//! Expectations (Kubernetes' `ControllerExpectations`): how many creates and deletes a controller
//! made for an object and has not yet seen in its informer. It does not act on that object again
//! until they are all seen or they expire, so it never acts twice on a cache that lags its writes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long unseen creates and deletes hold an object back (Kubernetes' `ExpectationsTimeout`).
pub const TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The creates and deletes still to be seen for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub creates: i64,
    pub deletes: i64,
    set_at: Instant,
}

/// Per-key expectations, shared by a controller's reconciles and its informer feed.
#[derive(Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    /// Records that the controller is about to make `creates` creates and `deletes` deletes for
    /// `key`, replacing what it expected before.
    pub fn expect(&self, key: &str, creates: usize, deletes: usize, now: Instant) {
        self.lock().insert(
            key.to_string(),
            Pending {
                creates: creates as i64,
                deletes: deletes as i64,
                set_at: now,
            },
        );
    }

    /// Lowers the creates expected for `key` by `n` (seen, or never made).
    pub fn created(&self, key: &str, n: usize) {
        if let Some(p) = self.lock().get_mut(key) {
            p.creates -= n as i64;
        }
    }

    /// Lowers the deletes expected for `key` by `n` (seen, or never made).
    pub fn deleted(&self, key: &str, n: usize) {
        if let Some(p) = self.lock().get_mut(key) {
            p.deletes -= n as i64;
        }
    }

    /// Whether the controller may act on `key`: nothing expected, all of it seen, or expired.
    pub fn satisfied(&self, key: &str, now: Instant) -> bool {
        self.lock().get(key).is_none_or(|p| {
            (p.creates <= 0 && p.deletes <= 0) || now.duration_since(p.set_at) >= TIMEOUT
        })
    }

    /// What is still expected for `key`, if anything was.
    pub fn pending(&self, key: &str) -> Option<Pending> {
        self.lock().get(key).copied()
    }

    /// Forgets `key` (its object is gone).
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Forgets every key (the feed lost notifications, so counts can no longer be trusted).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().expect("expectations lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    enum Step {
        Expect(usize, usize),
        Created(usize),
        Deleted(usize),
        Wait(Duration),
        Forget,
    }
    use Step::*;

    #[test]
    fn a_key_waits_until_its_writes_are_seen_or_expire() {
        let secs = Duration::from_secs;
        // Steps on one key, and whether the controller may act after each.
        for (steps, after) in [
            (vec![], vec![]),
            (vec![Expect(3, 0)], vec![false]),
            (
                vec![Expect(3, 0), Created(1), Created(2)],
                vec![false, false, true],
            ),
            (
                vec![Expect(0, 2), Deleted(1), Created(5), Deleted(1)],
                vec![false, false, false, true],
            ),
            (vec![Expect(0, 0)], vec![true]),
            (
                vec![Expect(2, 0), Wait(secs(299)), Wait(secs(1))],
                vec![false, false, true],
            ),
            (vec![Expect(2, 1), Forget], vec![false, true]),
            // A new expectation replaces the old, even one overshot by others' writes.
            (
                vec![Expect(1, 0), Created(3), Expect(2, 0), Created(1)],
                vec![false, true, false, false],
            ),
        ] {
            let expectations = Expectations::default();
            let mut now = Instant::now();
            let mut seen = Vec::new();
            for step in steps {
                match step {
                    Expect(c, d) => expectations.expect("ns/rs", c, d, now),
                    Created(n) => expectations.created("ns/rs", n),
                    Deleted(n) => expectations.deleted("ns/rs", n),
                    Wait(d) => now += d,
                    Forget => expectations.forget("ns/rs"),
                }
                seen.push(expectations.satisfied("ns/rs", now));
            }
            assert_eq!(seen, after);
            assert!(
                expectations.satisfied("ns/other", now),
                "other keys are free"
            );
        }
    }
}
