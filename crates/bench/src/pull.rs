//! `skiff bench pull`: pull throughput of a Linux image from a local registry, the node's image
//! service (download, digest checks, unpacking into layer directories, into an empty store each
//! run) beside `skopeo copy docker://... oci:DIR` (download and digest checks into an OCI
//! layout) of the same image, run after run on the same machine. The image is the busybox test
//! image plus a layer of random (incompressible) bytes.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rand::RngCore;
use skiff_node_runtime::runtime::{FileImages, ImageService, ImageStore};
use skiff_test_support::busybox;
use skiff_test_support::oci_image::{layer_tar, Entry, TestImage};

use crate::figures::percentile;
use crate::local_registry::{push_image, LocalRegistry};
use crate::tempfile_dir;

/// The repository and tag the image is pushed as.
const REPO: &str = "skiff-bench/pull";
const TAG: &str = "v1";

#[derive(Args, Debug)]
pub struct BenchPullArgs {
    /// Size of the random layer added to busybox, in MiB.
    #[arg(long, default_value_t = 128)]
    pub layer_mib: usize,
    /// Pulls measured with each tool.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// The registry to push to and pull from (HOST:PORT, plain HTTP); default: Debian's
    /// /usr/bin/docker-registry started on a free loopback port for the run.
    #[arg(long)]
    pub registry: Option<String>,
    /// Where the registry and the stores keep data (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
}

pub async fn pull(args: BenchPullArgs) -> anyhow::Result<()> {
    let skopeo = crate::which("skopeo")
        .context("no skopeo on PATH: install Debian's skopeo (apt-get install skopeo)")?;
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    let dir = tempfile_dir(args.data_dir.as_deref())?;
    let (_local, host) = match args.registry {
        Some(host) => (None, host),
        None => {
            let local = LocalRegistry::start(dir.path())?;
            let host = local.host().to_string();
            (Some(local), host)
        }
    };
    let image = tokio::task::spawn_blocking(move || image(args.layer_mib)).await??;
    let bytes: usize = image.blobs().iter().map(|blob| blob.len()).sum();
    push_image(&host, REPO, TAG, &image).await?;
    drop(image);
    let reference = format!("{host}/{REPO}:{TAG}");
    println!(
        "skiff bench pull: busybox + a {} MiB random layer ({:.1} MB of blobs) as {reference}, \
         {} pulls each, an empty store each pull",
        args.layer_mib,
        bytes as f64 / 1e6,
        args.runs
    );
    let max_size = (args.layer_mib as u64 + 64) << 20;
    let (mut skiff, mut copy) = (Vec::new(), Vec::new());
    for run in 0..args.runs {
        let store = dir.path().join(format!("store-{run}"));
        let images = ImageStore::open(store.clone())?
            .with_file_images(FileImages::default().max_size(max_size));
        let started = Instant::now();
        images.pull_image(&reference, None).await?;
        skiff.push(started.elapsed());
        drop(images);
        std::fs::remove_dir_all(&store)?;

        let layout = dir.path().join(format!("oci-{run}"));
        let started = Instant::now();
        skopeo_copy(&skopeo, &reference, &layout).await?;
        copy.push(started.elapsed());
        std::fs::remove_dir_all(&layout)?;
    }
    let skiff = Row::new(&mut skiff, bytes);
    let copy = Row::new(&mut copy, bytes);
    skiff.print("skiff image service pull (+ unpack)");
    copy.print("skopeo copy docker:// oci:");
    println!(
        "{:<38} {:>5.0}% (p50 throughput)",
        "skiff / skopeo",
        100.0 * skiff.p50_mb_s / copy.p50_mb_s
    );
    Ok(())
}

/// The busybox image with a second layer holding `mib` MiB of random bytes in one file.
fn image(mib: usize) -> anyhow::Result<TestImage> {
    let mut random = vec![0u8; mib << 20];
    rand::thread_rng().fill_bytes(&mut random);
    let filler = layer_tar(&[
        Entry::Dir("data"),
        Entry::File("data/random.bin", &random, 0o644),
    ]);
    drop(random);
    Ok(TestImage::new(
        vec![busybox::layer_tar_bytes()?, filler],
        &["sh"],
    ))
}

/// `skopeo copy` of `reference` (plain HTTP) into an OCI layout at `layout`.
async fn skopeo_copy(skopeo: &Path, reference: &str, layout: &Path) -> anyhow::Result<()> {
    let out = tokio::process::Command::new(skopeo)
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
        ])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:{TAG}", layout.display()))
        .output()
        .await
        .context("running skopeo copy")?;
    anyhow::ensure!(
        out.status.success(),
        "skopeo copy failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// One tool's pull times as figures.
struct Row {
    p50: Duration,
    best: Duration,
    p50_mb_s: f64,
    best_mb_s: f64,
}

impl Row {
    fn new(times: &mut [Duration], bytes: usize) -> Row {
        times.sort();
        let (p50, best) = (percentile(times, 50), times[0]);
        Row {
            p50,
            best,
            p50_mb_s: mb_per_s(bytes, p50),
            best_mb_s: mb_per_s(bytes, best),
        }
    }

    fn print(&self, what: &str) {
        println!(
            "{what:<38} p50 {:>7.2} s {:>7.1} MB/s   best {:>7.2} s {:>7.1} MB/s",
            self.p50.as_secs_f64(),
            self.p50_mb_s,
            self.best.as_secs_f64(),
            self.best_mb_s
        );
    }
}

/// Megabytes (10^6 bytes) per second.
fn mb_per_s(bytes: usize, took: Duration) -> f64 {
    bytes as f64 / 1e6 / took.as_secs_f64().max(f64::MIN_POSITIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_in_megabytes_per_second() {
        assert_eq!(mb_per_s(50_000_000, Duration::from_millis(500)), 100.0);
        let row = Row::new(
            &mut [
                Duration::from_secs(2),
                Duration::from_secs(1),
                Duration::from_secs(4),
            ],
            4_000_000,
        );
        assert_eq!(
            (row.p50, row.best),
            (Duration::from_secs(2), Duration::from_secs(1))
        );
        assert_eq!((row.p50_mb_s, row.best_mb_s), (2.0, 4.0));
    }
}
