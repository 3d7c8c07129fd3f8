//! A container's [`Hardening`] from its security context, resolved when it is created (so a
//! bad capability name or seccomp profile fails the create with a reason the pod shows).

use std::path::Path;

use super::seccomp_profile::{self, ProfileError};
use super::spec::{Hardening, Seccomp};
use crate::runtime::{SeccompProfile, SecurityContext};

/// Why a security context cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum HardeningError {
    #[error("securityContext.capabilities: {0}")]
    Capability(#[from] skiff_api::capabilities::UnknownCapability),
    #[error(transparent)]
    Seccomp(#[from] ProfileError),
}

/// The confinement `context` asks for: the default capability set with `add` and `drop`,
/// no_new_privs only when `allowPrivilegeEscalation` is false (as Kubernetes and containerd
/// do), the seccomp profile (a `Localhost` one read from `profile_root`), and masked /proc
/// paths unless `procMount: Unmasked`.
pub fn resolve(
    context: &SecurityContext,
    profile_root: &Path,
) -> Result<Hardening, HardeningError> {
    let capabilities =
        skiff_api::capabilities::resolve(&context.capabilities_add, &context.capabilities_drop)?;
    let seccomp = match &context.seccomp {
        SeccompProfile::RuntimeDefault => Seccomp::RuntimeDefault,
        SeccompProfile::Unconfined => Seccomp::Unconfined,
        SeccompProfile::Localhost(file) => {
            Seccomp::Profile(seccomp_profile::load(profile_root, file)?)
        }
    };
    Ok(Hardening {
        capabilities,
        no_new_privs: context.allow_privilege_escalation == Some(false),
        seccomp,
        mask_paths: !context.unmasked_proc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_new_privs_only_when_escalation_is_refused() {
        let root = Path::new("/nonexistent");
        let mut context = SecurityContext::default();
        let default = resolve(&context, root).expect("default");
        assert!(!default.no_new_privs && default.mask_paths);
        assert_eq!(default.seccomp, Seccomp::RuntimeDefault);
        assert_eq!(default.capabilities, skiff_api::capabilities::DEFAULT);
        context.allow_privilege_escalation = Some(true);
        assert!(!resolve(&context, root).expect("true").no_new_privs);
        context.allow_privilege_escalation = Some(false);
        assert!(resolve(&context, root).expect("false").no_new_privs);
        context.capabilities_add = vec!["NET_FOO".into()];
        assert!(resolve(&context, root)
            .expect_err("unknown")
            .to_string()
            .contains("\"NET_FOO\" is not a Linux capability"));
        context.capabilities_add.clear();
        context.seccomp = SeccompProfile::Localhost("missing.json".into());
        assert!(resolve(&context, root)
            .expect_err("missing")
            .to_string()
            .contains("/nonexistent/missing.json"));
    }
}
