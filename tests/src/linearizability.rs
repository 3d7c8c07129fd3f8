//! A linearizability checker for histories of read / write / compare-and-swap operations on
//! independent registers, in the style of Knossos and Porcupine: Wing & Gong's search over the
//! ways to order concurrent operations, with Lowe's memoization of (linearized set, state).
//! Keys are independent registers, so each key's sub-history is checked on its own.
//!
//! Record every operation whose effect is definite (`Outcome::Ok`, including a CAS that
//! reported failure) and every write or CAS whose outcome is unknown (`Outcome::Unknown`: it may
//! have taken effect at any point after its invocation, or never). Do not record operations
//! that certainly did nothing, nor reads without an answer.

use std::collections::{HashMap, HashSet};

/// What an operation did, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// A read and the value it returned (`None`: the key was absent).
    Read(Option<String>),
    /// An unconditional write.
    Write(String),
    /// Set `new` if the value is `expected`; `succeeded` is what the client was told.
    Cas {
        expected: Option<String>,
        new: String,
        succeeded: bool,
    },
}

/// Whether the client learned the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Timed out or "outcome unknown": it may or may not have taken effect.
    Unknown,
}

/// One recorded operation; times are nanoseconds from a common start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub client: usize,
    pub key: String,
    pub kind: OpKind,
    pub invoked: u64,
    pub completed: u64,
    pub outcome: Outcome,
}

/// The checker's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// No order of the key's operations explains what the clients saw.
    Violation {
        key: String,
        ops: Vec<Op>,
    },
    /// The search exceeded its step budget on this key (treat as a failure).
    Undecided {
        key: String,
    },
}

/// Checks every key's sub-history; `budget` bounds the search steps per key.
pub fn check(history: &[Op], budget: usize) -> Verdict {
    let mut keys: Vec<&str> = history.iter().map(|op| op.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        let ops: Vec<&Op> = history
            .iter()
            .filter(|op| op.key == key)
            .filter(|op| !(op.outcome == Outcome::Unknown && matches!(op.kind, OpKind::Read(_))))
            .collect();
        match Search::new(&ops).run(budget) {
            Some(true) => {}
            Some(false) => {
                let mut ops: Vec<Op> = ops.into_iter().cloned().collect();
                ops.sort_by_key(|op| op.invoked);
                return Verdict::Violation {
                    key: key.to_string(),
                    ops,
                };
            }
            None => {
                return Verdict::Undecided {
                    key: key.to_string(),
                }
            }
        }
    }
    Verdict::Linearizable
}

/// A register value, interned: 0 is "absent".
type Value = u32;

/// An operation with its values interned.
#[derive(Clone, Copy)]
enum Step {
    Read(Value),
    Write(Value),
    Cas {
        expected: Value,
        new: Value,
        succeeded: bool,
    },
    /// A CAS of unknown outcome: linearized only where it applied.
    MaybeCas {
        expected: Value,
        new: Value,
    },
}

impl Step {
    /// The state after applying this step to `state`, if the step is possible there.
    fn apply(self, state: Value) -> Option<Value> {
        match self {
            Step::Read(seen) => (seen == state).then_some(state),
            Step::Write(value) => Some(value),
            Step::Cas {
                expected,
                new,
                succeeded: true,
            }
            | Step::MaybeCas { expected, new } => (state == expected).then_some(new),
            Step::Cas {
                expected,
                succeeded: false,
                ..
            } => (state != expected).then_some(state),
        }
    }
}

/// Call and return events in time order, as a doubly linked list over `events` (index 0 is
/// the head sentinel), so that linearized operations can be lifted out and put back.
struct Search {
    steps: Vec<Step>,
    /// `(op, is_call)` per event; event 0 is the sentinel.
    events: Vec<(usize, bool)>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Each op's call and (for definite ops) return event.
    call_of: Vec<usize>,
    return_of: Vec<Option<usize>>,
    /// Definite operations not yet linearized.
    remaining: usize,
}

const NONE: usize = usize::MAX;

impl Search {
    fn new(ops: &[&Op]) -> Search {
        let mut values: HashMap<String, Value> = HashMap::new();
        let mut intern = |value: Option<&String>| -> Value {
            match value {
                None => 0,
                Some(v) => {
                    let next = values.len() as Value + 1;
                    *values.entry(v.clone()).or_insert(next)
                }
            }
        };
        let steps: Vec<Step> = ops
            .iter()
            .map(|op| match (&op.kind, op.outcome) {
                (OpKind::Read(seen), _) => Step::Read(intern(seen.as_ref())),
                (OpKind::Write(value), _) => Step::Write(intern(Some(value))),
                (OpKind::Cas { expected, new, .. }, Outcome::Unknown) => Step::MaybeCas {
                    expected: intern(expected.as_ref()),
                    new: intern(Some(new)),
                },
                (
                    OpKind::Cas {
                        expected,
                        new,
                        succeeded,
                    },
                    Outcome::Ok,
                ) => Step::Cas {
                    expected: intern(expected.as_ref()),
                    new: intern(Some(new)),
                    succeeded: *succeeded,
                },
            })
            .collect();
        // (time, calls before returns at equal times, op, is_call)
        let mut timeline: Vec<(u64, u8, usize, bool)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            timeline.push((op.invoked, 0, i, true));
            if op.outcome == Outcome::Ok {
                timeline.push((op.completed, 1, i, false));
            }
        }
        timeline.sort_unstable();
        let mut events = vec![(NONE, false)];
        let mut call_of = vec![0; ops.len()];
        let mut return_of = vec![None; ops.len()];
        for (_, _, op, is_call) in timeline {
            if is_call {
                call_of[op] = events.len();
            } else {
                return_of[op] = Some(events.len());
            }
            events.push((op, is_call));
        }
        let n = events.len();
        Search {
            steps,
            next: (1..=n).map(|i| if i == n { NONE } else { i }).collect(),
            prev: (0..n).map(|i| i.wrapping_sub(1)).collect(),
            events,
            call_of,
            remaining: return_of.iter().filter(|r| r.is_some()).count(),
            return_of,
        }
    }

    fn unlink(&mut self, event: usize) {
        let (prev, next) = (self.prev[event], self.next[event]);
        self.next[prev] = next;
        if next != NONE {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, event: usize) {
        let (prev, next) = (self.prev[event], self.next[event]);
        self.next[prev] = event;
        if next != NONE {
            self.prev[next] = event;
        }
    }

    /// Takes op's call and return out of the list.
    fn lift(&mut self, op: usize) {
        self.unlink(self.call_of[op]);
        if let Some(ret) = self.return_of[op] {
            self.unlink(ret);
            self.remaining -= 1;
        }
    }

    /// Puts them back (in the reverse order of `lift`).
    fn unlift(&mut self, op: usize) {
        if let Some(ret) = self.return_of[op] {
            self.relink(ret);
            self.remaining += 1;
        }
        self.relink(self.call_of[op]);
    }

    /// `Some(true)`: linearizable; `Some(false)`: not; `None`: out of budget.
    fn run(mut self, budget: usize) -> Option<bool> {
        let words = self.steps.len().div_ceil(64);
        let mut linearized = vec![0u64; words];
        let mut seen: HashSet<(Vec<u64>, Value)> = HashSet::new();
        let mut stack: Vec<(usize, Value)> = Vec::new();
        let mut state: Value = 0;
        let mut event = self.next[0];
        for _ in 0..budget {
            if self.remaining == 0 {
                return Some(true);
            }
            let (op, is_call) = if event == NONE {
                (NONE, false)
            } else {
                self.events[event]
            };
            if is_call {
                if let Some(after) = self.steps[op].apply(state) {
                    linearized[op / 64] |= 1 << (op % 64);
                    if seen.insert((linearized.clone(), after)) {
                        stack.push((op, state));
                        state = after;
                        self.lift(op);
                        event = self.next[0];
                        continue;
                    }
                    linearized[op / 64] &= !(1 << (op % 64));
                }
                event = self.next[event];
            } else {
                // A return (or the end) reached with its op not linearized: undo the last choice.
                let Some((op, before)) = stack.pop() else {
                    return Some(false);
                };
                linearized[op / 64] &= !(1 << (op % 64));
                state = before;
                self.unlift(op);
                event = self.next[self.call_of[op]];
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An op on key "k" by `client` over `[invoked, completed]`.
    fn op(client: usize, kind: OpKind, invoked: u64, completed: u64) -> Op {
        Op {
            client,
            key: "k".into(),
            kind,
            invoked,
            completed,
            outcome: Outcome::Ok,
        }
    }

    fn read(v: Option<&str>) -> OpKind {
        OpKind::Read(v.map(str::to_string))
    }

    fn write(v: &str) -> OpKind {
        OpKind::Write(v.into())
    }

    fn cas(expected: Option<&str>, new: &str, succeeded: bool) -> OpKind {
        OpKind::Cas {
            expected: expected.map(str::to_string),
            new: new.into(),
            succeeded,
        }
    }

    fn unknown(mut op: Op) -> Op {
        op.outcome = Outcome::Unknown;
        op.completed = u64::MAX;
        op
    }

    fn verdict(history: &[Op]) -> Verdict {
        check(history, 1_000_000)
    }

    fn is_violation(history: &[Op]) -> bool {
        matches!(verdict(history), Verdict::Violation { .. })
    }

    #[test]
    fn sequential_write_then_read() {
        let h = [op(0, write("a"), 0, 1), op(1, read(Some("a")), 2, 3)];
        assert_eq!(verdict(&h), Verdict::Linearizable);
    }

    #[test]
    fn a_value_never_written_is_a_violation() {
        let h = [op(0, write("a"), 0, 1), op(1, read(Some("z")), 2, 3)];
        assert!(is_violation(&h));
    }

    #[test]
    fn a_stale_read_is_a_violation() {
        let h = [
            op(0, write("a"), 0, 1),
            op(0, write("b"), 2, 3),
            op(1, read(Some("a")), 4, 5),
        ];
        assert!(is_violation(&h));
    }

    #[test]
    fn a_read_overlapping_a_write_may_see_either_value() {
        for seen in [None, Some("a")] {
            let h = [op(0, write("a"), 0, 10), op(1, read(seen), 5, 6)];
            assert_eq!(verdict(&h), Verdict::Linearizable, "{seen:?}");
        }
    }

    #[test]
    fn two_cas_from_the_same_value_cannot_both_succeed() {
        for (a, b) in [((0, 1), (2, 3)), ((0, 5), (1, 6))] {
            let h = [
                op(0, cas(None, "x", true), a.0, a.1),
                op(1, cas(None, "y", true), b.0, b.1),
            ];
            assert!(is_violation(&h));
        }
    }

    #[test]
    fn cas_failures_must_be_explained() {
        let consistent = [
            op(0, write("a"), 0, 1),
            op(1, cas(Some("b"), "c", false), 2, 3),
        ];
        assert_eq!(verdict(&consistent), Verdict::Linearizable);
        let wrong = [
            op(0, write("a"), 0, 1),
            op(1, cas(Some("a"), "c", false), 2, 3),
        ];
        assert!(is_violation(&wrong));
    }

    #[test]
    fn unknown_writes_may_apply_late_or_never_but_not_before_they_start() {
        let applied = [
            unknown(op(0, write("b"), 0, 0)),
            op(1, read(Some("b")), 100, 101),
        ];
        assert_eq!(verdict(&applied), Verdict::Linearizable);
        let never = [
            op(2, write("a"), 0, 1),
            unknown(op(0, write("b"), 2, 0)),
            op(1, read(Some("a")), 100, 101),
            op(1, read(Some("a")), 200, 201),
        ];
        assert_eq!(verdict(&never), Verdict::Linearizable);
        let too_early = [
            op(1, read(Some("b")), 0, 1),
            unknown(op(0, write("b"), 5, 0)),
        ];
        assert!(is_violation(&too_early));
    }

    #[test]
    fn keys_are_checked_independently() {
        let mut h = vec![op(0, write("a"), 0, 1), op(1, read(Some("a")), 2, 3)];
        let mut bad = op(1, read(Some("nope")), 2, 3);
        bad.key = "x".into();
        h.push(bad);
        match verdict(&h) {
            Verdict::Violation { key, ops } => {
                assert_eq!(key, "x");
                assert_eq!(ops.len(), 1);
            }
            other => panic!("{other:?}"),
        }
    }

    /// Several clients on a real sequential register, each op's interval drawn around its
    /// linearization point, so overlaps abound but a valid order exists.
    fn valid_history(ops: usize, seed: u64) -> Vec<Op> {
        let mut rng = seed;
        let mut below = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut state: Option<String> = None;
        let mut history = Vec::new();
        for i in 0..ops {
            let point = i as u64 * 10 + 5;
            let (invoked, completed) = (point - below(30).min(point), point + below(30));
            let kind = match below(3) {
                0 => read(state.as_deref()),
                1 => {
                    let v = format!("v{i}");
                    state = Some(v.clone());
                    OpKind::Write(v)
                }
                _ => {
                    let expected = if below(2) == 0 {
                        state.clone()
                    } else {
                        Some("other".into())
                    };
                    let succeeded = expected == state;
                    let new = format!("v{i}");
                    if succeeded {
                        state = Some(new.clone());
                    }
                    OpKind::Cas {
                        expected,
                        new,
                        succeeded,
                    }
                }
            };
            history.push(op(i % 5, kind, invoked, completed));
        }
        history
    }

    #[test]
    fn a_large_valid_history_is_linearizable_and_one_bad_read_is_found() {
        let mut h = valid_history(200, 0x2545_F491_4F6C_DD1D);
        assert_eq!(check(&h, 1_000_000), Verdict::Linearizable);
        let last_read = h
            .iter()
            .rposition(|op| matches!(op.kind, OpKind::Read(_)))
            .expect("a read");
        h[last_read].kind = read(Some("never-written"));
        assert!(is_violation(&h));
    }

    #[test]
    fn a_tiny_budget_is_undecided_not_wrong() {
        let h = valid_history(200, 7);
        assert_eq!(check(&h, 10), Verdict::Undecided { key: "k".into() });
    }
}
