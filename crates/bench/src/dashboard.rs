//! `skiff bench dashboard`: what the web dashboard's pods page costs with many pods. Creates N
//! pods (no node: they stay Pending) on a `skiff server` child process, then times
//! `GET /ui/pods` (server-side rendering, HTML bytes) beside the API's JSON list of the same
//! pods, and, when Debian's `chromium` is installed, headless Chromium's load of the page to
//! its DOM (`--dump-dom`) beside the same for an empty namespace (the browser's own start-up).

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
pub struct BenchDashboardArgs {
    /// Pods in the namespace the page lists.
    #[arg(long, default_value_t = 1000)]
    pub pods: usize,
    /// Requests of each page timed.
    #[arg(long, default_value_t = 20)]
    pub requests: usize,
    /// Headless Chromium loads timed (0: none).
    #[arg(long, default_value_t = 3)]
    pub browser_loads: usize,
    /// Where the server keeps its data (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

const NAMESPACE: &str = "default";
/// A namespace with no pods: the browser's baseline.
const EMPTY_NAMESPACE: &str = "bench-empty";

pub async fn dashboard(args: BenchDashboardArgs) -> anyhow::Result<()> {
    let dir = tempfile_dir(args.data_dir.as_deref())?;
    let data_dir = dir.path().join("server");
    // The loopback plain-HTTP listener acts as admin, the dashboard there too: no sign-in.
    let server =
        ServerUnderTest::spawn_with(&data_dir, &["--insecure-http", "127.0.0.1:0"]).await?;
    let admin = server.client()?;
    let base = plain_http_url(&data_dir).await?;
    let (created, creates) = pending_pods::create(&admin, NAMESPACE, args.pods).await?;
    println!("{created} pods created in {NAMESPACE}: {creates}");

    let http = reqwest::Client::new();
    let page = format!("{base}/ui/pods?namespace={NAMESPACE}");
    let list = format!("{base}/api/v1/namespaces/{NAMESPACE}/pods");
    for (what, url) in [("dashboard /ui/pods", &page), ("API list (JSON)", &list)] {
        let (times, bytes) = time_gets(&http, url, args.requests).await?;
        println!(
            "{what:<20} p50 {}  p99 {}  {} KiB",
            ms(percentile(&times, 50)),
            ms(percentile(&times, 99)),
            bytes / 1024
        );
    }
    if args.browser_loads > 0 {
        let empty = format!("{base}/ui/pods?namespace={EMPTY_NAMESPACE}");
        let profile = dir.path().join("chromium");
        match browser_load(&profile, &page, args.browser_loads).await {
            Ok(full) => {
                let baseline = browser_load(&profile, &empty, args.browser_loads).await?;
                println!(
                    "headless Chromium load to DOM: {} with {created} pods, {} with none (median of {})",
                    ms(full),
                    ms(baseline),
                    args.browser_loads
                );
            }
            Err(err) => println!("headless Chromium: not measured ({err:#})"),
        }
    }
    Ok(())
}

/// `count` sequential GETs of `url`: their sorted durations and the body's size.
async fn time_gets(
    http: &reqwest::Client,
    url: &str,
    count: usize,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let mut times = Vec::with_capacity(count);
    let mut bytes = 0;
    for _ in 0..count.max(1) {
        let started = Instant::now();
        let response = http.get(url).send().await?.error_for_status()?;
        bytes = response.bytes().await?.len();
        times.push(started.elapsed());
    }
    times.sort();
    Ok((times, bytes))
}

/// The median wall-clock time of `chromium --headless --dump-dom URL`, `count` runs.
async fn browser_load(profile: &Path, url: &str, count: usize) -> anyhow::Result<Duration> {
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let out = tokio::process::Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .output()
            .await
            .context("running chromium (Debian: apt-get install chromium)")?;
        anyhow::ensure!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("</table>"),
            "chromium did not render {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        times.push(started.elapsed());
    }
    times.sort();
    Ok(percentile(&times, 50))
}
