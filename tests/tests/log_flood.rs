//! A guest floods its log on a real `skiff server --dev`: the log is rotated within
//! `--container-log-max-size` × `--container-log-max-files`, and `skiff logs` serves its tail,
//! a byte limit and timestamps from the rotated files.

use std::path::Path;
use std::time::Duration;

use skiff_e2e::{wait_until, DevServer};

/// Writes 32 MiB to stdout: 512 writes of 64 KiB, in lines of 1 KiB ('x' × 1023 and a newline).
const FLOOD: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "_start") (local $i i32)
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 65536))
    (memory.fill (i32.const 1024) (i32.const 120) (i32.const 65536))
    (local.set $i (i32.const 2047))
    (block $done (loop $lines
      (br_if $done (i32.ge_u (local.get $i) (i32.const 66560)))
      (i32.store8 (local.get $i) (i32.const 10))
      (local.set $i (i32.add (local.get $i) (i32.const 1024)))
      (br $lines)))
    (local.set $i (i32.const 0))
    (block $end (loop $flood
      (br_if $end (i32.ge_u (local.get $i) (i32.const 512)))
      (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $flood)))))"#;

/// Bytes in the files under `dir`.
fn disk_use(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => disk_use(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn a_log_flood_is_rotated_and_its_tail_served() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let guest = tmp.path().join("flood.wasm");
    std::fs::write(&guest, wat::parse_str(FLOOD)?)?;
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
