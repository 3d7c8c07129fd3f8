//! The container's seccomp filter in the shim: built with libseccomp (see
//! [`crate::runtime::linux::seccomp`]) before the shim forks the container's process, which is
//! sound as the shim is single-threaded; loaded by that process just before it execs.

use libseccomp::ScmpFilterContext;

use super::{ShimError, Step};
use crate::runtime::linux::seccomp;
use crate::runtime::linux::spec::ContainerSpec;

/// The filter `spec`'s processes run under: none when privileged or Unconfined.
pub fn prepare(spec: &ContainerSpec) -> Result<Option<ScmpFilterContext>, ShimError> {
    if spec.privileged {
        return Ok(None);
    }
    seccomp::filter(&spec.hardening.seccomp)
        .map_err(std::io::Error::other)
        .step(|| "building the seccomp filter".into())
}

/// Installs `filter` on the calling thread: after `no_new_privs`, or while the process still
/// has CAP_SYS_ADMIN; it is inherited across fork and exec.
pub fn load(filter: &ScmpFilterContext) -> Result<(), ShimError> {
    filter
        .load()
        .map_err(std::io::Error::other)
        .step(|| "installing the seccomp filter".into())
}
