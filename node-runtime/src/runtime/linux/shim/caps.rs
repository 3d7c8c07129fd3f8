//! Capabilities: the bounding set is cut to the container's set (the default Docker and
//! containerd give, with its security context's `add` and `drop`), so the process exec'd as
//! root has only these; a process of another user has none, as with containerd.

use super::{ShimError, Step};

/// Drops every capability outside `keep` from the bounding set.
pub fn limit_bounding_set(keep: &[u32]) -> Result<(), ShimError> {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    for cap in (0..=last).filter(|c| !keep.contains(c)) {
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
