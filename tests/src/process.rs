//! Real `skiff` processes (servers and agents) on loopback ports, killed when dropped.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cli::Skiff;
use crate::wait::wait_until;

/// How long a process may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One `skiff` process with its arguments and log file.
pub struct SkiffProcess {
    child: Option<Child>,
    args: Vec<String>,
    log_path: PathBuf,
    /// The network namespace it runs in (`ip netns exec`), if not the test's own.
    netns: Option<String>,
}

impl SkiffProcess {
    /// Starts `skiff ARGS`, appending its output to `log_path`.
    pub fn spawn(args: Vec<String>, log_path: PathBuf) -> anyhow::Result<Self> {
        Self::spawn_in(None, args, log_path)
    }

    /// Starts `skiff ARGS` inside network namespace `netns` (when given).
    pub fn spawn_in(
        netns: Option<String>,
        args: Vec<String>,
        log_path: PathBuf,
    ) -> anyhow::Result<Self> {
        let mut process = SkiffProcess {
            child: None,
            args,
            log_path,
            netns,
        };
        process.start()?;
        Ok(process)
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening {}", self.log_path.display()))?;
        // `ip netns exec` execs skiff in place: the child's pid is skiff's.
        let mut command = match &self.netns {
            Some(ns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", ns]).arg(Skiff::locate());
                command
            }
            None => Command::new(Skiff::locate()),
        };
        let child = command
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting skiff {:?}", self.args))?;
        self.child = Some(child);
        Ok(())
    }

    /// Fails if the process has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!(
                    "skiff {:?} exited with {status}; log:\n{}",
                    self.args,
                    self.log()
                );
            }
        }
        Ok(())
    }

    /// Everything the process printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("kill -9")?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGSTOP: the process stays, frozen, holding its sockets (a stalled host or a GC pause).
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal(Signal::SIGSTOP)
    }

    /// SIGCONT after `pause`.
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal(Signal::SIGCONT)
    }

    fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let child = self.child.as_ref().context("the process is not running")?;
        kill(Pid::from_raw(child.id() as i32), signal)?;
        Ok(())
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("the process is not running")?;
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM)?;
        let status = wait_until(
            "the process to exit after SIGTERM",
            Duration::from_secs(30),
            || Ok(child.try_wait()?),
        );
        if status.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
        status
    }

    /// Starts the process again with the same arguments (after it was stopped or exited).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            if child.try_wait()?.is_some() {
                self.child = None;
            }
        }
        anyhow::ensure!(
            self.child.is_none(),
            "stop the process before restarting it"
        );
        self.start()
    }
}

impl Drop for SkiffProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A `skiff server` (with `--dev`: plus one node agent) on a free loopback port.
pub struct DevServer {
    pub process: SkiffProcess,
    pub data_dir: PathBuf,
    pub port: u16,
}

impl DevServer {
    /// `skiff server --dev` on `data_dir`, waited for until ready.
    pub fn start(data_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(data_dir, true, &[])
    }

    /// `skiff server [--dev] EXTRA...` on `data_dir`, waited for until ready.
    pub fn start_with(data_dir: &Path, dev: bool, extra: &[&str]) -> anyhow::Result<Self> {
        let port = free_port()?;
        let mut args = vec!["server".to_string()];
        if dev {
            args.push("--dev".into());
        }
        args.extend([
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let process = SkiffProcess::spawn(args, data_dir.with_extension("log"))?;
        let mut server = DevServer {
            process,
            data_dir: data_dir.to_path_buf(),
            port,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let url = format!("{}/readyz", self.url());
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        wait_until("the server to be ready", START_TIMEOUT, || {
            self.process.check_running()?;
            Ok(http
                .get(&url)
                .send()
                .ok()
                .filter(|r| r.status().is_success())
                .map(drop))
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A new join token for agents (`skiff token create`).
    pub fn join_token(&self) -> anyhow::Result<String> {
        Ok(self.cli().ok(&["token", "create"])?.trim().to_string())
    }

    /// A CLI bound to this server.
    pub fn cli(&self) -> Skiff {
        Skiff::new(self.url())
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    pub fn kill9(&mut self) -> anyhow::Result<()> {
        self.process.kill9()
    }

    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        self.process.terminate()
    }

    /// Starts the server again on the same data dir and port, and waits until it is ready.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.process.restart()?;
        self.wait_ready()
    }
}

/// A `skiff agent` joined to a server with `token`, on its own data dir and loopback kubelet
/// port; `extra` arguments are appended.
pub fn start_agent(
    server_url: &str,
    token: &str,
    node: &str,
    data_dir: &Path,
    extra: &[&str],
) -> anyhow::Result<SkiffProcess> {
    let port = free_port()?;
    let mut args = vec![
        "agent".to_string(),
        "--server".into(),
        server_url.into(),
        "--token".into(),
        token.into(),
        "--node-name".into(),
        node.into(),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    SkiffProcess::spawn(args, data_dir.with_extension("log"))
}

/// A port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
