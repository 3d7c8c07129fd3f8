//! A linearizability checker for histories of read / write / compare-and-swap operations on
//! independent registers, in the style of Knossos and Porcupine: Wing & Gong's search over the
//! ways to order concurrent operations, with Lowe's memoization of (linearized set, state).
//! Keys are independent registers, so each key's sub-history is checked on its own.
//!
//! Record every operation whose effect is definite (`Outcome::Ok`, including a CAS that
//! reported failure) and every write or CAS whose outcome is unknown (`Outcome::Unknown`: it may
//! have taken effect at any point after its invocation, or never). Do not record operations
//! that certainly did nothing, nor reads without an answer.
//!
//! Unknown outcomes are what make the search explode (each may apply at any later point), so
//! `prepare` pins down those the history proves took effect, and the search tries only one of
//! each kind of interchangeable ones (`unknowns`).

mod history_file;
mod prepare;
mod search;
mod unknowns;

#[cfg(test)]
mod brute_force;

pub use history_file::{load_history, save_history};
use prepare::prepare;
use search::Search;

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

/// The work the checker did on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEffort {
    pub key: String,
    /// Operations searched, and how many of them may never have taken effect.
    pub ops: usize,
    pub unknown: usize,
    /// Candidates the search considered.
    pub steps: usize,
}

/// Checks every key's sub-history; `budget` bounds the search steps per key.
pub fn check(history: &[Op], budget: usize) -> Verdict {
    check_measured(history, budget).0
}

/// [`check`], also telling how much work each key took. Every key is checked, so that a
/// violation on one key is reported even when another key is undecided.
pub fn check_measured(history: &[Op], budget: usize) -> (Verdict, Vec<KeyEffort>) {
    let mut keys: Vec<&str> = history.iter().map(|op| op.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut efforts = Vec::new();
    let mut undecided = None;
    for key in keys {
        let ops: Vec<&Op> = history
            .iter()
            .filter(|op| op.key == key)
            .filter(|op| !(op.outcome == Outcome::Unknown && matches!(op.kind, OpKind::Read(_))))
            .collect();
        let (linearizable, effort) = check_key(key, &ops, budget);
        efforts.push(effort);
        match linearizable {
            Some(true) => {}
            Some(false) => {
                let mut ops: Vec<Op> = ops.into_iter().cloned().collect();
                ops.sort_by_key(|op| op.invoked);
                let key = key.to_string();
                return (Verdict::Violation { key, ops }, efforts);
            }
            None => {
                undecided.get_or_insert_with(|| key.to_string());
            }
        }
    }
    let verdict = match undecided {
        Some(key) => Verdict::Undecided { key },
        None => Verdict::Linearizable,
    };
    (verdict, efforts)
}

/// Searches one key's operations.
fn check_key(key: &str, ops: &[&Op], budget: usize) -> (Option<bool>, KeyEffort) {
    let candidates = prepare(ops);
    let search = Search::new(&candidates).run(budget);
    let effort = KeyEffort {
        key: key.to_string(),
        ops: candidates.len(),
        unknown: candidates.iter().filter(|c| c.deadline.is_none()).count(),
        steps: search.steps,
    };
    (search.linearizable, effort)
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
    fn an_unknown_write_someone_saw_applied_before_they_returned() {
        let late = [
            op(0, write("a"), 0, 1),
            unknown(op(1, write("b"), 2, 0)),
            op(2, read(Some("a")), 5, 6),
            op(2, read(Some("b")), 10, 11),
        ];
        assert_eq!(verdict(&late), Verdict::Linearizable);
        let then_stale = [
            op(0, write("a"), 0, 1),
            unknown(op(1, write("b"), 2, 0)),
            op(2, read(Some("b")), 10, 11),
            op(2, read(Some("a")), 20, 21),
        ];
        assert!(is_violation(&then_stale));
    }

    #[test]
    fn an_unknown_cas_someone_saw_must_have_found_its_expected_value() {
        let applied = [
            op(0, write("a"), 0, 1),
            unknown(op(1, cas(Some("a"), "b", false), 2, 0)),
            op(2, read(Some("b")), 10, 11),
        ];
        assert_eq!(verdict(&applied), Verdict::Linearizable);
        let impossible = [
            op(0, write("a"), 0, 1),
            unknown(op(1, cas(Some("z"), "b", false), 2, 0)),
            op(2, read(Some("b")), 10, 11),
        ];
        assert!(is_violation(&impossible));
    }

    #[test]
    fn an_unknown_write_nobody_saw_may_explain_a_failed_cas() {
        let explained = [
            op(0, write("a"), 0, 1),
            unknown(op(1, write("u"), 2, 0)),
            op(2, cas(Some("a"), "c", false), 10, 11),
        ];
        assert_eq!(verdict(&explained), Verdict::Linearizable);
        let but_then_read = [
            op(0, write("a"), 0, 1),
            unknown(op(1, write("u"), 2, 0)),
            op(2, cas(Some("a"), "c", false), 10, 11),
            op(2, read(Some("a")), 20, 21),
        ];
        assert!(is_violation(&but_then_read));
    }

    /// A value read after `unknowns` writes of unknown outcome were invoked (none of which
    /// anyone saw), then sequential writes and reads, then (with `failed_cas`) a CAS that
    /// failed: a plain search tries every subset of the unknown writes before the first read.
    fn unknown_writes_history(unknowns: usize, failed_cas: bool) -> Vec<Op> {
        let mut h = vec![op(0, write("a"), 0, 1)];
        for i in 0..unknowns {
            let t = 2 + i as u64;
            h.push(unknown(op(10 + i, write(&format!("u{i}")), t, 0)));
        }
        h.push(op(1, read(Some("a")), 100, 101));
        for i in 0..100u64 {
            let (v, t) = (format!("b{i}"), 200 + 10 * i);
            h.push(op(1, OpKind::Write(v.clone()), t, t + 2));
            h.push(op(2, read(Some(&v)), t + 4, t + 6));
        }
        if failed_cas {
            h.push(op(3, cas(Some("zzz"), "n", false), 5000, 5001));
        }
        h
    }

    /// The checker before unknown outcomes were treated apart (commit deb147b) ran out of a
    /// 1,000,000-step budget on both these histories.
    #[test]
    fn many_unknown_writes_nobody_saw_are_decided_in_a_few_steps() {
        for failed_cas in [false, true] {
            let h = unknown_writes_history(30, failed_cas);
            let (verdict, efforts) = check_measured(&h, 1_000_000);
            assert_eq!(verdict, Verdict::Linearizable, "{efforts:?}");
            assert!(efforts[0].steps < 10_000, "{efforts:?}");
            let mut stale = h.clone();
            stale.push(op(1, read(Some("b3")), 9000, 9001));
            assert!(is_violation(&stale), "{failed_cas}");
        }
    }

    #[test]
    fn a_saved_history_loads_back_the_same() {
        let mut h = valid_history(50, 11);
        h.push(unknown(op(3, cas(None, "x", false), 7, 0)));
        h.push(op(4, read(None), 8, 9));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.jsonl");
        save_history(&path, &h).expect("save");
        assert_eq!(load_history(&path).expect("load"), h);
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
    fn a_violation_on_one_key_is_reported_even_if_another_is_undecided() {
        let mut h = valid_history(200, 7);
        for op in &mut h {
            op.key = "a".into();
        }
        let mut bad = op(1, read(Some("nope")), 2, 3);
        bad.key = "b".into();
        h.push(bad);
        assert_eq!(check(&h[..200], 10), Verdict::Undecided { key: "a".into() });
        match check(&h, 10) {
            Verdict::Violation { key, .. } => assert_eq!(key, "b"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_tiny_budget_is_undecided_not_wrong() {
        let h = valid_history(200, 7);
        assert_eq!(check(&h, 10), Verdict::Undecided { key: "k".into() });
    }
}
