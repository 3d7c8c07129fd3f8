//! The control plane a benchmark measures: a `skiff server` child process (so its memory is
//! its own), or a running server given by URL.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use skiff_client::{Client, ListParams};

use super::nodes::kind;

/// The control plane measured: a `skiff server` child process, or one given by URL.
pub enum ServerUnderTest {
    Child { child: Child, url: String },
    External(String),
}

impl ServerUnderTest {
    pub fn spawn(data_dir: &Path, node_grace_seconds: u64) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        std::fs::create_dir_all(data_dir)?;
        let log = std::fs::File::create(data_dir.with_extension("log"))?;
        let child = Command::new(std::env::current_exe()?)
            .args(["server", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--node-grace-seconds", &node_grace_seconds.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting skiff server")?;
        Ok(ServerUnderTest::Child {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    pub fn url(&self) -> String {
        match self {
            ServerUnderTest::Child { url, .. } | ServerUnderTest::External(url) => url.clone(),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        match self {
            ServerUnderTest::Child { child, .. } => Some(child.id()),
            ServerUnderTest::External(_) => None,
        }
    }

    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let ServerUnderTest::Child { child, .. } = self {
            if let Some(status) = child.try_wait()? {
                bail!("skiff server exited with {status}");
            }
        }
        Ok(())
    }

    pub fn stop(&mut self) {
        if let ServerUnderTest::Child { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerUnderTest {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until the server answers API calls.
pub async fn wait_ready(client: &Client, server: &mut ServerUnderTest) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if client
            .list(kind("namespaces")?, None, &ListParams::default())
            .await
            .is_ok()
        {
            return Ok(());
        }
        server.check_running()?;
        if Instant::now() > deadline {
            bail!("the server at {} did not answer within 30 s", server.url());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
