//! `skiff bench job`: a Job of many short Wasm pods on an in-process dev cluster (real API
//! server, store, controllers, scheduler, agent and wasmtime): total time to complete, pods per
//! second, and the most pods the Job ran at once.

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use serde_json::{json, Value};
use skiff_api::resources;
use skiff_client::ListParams;

use crate::dev_cluster::DevCluster;
use crate::figures::ms;
use crate::memory::rss_bytes;
use crate::tempfile_dir;

/// A guest that exits 0 at once.
const EXIT_ZERO: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;
/// Longest wait for the Job to complete.
const JOB_TIMEOUT: Duration = Duration::from_secs(1_800);

#[derive(Args, Debug)]
pub struct BenchJobArgs {
    /// Pods that must succeed.
    #[arg(long, default_value_t = 1_000)]
    pub completions: u32,
    /// Pods run at once.
    #[arg(long, default_value_t = 50)]
    pub parallelism: u32,
    /// Where the throwaway cluster keeps its data (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
}

pub async fn job(args: BenchJobArgs) -> anyhow::Result<()> {
    let tmp = tempfile_dir(args.data_dir.as_deref())?;
    let dir = tmp.path().to_path_buf();
    let guests = dir.join("guests");
    std::fs::create_dir_all(&guests)?;
    let guest = guests.join("exit0.wasm");
    std::fs::write(&guest, wat::parse_str(EXIT_ZERO)?)?;
    println!(
        "skiff bench job: {} completions, parallelism {}, a guest that exits at once",
        args.completions, args.parallelism
    );
    let cluster = DevCluster::start(&dir, &guests, args.parallelism + 10).await?;
    let client = &cluster.client;

    let jobs = resources::by_name("jobs").expect("jobs are served");
    let manifest = json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "bench"},
        "spec": {"completions": args.completions, "parallelism": args.parallelism,
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "work", "image": format!("file:{}", guest.display())}]}}}
    });
    let started = Instant::now();
    client.create(jobs, Some("default"), &manifest).await?;
    let mut peak_active = 0;
    let job = loop {
        let job = client.get(jobs, Some("default"), "bench").await?;
        peak_active = peak_active.max(job["status"]["active"].as_i64().unwrap_or(0));
        if let Some(kind) = finished(&job) {
            if kind == "Failed" {
                bail!("the Job failed: {}", job["status"]);
            }
            break job;
        }
        if started.elapsed() > JOB_TIMEOUT {
            bail!(
                "the Job did not complete within {JOB_TIMEOUT:?}: {}",
                job["status"]
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let total = started.elapsed();
    let pods = client
        .list(
            resources::by_name("pods").expect("pods are served"),
            Some("default"),
            &ListParams {
                label_selector: Some("job-name=bench".into()),
                ..Default::default()
            },
        )
        .await?;
    let created = pods["items"].as_array().map_or(0, Vec::len);
    println!("create until Complete:    {}", ms(total));
    println!(
        "throughput:               {:.1} pods/s",
        f64::from(args.completions) / total.as_secs_f64()
    );
    println!(
        "succeeded / pods created: {} / {created}",
        job["status"]["succeeded"]
    );
    println!(
        "most active at once seen: {peak_active} (parallelism {})",
        args.parallelism
    );
    if let Some(rss) = rss_bytes() {
        println!("process RSS at the end:   {} MiB", rss >> 20);
    }
    cluster.shutdown().await;
    Ok(())
}

/// `Complete` or `Failed` once the Job has finished.
fn finished(job: &Value) -> Option<&str> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .filter(|c| c["status"] == "True")
        .find_map(|c| {
            c["type"]
                .as_str()
                .filter(|t| matches!(*t, "Complete" | "Failed"))
        })
}
