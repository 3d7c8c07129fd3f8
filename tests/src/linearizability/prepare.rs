//! Turns one key's operations into the search's candidates, using what the history says
//! about operations of unknown outcome to shrink the search without changing its answer:
//!
//! - An unknown write or CAS whose value nobody else writes, and which a definite read (or a
//!   successful CAS) returned, certainly took effect, and before the first such observer
//!   returned: it becomes an operation with that deadline, no longer one that may float to
//!   the end of the history. The history is linearizable exactly when the new one is.
//! - An unknown write or CAS whose value no operation ever reads or expects is marked
//!   `unobserved`: a first search may leave it out (it is always allowed never to take
//!   effect), and only if that fails must the full search consider it. If moreover no failed
//!   CAS returned after it was invoked, it is left out of both: taking effect could only have
//!   set the register to a value no one reads, which matters to nothing but a failed CAS.
//! - Values no operation reads or expects are all interned as one, `UNSEEN`.

use std::collections::{HashMap, HashSet};

use super::search::{Candidate, Step, Value};
use super::{Op, OpKind, Outcome};

/// A candidate and which searches need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Prepared {
    pub candidate: Candidate,
    pub needed: Needed,
}

/// Which searches must consider a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Needed {
    Always,
    /// Only the full search (an unobserved operation of unknown outcome).
    InFullSearch,
    /// None: whether it took effect cannot change the answer.
    Never,
}

/// The interned value of every value no operation reads or expects: they are alike in what
/// they allow next (only writes, and CAS that fail), which lets the search treat unknown-outcome
/// writes of such values as interchangeable.
const UNSEEN: Value = 1;

/// The value an op writes (if it writes one).
fn written(op: &Op) -> Option<&str> {
    match &op.kind {
        OpKind::Read(_) => None,
        OpKind::Write(value) | OpKind::Cas { new: value, .. } => Some(value),
    }
}

/// The value an op saw or expected; `definite`: it certainly saw it in the register.
fn observed(op: &Op) -> Option<(&str, bool)> {
    let definite = op.outcome == Outcome::Ok;
    match &op.kind {
        OpKind::Read(Some(value)) => Some((value, definite)),
        OpKind::Cas {
            expected: Some(value),
            succeeded,
            ..
        } => Some((value, definite && *succeeded)),
        _ => None,
    }
}

/// The candidates for one key's operations, in the same order.
pub(super) fn prepare(ops: &[&Op]) -> Vec<Prepared> {
    let mut writers: HashMap<&str, usize> = HashMap::new();
    let mut first_seen: HashMap<&str, u64> = HashMap::new();
    let mut mentioned: HashSet<&str> = HashSet::new();
    let mut last_failed_cas = None;
    for op in ops {
        if let (
            OpKind::Cas {
                succeeded: false, ..
            },
            Outcome::Ok,
        ) = (&op.kind, op.outcome)
        {
            last_failed_cas = last_failed_cas.max(Some(op.completed));
        }
        if let Some(value) = written(op) {
            *writers.entry(value).or_default() += 1;
        }
        if let Some((value, definite)) = observed(op) {
            mentioned.insert(value);
            if definite {
                let first = first_seen.entry(value).or_insert(op.completed);
                *first = (*first).min(op.completed);
            }
        }
    }
    let mut values: HashMap<String, Value> = HashMap::new();
    let mut intern = |value: Option<&str>| -> Value {
        match value {
            None => 0,
            Some(v) if !mentioned.contains(v) => UNSEEN,
            Some(v) => {
                let next = values.len() as Value + 2;
                *values.entry(v.to_string()).or_insert(next)
            }
        }
    };
    ops.iter()
        .map(|op| {
            let deadline = match (op.outcome, written(op)) {
                (Outcome::Ok, _) => Some(op.completed),
                (Outcome::Unknown, Some(value)) if writers[value] == 1 => {
                    first_seen.get(value).copied()
                }
                (Outcome::Unknown, _) => None,
            };
            let step = match (&op.kind, deadline.is_some()) {
                (OpKind::Read(seen), _) => Step::Read(intern(seen.as_deref())),
                (OpKind::Write(value), _) => Step::Write(intern(Some(value))),
                (
                    OpKind::Cas {
                        expected,
                        new,
                        succeeded,
                    },
                    true,
                ) => Step::Cas {
                    expected: intern(expected.as_deref()),
                    new: intern(Some(new)),
                    // A definite CAS as told; an unknown one that was seen certainly applied.
                    succeeded: *succeeded || op.outcome == Outcome::Unknown,
                },
                (OpKind::Cas { expected, new, .. }, false) => Step::MaybeCas {
                    expected: intern(expected.as_deref()),
                    new: intern(Some(new)),
                },
            };
            let unobserved =
                deadline.is_none() && written(op).is_some_and(|value| !mentioned.contains(value));
            let needed = if !unobserved {
                Needed::Always
            } else if last_failed_cas.is_some_and(|last| last > op.invoked) {
                Needed::InFullSearch
            } else {
                Needed::Never
            };
            Prepared {
                candidate: Candidate {
                    step,
                    invoked: op.invoked,
                    deadline,
                },
                needed,
            }
        })
        .collect()
}
