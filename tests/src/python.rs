//! The official Python `kubernetes` client against a test server: scripts kept in
//! `tests/python/`, run by the interpreter of the virtualenv `scripts/install-deps.sh` makes
//! (`SKIFF_TEST_VENV`, `/opt/skiff-test-venv` by default), with the server's admin kubeconfig
//! loaded by the client's own `config.load_kube_config`.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

use crate::wait::wait_until;

/// How long one script may run before it is killed and the test fails.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The Python client, pointed at one server.
pub struct PythonClient {
    python: PathBuf,
    kubeconfig: PathBuf,
}

impl PythonClient {
    /// The client for the server at `url` (started by the harness, so its admin kubeconfig is
    /// known). Fails, naming the fix, when the virtualenv or the pinned client version
    /// (`tests/python/requirements.txt`) is missing.
    pub fn for_server(url: &str) -> anyhow::Result<Self> {
        let venv = std::env::var_os("SKIFF_TEST_VENV")
            .map_or_else(|| PathBuf::from("/opt/skiff-test-venv"), PathBuf::from);
        let python = venv.join("bin/python");
        let pin = pinned_version()?;
        let check = "import importlib.metadata as m; print(m.version('kubernetes'))";
        let out = Command::new(&python).args(["-c", check]).output();
        let installed = match &out {
            Ok(out) if out.status.success() => {
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            }
            _ => String::new(),
        };
        anyhow::ensure!(
            installed == pin,
            "the Python kubernetes client {pin} is not installed in {} (found {:?}): run scripts/install-deps.sh",
            venv.display(),
            installed
        );
        let kubeconfig = crate::credentials::kubeconfig_for(url)
            .with_context(|| format!("no kubeconfig known for {url}"))?;
        Ok(PythonClient { python, kubeconfig })
    }

    /// `python tests/python/SCRIPT KUBECONFIG ARGS...`, its output piped.
    pub fn command(&self, script: &str, args: &[&str]) -> Command {
        let mut command = Command::new(&self.python);
        command
            .arg(crate::repo_root().join("tests/python").join(script))
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs `SCRIPT ARGS...` to its end (killed after two minutes), failing unless it exits
    /// 0; the JSON document on its last line of output.
    pub fn run(&self, script: &str, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let mut script_run = PythonScript::spawn(self.command(script, args), script)?;
        let mut lines = Vec::new();
        while let Some(line) = script_run.next_line(SCRIPT_TIMEOUT)? {
            lines.push(line);
        }
        script_run.finish()?;
        let last = lines
            .last()
            .with_context(|| format!("{script} printed nothing"))?;
        serde_json::from_str(last).with_context(|| format!("{script} printed {last:?}"))
    }
}

/// The `kubernetes` version `tests/python/requirements.txt` pins.
fn pinned_version() -> anyhow::Result<String> {
    let path = crate::repo_root().join("tests/python/requirements.txt");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .find_map(|line| line.trim().strip_prefix("kubernetes=="))
        .map(str::to_string)
        .with_context(|| format!("{} pins no kubernetes version", path.display()))
}

/// A script running, read line by line as it prints; killed when dropped.
pub struct PythonScript {
    child: Child,
    name: String,
    lines: mpsc::Receiver<std::io::Result<String>>,
    /// What it writes to stderr, read as it comes (a full pipe would stall it).
    stderr: Option<JoinHandle<String>>,
}

impl PythonScript {
    /// Starts `command` (from [`PythonClient::command`]).
    pub fn spawn(mut command: Command, name: &str) -> anyhow::Result<Self> {
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let stdout: ChildStdout = child.stdout.take().context("the script's stdout")?;
        let mut err = child.stderr.take().context("the script's stderr")?;
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(PythonScript {
            child,
            name: name.to_string(),
            lines,
            stderr: Some(stderr),
        })
    }

    /// The next line it prints, `None` once its output ends; fails after `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> anyhow::Result<Option<String>> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Ok(Some(line?)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Ok(None),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                anyhow::bail!("{} printed nothing for {timeout:?}", self.name)
            }
        }
    }

    /// Waits for it to exit, failing (with what it wrote to stderr) unless it exits 0.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        let status = wait_until(&format!("{} to exit", self.name), SCRIPT_TIMEOUT, || {
            Ok(self.child.try_wait()?)
        })?;
        let stderr = match self.stderr.take() {
            Some(reader) => reader.join().unwrap_or_default(),
            None => String::new(),
        };
        anyhow::ensure!(
            status.success(),
            "{} exited with {status}: {stderr}",
            self.name
        );
        Ok(())
    }
}

impl Drop for PythonScript {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
