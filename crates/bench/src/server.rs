//! The control plane a benchmark measures: a `skiff server` child process (so its memory is
//! its own), or a running server given by URL.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use skiff_client::{Client, Credentials, Kubeconfig, ListParams};

use crate::cluster::kind;

/// How long a started server may take to listen and to answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// What `skiff server` prints once its API listens, followed by the URL.
const LISTENING: &str = "skiff API listening on ";

/// The control plane measured: a `skiff server` child process, or one given by URL.
pub enum ServerUnderTest {
    Child {
        child: Child,
        url: String,
        /// Its data dir, where it writes `admin.kubeconfig`.
        data_dir: std::path::PathBuf,
    },
    /// A running server, reached with the given credentials (a kubeconfig's).
    External {
        url: String,
        credentials: Credentials,
    },
}

impl ServerUnderTest {
    /// Starts `skiff server` (this executable) on a port of the system's choice, and waits
    /// until it says where it listens.
    pub async fn spawn(data_dir: &Path, node_grace_seconds: u64) -> anyhow::Result<Self> {
        let grace = node_grace_seconds.to_string();
        Self::spawn_with(data_dir, &["--node-grace-seconds", &grace]).await
    }

    /// Starts `skiff server ARGS` (this executable), as [`spawn`](Self::spawn) does.
    pub async fn spawn_with(data_dir: &Path, args: &[&str]) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let log_path = data_dir.with_extension("log");
        let log = std::fs::File::create(&log_path)?;
        let mut child = Command::new(std::env::current_exe()?)
            .args(["server", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting skiff server")?;
        match wait_listening(&mut child, &log_path).await {
            Ok(url) => Ok(ServerUnderTest::Child {
                child,
                url,
                data_dir: data_dir.to_path_buf(),
            }),
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(err)
            }
        }
    }

    pub fn url(&self) -> String {
        match self {
            ServerUnderTest::Child { url, .. } | ServerUnderTest::External { url, .. } => {
                url.clone()
            }
        }
    }

    /// A client for it: as its admin (`DATA_DIR/admin.kubeconfig`) for a started server;
    /// with the credentials given for one given by URL.
    pub fn client(&self) -> anyhow::Result<Client> {
        match self {
            ServerUnderTest::Child { url, data_dir, .. } => {
                admin_client(std::slice::from_ref(url), data_dir)
            }
            ServerUnderTest::External { url, credentials } => Ok(Client::with_credentials(
                std::slice::from_ref(url),
                credentials,
            )?),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        match self {
            ServerUnderTest::Child { child, .. } => Some(child.id()),
            ServerUnderTest::External { .. } => None,
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

/// Waits until the `skiff server` `child`, writing to `log_path`, says where its API listens,
/// and returns that URL (the first one in the log, which restarts append to).
pub async fn wait_listening(child: &mut Child, log_path: &Path) -> anyhow::Result<String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let output = std::fs::read_to_string(log_path).unwrap_or_default();
        let url = output.lines().find_map(|line| {
            let rest = line.split_once(LISTENING)?.1;
            Some(rest.split_whitespace().next()?.to_string())
        });
        if let Some(url) = url {
            return Ok(url);
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "skiff server exited with {status}; see {}",
                log_path.display()
            );
        }
        if Instant::now() > deadline {
            bail!("skiff server did not listen within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client for `urls` with the admin credential a server wrote into `data_dir`.
pub fn admin_client(urls: &[String], data_dir: &Path) -> anyhow::Result<Client> {
    let resolved = Kubeconfig::load(&data_dir.join("admin.kubeconfig"))?;
    Ok(Client::with_credentials(urls, &resolved.credentials)?)
}

/// Waits until the server answers API calls.
pub async fn wait_ready(client: &Client, server: &mut ServerUnderTest) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
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
