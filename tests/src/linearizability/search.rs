//! Wing & Gong's search over the ways to order one key's concurrent operations, with Lowe's
//! memoization of (linearized set, state).

use std::collections::HashSet;

use super::unknowns::Unknowns;

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

/// The definite operations' call and return events in time order, as a doubly linked list
/// over `events` (index 0 is the head sentinel), so that linearized operations can be lifted
/// out and put back; the operations of unknown outcome, which have no return, wait apart in
/// `unknowns`.
pub(super) struct Search {
    steps: Vec<Step>,
    /// `(op, is_call)` and the time per event; event 0 is the sentinel.
    events: Vec<(usize, bool)>,
    times: Vec<u64>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Each definite op's call and return event.
    call_of: Vec<usize>,
    return_of: Vec<usize>,
    /// Definite operations not yet linearized.
    remaining: usize,
    unknowns: Unknowns,
}

/// Where the search is among the candidates to linearize next: first the kinds of unknown
/// outcome that may apply in the current state (by index), then the list of events.
#[derive(Clone, Copy)]
enum Cursor {
    Unknown(usize),
    Event(usize),
}

const NONE: usize = usize::MAX;

impl Search {
    pub(super) fn new(ops: &[Candidate]) -> Search {
        // (time, calls before returns at equal times, op, is_call)
        let mut timeline: Vec<(u64, u8, usize, bool)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            if let Some(deadline) = op.deadline {
                timeline.push((op.invoked, 0, i, true));
                timeline.push((deadline, 1, i, false));
            }
        }
        timeline.sort_unstable();
        let mut events = vec![(NONE, false)];
        let mut times = vec![0];
        let mut call_of = vec![NONE; ops.len()];
        let mut return_of = vec![NONE; ops.len()];
        for (time, _, op, is_call) in timeline {
            if is_call {
                call_of[op] = events.len();
            } else {
                return_of[op] = events.len();
            }
            events.push((op, is_call));
            times.push(time);
        }
        let n = events.len();
        Search {
            steps: ops.iter().map(|op| op.step).collect(),
            next: (1..=n).map(|i| if i == n { NONE } else { i }).collect(),
            prev: (0..n).map(|i| i.wrapping_sub(1)).collect(),
            events,
            times,
            call_of,
            remaining: ops.iter().filter(|op| op.deadline.is_some()).count(),
            return_of,
            unknowns: Unknowns::new(ops),
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

    /// Takes a definite op's call and return out of the list.
    fn lift(&mut self, op: usize) {
        self.unlink(self.call_of[op]);
        self.unlink(self.return_of[op]);
        self.remaining -= 1;
    }

    /// Puts them back (in the reverse order of `lift`).
    fn unlift(&mut self, op: usize) {
        self.relink(self.return_of[op]);
        self.relink(self.call_of[op]);
        self.remaining += 1;
    }

    /// The time of the first return left: an operation of unknown outcome invoked later
    /// cannot go before the definite operation returning then.
    fn barrier(&self) -> u64 {
        let mut event = self.next[0];
        while event != NONE {
            if !self.events[event].1 {
                return self.times[event];
            }
            event = self.next[event];
        }
        u64::MAX
    }

    /// Searches for an order, taking at most `budget` steps (candidates considered).
    pub(super) fn run(mut self, budget: usize) -> Outcome {
        let words = self.steps.len().div_ceil(64);
        let mut linearized = vec![0u64; words];
        let mut seen: HashSet<(Vec<u64>, Value)> = HashSet::new();
        // The ops linearized, each with the state before it and where its choice was made.
        let mut stack: Vec<(usize, Value, Cursor)> = Vec::new();
        let mut state: Value = 0;
        let mut barrier = self.barrier();
        let mut cursor = Cursor::Unknown(0);
        let end = |linearizable, steps| Outcome {
            linearizable,
            steps,
        };
        for steps in 0..budget {
            if self.remaining == 0 {
                return end(Some(true), steps);
            }
            let (op, kind) = match cursor {
                Cursor::Unknown(i) => match self.unknowns.kind_for(state, i) {
                    None => {
                        cursor = Cursor::Event(self.next[0]);
                        continue;
                    }
                    Some(kind) => (self.unknowns.next_of(kind, barrier), Some(kind)),
                },
                Cursor::Event(NONE) => (None, None),
                Cursor::Event(event) => match self.events[event] {
                    (op, true) => (Some(op), None),
                    (_, false) => (None, None),
                },
            };
            let at_return = op.is_none() && matches!(cursor, Cursor::Event(_));
            if let Some(op) = op {
                if let Some(after) = self.steps[op].apply(state) {
                    linearized[op / 64] |= 1 << (op % 64);
                    if seen.insert((linearized.clone(), after)) {
                        stack.push((op, state, cursor));
                        state = after;
                        match kind {
                            Some(kind) => self.unknowns.take(kind),
                            None => {
                                self.lift(op);
                                barrier = self.barrier();
                            }
                        }
                        cursor = Cursor::Unknown(0);
                        continue;
                    }
                    linearized[op / 64] &= !(1 << (op % 64));
                }
            }
            if !at_return {
                cursor = self.advance(cursor);
                continue;
            }
            // A return (or the end) reached with its op not linearized: undo the last choice.
            let Some((op, before, at)) = stack.pop() else {
                return end(Some(false), steps);
            };
            linearized[op / 64] &= !(1 << (op % 64));
            match at {
                Cursor::Unknown(i) => {
                    let kind = self.unknowns.kind_for(before, i).expect("the kind chosen");
                    self.unknowns.put_back(kind);
                }
                Cursor::Event(_) => {
                    self.unlift(op);
                    barrier = self.barrier();
                }
            }
            state = before;
            cursor = self.advance(at);
        }
        end(None, budget)
    }

    /// The candidate after `cursor`.
    fn advance(&self, cursor: Cursor) -> Cursor {
        match cursor {
            Cursor::Unknown(i) => Cursor::Unknown(i + 1),
            Cursor::Event(event) => Cursor::Event(self.next[event]),
        }
    }
}
