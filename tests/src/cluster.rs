//! A multi-master control plane: N real `skiff server` processes, each with its own data dir,
//! API port and Raft peer port on loopback, started with one `--initial-cluster`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use crate::cli::Skiff;
use crate::process::{free_port, SkiffProcess};
use crate::wait::wait_until;

/// How long a member may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one API call may take before the next server is tried.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One member of a `Cluster`.
pub struct Member {
    pub name: String,
    pub process: SkiffProcess,
    pub api_port: u16,
    pub data_dir: PathBuf,
}

impl Member {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }
}

/// The servers of one control plane, killed when dropped.
pub struct Cluster {
    pub members: Vec<Member>,
    http: reqwest::blocking::Client,
}

impl Cluster {
    /// Starts `size` servers named s1..sN under `dir`, each with `extra` flags, and waits until
    /// every one is ready (a leader is elected).
    pub fn start(dir: &Path, size: usize, extra: &[&str]) -> anyhow::Result<Cluster> {
        let peers: Vec<u16> = (0..size).map(|_| free_port()).collect::<Result<_, _>>()?;
        let initial: Vec<String> = peers
            .iter()
            .enumerate()
            .map(|(i, port)| format!("s{}=127.0.0.1:{port}", i + 1))
            .collect();
        let mut members = Vec::new();
        for i in 0..size {
            let name = format!("s{}", i + 1);
            let api_port = free_port()?;
            let data_dir = dir.join(&name);
            let mut args: Vec<String> = [
                "server",
                "--name",
                &name,
                "--data-dir",
                &data_dir.display().to_string(),
                "--listen",
                &format!("127.0.0.1:{api_port}"),
                "--initial-cluster",
                &initial.join(","),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.extend(extra.iter().map(|s| s.to_string()));
            let process = SkiffProcess::spawn(args, dir.join(format!("{name}.log")))?;
            members.push(Member {
                name,
                process,
                api_port,
                data_dir,
            });
        }
        let cluster = Cluster {
            members,
            http: reqwest::blocking::Client::builder()
                .timeout(CALL_TIMEOUT)
                .build()?,
        };
        for i in 0..size {
            cluster.wait_ready(i)?;
        }
        Ok(cluster)
    }

    /// Every member's API URL, comma-separated (what `--server` takes).
    pub fn servers(&self) -> String {
        self.members
            .iter()
            .map(Member::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A CLI that fails over between every member.
    pub fn cli(&self) -> Skiff {
        Skiff::new(self.servers())
    }

    /// Waits until member `i` answers `/readyz` (it knows a leader).
    pub fn wait_ready(&self, i: usize) -> anyhow::Result<()> {
        let url = format!("{}/readyz", self.members[i].url());
        wait_until(
            &format!("{} to be ready", self.members[i].name),
            START_TIMEOUT,
            || {
                Ok(self
                    .http
                    .get(&url)
                    .send()
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(drop))
            },
        )
    }

    /// Member `i`'s `/skiff/v1/cluster` answer.
    pub fn status(&self, i: usize) -> anyhow::Result<Value> {
        let url = format!("{}/skiff/v1/cluster", self.members[i].url());
        Ok(self.http.get(&url).send()?.error_for_status()?.json()?)
    }

    /// The index of the member that says it leads (bounded wait).
    pub fn leader(&self) -> anyhow::Result<usize> {
        wait_until("a leader", START_TIMEOUT, || {
            Ok((0..self.members.len())
                .find(|i| matches!(self.status(*i), Ok(s) if s["role"] == "Leader")))
        })
    }

    /// Waits until member `i` has applied everything member `reference` has committed.
    pub fn wait_caught_up(&self, i: usize, reference: usize) -> anyhow::Result<()> {
        let target = self.status(reference)?["commitIndex"]
            .as_u64()
            .context("commitIndex")?;
        wait_until(
            &format!("{} to apply index {target}", self.members[i].name),
            START_TIMEOUT,
            || {
                let applied = self.status(i).ok().and_then(|s| s["appliedIndex"].as_u64());
                Ok(applied.filter(|a| *a >= target).map(drop))
            },
        )
    }

    pub fn kill9(&mut self, i: usize) -> anyhow::Result<()> {
        self.members[i].process.kill9()
    }

    /// Starts member `i` again on its data dir and ports, and waits until it is ready.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.members[i].process.restart()?;
        self.wait_ready(i)
    }

    /// Creates ConfigMap `name` through any member, retrying across members while leadership
    /// moves (bounded). `Ok(true)`: acknowledged; `Ok(false)`: the outcome is unknown (timed
    /// out), so it may or may not exist.
    pub fn create_config_map(&self, name: &str) -> anyhow::Result<bool> {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": name}, "data": {"k": name}});
        let mut last = String::new();
        for _ in 0..60 {
            for member in &self.members {
                let url = format!("{}/api/v1/namespaces/default/configmaps", member.url());
                match self.http.post(&url).json(&body).send() {
                    Ok(r) if r.status().is_success() => return Ok(true),
                    // A retry of a create whose first attempt did apply.
                    Ok(r) if r.status() == reqwest::StatusCode::CONFLICT => return Ok(true),
                    Ok(r) if r.status() == reqwest::StatusCode::GATEWAY_TIMEOUT => {
                        return Ok(false)
                    }
                    Ok(r) => last = format!("{url}: {}", r.status()),
                    Err(err) => last = format!("{url}: {err}"),
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        anyhow::bail!("creating ConfigMap {name} never succeeded; last: {last}")
    }

    /// The ConfigMap names member `i` serves, read linearizably from that member alone.
    pub fn config_maps(&self, i: usize) -> anyhow::Result<Vec<String>> {
        let url = format!(
            "{}/api/v1/namespaces/default/configmaps",
            self.members[i].url()
        );
        let list: Value = self.http.get(&url).send()?.error_for_status()?.json()?;
        Ok(list["items"]
            .as_array()
            .context("items")?
            .iter()
            .filter_map(|cm| cm["metadata"]["name"].as_str().map(str::to_string))
            .collect())
    }
}
