//! The checker against the definition, on many small random histories: try every choice of
//! which unknown-outcome operations took effect and every order that respects real time.

use super::{check, Op, OpKind, Outcome, Verdict};

/// Whether some subset of the unknown-outcome ops and some order of the ops kept explain
/// every answer.
fn linearizable_by_definition(history: &[Op]) -> bool {
    let unknown: Vec<usize> = (0..history.len())
        .filter(|&i| history[i].outcome == Outcome::Unknown)
        .collect();
    (0..1u32 << unknown.len()).any(|subset| {
        let kept: Vec<&Op> = (0..history.len())
            .filter(|i| {
                unknown
                    .iter()
                    .position(|u| u == i)
                    .is_none_or(|bit| subset & (1 << bit) != 0)
            })
            .map(|i| &history[i])
            .collect();
        some_order(&kept, &mut vec![false; kept.len()], None)
    })
}

/// Depth-first over orders: an op may go next if no op still waiting returned before it began.
fn some_order(ops: &[&Op], done: &mut Vec<bool>, state: Option<String>) -> bool {
    if done.iter().all(|&d| d) {
        return true;
    }
    for i in 0..ops.len() {
        let blocked = (0..ops.len()).any(|j| {
            !done[j] && j != i && ops[j].outcome == Outcome::Ok && ops[j].completed < ops[i].invoked
        });
        if done[i] || blocked {
            continue;
        }
        let after = match &ops[i].kind {
            OpKind::Read(seen) => (*seen == state).then(|| state.clone()),
            OpKind::Write(value) => Some(Some(value.clone())),
            OpKind::Cas {
                expected,
                new,
                succeeded,
            } => {
                let applies = *expected == state;
                match (ops[i].outcome, succeeded) {
                    (Outcome::Ok, false) => (!applies).then(|| state.clone()),
                    _ => applies.then(|| Some(new.clone())),
                }
            }
        };
        if let Some(after) = after {
            done[i] = true;
            let found = some_order(ops, done, after);
            done[i] = false;
            if found {
                return true;
            }
        }
    }
    false
}

/// A random history of up to six ops on one key, some of unknown outcome: op `i` writes a
/// shared value ("a", "b", "c") or its own ("v{i}"), and reads and expects any of them.
fn random_history(rng: &mut u64) -> Vec<Op> {
    let mut below = |n: u64| {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng % n
    };
    let ops = 1 + below(6);
    let value = |v: u64| match v {
        0..=2 => ["a", "b", "c"][v as usize].to_string(),
        _ => format!("v{}", v - 3),
    };
    (0..ops)
        .map(|i| {
            let invoked = below(20);
            let mut op = Op {
                client: i as usize,
                key: "k".into(),
                kind: match below(3) {
                    0 => OpKind::Read((below(4) > 0).then(|| value(below(3 + ops)))),
                    1 => OpKind::Write(value(if below(2) == 0 { 3 + i } else { below(3) })),
                    _ => OpKind::Cas {
                        expected: (below(4) > 0).then(|| value(below(3 + ops))),
                        new: value(if below(2) == 0 { 3 + i } else { below(3) }),
                        succeeded: below(2) == 0,
                    },
                },
                invoked,
                completed: invoked + below(10),
                outcome: Outcome::Ok,
            };
            if !matches!(op.kind, OpKind::Read(_)) && below(3) == 0 {
                op.outcome = Outcome::Unknown;
                op.completed = u64::MAX;
            }
            op
        })
        .collect()
}

#[test]
fn the_checker_agrees_with_the_definition_on_small_random_histories() {
    let mut rng = 0x2545_F491_4F6C_DD1D;
    let (mut linearizable, mut not) = (0, 0);
    for _ in 0..10_000 {
        let h = random_history(&mut rng);
        let expected = linearizable_by_definition(&h);
        let verdict = check(&h, 1_000_000);
        assert!(!matches!(verdict, Verdict::Undecided { .. }), "{h:#?}");
        assert_eq!(verdict == Verdict::Linearizable, expected, "{h:#?}");
        if expected {
            linearizable += 1;
        } else {
            not += 1;
        }
    }
    // Both answers must be common for the comparison to mean something.
    assert!(linearizable > 1000 && not > 1000, "{linearizable} / {not}");
}
