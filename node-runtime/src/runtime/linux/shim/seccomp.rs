//! The RuntimeDefault seccomp profile, as a classic BPF filter: the system calls Docker's and
//! containerd's default profiles deny to an unprivileged container (loading kernel modules,
//! rebooting, kexec, keyrings, bpf, perf events, mounting, new namespaces, clock setting,
//! reading other processes' memory, ...) fail with EPERM; `clone3` fails with ENOSYS so that
//! libc falls back to `clone`, whose namespace flags can be checked; system calls of another
//! ABI (x32, i386) fail. Everything else is allowed.

use libc::{sock_filter, sock_fprog};

use super::{ShimError, Step};

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

/// The filter program.
fn program() -> Vec<sock_filter> {
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    let allow = stmt(ret, libc::SECCOMP_RET_ALLOW);
    let errno = |e: i32| stmt(ret, libc::SECCOMP_RET_ERRNO | e as u32);
    let mut p = vec![
        stmt(load, ARCH),
        jump(jeq, AUDIT_ARCH, 1, 0),
        errno(libc::ENOSYS),
        stmt(load, NR),
    ];
    #[cfg(target_arch = "x86_64")]
    p.extend([
        jump(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K, X32_BIT, 0, 1),
        errno(libc::ENOSYS),
    ]);
    p.extend([
        jump(jeq, libc::SYS_clone3 as u32, 0, 1),
        errno(libc::ENOSYS),
        jump(jeq, libc::SYS_clone as u32, 0, 4),
        stmt(load, ARG0_LOW),
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

/// Installs the filter on the calling thread (after `no_new_privs`); it is inherited across
/// fork and exec.
pub fn apply_runtime_default() -> Result<(), ShimError> {
    let filter = program();
    let prog = sock_fprog {
        len: filter.len() as u16,
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

    #[test]
    fn jumps_stay_inside_the_program() {
        let p = program();
        for (i, f) in p.iter().enumerate() {
            if f.code as u32 & 0x07 == libc::BPF_JMP {
                assert!(i + 1 + (f.jt.max(f.jf) as usize) < p.len(), "jump at {i}");
            }
        }
        assert_eq!(p.last().map(|f| f.k), Some(libc::SECCOMP_RET_ALLOW));
    }
}
