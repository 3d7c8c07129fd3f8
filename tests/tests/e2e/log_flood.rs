//! A guest floods its log on a real `skiff server --dev`: the log is rotated within
//! `--container-log-max-size` × `--container-log-max-files`, and `skiff logs` serves its tail,
//! a byte limit and timestamps from the rotated files.

use std::time::Duration;

use skiff_e2e::{wait_until, DevServer};
use skiff_test_support::flood::{disk_use, log_flood_wat};

#[test]
fn a_log_flood_is_rotated_and_its_tail_served() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let guest = tmp.path().join("flood.wasm");
    std::fs::write(&guest, wat::parse_str(log_flood_wat(512, 1024))?)?;
    let data = tmp.path().join("data");
    let allowed = tmp.path().to_string_lossy().into_owned();
    let server = DevServer::start_with(
        &data,
        true,
        &[
            "--allow-image-dir",
            &allowed,
            "--container-log-max-size",
            "1Mi",
            "--container-log-max-files",
            "3",
        ],
    )?;
    let cli = server.cli();
    let manifest = tmp.path().join("flood.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: flood\nspec:\n  restartPolicy: Never\n  \
             containers:\n  - name: flood\n    image: file:{}\n",
            guest.display()
        ),
    )?;
    cli.ok(&["apply", "-f", &manifest.to_string_lossy()])?;
    wait_until("the flood to end", Duration::from_secs(120), || {
        let pod = cli.json(&["get", "pod", "flood"])?;
        match pod["status"]["phase"].as_str() {
            Some("Failed") => anyhow::bail!("the flood guest failed: {pod}"),
            phase => Ok((phase == Some("Succeeded")).then_some(())),
        }
    })?;

    // 32 MiB written, at most 3 files of 1 MiB kept.
    let on_disk = disk_use(&data.join("agent/pods"));
    assert!(
        on_disk <= 3 * 1024 * 1024,
        "{on_disk} bytes of logs kept for 3 × 1Mi"
    );
    let line = format!("{}\n", "x".repeat(1023));
    assert_eq!(cli.ok(&["logs", "flood", "--tail", "1"])?, line);
    assert_eq!(
        cli.ok(&["logs", "flood", "--tail", "2", "--limit-bytes", "10"])?,
        "x".repeat(10)
    );
    let stamped = cli.ok(&["logs", "flood", "--tail", "1", "--timestamps"])?;
    let (time, rest) = stamped.split_once(' ').expect("a timestamp and the line");
    assert!(time.ends_with('Z') && time.contains('T'), "{stamped:?}");
    assert_eq!(rest, line);
    assert_eq!(
        cli.ok(&["logs", "flood", "--since", "1h", "--tail", "1"])?,
        line
    );
    let all = cli.ok(&["logs", "flood"])?;
    assert!(
        all.len() as u64 <= 3 * 1024 * 1024 && all.ends_with(&line),
        "{} bytes of log served",
        all.len()
    );
    Ok(())
}
