//! Seccomp filters as classic BPF: a compiled `Localhost` profile, or the RuntimeDefault
//! profile: the system calls Docker's and
//! containerd's default profiles deny to an unprivileged container (loading kernel modules,
//! rebooting, kexec, keyrings, bpf, perf events, mounting, new namespaces, clock setting,
//! reading other processes' memory, ...) fail with EPERM; `clone3` fails with ENOSYS so that
//! libc falls back to `clone`, whose namespace flags can be checked; system calls of another
//! ABI (x32, i386) fail. Everything else is allowed.

use libc::{sock_filter, sock_fprog};

use super::{seccomp_rules, ShimError, Step};
use crate::runtime::linux::seccomp_profile::{Action, Filter};
use crate::runtime::linux::spec::Seccomp;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// Offsets into `struct seccomp_data`: nr, arch, and the low word of the first argument.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0_LOW: u32 = 16;

/// The x32 ABI's system call numbers carry this bit.
#[cfg(target_arch = "x86_64")]
const X32_BIT: u32 = 0x4000_0000;

/// Namespace flags an unprivileged container may not pass to `clone`.
const NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u32;

#[cfg(target_arch = "x86_64")]
const ARCH_ONLY: &[libc::c_long] = &[libc::SYS_iopl, libc::SYS_ioperm, libc::SYS_uselib];
#[cfg(not(target_arch = "x86_64"))]
const ARCH_ONLY: &[libc::c_long] = &[];

/// System calls that fail with EPERM.
const DENIED: &[libc::c_long] = &[
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_kcmp,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_fsopen,
    libc::SYS_fsmount,
    libc::SYS_fsconfig,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_lookup_dcookie,
    libc::SYS_vhangup,
];

fn stmt(code: u32, k: u32) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The arch check every filter starts with: another ABI (i386, x32) fails with ENOSYS; then
/// the system call number is loaded.
fn prologue() -> Vec<sock_filter> {
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let mut p = vec![
        stmt(load, ARCH),
        jump(jeq, AUDIT_ARCH, 1, 0),
        stmt(RET, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        stmt(load, NR),
    ];
    #[cfg(target_arch = "x86_64")]
    p.extend([
        jump(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K, X32_BIT, 0, 1),
        stmt(RET, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
    ]);
    p
}

const RET: u32 = libc::BPF_RET | libc::BPF_K;

/// The RuntimeDefault program.
fn runtime_default() -> Vec<sock_filter> {
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let allow = stmt(RET, libc::SECCOMP_RET_ALLOW);
    let errno = |e: i32| stmt(RET, libc::SECCOMP_RET_ERRNO | e as u32);
    let mut p = prologue();
    p.extend([
        jump(jeq, libc::SYS_clone3 as u32, 0, 1),
        errno(libc::ENOSYS),
        jump(jeq, libc::SYS_clone as u32, 0, 4),
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, ARG0_LOW),
        jump(
            libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
            NAMESPACE_FLAGS,
            0,
            1,
        ),
        errno(libc::EPERM),
        allow,
    ]);
    for nr in DENIED.iter().chain(ARCH_ONLY) {
        p.extend([jump(jeq, *nr as u32, 0, 1), errno(libc::EPERM)]);
    }
    p.push(allow);
    p
}

/// The program of a compiled `Localhost` profile: the first rule for the call decides.
fn profile(filter: &Filter) -> Vec<sock_filter> {
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let mut p = prologue();
    for rule in &filter.rules {
        if rule.args.is_empty() {
            p.extend([jump(jeq, rule.nr, 0, 1), stmt(RET, ret(rule.action))]);
        } else {
            p.extend(seccomp_rules::block(rule, ret(rule.action)));
        }
    }
    p.push(stmt(RET, ret(filter.default)));
    p
}

fn ret(action: Action) -> u32 {
    match action {
        Action::Allow => libc::SECCOMP_RET_ALLOW,
        Action::Errno(e) => libc::SECCOMP_RET_ERRNO | u32::from(e),
        Action::KillThread => libc::SECCOMP_RET_KILL_THREAD,
        Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        Action::Trap => libc::SECCOMP_RET_TRAP,
        Action::Log => libc::SECCOMP_RET_LOG,
    }
}

/// Installs the container's filter (none when Unconfined) on the calling thread: after
/// `no_new_privs`, or while the shim still has CAP_SYS_ADMIN; it is inherited across fork
/// and exec.
pub fn apply(seccomp: &Seccomp) -> Result<(), ShimError> {
    let filter = match seccomp {
        Seccomp::Unconfined => return Ok(()),
        Seccomp::RuntimeDefault => runtime_default(),
        Seccomp::Profile(filter) => profile(filter),
    };
    let len = u16::try_from(filter.len()).map_err(|_| ShimError {
        step: format!("a seccomp filter of {} instructions", filter.len()),
        source: std::io::ErrorKind::InvalidInput.into(),
    })?;
    let prog = sock_fprog {
        len,
        filter: filter.as_ptr() as *mut sock_filter,
    };
    // SAFETY: `prog` points at `filter`, which lives across the call; the kernel copies it.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &prog as *const sock_fprog,
            0,
            0,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .step(|| "installing the seccomp filter".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::linux::seccomp_profile::{ArgCondition, Comparison, SyscallRule};

    fn jumps_stay_inside(p: &[sock_filter]) {
        for (i, f) in p.iter().enumerate() {
            if f.code as u32 & 0x07 == libc::BPF_JMP {
                assert!(i + 1 + (f.jt.max(f.jf) as usize) < p.len(), "jump at {i}");
            }
        }
    }

    #[test]
    fn jumps_stay_inside_the_program() {
        let p = runtime_default();
        jumps_stay_inside(&p);
        assert_eq!(p.last().map(|f| f.k), Some(libc::SECCOMP_RET_ALLOW));
        let p = profile(&Filter {
            default: Action::Errno(1),
            rules: vec![
                SyscallRule {
                    nr: 0,
                    args: vec![],
                    action: Action::Allow,
                },
                SyscallRule {
                    nr: 60,
                    args: vec![ArgCondition {
                        index: 0,
                        op: Comparison::Lt,
                        value: 3,
                        value_two: 0,
                    }],
                    action: Action::KillProcess,
                },
            ],
        });
        jumps_stay_inside(&p);
        assert_eq!(p.last().map(|f| f.k), Some(libc::SECCOMP_RET_ERRNO | 1));
    }
}
