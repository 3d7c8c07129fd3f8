//! Wing & Gong's search over the ways to order one key's concurrent operations, with Lowe's
//! memoization of (linearized set, state).

use std::collections::{HashMap, HashSet};

/// A register value, interned: 0 is "absent".
pub(super) type Value = u32;

/// An operation with its values interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Step {
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

/// One operation as the search sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Candidate {
    pub step: Step,
    pub invoked: u64,
    /// When it must have been linearized by; `None`: it may also never take effect.
    pub deadline: Option<u64>,
}

/// How a search ended and how many steps it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Outcome {
    /// `Some(true)`: linearizable; `Some(false)`: not; `None`: out of budget.
    pub linearizable: Option<bool>,
    pub steps: usize,
}

/// Call and return events in time order, as a doubly linked list over `events` (index 0 is
/// the head sentinel), so that linearized operations can be lifted out and put back.
pub(super) struct Search {
    steps: Vec<Step>,
    /// `(op, is_call)` per event; event 0 is the sentinel.
    events: Vec<(usize, bool)>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Each op's call and (for ops with a deadline) return event.
    call_of: Vec<usize>,
    return_of: Vec<Option<usize>>,
    /// Operations with a deadline not yet linearized.
    remaining: usize,
    /// Interchangeable operations: those of unknown outcome with the same step, per kind in
    /// the order of their calls, and how many of each kind are linearized.
    kind_of: Vec<Option<usize>>,
    kinds: Vec<Vec<usize>>,
    used: Vec<usize>,
}

const NONE: usize = usize::MAX;

impl Search {
    pub(super) fn new(ops: &[Candidate]) -> Search {
        // (time, calls before returns at equal times, op, is_call)
        let mut timeline: Vec<(u64, u8, usize, bool)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            timeline.push((op.invoked, 0, i, true));
            if let Some(deadline) = op.deadline {
                timeline.push((deadline, 1, i, false));
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
        let mut kind_of = vec![None; ops.len()];
        let mut kinds: Vec<Vec<usize>> = Vec::new();
        let mut kind_by_step: HashMap<Step, usize> = HashMap::new();
        for &(op, is_call) in &events[1..] {
            if is_call && ops[op].deadline.is_none() {
                let kind = *kind_by_step.entry(ops[op].step).or_insert_with(|| {
                    kinds.push(Vec::new());
                    kinds.len() - 1
                });
                kinds[kind].push(op);
                kind_of[op] = Some(kind);
            }
        }
        let n = events.len();
        Search {
            used: vec![0; kinds.len()],
            kind_of,
            kinds,
            steps: ops.iter().map(|op| op.step).collect(),
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

    /// Whether `op` may be linearized next as far as its kind goes: of interchangeable
    /// operations of unknown outcome only the earliest unused one is tried, since taking a
    /// later one instead can only leave fewer choices. Without this, the search would try
    /// every subset of them.
    fn is_first_of_its_kind(&self, op: usize) -> bool {
        self.kind_of[op].is_none_or(|kind| self.kinds[kind][self.used[kind]] == op)
    }

    /// Takes op's call and return out of the list.
    fn lift(&mut self, op: usize) {
        if let Some(kind) = self.kind_of[op] {
            self.used[kind] += 1;
        }
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
        if let Some(kind) = self.kind_of[op] {
            self.used[kind] -= 1;
        }
    }

    /// Searches for an order, taking at most `budget` steps.
    pub(super) fn run(mut self, budget: usize) -> Outcome {
        let words = self.steps.len().div_ceil(64);
        let mut linearized = vec![0u64; words];
        let mut seen: HashSet<(Vec<u64>, Value)> = HashSet::new();
        let mut stack: Vec<(usize, Value)> = Vec::new();
        let mut state: Value = 0;
        let mut event = self.next[0];
        let end = |linearizable, steps| Outcome {
            linearizable,
            steps,
        };
        for steps in 0..budget {
            if self.remaining == 0 {
                return end(Some(true), steps);
            }
            let (op, is_call) = if event == NONE {
                (NONE, false)
            } else {
                self.events[event]
            };
            if is_call {
                if self.is_first_of_its_kind(op) {
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
                }
                event = self.next[event];
            } else {
                // A return (or the end) reached with its op not linearized: undo the last choice.
                let Some((op, before)) = stack.pop() else {
                    return end(Some(false), steps);
                };
                linearized[op / 64] &= !(1 << (op % 64));
                state = before;
                self.unlift(op);
                event = self.next[self.call_of[op]];
            }
        }
        end(None, budget)
    }
}
