//! `skiff bench container`: how long a `true` busybox container takes on the Linux runtime
//! (create → running, start → exit), beside Debian's `crun` and `runc` running the same
//! root filesystem when they are installed.
//!
//! crun and runc refuse this kind of host when it is hybrid (cgroup v1 controllers plus a
//! cgroup2 mount at `/sys/fs/cgroup/unified`); each of their runs goes through
//! `unshare -m sh -c 'umount /sys/fs/cgroup/unified; RUNTIME run ...'` so that they see pure
//! v1, and that wrapper's own cost (the same command with `true` instead of the runtime) is
//! printed so it can be subtracted.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use skiff_node_runtime::runtime::linux::{LinuxConfig, LinuxRuntime, ShimCommand};
use skiff_node_runtime::runtime::{
    ContainerConfig, ContainerEventKind, ContainerRuntime, PodSandboxConfig,
};
use skiff_test_support::busybox::{self, Teardown};

use crate::figures::{ms, percentile};

/// The hybrid host's cgroup2 mount that crun and runc must not see.
const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// `skiff bench container`'s flags.
#[derive(Args, Debug)]
pub struct BenchContainerArgs {
    /// Containers to run, one after another.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
}

/// Runs a `true` busybox container `runs` times on the Linux runtime, then with crun and
/// runc when installed, and prints the latencies.
pub async fn container(args: BenchContainerArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let image = busybox::image(dir.path(), "true");
    let config = LinuxConfig {
        cgroup_parent: "skiff-bench".into(),
        ..LinuxConfig::new(
            dir.path().join("linux"),
            ShimCommand::current_exe().context("finding the skiff binary")?,
        )
    };
    let _teardown = Teardown(config.clone());
    let runtime = LinuxRuntime::new(config).context("the Linux runtime")?;
    let sandbox = runtime
        .run_pod_sandbox(&PodSandboxConfig {
            uid: "bench-uid".into(),
            namespace: "default".into(),
            name: "bench".into(),
            labels: Default::default(),
            log_directory: dir.path().join("logs"),
            network: None,
            hostname: "bench".into(),
            dns: None,
        })
        .await?;
    let (mut running, mut exited, mut whole) = (Vec::new(), Vec::new(), Vec::new());
    for attempt in 0..args.runs {
        let mut events = runtime.subscribe();
        let config = ContainerConfig {
            attempt: attempt as u32,
            log_path: format!("true/{attempt}.log").into(),
            ..ContainerConfig::new("true", image.clone())
        };
        let begin = Instant::now();
        let id = runtime.create_container(&sandbox, &config).await?;
        let start = Instant::now();
        runtime.start_container(&id).await?;
        running.push(begin.elapsed());
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let event = events.recv().await?;
                if event.container == id && event.kind == ContainerEventKind::Exited {
                    return anyhow::Ok(());
                }
            }
        })
        .await
        .context("the container did not exit in 30 s")??;
        exited.push(start.elapsed());
        whole.push(begin.elapsed());
        runtime.remove_container(&id).await?;
    }
    runtime.remove_pod_sandbox(&sandbox).await?;
    println!("{} runs of a `true` busybox container", args.runs);
    print_row("skiff linux: create -> running", &mut running);
    print_row("skiff linux: start -> exit", &mut exited);
    print_row("skiff linux: create -> exit", &mut whole);

    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle)?;
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(busybox::layer(dir.path()))
        .arg(bundle.join("rootfs"))
        .status()?;
    anyhow::ensure!(
        copied.success(),
        "copying the busybox layer into the bundle"
    );
    let wrapper = |inner: &str| format!("umount {UNIFIED} 2>/dev/null; {inner}");
    let mut overhead = timed_runs(args.runs, || {
        let mut cmd = std::process::Command::new("unshare");
        cmd.args(["-m", "sh", "-c", &wrapper("true")]);
        cmd
    })?;
    print_row("wrapper (unshare -m sh -c umount) alone", &mut overhead);
    for runtime in ["crun", "runc"] {
        if crate::which(runtime).is_err() {
            println!("{runtime}: not installed (apt-get install {runtime})");
            continue;
        }
        let spec = std::process::Command::new(runtime)
            .args(["spec"])
            .current_dir(&bundle)
            .status();
        if !matches!(spec, Ok(s) if s.success()) {
            println!("{runtime}: `{runtime} spec` failed");
            continue;
        }
        let config_path = bundle.join("config.json");
        let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&config_path)?)?;
        config["process"]["args"] = serde_json::json!(["true"]);
        config["process"]["terminal"] = serde_json::json!(false);
        std::fs::write(&config_path, serde_json::to_vec(&config)?)?;
        let mut n = 0;
        let runs = timed_runs(args.runs, || {
            n += 1;
            let mut cmd = std::process::Command::new("unshare");
            let run = format!(
                "{runtime} run --bundle {} bench-{runtime}-{n} </dev/null >/dev/null",
                bundle.display()
            );
            cmd.args(["-m", "sh", "-c", &wrapper(&run)]);
            cmd
        });
        std::fs::remove_file(&config_path)?;
        match runs {
            Ok(mut runs) => print_row(&format!("{runtime} run (create -> exit)"), &mut runs),
            Err(e) => println!("{runtime}: {e:#}"),
        }
    }
    Ok(())
}

fn print_row(what: &str, values: &mut [Duration]) {
    values.sort();
    println!(
        "{what:<42} p50 {:>9}  p99 {:>9}",
        ms(percentile(values, 50)),
        ms(percentile(values, 99))
    );
}

/// Runs what `command` makes `runs` times; the wall time of each.
fn timed_runs(
    runs: usize,
    mut command: impl FnMut() -> std::process::Command,
) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let begin = Instant::now();
        let output = command().output()?;
        if !output.status.success() {
            anyhow::bail!("failed: {}", String::from_utf8_lossy(&output.stderr).trim());
        }
        times.push(begin.elapsed());
    }
    Ok(times)
}
