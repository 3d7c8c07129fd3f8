//! Running the real `skiff` binary as a user would.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

/// The `skiff` binary of this build.
#[derive(Clone, Debug)]
pub struct Skiff {
    pub binary: PathBuf,
    pub server: String,
}

/// What one CLI invocation did.
#[derive(Debug)]
pub struct CliOutput {
    pub success: bool,
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Longest a single CLI command may run in a test.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads a pipe to its end on a thread, so a chatty child never blocks on a full pipe.
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

impl Skiff {
    /// Finds `target/<profile>/skiff` next to the running test binary (or `$SKIFF_BIN`).
    pub fn locate() -> PathBuf {
        if let Some(bin) = std::env::var_os("SKIFF_BIN") {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("test binary path");
        // target/<profile>/deps/<test>-<hash>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in target/<profile>/deps");
        let bin = profile_dir.join("skiff");
        assert!(
            bin.exists(),
            "{} is missing: run `cargo build --bins` before the end-to-end tests (scripts/test.sh does)",
            bin.display()
        );
        bin
    }

    pub fn new(server: impl Into<String>) -> Self {
        Skiff {
            binary: Self::locate(),
            server: server.into(),
        }
    }

    /// Runs `skiff ARGS` against this server.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<CliOutput> {
        self.run_with_stdin(args, None)
    }

    /// Runs `skiff ARGS`, feeding `stdin` if given; kills it after `COMMAND_TIMEOUT`.
    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<CliOutput> {
        let mut command = Command::new(&self.binary);
        if let Some(kubeconfig) = crate::credentials::kubeconfig_for(&self.server) {
            command.env("KUBECONFIG", kubeconfig);
        }
        command
            .args(args)
            .env("SKIFF_SERVER", &self.server)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {} {args:?}", self.binary.display()))?;
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .context("stdin")?
                .write_all(input.as_bytes())?;
        }
        let stdout = drain(child.stdout.take().context("stdout")?);
        let stderr = drain(child.stderr.take().context("stderr")?);
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!(
                    "skiff {} did not finish within {COMMAND_TIMEOUT:?}",
                    args.join(" ")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Ok(CliOutput {
            success: status.success(),
            code: status.code(),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        })
    }

    /// Runs `skiff ARGS` and fails unless it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.run(args)?;
        anyhow::ensure!(
            out.success,
            "skiff {} failed:\nstdout: {}\nstderr: {}",
            args.join(" "),
            out.stdout,
            out.stderr
        );
        Ok(out.stdout)
    }

    /// Runs `skiff ARGS -o json` and parses the output.
    pub fn json(&self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-o", "json"]);
        let stdout = self.ok(&all)?;
        serde_json::from_str(&stdout)
            .with_context(|| format!("parsing output of skiff {all:?}: {stdout}"))
    }

    /// The `items` of `skiff ARGS -o json` (a list).
    pub fn items(&self, args: &[&str]) -> anyhow::Result<Vec<serde_json::Value>> {
        Ok(self.json(args)?["items"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Waits up to `timeout` until `count` nodes are Ready with a pod CIDR.
    pub fn wait_nodes_ready(&self, count: usize, timeout: Duration) -> anyhow::Result<()> {
        crate::wait_until("the nodes to be ready with a pod CIDR", timeout, || {
            let ready = self
                .items(&["get", "nodes"])?
                .iter()
                .filter(|n| n["spec"]["podCIDR"].is_string())
                .filter(|n| {
                    n["status"]["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
                .count();
            Ok((ready == count).then_some(()))
        })
    }

    /// `skiff apply -f -` of `yaml`, failing with its stderr.
    pub fn apply_yaml(&self, yaml: &str) -> anyhow::Result<()> {
        let out = self.run_with_stdin(&["apply", "-f", "-"], Some(yaml))?;
        anyhow::ensure!(out.success, "apply: {}", out.stderr);
        Ok(())
    }
}
