//! `seccompProfile: Localhost`: a profile file in the OCI runtime spec's (and Docker's) JSON
//! form, read when the container is created and turned into a libseccomp filter:
//!
//! ```json
//! {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
//!  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
//!  "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}
//! ```
//!
//! Actions, architectures, comparisons and system call names are libseccomp's (`SCMP_ACT_*`,
//! `SCMP_ARCH_*`, `SCMP_CMP_*`); a name libseccomp does not know is an error naming it (runc
//! passes such names over, which would let a typo in a deny list pass silently). The
//! conditions of a rule (`args`) must all hold; when a rule compares one argument twice,
//! which one libseccomp rule cannot, each condition becomes a rule of its own and any one
//! suffices (as runc does).

use std::path::{Component, Path};
use std::str::FromStr;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use serde::{Deserialize, Serialize};

use super::{context, SeccompError};
use crate::runtime::linux::spec::Seccomp;

/// A profile as its file has it (kept in the container's spec for the shim).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    default_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default_errno_ret: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    architectures: Vec<String>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Vec<String>,
    /// Docker's older single-name form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    errno_ret: Option<u16>,
    #[serde(default)]
    args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

/// Reads profile `relative` under `root`.
pub fn load(root: &Path, relative: &str) -> Result<Seccomp, SeccompError> {
    let inside = Path::new(relative)
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if relative.is_empty() || !inside {
        return Err(SeccompError::OutsideRoot(relative.to_string()));
    }
    let path = root.join(relative);
    let text = std::fs::read(&path).map_err(|source| SeccompError::Read {
        path: path.clone(),
        source,
    })?;
    let profile = serde_json::from_slice(&text).map_err(|source| SeccompError::Parse {
        path: path.clone(),
        source,
    })?;
    Ok(Seccomp::Localhost { path, profile })
}

impl Profile {
    /// The profile's filter; `path` names the file in errors.
    pub(super) fn filter(&self, path: &Path) -> Result<ScmpFilterContext, SeccompError> {
        let default = action(&self.default_action, self.default_errno_ret, path)?;
        let build = |source| SeccompError::Build {
            what: "Localhost",
            source,
        };
        let mut ctx = context(default).map_err(build)?;
        for name in &self.architectures {
            let arch = ScmpArch::from_str(name).map_err(|_| SeccompError::Architecture {
                path: path.to_path_buf(),
                arch: name.clone(),
            })?;
            ctx.add_arch(arch).map_err(build)?;
        }
        for rule in &self.syscalls {
            let act = action(&rule.action, rule.errno_ret, path)?;
            for name in rule.names.iter().chain(&rule.name) {
                add(&mut ctx, rule, name, act, default, path)?;
            }
        }
        Ok(ctx)
    }
}

/// Adds `rule`'s conditions for system call `name` with action `act`.
fn add(
    ctx: &mut ScmpFilterContext,
    rule: &Rule,
    name: &str,
    act: ScmpAction,
    default: ScmpAction,
    path: &Path,
) -> Result<(), SeccompError> {
    let syscall = ScmpSyscall::from_name(name).map_err(|_| SeccompError::Syscall {
        path: path.to_path_buf(),
        name: name.to_string(),
    })?;
    let conditions = rule
        .args
        .iter()
        .map(compare)
        .collect::<Result<Vec<_>, String>>()
        .map_err(|reason| SeccompError::Arg {
            path: path.to_path_buf(),
            name: name.to_string(),
            reason,
        })?;
    // A rule that does what the default does changes nothing (libseccomp refuses it).
    if act == default {
        return Ok(());
    }
    let refused = |source| SeccompError::Rule {
        path: path.to_path_buf(),
        name: name.to_string(),
        source,
    };
    let mut indexes: Vec<u32> = rule.args.iter().map(|a| a.index).collect();
    indexes.sort_unstable();
    indexes.dedup();
    if indexes.len() == rule.args.len() {
        ctx.add_rule_conditional(act, syscall, &conditions)
            .map_err(refused)?;
    } else {
        for condition in conditions {
            ctx.add_rule_conditional(act, syscall, &[condition])
                .map_err(refused)?;
        }
    }
    Ok(())
}

/// `SCMP_ACT_*` with its errno (or trace message; EPERM when not given). `SCMP_ACT_NOTIFY`
/// needs a listener the runtime does not have.
fn action(name: &str, errno: Option<u16>, path: &Path) -> Result<ScmpAction, SeccompError> {
    let value = i32::from(errno.unwrap_or(libc::EPERM as u16));
    match ScmpAction::from_str(name, Some(value)) {
        Ok(ScmpAction::Notify) | Err(_) => Err(SeccompError::Action {
            path: path.to_path_buf(),
            action: name.to_string(),
        }),
        Ok(action) => Ok(action),
    }
}

/// An `args[]` entry; for `SCMP_CMP_MASKED_EQ`, the argument masked with `value` must equal
/// `valueTwo`.
fn compare(arg: &Arg) -> Result<ScmpArgCompare, String> {
    if arg.index > 5 {
        return Err(format!("argument index {} (0 to 5)", arg.index));
    }
    let op = ScmpCompareOp::from_str(&arg.op).map_err(|_| format!("unknown op {:?}", arg.op))?;
    Ok(match op {
        ScmpCompareOp::MaskedEqual(_) => ScmpArgCompare::new(
            arg.index,
            ScmpCompareOp::MaskedEqual(arg.value),
            arg.value_two,
        ),
        op => ScmpArgCompare::new(arg.index, op, arg.value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The profile `text` (as `p.json`) built; the filter in libseccomp's pseudo-code.
    fn build(text: &str) -> Result<(ScmpFilterContext, String), String> {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("p.json"), text).expect("write");
        let Seccomp::Localhost { path, profile } =
            load(dir.path(), "p.json").map_err(|e| e.to_string())?
        else {
            panic!("a Localhost profile");
        };
        let ctx = profile.filter(&path).map_err(|e| e.to_string())?;
        let pfc = dir.path().join("p.pfc");
        ctx.export_pfc(std::fs::File::create(&pfc).expect("pfc"))
            .expect("export");
        Ok((ctx, std::fs::read_to_string(&pfc).expect("read pfc")))
    }

    #[test]
    fn a_docker_style_profile_builds() {
        let (ctx, pfc) = build(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
                "syscalls": [
                  {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                  {"name": "reboot", "action": "SCMP_ACT_KILL_PROCESS"},
                  {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                  {"names": ["personality"], "action": "SCMP_ACT_LOG",
                   "args": [{"index": 0, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]},
                  {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                   "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"},
                            {"index": 1, "value": 30, "op": "SCMP_CMP_GT"}]}]}"#,
        )
        .expect("profile");
        for arch in [ScmpArch::X8664, ScmpArch::X86, ScmpArch::Aarch64] {
            assert!(ctx.is_arch_present(arch).expect("arch"), "{arch:?}");
        }
        assert_eq!(ctx.get_act_default().expect("default"), ScmpAction::Allow);
        for expected in [
            "\"mkdir\"",
            "\"mkdirat\"",
            "ERRNO(13)",
            "\"reboot\"",
            "KILL_PROCESS",
            "\"personality\"",
            "LOG",
            "\"kill\"",
            "ERRNO(1)",
        ] {
            assert!(pfc.contains(expected), "{expected} in {pfc}");
        }
        // A rule with the default action adds nothing.
        assert!(!pfc.contains("\"read\""), "{pfc}");
    }

    #[test]
    fn bad_profiles_say_why() {
        let err = |text: &str| build(text).expect_err(text);
        let rule = |rule: &str| {
            err(&format!(
                r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{rule}]}}"#
            ))
        };
        let e = rule(r#"{"names": ["read", "no_such_call"], "action": "SCMP_ACT_ERRNO"}"#);
        assert!(e.contains("unknown system call \"no_such_call\""), "{e}");
        let e = rule(r#"{"names": ["read"], "action": "SCMP_ACT_BOGUS"}"#);
        assert!(e.contains("action \"SCMP_ACT_BOGUS\""), "{e}");
        let e = rule(r#"{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}"#);
        assert!(e.contains("action \"SCMP_ACT_NOTIFY\""), "{e}");
        let e = rule(
            r#"{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}"#,
        );
        assert!(e.contains("personality: argument index 6"), "{e}");
        let e = rule(
            r#"{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_ABOUT"}]}"#,
        );
        assert!(e.contains("unknown op \"SCMP_CMP_ABOUT\""), "{e}");
        let e = err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}"#);
        assert!(e.contains("unknown architecture \"SCMP_ARCH_VAX\""), "{e}");
        let e = err(r#"{"defaultAction": "SCMP_ACT_SOMETIMES"}"#);
        assert!(e.contains("SCMP_ACT_SOMETIMES"), "{e}");
        let e = err("not json");
        assert!(e.contains("p.json"), "{e}");
    }

    #[test]
    fn profiles_outside_the_root_or_missing_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = |name: &str| load(dir.path(), name).expect_err(name).to_string();
        assert!(err("missing.json").contains("missing.json"));
        assert!(err("../etc/passwd").contains("relative path"));
        assert!(err("/etc/passwd").contains("relative path"));
        assert!(err("").contains("relative path"));
    }
}
