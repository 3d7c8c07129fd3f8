//! The RuntimeDefault filter: the system calls Docker's and containerd's default profiles deny
//! to an unprivileged container (loading kernel modules, rebooting, kexec, keyrings, bpf, perf
//! events, mounting, new namespaces, clock setting, reading other processes' memory, ...) fail
//! with EPERM, and so does `clone` with a namespace flag; `clone3` fails with ENOSYS so that
//! libc falls back to `clone`, whose flags a filter can see. Everything else is allowed.

use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};

use super::{context, SeccompError};

/// System calls that fail with EPERM (`iopl`, `ioperm` and `uselib` exist on x86 only;
/// libseccomp leaves them out elsewhere).
const DENIED: &[&str] = &[
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "init_module",
    "finit_module",
    "delete_module",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
    "acct",
    "quotactl",
    "syslog",
    "kcmp",
    "process_vm_readv",
    "process_vm_writev",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "mount",
    "umount2",
    "pivot_root",
    "unshare",
    "setns",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "lookup_dcookie",
    "vhangup",
    "iopl",
    "ioperm",
    "uselib",
];

/// Namespace flags an unprivileged container may not pass to `clone`.
const NAMESPACE_FLAGS: [libc::c_int; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// The argument of `clone` that holds its flags (s390 swaps the first two).
const CLONE_FLAGS_ARG: u32 = if cfg!(target_arch = "s390x") { 1 } else { 0 };

/// The RuntimeDefault filter.
pub fn filter() -> Result<ScmpFilterContext, SeccompError> {
    let build = |source| SeccompError::Build {
        what: "RuntimeDefault",
        source,
    };
    let mut ctx = context(ScmpAction::Allow).map_err(build)?;
    let eperm = ScmpAction::Errno(libc::EPERM);
    for name in DENIED {
        ctx.add_rule(eperm, ScmpSyscall::from_name(name).map_err(build)?)
            .map_err(build)?;
    }
    let clone3 = ScmpSyscall::from_name("clone3").map_err(build)?;
    ctx.add_rule(ScmpAction::Errno(libc::ENOSYS), clone3)
        .map_err(build)?;
    // libseccomp ORs rules: one per flag, each "flags & FLAG == FLAG".
    let clone = ScmpSyscall::from_name("clone").map_err(build)?;
    for flag in NAMESPACE_FLAGS {
        let flag = flag as u64;
        let set = ScmpArgCompare::new(CLONE_FLAGS_ARG, ScmpCompareOp::MaskedEqual(flag), flag);
        ctx.add_rule_conditional(eperm, clone, &[set])
            .map_err(build)?;
    }
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set in the process that loads the filter and probes it.
    const PROBE: &str = "SKIFF_SECCOMP_PROBE";

    #[test]
    fn it_builds_with_every_call_known_to_libseccomp() {
        let ctx = filter().expect("RuntimeDefault");
        assert_eq!(ctx.get_act_default().expect("default"), ScmpAction::Allow);
        assert_eq!(
            ctx.get_act_badarch().expect("bad arch"),
            ScmpAction::Errno(libc::ENOSYS)
        );
        assert!(!ctx.get_ctl_nnp().expect("nnp"));
    }

    /// The errno of a raw system call (0 when it succeeded); a child it made exits at once.
    fn errno_of(nr: libc::c_long, args: [libc::c_long; 2]) -> i32 {
        // SAFETY: the calls probed take integer arguments or a null pointer.
        let rc = unsafe { libc::syscall(nr, args[0], args[1], 0, 0, 0) };
        if rc == 0 && nr == libc::SYS_clone {
            // SAFETY: the clone's child leaves without running anything of the test's.
            unsafe { libc::_exit(0) }
        }
        if rc >= 0 {
            if nr == libc::SYS_clone {
                // SAFETY: reaps the clone's child.
                unsafe { libc::waitpid(rc as i32, std::ptr::null_mut(), 0) };
            }
            return 0;
        }
        std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
    }

    /// Runs in the child process: loads the filter and checks what it refuses.
    fn probe() {
        // SAFETY: prctl with integer arguments only.
        assert_eq!(
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) },
            0
        );
        filter().expect("RuntimeDefault").load().expect("load");
        let sigchld = libc::c_long::from(libc::SIGCHLD);
        let newuser = libc::c_long::from(libc::CLONE_NEWUSER);
        let newnet = libc::c_long::from(libc::CLONE_NEWNET);
        assert_eq!(errno_of(libc::SYS_unshare, [newuser, 0]), libc::EPERM);
        assert_eq!(errno_of(libc::SYS_reboot, [0, 0]), libc::EPERM);
        assert_eq!(errno_of(libc::SYS_clone3, [0, 0]), libc::ENOSYS);
        assert_eq!(
            errno_of(libc::SYS_clone, [newuser | newnet | sigchld, 0]),
            libc::EPERM
        );
        assert_eq!(
            errno_of(libc::SYS_clone, [newnet | sigchld, 0]),
            libc::EPERM
        );
        assert_eq!(errno_of(libc::SYS_clone, [sigchld, 0]), 0, "a plain fork");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            errno_of(libc::SYS_getpid | 0x4000_0000, [0, 0]),
            libc::ENOSYS,
            "an x32 call"
        );
        println!("PROBED");
    }

    #[test]
    fn the_filter_refuses_what_it_should_and_allows_the_rest() {
        if std::env::var_os(PROBE).is_some() {
            return probe();
        }
        // A filter stays with the process: load it in a copy of this test binary.
        let module = module_path!().split_once("::").map_or("", |(_, m)| m);
        let name = format!("{module}::the_filter_refuses_what_it_should_and_allows_the_rest");
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([name.as_str(), "--exact", "--test-threads=1", "--nocapture"])
            .env(PROBE, "1")
            .output()
            .expect("run the probe");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("PROBED"), "{text}");
    }
}
