//! A three-member etcd cluster on loopback, the peer `skiff bench write` measures Skiff
//! against: Debian's `etcd-server` (installed with apt-get when `etcd` is missing), each
//! member a child process with its data in a given directory, all killed when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::wrk::free_port;

/// How long the members may take to elect a leader and answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Running etcd members, killed when dropped.
pub struct Etcd {
    children: Vec<Child>,
    /// Each member's client URL (`http://127.0.0.1:PORT`).
    pub urls: Vec<String>,
}

/// The `etcd` executable, installed from Debian's `etcd-server` package if it is missing.
pub fn executable() -> anyhow::Result<std::path::PathBuf> {
    crate::installed("etcd", "etcd-server")
}

/// etcd's version, from the first line of `etcd --version` ("etcd Version: 3.4.23").
pub fn version() -> anyhow::Result<String> {
    let out = Command::new(executable()?).arg("--version").output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or_default();
    Ok(first
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string())
}

impl Etcd {
    /// Starts `size` members on free loopback ports, their data under `dir`, and waits until
    /// every member answers a write.
    pub async fn start(dir: &Path, size: usize) -> anyhow::Result<Etcd> {
        let etcd = executable()?;
        let ports: Vec<(u16, u16)> = (0..size)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<anyhow::Result<_>>()?;
        let cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("e{}=http://127.0.0.1:{peer}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = Etcd {
            children: Vec::new(),
            urls: Vec::new(),
        };
        for (i, (client, peer)) in ports.iter().enumerate() {
            let name = format!("e{}", i + 1);
            let client_url = format!("http://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
            let child = Command::new(&etcd)
                .args(["--name", &name, "--data-dir"])
                .arg(dir.join(&name))
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url])
                .args(["--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &cluster])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", "skiff-bench"])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting etcd")?;
            members.children.push(child);
            members.urls.push(client_url);
        }
        members.wait_serving().await?;
        Ok(members)
    }

    /// Waits until every member answers a write (a leader is elected and every member knows it).
    async fn wait_serving(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + START_TIMEOUT;
        for i in 0..self.urls.len() {
            let probe = json!({"key": "cHJvYmU=", "value": "cHJvYmU="});
            loop {
                let answer = http
                    .post(format!("{}/v3/kv/put", self.urls[i]))
                    .json(&probe)
                    .send()
                    .await;
                if matches!(answer, Ok(ref a) if a.status().is_success()) {
                    break;
                }
                if let Some(status) = self.children[i].try_wait()? {
                    bail!("etcd member {} exited with {status}", i + 1);
                }
                if Instant::now() > deadline {
                    bail!(
                        "etcd member {} did not answer within {START_TIMEOUT:?}",
                        i + 1
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// The client URL of the member that leads (`/v3/maintenance/status` names the leader's
    /// member id; each member names its own in the header).
    pub async fn leader_url(&self) -> anyhow::Result<String> {
        let http = reqwest::Client::new();
        for url in &self.urls {
            let status: Value = http
                .post(format!("{url}/v3/maintenance/status"))
                .json(&json!({}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            if status["leader"].is_string() && status["leader"] == status["header"]["member_id"] {
                return Ok(url.clone());
            }
        }
        bail!("no etcd member says it leads")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
