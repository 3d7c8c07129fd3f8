//! A `Localhost` profile's rule with argument conditions as classic BPF. Arguments are 64-bit
//! and BPF loads 32 bits at a time, so each comparison looks at the high word, then the low.
//! A block expects the system call number in the accumulator and leaves it there when it
//! does not match (it ends by loading it again), so blocks follow each other freely.

use libc::sock_filter;

use crate::runtime::linux::seccomp_profile::{ArgCondition, Comparison, SyscallRule};

/// Where a jump goes: `n` instructions past the next one, or out of the block (no match).
#[derive(Clone, Copy)]
enum To {
    Skip(u8),
    NoMatch,
}

enum Insn {
    Stmt(u32, u32),
    Jump(u32, u32, To, To),
}

const LOAD: u32 = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
const JEQ: u32 = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
const JGT: u32 = libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K;
const JGE: u32 = libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K;
const AND: u32 = libc::BPF_ALU | libc::BPF_AND | libc::BPF_K;

/// `struct seccomp_data`: the number at 0, the arguments from 16 (little-endian words).
const NR: u32 = 0;
const ARGS: u32 = 16;

/// The block of `rule`, ending in `ret` of `action` when the number and all conditions match.
pub fn block(rule: &SyscallRule, action: u32) -> Vec<sock_filter> {
    let mut insns = vec![Insn::Jump(JEQ, rule.nr, To::Skip(0), To::NoMatch)];
    for condition in &rule.args {
        insns.extend(compare(condition));
    }
    insns.push(Insn::Stmt(libc::BPF_RET | libc::BPF_K, action));
    // Every `NoMatch` lands here, which reloads the number for the next block.
    insns.push(Insn::Stmt(LOAD, NR));
    let last = insns.len() - 1;
    insns
        .iter()
        .enumerate()
        .map(|(i, insn)| {
            let offset = |to: To| match to {
                To::Skip(n) => n,
                // A block has at most 6 conditions of 6 instructions each.
                To::NoMatch => u8::try_from(last - i - 1).unwrap_or(u8::MAX),
            };
            match *insn {
                Insn::Stmt(code, k) => sock_filter {
                    code: code as u16,
                    jt: 0,
                    jf: 0,
                    k,
                },
                Insn::Jump(code, k, jt, jf) => sock_filter {
                    code: code as u16,
                    jt: offset(jt),
                    jf: offset(jf),
                    k,
                },
            }
        })
        .collect()
}

/// Falls through when `condition` holds, else jumps out of the block.
fn compare(condition: &ArgCondition) -> Vec<Insn> {
    let low = ARGS + 8 * u32::from(condition.index);
    let high = low + 4;
    let split = |v: u64| ((v >> 32) as u32, v as u32);
    let (vh, vl) = split(condition.value);
    let next = To::Skip(0);
    let out = To::NoMatch;
    match condition.op {
        Comparison::Eq => vec![
            Insn::Stmt(LOAD, high),
            Insn::Jump(JEQ, vh, next, out),
            Insn::Stmt(LOAD, low),
            Insn::Jump(JEQ, vl, next, out),
        ],
        Comparison::MaskedEq => {
            let (wh, wl) = split(condition.value_two);
            vec![
                Insn::Stmt(LOAD, high),
                Insn::Stmt(AND, vh),
                Insn::Jump(JEQ, wh, next, out),
                Insn::Stmt(LOAD, low),
                Insn::Stmt(AND, vl),
                Insn::Jump(JEQ, wl, next, out),
            ]
        }
        Comparison::Ne => vec![
            Insn::Stmt(LOAD, high),
            Insn::Jump(JEQ, vh, next, To::Skip(2)),
            Insn::Stmt(LOAD, low),
            Insn::Jump(JEQ, vl, out, next),
        ],
        // high > vh, or high == vh and low > (or >=) vl.
        Comparison::Gt | Comparison::Ge => vec![
            Insn::Stmt(LOAD, high),
            Insn::Jump(JGT, vh, To::Skip(3), next),
            Insn::Jump(JEQ, vh, next, out),
            Insn::Stmt(LOAD, low),
            Insn::Jump(
                if condition.op == Comparison::Gt {
                    JGT
                } else {
                    JGE
                },
                vl,
                next,
                out,
            ),
        ],
        // Not (>=), not (>).
        Comparison::Lt | Comparison::Le => vec![
            Insn::Stmt(LOAD, high),
            Insn::Jump(JGT, vh, out, next),
            Insn::Jump(JEQ, vh, next, To::Skip(2)),
            Insn::Stmt(LOAD, low),
            Insn::Jump(
                if condition.op == Comparison::Lt {
                    JGE
                } else {
                    JGT
                },
                vl,
                out,
                next,
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::linux::seccomp_profile::Action;

    /// Runs the block's BPF on a system call `nr` with `args`: `Some(ret)` if it returned,
    /// `None` if it fell off the end (no match) with the number in the accumulator.
    fn run(block: &[sock_filter], nr: u32, args: [u64; 6]) -> Option<u32> {
        let word = |offset: u32| -> u32 {
            if offset == NR {
                return nr;
            }
            let arg = args[((offset - ARGS) / 8) as usize];
            if (offset - ARGS).is_multiple_of(8) {
                arg as u32
            } else {
                (arg >> 32) as u32
            }
        };
        let (mut pc, mut acc) = (0usize, nr);
        while pc < block.len() {
            let f = block[pc];
            let code = u32::from(f.code);
            pc += 1;
            match code {
                LOAD => acc = word(f.k),
                AND => acc &= f.k,
                c if c == libc::BPF_RET | libc::BPF_K => return Some(f.k),
                JEQ | JGT | JGE => {
                    let taken = match code {
                        JEQ => acc == f.k,
                        JGT => acc > f.k,
                        _ => acc >= f.k,
                    };
                    pc += usize::from(if taken { f.jt } else { f.jf });
                }
                other => panic!("unexpected instruction {other:#x}"),
            }
        }
        assert_eq!(acc, nr, "the number is reloaded");
        None
    }

    #[test]
    fn comparisons_look_at_all_64_bits() {
        let big = 0x1_0000_0005_u64;
        type Case<'a> = (Comparison, u64, u64, &'a [(u64, bool)]);
        let cases: [Case; 7] = [
            (
                Comparison::Eq,
                big,
                0,
                &[(big, true), (5, false), (big + 1, false)],
            ),
            (
                Comparison::Ne,
                big,
                0,
                &[(big, false), (5, true), (0, true)],
            ),
            (
                Comparison::Gt,
                big,
                0,
                &[(big + 1, true), (big, false), (6, false), (u64::MAX, true)],
            ),
            (
                Comparison::Ge,
                big,
                0,
                &[(big, true), (big - 1, false), (0x2_0000_0000, true)],
            ),
            (
                Comparison::Lt,
                big,
                0,
                &[
                    (big - 1, true),
                    (big, false),
                    (0x2_0000_0000, false),
                    (9, true),
                ],
            ),
            (
                Comparison::Le,
                big,
                0,
                &[(big, true), (big + 1, false), (0, true)],
            ),
            (
                Comparison::MaskedEq,
                0xff_0000_00ff,
                0x08_0000_0001,
                &[
                    (0x1208_0000_1201, true),
                    (0x1208_0000_1202, false),
                    (0x1209_0000_1201, false),
                ],
            ),
        ];
        for (op, value, value_two, checks) in cases {
            let rule = SyscallRule {
                nr: 62,
                args: vec![ArgCondition {
                    index: 1,
                    op,
                    value,
                    value_two,
                }],
                action: Action::Allow,
            };
            let block = block(&rule, 7);
            for (arg, matches) in checks {
                let got = run(&block, 62, [0, *arg, 0, 0, 0, 0]);
                assert_eq!(
                    got.is_some(),
                    *matches,
                    "{op:?} {value:#x} against {arg:#x}"
                );
            }
            assert_eq!(
                run(&block, 63, [0, value, 0, 0, 0, 0]),
                None,
                "another call"
            );
        }
    }
}
