//! `skiff bench registry`: a Wasm pod's start from a registry artifact (pull, compile, start
//! to Running) with a cold cache (empty blob store and compile cache), a warm one under
//! `imagePullPolicy: Always` (the manifest fetched again, the module and its compiled form on
//! the node), and a warm one under `IfNotPresent` (no registry request).

use std::time::Instant;

use anyhow::Context;
use clap::Args;
use skiff_node_runtime::runtime::wasm::WasmRuntime;
use skiff_node_runtime::runtime::{push_wasm, ImageService, ImageStore};

use crate::deploy::run_to_running;
use crate::figures::{ms, percentile};
use crate::local_registry::LocalRegistry;
use crate::{guest_path, tempfile_dir, RunOpts};

#[derive(Args, Debug)]
pub struct BenchRegistryArgs {
    /// The registry to push to and pull from (HOST:PORT, plain HTTP on loopback); default:
    /// Debian's /usr/bin/docker-registry started on a free loopback port for the run.
    #[arg(long)]
    pub registry: Option<String>,
    /// Starts measured in each cache state.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    #[command(flatten)]
    pub run: RunOpts,
}

pub async fn registry(args: BenchRegistryArgs) -> anyhow::Result<()> {
    let guest = guest_path(&args.run.guest)?;
    let dir = tempfile_dir(args.run.data_dir.as_deref())?;
    let (_local, host) = match args.registry {
        Some(host) => (None, host),
        None => {
            let local = LocalRegistry::start(dir.path())?;
            let host = local.host().to_string();
            (Some(local), host)
        }
    };
    let module = std::fs::read(&guest)?;
    let reference = format!("{host}/skiff-bench/guest:v1");
    let pushed = push_wasm(&reference, &module, None, &[], |_| {}).await?;
    println!(
        "guest {} ({} bytes) pushed as {reference} ({})",
        guest.display(),
        module.len(),
        pushed.digest
    );
    let (mut cold, mut always, mut present) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..args.runs {
        let node = dir.path().join(format!("node-{run}"));
        let images = ImageStore::open(node.join("images"))?;
        let runtime = WasmRuntime::new(node.join("wasm"))?;

        let started = Instant::now();
        let image = images.pull_image(&reference, None).await?;
        run_to_running(&runtime, image, &format!("cold-{run}")).await?;
        cold.push(started.elapsed());

        let started = Instant::now();
        let image = images.pull_image(&reference, None).await?;
        run_to_running(&runtime, image, &format!("always-{run}")).await?;
        always.push(started.elapsed());

        let started = Instant::now();
        let image = images
            .image_status(&reference)
            .await?
            .context("the pulled image is in the index")?;
        run_to_running(&runtime, image, &format!("present-{run}")).await?;
        present.push(started.elapsed());
    }
    println!(
        "Wasm pod start from a registry artifact, {} runs (p50 / max):",
        args.runs
    );
    for (what, times) in [
        ("cold cache (pull + compile + start)", &mut cold),
        (
            "warm, imagePullPolicy Always (manifest re-fetched)",
            &mut always,
        ),
        ("warm, IfNotPresent (no registry request)", &mut present),
    ] {
        times.sort();
        println!(
            "  {what:<52} {:>10} / {:>10}",
            ms(percentile(times, 50)),
            ms(percentile(times, 100))
        );
    }
    Ok(())
}
