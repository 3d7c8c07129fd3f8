//! A multi-master control plane: N real `skiff server` processes, each with its own data dir
//! and loopback address (its Raft peer port fixed, its API port the system's choice), started
//! with one `--initial-cluster`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use crate::cli::Skiff;
use crate::credentials::kubeconfig_client;
use crate::netns::Network;
use crate::process::{authority, loopback_host, start_agent, SkiffProcess};
use crate::wait::wait_until;

/// How long a member may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one API call may take before the next server is tried.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Every member's Raft peer port, on its own address (etcd's).
const PEER_PORT: u16 = 2380;

/// One member of a `Cluster`.
pub struct Member {
    pub name: String,
    pub process: SkiffProcess,
    /// Its API base URL.
    pub api: String,
    pub data_dir: PathBuf,
}

impl Member {
    pub fn url(&self) -> String {
        self.api.clone()
    }

    /// Reads the API URL the member reports, and keeps it for restarts.
    fn learn_url(&mut self) -> anyhow::Result<()> {
        self.api = self.process.wait_api_url()?;
        self.process
            .set_arg("--listen", authority(&self.api).to_string())
    }
}

/// The servers of one control plane, killed when dropped (before their network goes).
pub struct Cluster {
    pub members: Vec<Member>,
    /// With `start_partitionable`: each member's own network namespace.
    pub network: Option<Network>,
    http: reqwest::blocking::Client,
    /// The cluster CA every member shares (`skiff certificate create-ca`, `--cluster-ca`).
    ca_dir: PathBuf,
}

/// Creates ConfigMap `name` through the first of `urls` that takes it, in up to `rounds`
/// rounds: `Ok(true)` acknowledged, `Ok(false)` outcome unknown (504).
fn create_via(
    http: &reqwest::blocking::Client,
    urls: &[String],
    name: &str,
    rounds: usize,
) -> anyhow::Result<bool> {
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": name}, "data": {"k": name}});
    let mut last = String::new();
    for _ in 0..rounds {
        for url in urls {
            let url = format!("{url}/api/v1/namespaces/default/configmaps");
            match http.post(&url).json(&body).send() {
                Ok(r) if r.status().is_success() => return Ok(true),
                // A retry of a create whose first attempt did apply.
                Ok(r) if r.status() == reqwest::StatusCode::CONFLICT => return Ok(true),
                Ok(r) if r.status() == reqwest::StatusCode::GATEWAY_TIMEOUT => return Ok(false),
                Ok(r) => last = format!("{url}: {}", r.status()),
                Err(err) => last = format!("{url}: {err}"),
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    anyhow::bail!("creating ConfigMap {name} never succeeded; last: {last}")
}

/// A thread writing ConfigMaps (see `Cluster::writer`).
pub struct Writer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl Writer {
    /// Stops the writer; returns the names of the acknowledged writes.
    pub fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// Where the members listen.
enum Hosts {
    Loopback,
    Namespaces(Network),
}

impl Cluster {
    /// Starts `size` servers named s1..sN under `dir`, each with `extra` flags, and waits until
    /// every one is ready (a leader is elected).
    pub fn start(dir: &Path, size: usize, extra: &[&str]) -> anyhow::Result<Cluster> {
        Self::start_seeded(dir, size, extra, None, Hosts::Loopback)
    }

    /// As `start`, with every member in its own network namespace on a bridge, so that
    /// `isolate` and `heal` can cut and restore its links to the others. Needs root.
    pub fn start_partitionable(dir: &Path, size: usize, extra: &[&str]) -> anyhow::Result<Cluster> {
        let network = Network::create(size)?;
        Self::start_seeded(dir, size, extra, None, Hosts::Namespaces(network))
    }

    /// Cuts member `i` off from the other members (the test still reaches it).
    pub fn isolate(&self, i: usize) -> anyhow::Result<()> {
        self.network
            .as_ref()
            .context("not partitionable")?
            .isolate(i)
    }

    /// Restores member `i`'s links.
    pub fn heal(&self, i: usize) -> anyhow::Result<()> {
        self.network.as_ref().context("not partitionable")?.heal(i)
    }

    /// As `start`, with every member's data dir first seeded from `backup` by
    /// `skiff backup restore`.
    pub fn start_from_backup(dir: &Path, size: usize, backup: &Path) -> anyhow::Result<Cluster> {
        Self::start_seeded(dir, size, &[], Some(backup), Hosts::Loopback)
    }

    /// As `start_from_backup`, with the members given the cluster CA in `ca_dir` (the backed-up
    /// cluster's, whose key opens the shared encryption config) instead of a new one.
    pub fn start_from_backup_with_ca(
        dir: &Path,
        size: usize,
        backup: &Path,
        ca_dir: &Path,
    ) -> anyhow::Result<Cluster> {
        let copy = dir.join("cluster-ca");
        std::fs::create_dir_all(&copy)?;
        for file in ["ca.crt", "ca.key"] {
            std::fs::copy(ca_dir.join(file), copy.join(file))?;
        }
        Self::start_seeded(dir, size, &[], Some(backup), Hosts::Loopback)
    }

    fn start_seeded(
        dir: &Path,
        size: usize,
        extra: &[&str],
        backup: Option<&Path>,
        hosts: Hosts,
    ) -> anyhow::Result<Cluster> {
        // (host, peer port, API port) of each member; API port 0: the member reports its own.
        let addresses: Vec<(String, u16, u16)> = (0..size)
            .map(|i| match &hosts {
                Hosts::Loopback => Ok((loopback_host()?.to_string(), PEER_PORT, 0)),
                Hosts::Namespaces(network) => Ok((network.address(i).to_string(), PEER_PORT, 6443)),
            })
            .collect::<anyhow::Result<_>>()?;
        let initial: Vec<String> = addresses
            .iter()
            .enumerate()
            .map(|(i, (host, peer, _))| format!("s{}={host}:{peer}", i + 1))
            .collect();
        let mut members = Vec::new();
        std::fs::create_dir_all(dir)?;
        let ca_dir = dir.join("cluster-ca");
        if !ca_dir.join("ca.key").exists() {
            Skiff::new("").ok(&[
                "certificate",
                "create-ca",
                "--out",
                &ca_dir.display().to_string(),
            ])?;
        }
        for (i, (host, _, api_port)) in addresses.iter().enumerate() {
            let name = format!("s{}", i + 1);
            let data_dir = dir.join(&name);
            if let Some(backup) = backup {
                Skiff::new("").ok(&[
                    "backup",
                    "restore",
                    &backup.display().to_string(),
                    "--data-dir",
                    &data_dir.display().to_string(),
                    "--name",
                    &name,
                    "--initial-cluster",
                    &initial.join(","),
                ])?;
            }
            let mut args: Vec<String> = [
                "server",
                "--name",
                &name,
                "--data-dir",
                &data_dir.display().to_string(),
                "--listen",
                &format!("{host}:{api_port}"),
                "--initial-cluster",
                &initial.join(","),
                "--cluster-ca",
                &ca_dir.display().to_string(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.extend(extra.iter().map(|s| s.to_string()));
            let netns = match &hosts {
                Hosts::Loopback => None,
                Hosts::Namespaces(network) => Some(network.namespace(i)),
            };
            let process = SkiffProcess::spawn_in(netns, args, dir.join(format!("{name}.log")))?;
            members.push(Member {
                name,
                process,
                api: String::new(),
                data_dir,
            });
        }
        // Every member is started before any is waited for: none serves alone.
        for member in &mut members {
            member.learn_url()?;
        }
        let cluster = Cluster {
            network: match hosts {
                Hosts::Loopback => None,
                Hosts::Namespaces(network) => Some(network),
            },
            // Every member's admin certificate comes from the shared CA: any one will do.
            http: kubeconfig_client(&members[0].data_dir.join("admin.kubeconfig"), CALL_TIMEOUT)?,
            members,
            ca_dir,
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

    /// Joins a node agent `node` (data under `data_dir`, `extra` flags) with a fresh join token,
    /// failing over between every member.
    pub fn join_agent(
        &self,
        node: &str,
        data_dir: &Path,
        extra: &[&str],
    ) -> anyhow::Result<SkiffProcess> {
        let token = self.cli().ok(&["token", "create"])?.trim().to_string();
        start_agent(&self.servers(), &token, node, data_dir, extra)
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

    /// The directory of the cluster CA every member shares (for `--cluster-ca`).
    pub fn ca_dir(&self) -> &Path {
        &self.ca_dir
    }

    /// Adds member `name` with `skiff cluster add`, starts it with `--join`, and waits until it
    /// is ready; returns its index.
    pub fn join(&mut self, dir: &Path, name: &str) -> anyhow::Result<usize> {
        let host = loopback_host()?;
        let peer_address = format!("{host}:{PEER_PORT}");
        self.cli()
            .ok(&["cluster", "add", name, "--peer-address", &peer_address])?;
        let data_dir = dir.join(name);
        let args = [
            "server",
            "--name",
            name,
            "--join",
            &self.servers(),
            "--data-dir",
            &data_dir.display().to_string(),
            "--listen",
            &format!("{host}:0"),
            "--cluster-ca",
            &self.ca_dir.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let process = SkiffProcess::spawn(args, dir.join(format!("{name}.log")))?;
        let mut member = Member {
            name: name.to_string(),
            process,
            api: String::new(),
            data_dir,
        };
        member.learn_url()?;
        self.members.push(member);
        let index = self.members.len() - 1;
        self.wait_ready(index)?;
        Ok(index)
    }

    /// A background writer creating ConfigMaps `{prefix}-N` through every member until stopped.
    pub fn writer(&self, prefix: &str) -> Writer {
        let urls: Vec<String> = self.members.iter().map(Member::url).collect();
        let http = self.http.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let prefix = prefix.to_string();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut i = 0;
            while !flag.load(Ordering::Relaxed) {
                let name = format!("{prefix}-{i}");
                i += 1;
                if let Ok(true) = create_via(&http, &urls, &name, 4) {
                    acked.push(name);
                }
            }
            acked
        });
        Writer { stop, thread }
    }

    /// Creates ConfigMap `name` through member `i` alone, once: whether it was acknowledged.
    pub fn create_config_map_on(&self, i: usize, name: &str) -> bool {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": name}, "data": {"k": name}});
        let url = format!(
            "{}/api/v1/namespaces/default/configmaps",
            self.members[i].url()
        );
        matches!(self.http.post(&url).json(&body).send(), Ok(r) if r.status().is_success())
    }

    /// Creates ConfigMap `name` through any member, retrying across members while leadership
    /// moves (bounded). `Ok(true)`: acknowledged; `Ok(false)`: the outcome is unknown (timed
    /// out), so it may or may not exist.
    pub fn create_config_map(&self, name: &str) -> anyhow::Result<bool> {
        let urls: Vec<String> = self.members.iter().map(Member::url).collect();
        create_via(&self.http, &urls, name, 60)
    }

    /// Writes ConfigMaps `{prefix}-1`, `{prefix}-2`, ... until one is acknowledged (writes may
    /// come back "outcome unknown" while leadership settles); returns its name.
    pub fn acknowledged_write(&self, prefix: &str) -> anyhow::Result<String> {
        let mut attempt = 0;
        wait_until("an acknowledged write", START_TIMEOUT, || {
            attempt += 1;
            let name = format!("{prefix}-{attempt}");
            Ok(self.create_config_map(&name)?.then_some(name))
        })
    }

    /// The ConfigMap names member `i` serves, read linearizably from that member alone.
    pub fn config_maps(&self, i: usize) -> anyhow::Result<Vec<String>> {
        self.config_maps_at(i, "")
    }

    /// As `config_maps`, from the member's local replica (`resourceVersion=0`), which needs
    /// no leader.
    pub fn local_config_maps(&self, i: usize) -> anyhow::Result<Vec<String>> {
        self.config_maps_at(i, "?resourceVersion=0")
    }

    fn config_maps_at(&self, i: usize, query: &str) -> anyhow::Result<Vec<String>> {
        let url = format!(
            "{}/api/v1/namespaces/default/configmaps{query}",
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
