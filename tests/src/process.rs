//! A `skiff server --dev` process on a loopback port, killed when dropped.

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

/// How long a server may take to answer `/readyz`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A dev-mode server process (API, store, controllers and one node agent).
pub struct DevServer {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub port: u16,
    log_path: PathBuf,
}

impl DevServer {
    /// Starts a server on a free loopback port with `data_dir`, and waits until it is ready.
    pub fn start(data_dir: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let mut server = DevServer {
            child: None,
            data_dir: data_dir.to_path_buf(),
            port,
            log_path: data_dir.with_extension("log"),
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening {}", self.log_path.display()))?;
        let child = Command::new(Skiff::locate())
            .args(["server", "--dev", "--data-dir"])
            .arg(&self.data_dir)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting skiff server --dev")?;
        self.child = Some(child);
        let url = format!("{}/readyz", self.url());
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        wait_until("the dev server to be ready", START_TIMEOUT, || {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("server exited with {status}; log:\n{}", self.log());
                }
            }
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

    /// A CLI bound to this server.
    pub fn cli(&self) -> Skiff {
        Skiff::new(self.url())
    }

    /// Everything the server printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("kill -9 the server")?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("server is not running")?;
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM)?;
        let status = wait_until(
            "the server to exit after SIGTERM",
            Duration::from_secs(30),
            || Ok(child.try_wait()?),
        );
        if status.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
        status
    }

    /// Starts the server again on the same data dir and port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "stop the server before restarting it");
        self.spawn()
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
