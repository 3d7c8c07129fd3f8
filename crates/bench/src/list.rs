//! `skiff bench list`: listing many pods with stock kubectl and with skiff's own CLI, in one
//! run against one `skiff server` child process. Creates N pods (no node: they stay
//! Pending), then times `kubectl get pods` and `skiff get pods` (wall clock, the printed
//! bytes) and the bytes each asks the API for: kubectl a Table in pages of 500 (its default
//! `--chunk-size`), skiff the whole JSON list.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use crate::api::plain_http_url;
use crate::figures::{ms, percentile};
use crate::pending_pods;
use crate::server::ServerUnderTest;
use crate::tempfile_dir;

#[derive(Args, Debug)]
pub struct BenchListArgs {
    /// Pods in the namespace listed.
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,
    /// Runs of each command timed (the median is printed).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Where the server keeps its data (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

const NAMESPACE: &str = "default";
/// What kubectl asks for: a Table, falling back to a list.
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
/// kubectl's default `--chunk-size`.
const KUBECTL_PAGE: usize = 500;

pub async fn list(args: BenchListArgs) -> anyhow::Result<()> {
    let dir = tempfile_dir(args.data_dir.as_deref())?;
    let data_dir = dir.path().join("server");
    let server =
        ServerUnderTest::spawn_with(&data_dir, &["--insecure-http", "127.0.0.1:0"]).await?;
    let admin = server.client()?;
    let base = plain_http_url(&data_dir).await?;
    let (created, creates) = pending_pods::create(&admin, NAMESPACE, args.pods).await?;
    println!("{created} pods created in {NAMESPACE}: {creates}");

    let kubeconfig = data_dir.join("admin.kubeconfig");
    let skiff = std::env::current_exe()?;
    let commands: [(&str, &Path, [&str; 4]); 2] = [
        (
            "kubectl get pods",
            Path::new("kubectl"),
            ["get", "pods", "-n", NAMESPACE],
        ),
        ("skiff get pods", &skiff, ["get", "pods", "-n", NAMESPACE]),
    ];
    for (what, program, command_args) in commands {
        let (time, printed) = time_command(program, &command_args, &kubeconfig, args.runs)
            .await
            .with_context(|| format!("running {what}"))?;
        println!(
            "{what:<18} {} (median of {}), prints {} KiB",
            ms(time),
            args.runs,
            printed / 1024
        );
    }
    let http = reqwest::Client::new();
    let pods = format!("{base}/api/v1/namespaces/{NAMESPACE}/pods");
    let table = paged_bytes(&http, &pods, TABLE).await?;
    let json = paged_bytes(&http, &pods, "application/json").await?;
    println!(
        "API bytes for {created} pods: Table in pages of {KUBECTL_PAGE} (kubectl) {} KiB; JSON list {} KiB",
        table / 1024,
        json / 1024
    );
    Ok(())
}

/// The median wall-clock time of `runs` runs of `program args` with `KUBECONFIG`, and how
/// many bytes it printed.
async fn time_command(
    program: &Path,
    args: &[&str],
    kubeconfig: &Path,
    runs: usize,
) -> anyhow::Result<(Duration, usize)> {
    let mut times = Vec::with_capacity(runs);
    let mut printed = 0;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let out = tokio::process::Command::new(program)
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .output()
            .await?;
        times.push(started.elapsed());
        anyhow::ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        printed = out.stdout.len();
    }
    times.sort();
    Ok((percentile(&times, 50), printed))
}

/// The bytes of every page of `url` (as `accept`), `KUBECTL_PAGE` items at a time when the
/// answer is a Table, all at once otherwise.
async fn paged_bytes(http: &reqwest::Client, url: &str, accept: &str) -> anyhow::Result<usize> {
    let paged = accept.contains("as=Table");
    let mut total = 0;
    let mut next: Option<String> = None;
    loop {
        let mut request = http.get(url).header(reqwest::header::ACCEPT, accept);
        if paged {
            request = request.query(&[("limit", KUBECTL_PAGE.to_string())]);
        }
        if let Some(token) = &next {
            request = request.query(&[("continue", token)]);
        }
        let body = request.send().await?.error_for_status()?.bytes().await?;
        total += body.len();
        let page: serde_json::Value = serde_json::from_slice(&body)?;
        next = page["metadata"]["continue"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if next.is_none() {
            return Ok(total);
        }
    }
}
