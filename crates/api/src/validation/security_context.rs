//! Pod and container security contexts: capability names, `allowPrivilegeEscalation` against
//! `privileged` and an added `SYS_ADMIN` (as Kubernetes refuses them), `seccompProfile` and
//! `procMount`.

use k8s_openapi::api::core::v1::{SeccompProfile, SecurityContext};

use super::{check_relative, Errors, FieldErrorReason};
use crate::capabilities::{self, Capability};

/// `SYS_ADMIN`'s number.
const SYS_ADMIN: u32 = 21;

/// Checks a container's `securityContext` (`field` is the container's path).
pub fn validate_container(context: &SecurityContext, field: &str, errors: &mut Errors) {
    let field = format!("{field}.securityContext");
    let mut sys_admin_added = false;
    if let Some(caps) = context.capabilities.as_ref() {
        for (list, names) in [("add", &caps.add), ("drop", &caps.drop)] {
            for (i, name) in names.iter().flatten().enumerate() {
                match capabilities::parse(name) {
                    Some(Capability::One(SYS_ADMIN)) if list == "add" => sys_admin_added = true,
                    Some(_) => {}
                    None => errors.invalid(
                        format!("{field}.capabilities.{list}[{i}]"),
                        name,
                        "not a Linux capability (such as NET_RAW or CAP_NET_RAW, or ALL)",
                    ),
                }
            }
        }
    }
    if context.allow_privilege_escalation == Some(false) {
        let escalation = format!("{field}.allowPrivilegeEscalation");
        if context.privileged == Some(true) {
            errors.invalid(
                &escalation,
                false,
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            );
        }
        if sys_admin_added {
            errors.invalid(
                &escalation,
                false,
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.add` CAP_SYS_ADMIN",
            );
        }
    }
    if let Some(profile) = context.seccomp_profile.as_ref() {
        validate_seccomp(profile, &format!("{field}.seccompProfile"), errors);
    }
    match context.proc_mount.as_deref() {
        None | Some("Default") => {}
        // Kubernetes allows an unmasked /proc only in a user namespace (`hostUsers: false`),
        // which Skiff does not run: without one it is a way out to the host.
        Some("Unmasked") => errors.invalid(
            format!("{field}.procMount"),
            "Unmasked",
            "`hostUsers` must be false to use `Unmasked`, and Skiff runs no user namespaces",
        ),
        Some(mount) => errors.push(
            format!("{field}.procMount"),
            FieldErrorReason::NotSupported,
            format!("{mount:?}: supported values: \"Default\", \"Unmasked\""),
        ),
    }
}

/// Checks a `seccompProfile` at `field`: a known type, and a relative `localhostProfile`
/// exactly when the type is `Localhost`.
pub fn validate_seccomp(profile: &SeccompProfile, field: &str, errors: &mut Errors) {
    let localhost = profile.localhost_profile.as_deref();
    match profile.type_.as_str() {
        "Localhost" => match localhost {
            None | Some("") => errors.required(format!("{field}.localhostProfile")),
            Some(path) => {
                if let Err(reason) = check_relative(path) {
                    errors.invalid(format!("{field}.localhostProfile"), path, reason);
                }
            }
        },
        "RuntimeDefault" | "Unconfined" => {
            if localhost.is_some() {
                errors.push(
                    format!("{field}.localhostProfile"),
                    FieldErrorReason::Forbidden,
                    "can only be set when seccomp type is Localhost",
                );
            }
        }
        other => errors.push(
            format!("{field}.type"),
            FieldErrorReason::NotSupported,
            format!(
                "{other:?}: supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\""
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::resources::by_name;
    use crate::validation::validate;

    /// The errors of a pod whose one container has `context` (and the pod `pod_context`).
    fn errors(context: Value, pod_context: Value) -> Vec<String> {
        let pod = json!({"metadata": {"name": "p"}, "spec": {
            "securityContext": pod_context,
            "containers": [{"name": "a", "image": "busybox", "securityContext": context}]
        }});
        match validate(by_name("pod").expect("kind"), &pod) {
            Ok(()) => vec![],
            Err(errs) => errs.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn known_capabilities_and_profiles_are_valid() {
        let context = json!({
            "capabilities": {"add": ["NET_ADMIN", "CAP_SYS_TIME", "net_raw"], "drop": ["ALL"]},
            "allowPrivilegeEscalation": false,
            "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/audit.json"},
            "procMount": "Default"
        });
        let pod = json!({"seccompProfile": {"type": "RuntimeDefault"}});
        assert_eq!(errors(context, pod), Vec::<String>::new());
        let privileged = json!({"privileged": true, "allowPrivilegeEscalation": true,
            "capabilities": {"add": ["SYS_ADMIN"]}});
        assert_eq!(errors(privileged, json!({})), Vec::<String>::new());
    }

    #[test]
    fn an_unknown_capability_names_its_list_and_index() {
        let context = json!({"capabilities": {"add": ["NET_RAW", "NET_FOO"], "drop": ["CAP_ALL"]}});
        assert_eq!(
            errors(context, json!({})),
            [
                "spec.containers[0].securityContext.capabilities.add[1]: Invalid value: \"NET_FOO\": \
                 not a Linux capability (such as NET_RAW or CAP_NET_RAW, or ALL)",
                "spec.containers[0].securityContext.capabilities.drop[0]: Invalid value: \"CAP_ALL\": \
                 not a Linux capability (such as NET_RAW or CAP_NET_RAW, or ALL)",
            ]
        );
    }

    #[test]
    fn no_escalation_conflicts_with_privileged_and_sys_admin() {
        let field =
            "spec.containers[0].securityContext.allowPrivilegeEscalation: Invalid value: false";
        let privileged = json!({"privileged": true, "allowPrivilegeEscalation": false});
        assert_eq!(
            errors(privileged, json!({})),
            [format!(
                "{field}: cannot set `allowPrivilegeEscalation` to false and `privileged` to true"
            )]
        );
        for name in ["SYS_ADMIN", "CAP_SYS_ADMIN"] {
            let admin = json!({"allowPrivilegeEscalation": false,
                "capabilities": {"add": [name]}});
            assert_eq!(
                errors(admin, json!({})),
                [format!(
                    "{field}: cannot set `allowPrivilegeEscalation` to false and `capabilities.add` CAP_SYS_ADMIN"
                )]
            );
        }
    }

    #[test]
    fn an_unmasked_proc_needs_a_user_namespace() {
        assert_eq!(
            errors(json!({"procMount": "Unmasked"}), json!({})),
            [
                "spec.containers[0].securityContext.procMount: Invalid value: \"Unmasked\": \
              `hostUsers` must be false to use `Unmasked`, and Skiff runs no user namespaces"
            ]
        );
    }

    #[test]
    fn seccomp_profiles_and_proc_mount_name_the_field() {
        let errs = errors(
            json!({"seccompProfile": {"type": "Localhost"}, "procMount": "Hidden"}),
            json!({"seccompProfile": {"type": "Custom"}}),
        );
        assert_eq!(
            errs,
            [
                "spec.containers[0].securityContext.seccompProfile.localhostProfile: Required value",
                "spec.containers[0].securityContext.procMount: Unsupported value: \"Hidden\": \
                 supported values: \"Default\", \"Unmasked\"",
                "spec.securityContext.seccompProfile.type: Unsupported value: \"Custom\": \
                 supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\"",
            ]
        );
        let errs = errors(
            json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "../etc/x.json"}}),
            json!({"seccompProfile": {"type": "Unconfined", "localhostProfile": "x.json"}}),
        );
        assert_eq!(
            errs,
            [
                "spec.containers[0].securityContext.seccompProfile.localhostProfile: Invalid value: \
                 \"../etc/x.json\": must not contain '..'",
                "spec.securityContext.seccompProfile.localhostProfile: Forbidden: \
                 can only be set when seccomp type is Localhost",
            ]
        );
    }
}
