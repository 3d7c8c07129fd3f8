//! Seccomp filters of Linux containers, built with libseccomp as runc, crun and youki build
//! theirs: libseccomp resolves system call names, compiles rules and argument conditions to
//! BPF, and checks the architecture of every call. A filter holds the native architecture
//! (and those a `Localhost` profile lists); a call of any other ABI (i386 or x32 on x86_64)
//! fails with ENOSYS.
//!
//! A filter is built twice: when the container is created (so a bad profile fails the create
//! with a reason the pod shows), and by the shim before it forks the container's process,
//! which loads it (see `shim::seccomp`).

mod profile;
mod runtime_default;

use std::path::PathBuf;

use libseccomp::{ScmpAction, ScmpFilterContext};

pub use profile::{load, Profile};

use super::spec::Seccomp;

/// Why a seccomp filter cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp profile {0:?} must be a relative path inside the profile root")]
    OutsideRoot(String),
    #[error("seccomp profile {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("seccomp profile {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("seccomp profile {}: unknown or unsupported action {action:?}", path.display())]
    Action { path: PathBuf, action: String },
    #[error("seccomp profile {}: unknown system call {name:?}", path.display())]
    Syscall { path: PathBuf, name: String },
    #[error("seccomp profile {}: unknown architecture {arch:?}", path.display())]
    Architecture { path: PathBuf, arch: String },
    #[error("seccomp profile {}: bad argument condition of {name}: {reason}", path.display())]
    Arg {
        path: PathBuf,
        name: String,
        reason: String,
    },
    #[error("seccomp profile {}: the rule for {name}: {source}", path.display())]
    Rule {
        path: PathBuf,
        name: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("building the {what} seccomp filter: {source}")]
    Build {
        what: &'static str,
        #[source]
        source: libseccomp::error::SeccompError,
    },
}

/// The filter a container's processes run under (`None` when Unconfined), ready to load.
pub fn filter(seccomp: &Seccomp) -> Result<Option<ScmpFilterContext>, SeccompError> {
    match seccomp {
        Seccomp::Unconfined => Ok(None),
        Seccomp::RuntimeDefault => runtime_default::filter().map(Some),
        Seccomp::Localhost { path, profile } => profile.filter(path).map(Some),
    }
}

/// An empty filter of the native architecture with `default` for every call. Loading it does
/// not set no_new_privs: the shim sets that itself when the container asks for it, and
/// otherwise loads the filter while it still has CAP_SYS_ADMIN (as runc does).
fn context(default: ScmpAction) -> Result<ScmpFilterContext, libseccomp::error::SeccompError> {
    let mut ctx = ScmpFilterContext::new(default)?;
    ctx.set_act_badarch(ScmpAction::Errno(libc::ENOSYS))?;
    ctx.set_ctl_nnp(false)?;
    Ok(ctx)
}
