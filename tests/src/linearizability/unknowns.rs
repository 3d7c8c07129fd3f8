//! The operations of unknown outcome waiting to be linearized, grouped into kinds of
//! interchangeable ones (the same step). Of a kind, only the earliest-invoked unused member is
//! ever tried: any order that uses a later member could use it instead, being no less free
//! (it was invoked no later, and neither need ever return). This keeps the search from trying
//! every subset of them, and keeps them out of the list it scans for every choice.

use std::collections::HashMap;

use super::search::{Candidate, Step, Value};

/// A kind: its members (op indices) in the order of their invocations, and those times.
struct Kind {
    ops: Vec<usize>,
    invoked: Vec<u64>,
}

/// The kinds and how many of each are linearized.
pub(super) struct Unknowns {
    kinds: Vec<Kind>,
    used: Vec<usize>,
    /// The kinds that may apply in any state (writes, CAS expected to fail), then those that
    /// need the register to hold one value (reads, CAS expected to succeed), by that value.
    anywhere: Vec<usize>,
    by_state: HashMap<Value, Vec<usize>>,
}

/// The state a step needs to apply, if it needs one.
fn needs(step: Step) -> Option<Value> {
    match step {
        Step::Read(value) => Some(value),
        Step::Write(_)
        | Step::Cas {
            succeeded: false, ..
        } => None,
        Step::Cas {
            expected,
            succeeded: true,
            ..
        }
        | Step::MaybeCas { expected, .. } => Some(expected),
    }
}

impl Unknowns {
    /// The candidates without a deadline, by kind.
    pub(super) fn new(ops: &[Candidate]) -> Unknowns {
        let mut order: Vec<usize> = (0..ops.len())
            .filter(|&op| ops[op].deadline.is_none())
            .collect();
        order.sort_by_key(|&op| (ops[op].invoked, op));
        let mut kinds: Vec<Kind> = Vec::new();
        let mut kind_by_step: HashMap<Step, usize> = HashMap::new();
        let mut anywhere = Vec::new();
        let mut by_state: HashMap<Value, Vec<usize>> = HashMap::new();
        for op in order {
            let step = ops[op].step;
            let kind = *kind_by_step.entry(step).or_insert_with(|| {
                let kind = kinds.len();
                match needs(step) {
                    None => anywhere.push(kind),
                    Some(value) => by_state.entry(value).or_default().push(kind),
                }
                kinds.push(Kind {
                    ops: Vec::new(),
                    invoked: Vec::new(),
                });
                kind
            });
            kinds[kind].ops.push(op);
            kinds[kind].invoked.push(ops[op].invoked);
        }
        Unknowns {
            used: vec![0; kinds.len()],
            kinds,
            anywhere,
            by_state,
        }
    }

    /// The `i`-th kind that may apply in `state`.
    pub(super) fn kind_for(&self, state: Value, i: usize) -> Option<usize> {
        match self.anywhere.get(i) {
            Some(&kind) => Some(kind),
            None => self
                .by_state
                .get(&state)?
                .get(i - self.anywhere.len())
                .copied(),
        }
    }

    /// The kind's next member, if one is left and was invoked by `barrier`.
    pub(super) fn next_of(&self, kind: usize, barrier: u64) -> Option<usize> {
        let (kind, used) = (&self.kinds[kind], self.used[kind]);
        (used < kind.ops.len() && kind.invoked[used] <= barrier).then(|| kind.ops[used])
    }

    /// Marks the kind's next member linearized.
    pub(super) fn take(&mut self, kind: usize) {
        self.used[kind] += 1;
    }

    /// Undoes the last `take` of the kind.
    pub(super) fn put_back(&mut self, kind: usize) {
        self.used[kind] -= 1;
    }
}
