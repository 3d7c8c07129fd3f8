//! Turns one key's operations into the search's candidates, using what the history says
//! about operations of unknown outcome to shrink the search without changing its answer:
//!
//! - An unknown write or CAS whose value nobody else writes, and which a definite read (or a
//!   successful CAS) returned, certainly took effect, and before the first such observer
//!   returned: it becomes an operation with that deadline, no longer one that may float to
//!   the end of the history. The history is linearizable exactly when the new one is.
//! - Values no operation reads or expects are all interned as one, `UNSEEN`: they are alike in
//!   what they allow next (only writes, and CAS that fail), so unknown-outcome writes of such
//!   values become interchangeable, which the search exploits (see `unknowns`).

use std::collections::{HashMap, HashSet};

use super::search::{Candidate, Step, Value};
use super::{Op, OpKind, Outcome};

/// The interned value of every value no operation reads or expects.
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
pub(super) fn prepare(ops: &[&Op]) -> Vec<Candidate> {
    let mut writers: HashMap<&str, usize> = HashMap::new();
    let mut first_seen: HashMap<&str, u64> = HashMap::new();
    let mut mentioned: HashSet<&str> = HashSet::new();
    for op in ops {
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
            Candidate {
                step,
                invoked: op.invoked,
                deadline,
            }
        })
        .collect()
}
