//! Capabilities: a container keeps the default set Docker and containerd give (the bounding
//! set is cut to it, so the process exec'd as root has only these), unless privileged.

use super::{ShimError, Step};

/// CAP_CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE,
/// NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP.
pub const DEFAULT: [u32; 14] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

/// Drops every capability outside [`DEFAULT`] from the bounding set.
pub fn drop_to_default() -> Result<(), ShimError> {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    for cap in (0..=last).filter(|c| !DEFAULT.contains(c)) {
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .step(|| format!("dropping capability {cap}"));
        }
    }
    Ok(())
}

/// Sets no_new_privs: setuid binaries and file capabilities grant nothing after exec.
pub fn no_new_privs() -> Result<(), ShimError> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).step(|| "setting no_new_privs".into());
    }
    Ok(())
}
