//! The per-container shim, as containerd-shim and conmon are: a small process, apart from
//! the agent, that is the parent of one container's first process. It logs the container's
//! output in the CRI log format, records its exit (and OOM kill) in the container's state
//! directory, and runs on when the agent dies, so containers outlive the agent.
//!
//! It runs as `<shim> start <container-dir>` (the agent waits until the container's process
//! has been exec'd, or failed to be) and `<shim> exec <container-dir> <argv>...` (a process in
//! a running container's namespaces; its output and exit code are the shim's). The program is
//! the `skiff` binary's hidden `container-shim` subcommand, or the `skiff-container-shim`
//! binary; neither starts threads, so forking it is sound.

mod caps;
mod exec;
mod init;
mod process;
mod seccomp;
mod seccomp_rules;
mod start;

use std::path::Path;

/// The `skiff` subcommand that runs the shim.
pub const SUBCOMMAND: &str = "container-shim";

/// A step of the shim that failed, with the OS's reason.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub struct ShimError {
    pub step: String,
    #[source]
    pub source: std::io::Error,
}

/// Adds the failing step to an OS error.
trait Step<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T, ShimError>;
}

impl<T, E: Into<std::io::Error>> Step<T> for Result<T, E> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T, ShimError> {
        self.map_err(|e| ShimError {
            step: step(),
            source: e.into(),
        })
    }
}

/// Runs the shim with its arguments (after the program name and subcommand); returns the
/// process's exit code.
pub fn main(args: &[String]) -> i32 {
    match args {
        [cmd, dir] if cmd == "start" => start::start(Path::new(dir)),
        [cmd, dir, argv @ ..] if cmd == "exec" && !argv.is_empty() => {
            exec::exec(Path::new(dir), argv)
        }
        _ => {
            eprintln!("usage: container-shim start DIR | container-shim exec DIR CMD...");
            2
        }
    }
}
