//! The last steps before a container's program runs, shared by its first process and by
//! exec'd ones: user, capabilities, working directory, environment, exec.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::unistd::{chdir, execve, setgid, setgroups, setuid, Gid, Uid};

use super::{caps, seccomp, ShimError, Step};
use crate::runtime::linux::spec::{ContainerSpec, UserSpec};

/// The `PATH` a container gets when neither the image nor the pod sets one (Docker's).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolves the user against the container's `/etc/passwd` (at `passwd`): uid and gid.
pub fn resolve_user(user: &UserSpec, passwd: &Path) -> Result<(u32, u32), ShimError> {
    let text = std::fs::read_to_string(passwd).unwrap_or_default();
    // name:x:uid:gid:...
    let entry = |matches: &dyn Fn(&[&str]) -> bool| -> Option<(u32, u32)> {
        text.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() >= 4 && matches(&fields))
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
    };
    match user {
        UserSpec::Ids { uid, gid } => {
            let uid_s = uid.to_string();
            let primary = entry(&|f| f[2] == uid_s).map_or(0, |(_, g)| g);
            Ok((*uid, gid.unwrap_or(primary)))
        }
        UserSpec::Name { name, gid } => {
            let (uid, primary) = entry(&|f| f[0] == name).ok_or_else(|| ShimError {
                step: format!("finding user {name} in /etc/passwd"),
                source: std::io::ErrorKind::NotFound.into(),
            })?;
            Ok((uid, gid.unwrap_or(primary)))
        }
    }
}

/// Becomes the container's user with its capabilities and execs its program; returns only
/// on failure. `die_with_parent` has the program killed when its parent (an exec's shim) dies.
pub fn exec_program(
    spec: &ContainerSpec,
    argv: &[String],
    uid: u32,
    gid: u32,
    die_with_parent: bool,
) -> Result<Infallible, ShimError> {
    let cwd = if spec.cwd.is_empty() { "/" } else { &spec.cwd };
    chdir(cwd).step(|| format!("changing to the working directory {cwd}"))?;
    let hardening = (!spec.privileged).then_some(&spec.hardening);
    if let Some(hardening) = hardening {
        caps::limit_bounding_set(&hardening.capabilities)?;
        // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: done while root
        // (as runc does).
        if !hardening.no_new_privs {
            seccomp::apply(&hardening.seccomp)?;
        }
    }
    setgroups(&[Gid::from_raw(gid)]).step(|| "setting supplementary groups".into())?;
    setgid(Gid::from_raw(gid)).step(|| format!("setting gid {gid}"))?;
    setuid(Uid::from_raw(uid)).step(|| format!("setting uid {uid}"))?;
    // Set after the user changes, which clear it.
    // SAFETY: prctl with integer arguments only.
    if die_with_parent
        && unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } != 0
    {
        return Err(std::io::Error::last_os_error())
            .step(|| "setting the parent-death signal".into());
    }
    if let Some(hardening) = hardening.filter(|h| h.no_new_privs) {
        caps::no_new_privs()?;
        seccomp::apply(&hardening.seccomp)?;
    }
    let mut env = spec.env.clone();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
    }
    if !env.iter().any(|(k, _)| k == "HOSTNAME") {
        if let Ok(name) = nix::unistd::gethostname() {
            env.push(("HOSTNAME".into(), name.to_string_lossy().into_owned()));
        }
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let program = find_program(&argv[0], &path).ok_or_else(|| ShimError {
        step: format!("finding {} on PATH {path}", argv[0]),
        source: std::io::ErrorKind::NotFound.into(),
    })?;
    let c = |s: &str| CString::new(s).unwrap_or_default();
    let args: Vec<CString> = argv.iter().map(|a| c(a)).collect();
    let envs: Vec<CString> = env.iter().map(|(k, v)| c(&format!("{k}={v}"))).collect();
    let program = c(&program);
    execve(&program, &args, &envs).step(|| format!("executing {}", argv[0]))
}

/// `name` itself when it holds a slash, else the first executable file of that name on `path`.
fn find_program(name: &str, path: &str) -> Option<String> {
    if name.contains('/') {
        return Some(name.to_string());
    }
    path.split(':').find_map(|dir| {
        let candidate = Path::new(dir).join(name);
        let meta = std::fs::metadata(&candidate).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            .then(|| candidate.display().to_string())
    })
}
