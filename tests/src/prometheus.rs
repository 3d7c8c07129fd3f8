//! Debian's Prometheus server on 127.0.0.1, scraping what a test's configuration names, with
//! its data in a directory of the test's; killed on drop. Prometheus cannot report a port-0
//! bind, so a port is taken from a socket bound and closed, and another tried if Prometheus
//! loses it to someone else in between.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::wait_until;

/// Where Debian installs Prometheus (scripts/install-deps.sh installs it).
const PROMETHEUS_BIN: &str = "/usr/bin/prometheus";

/// A running Prometheus server.
pub struct Prometheus {
    addr: SocketAddr,
    child: Child,
    http: reqwest::blocking::Client,
}

impl Prometheus {
    /// Starts Prometheus with `config` (a `prometheus.yml`'s text) written into `dir`, its
    /// storage under `dir`, and waits until it is ready.
    pub fn start(dir: &Path, config: &str) -> anyhow::Result<Prometheus> {
        anyhow::ensure!(
            Path::new(PROMETHEUS_BIN).exists(),
            "{PROMETHEUS_BIN} is missing: run scripts/install-deps.sh (Debian's prometheus)"
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        let mut last = None;
        for attempt in 0..5 {
            let addr = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?;
            let log_path = dir.join(format!("prometheus-{attempt}.log"));
            let log = std::fs::File::create(&log_path)?;
            let child = Command::new(PROMETHEUS_BIN)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join(format!("data-{attempt}")).display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("spawning prometheus")?;
            let mut prometheus = Prometheus {
                addr,
                child,
                http: reqwest::blocking::Client::new(),
            };
            match prometheus.wait_ready() {
                Ok(()) => return Ok(prometheus),
                Err(err) => {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    if !log.contains("address already in use") {
                        return Err(err.context(log));
                    }
                    last = Some(err.context(log));
                }
            }
        }
        Err(last.expect("tried").context("starting prometheus"))
    }

    /// Waits until it answers ready; fails at once if it exits.
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let url = format!("http://{}/-/ready", self.addr);
        let http = self.http.clone();
        wait_until("prometheus to be ready", Duration::from_secs(30), || {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(Err(anyhow::anyhow!("prometheus exited: {status}"))));
            }
            let ready = http.get(&url).send().is_ok_and(|r| r.status().is_success());
            Ok(ready.then_some(Ok(())))
        })?
    }

    /// The `data.result` of an instant PromQL query (`/api/v1/query`).
    pub fn query(&self, promql: &str) -> anyhow::Result<Vec<Value>> {
        let answer: Value = self
            .http
            .get(format!("http://{}/api/v1/query", self.addr))
            .query(&[("query", promql)])
            .send()?
            .error_for_status()?
            .json()?;
        anyhow::ensure!(answer["status"] == "success", "{promql}: {answer}");
        Ok(answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// The active scrape targets (`/api/v1/targets`): each with `labels`, `health` and
    /// `lastError`.
    pub fn targets(&self) -> anyhow::Result<Vec<Value>> {
        let answer: Value = self
            .http
            .get(format!("http://{}/api/v1/targets", self.addr))
            .send()?
            .error_for_status()?
            .json()?;
        Ok(answer["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
