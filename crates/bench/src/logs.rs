//! `skiff bench logs`: a guest floods its log on a dev server (a `skiff server --dev` child
//! process, so the node's memory is its own); reports the node's memory and the log
//! directory's disk use before, during and after, and the API's and `logs --tail 1`'s
//! latencies during the flood.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use futures::StreamExt;
use serde_json::json;
use skiff_client::{Client, LogParams};
use skiff_test_support::flood::{disk_use, log_flood_wat};
use tokio::sync::watch;

use crate::cluster::kind;
use crate::figures::{ms, percentile};
use crate::memory::memory_of;
use crate::probe::probe_api;
use crate::server::{wait_ready, ServerUnderTest};
use crate::tempfile_dir;

#[derive(Args, Debug)]
pub struct BenchLogsArgs {
    /// MiB the guest writes to stdout, in lines of 1 KiB.
    #[arg(long, default_value_t = 1024)]
    pub flood_mib: u32,
    /// Concurrent `logs --tail 1` requests per sample.
    #[arg(long, default_value_t = 12)]
    pub tails: usize,
    /// The dev server's `--container-log-max-size`.
    #[arg(long, default_value = "10Mi")]
    pub container_log_max_size: String,
    /// The dev server's `--container-log-max-files`.
    #[arg(long, default_value_t = 5)]
    pub container_log_max_files: u32,
    /// Where the dev server keeps its data (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// How often memory and disk are sampled during the flood.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// The longest the flood may take.
const FLOOD_TIMEOUT: Duration = Duration::from_secs(600);

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// One `logs --tail 1`: its latency and whether it answered one line.
async fn tail_one(client: &Client) -> anyhow::Result<(Duration, usize)> {
    let params = LogParams {
        tail_lines: Some(1),
        ..LogParams::default()
    };
    let t = Instant::now();
    let mut stream = client.logs("default", "log-flood", &params).await?;
    let mut bytes = 0;
    while let Some(chunk) = stream.next().await {
        bytes += chunk?.len();
    }
    Ok((t.elapsed(), bytes))
}

pub async fn logs(args: BenchLogsArgs) -> anyhow::Result<()> {
    let tmp = tempfile_dir(args.data_dir.as_deref())?;
    let dir = tmp.path().to_path_buf();
    let guest = dir.join("flood.wasm");
    std::fs::write(
        &guest,
        wat::parse_str(log_flood_wat(args.flood_mib * 16, 1024))?,
    )?;
    let data = dir.join("server");
    let (max_size, max_files) = (
        args.container_log_max_size.clone(),
        args.container_log_max_files.to_string(),
    );
    let mut server = ServerUnderTest::spawn_with(
        &data,
        &[
            "--dev",
            "--pod-network",
            "host",
            "--allow-image-dir",
            &dir.to_string_lossy(),
            "--container-log-max-size",
            &max_size,
            "--container-log-max-files",
            &max_files,
        ],
    )
    .await?;
    let pid = server.pid().context("the dev server's pid")?.to_string();
    let url = server.url();
    let client = server.client()?;
    wait_ready(&client, &mut server).await?;
    let pods_dir = data.join("agent/pods");
    println!(
        "skiff bench logs: a guest writes {} MiB to stdout; dev server {url} \
         (--container-log-max-size {max_size} --container-log-max-files {max_files})",
        args.flood_mib
    );
    let memory = || memory_of(&pid).unwrap_or_default();
    let (rss, _) = memory();
    println!(
        "before: server RSS {}, logs on disk {}",
        mib(rss),
        mib(disk_use(&pods_dir))
    );

    let (stop, stopped) = watch::channel(false);
    let probe = tokio::spawn(probe_api(client.clone(), stopped));
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "log-flood"},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "flood", "image": format!("file:{}", guest.display())}]}});
    let pods = kind("pods")?;
    client.create(pods, Some("default"), &pod).await?;
    let started = Instant::now();
    let (mut peak_disk, mut samples, mut tails) = (0, 0, Vec::new());
    loop {
        server.check_running()?;
        let phase = client
            .get(pods, Some("default"), "log-flood")
            .await
            .ok()
            .and_then(|p| p["status"]["phase"].as_str().map(str::to_string));
        peak_disk = peak_disk.max(disk_use(&pods_dir));
        samples += 1;
        if phase.as_deref() == Some("Running") {
            let requests = (0..args.tails).map(|_| tail_one(&client));
            for (latency, bytes) in futures::future::join_all(requests)
                .await
                .into_iter()
                .flatten()
            {
                if bytes > 0 {
                    tails.push(latency);
                }
            }
        }
        match phase.as_deref() {
            Some("Succeeded") => break,
            Some("Failed") => bail!("the flood guest failed"),
            _ => {}
        }
        if started.elapsed() > FLOOD_TIMEOUT {
            bail!("the flood did not end within {FLOOD_TIMEOUT:?}");
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    let flood = started.elapsed();
    let _ = stop.send(true);
    let latencies = probe.await?;
    let (rss, peak) = memory();
    println!(
        "during ({:.1} s, {samples} samples): server RSS peak {}, logs on disk peak {}",
        flood.as_secs_f64(),
        mib(peak),
        mib(peak_disk)
    );
    println!(
        "after: server RSS {}, logs on disk {}",
        mib(rss),
        mib(disk_use(&pods_dir))
    );
    tails.sort();
    println!(
        "logs --tail 1 ({} answered, {} at a time): p50 {}, p99 {}",
        tails.len(),
        args.tails,
        ms(percentile(&tails, 50)),
        ms(percentile(&tails, 99))
    );
    for (name, mut values) in latencies {
        values.sort();
        println!(
            "API {name} ({} calls): p50 {}, p99 {}",
            values.len(),
            ms(percentile(&values, 50)),
            ms(percentile(&values, 99))
        );
    }
    server.stop();
    Ok(())
}
