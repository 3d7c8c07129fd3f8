//! `seccompProfile: Localhost`: a profile file in the OCI runtime spec's (and Docker's) JSON
//! form, read when the container is created and turned into a [`Filter`] the shim installs:
//!
//! ```json
//! {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
//!  "architectures": ["SCMP_ARCH_X86_64"],
//!  "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}
//! ```
//!
//! System call names this kernel table does not know are passed over (as runc does); rules
//! may hold argument conditions (`args`: `index`, `value`, `valueTwo`, `op`), all of which
//! must hold. A profile on a machine other than x86_64 is refused.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a filter does with a system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Allow,
    Errno(u16),
    KillThread,
    KillProcess,
    Trap,
    Log,
}

/// A compiled profile: the first rule that matches a system call decides, else `default`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub default: Action,
    pub rules: Vec<SyscallRule>,
}

/// One system call's rule: its action applies when every condition holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallRule {
    pub nr: u32,
    pub args: Vec<ArgCondition>,
    pub action: Action,
}

/// A condition on one 64-bit argument (`args[]` of the profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgCondition {
    /// 0 to 5.
    pub index: u8,
    pub op: Comparison,
    pub value: u64,
    /// For `MaskedEq`: the argument masked with `value` equals this.
    pub value_two: u64,
}

/// `SCMP_CMP_*`, unsigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

/// A profile that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
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
    #[error("seccomp profile {}: unsupported action {action:?}", path.display())]
    Action { path: PathBuf, action: String },
    #[error("seccomp profile {}: bad argument condition: {reason}", path.display())]
    Arg { path: PathBuf, reason: String },
    #[error("seccomp profiles of type Localhost are supported on x86_64 only")]
    Architecture,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    default_errno_ret: Option<u16>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Vec<String>,
    /// Docker's older single-name form.
    name: Option<String>,
    action: String,
    errno_ret: Option<u16>,
    #[serde(default)]
    args: Vec<Arg>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

/// Reads profile `relative` under `root` and compiles it.
pub fn load(root: &Path, relative: &str) -> Result<Filter, ProfileError> {
    let inside = Path::new(relative)
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if relative.is_empty() || !inside {
        return Err(ProfileError::OutsideRoot(relative.to_string()));
    }
    let path = root.join(relative);
    let text = std::fs::read(&path).map_err(|source| ProfileError::Read {
        path: path.clone(),
        source,
    })?;
    let profile: Profile = serde_json::from_slice(&text).map_err(|source| ProfileError::Parse {
        path: path.clone(),
        source,
    })?;
    compile(&profile, &path)
}

fn compile(profile: &Profile, path: &Path) -> Result<Filter, ProfileError> {
    if !cfg!(target_arch = "x86_64") {
        return Err(ProfileError::Architecture);
    }
    let action = |name: &str, errno: Option<u16>| -> Result<Action, ProfileError> {
        Ok(match name {
            "SCMP_ACT_ALLOW" => Action::Allow,
            "SCMP_ACT_ERRNO" => Action::Errno(errno.unwrap_or(libc::EPERM as u16)),
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
            "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
            "SCMP_ACT_TRAP" => Action::Trap,
            "SCMP_ACT_LOG" => Action::Log,
            other => {
                return Err(ProfileError::Action {
                    path: path.to_path_buf(),
                    action: other.to_string(),
                })
            }
        })
    };
    let default = action(&profile.default_action, profile.default_errno_ret)?;
    let mut rules = Vec::new();
    for rule in &profile.syscalls {
        let act = action(&rule.action, rule.errno_ret)?;
        let args = rule
            .args
            .iter()
            .map(condition)
            .collect::<Result<Vec<_>, String>>()
            .map_err(|reason| ProfileError::Arg {
                path: path.to_path_buf(),
                reason,
            })?;
        let names = rule.names.iter().chain(rule.name.as_ref());
        rules.extend(names.filter_map(|n| {
            Some(SyscallRule {
                nr: super::syscall_names::number(n)?,
                args: args.clone(),
                action: act,
            })
        }));
    }
    Ok(Filter { default, rules })
}

fn condition(arg: &Arg) -> Result<ArgCondition, String> {
    let op = match arg.op.as_str() {
        "SCMP_CMP_NE" => Comparison::Ne,
        "SCMP_CMP_LT" => Comparison::Lt,
        "SCMP_CMP_LE" => Comparison::Le,
        "SCMP_CMP_EQ" => Comparison::Eq,
        "SCMP_CMP_GE" => Comparison::Ge,
        "SCMP_CMP_GT" => Comparison::Gt,
        "SCMP_CMP_MASKED_EQ" => Comparison::MaskedEq,
        other => return Err(format!("unknown op {other:?}")),
    };
    let index = u8::try_from(arg.index)
        .ok()
        .filter(|i| *i < 6)
        .ok_or_else(|| format!("argument index {} (0 to 5)", arg.index))?;
    Ok(ArgCondition {
        index,
        op,
        value: arg.value,
        value_two: arg.value_two,
    })
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn a_docker_style_profile_compiles() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("profiles")).expect("mkdir");
        std::fs::write(
            dir.path().join("profiles/p.json"),
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [
                  {"names": ["mkdir", "mkdirat", "no_such_call"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                  {"name": "reboot", "action": "SCMP_ACT_KILL_PROCESS"},
                  {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#,
        )
        .expect("write");
        let filter = load(dir.path(), "profiles/p.json").expect("profile");
        let rule = |nr, action| SyscallRule {
            nr,
            args: vec![],
            action,
        };
        assert_eq!(
            filter,
            Filter {
                default: Action::Allow,
                rules: vec![
                    rule(83, Action::Errno(13)),
                    rule(258, Action::Errno(13)),
                    rule(169, Action::KillProcess),
                    SyscallRule {
                        nr: 135,
                        args: vec![ArgCondition {
                            index: 0,
                            op: Comparison::MaskedEq,
                            value: 0xff,
                            value_two: 8
                        }],
                        action: Action::Allow
                    }
                ]
            }
        );
    }

    #[test]
    fn bad_profiles_say_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).expect("write");
        };
        write(
            "args.json",
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
        );
        write("trace.json", r#"{"defaultAction": "SCMP_ACT_TRACE"}"#);
        write("garbage.json", "not json");
        let err = |name: &str| load(dir.path(), name).expect_err(name).to_string();
        assert!(
            err("args.json").contains("argument index 6"),
            "{}",
            err("args.json")
        );
        assert!(err("trace.json").contains("SCMP_ACT_TRACE"));
        assert!(err("garbage.json").contains("garbage.json"));
        assert!(err("missing.json").contains("missing.json"));
        assert!(err("../etc/passwd").contains("relative path"));
        assert!(err("/etc/passwd").contains("relative path"));
    }
}
