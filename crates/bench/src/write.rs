//! `skiff bench write`: the write path against etcd. A three-member Skiff control plane
//! (`skiff server` child processes) and a three-member etcd (Debian's `etcd-server`), both on
//! loopback, loaded one after the other by the same `wrk` with a Lua script: Skiff with
//! ConfigMaps of 256 bytes of data created with `generateName` through its HTTPS API (a
//! static bearer token in `system:masters`), etcd with `/v3/kv/put` of a unique key and a
//! 256-byte value. Both go to their leader. Prints req/s, p50, p99 and failed answers of
//! each, and Skiff's throughput over etcd's, per concurrency.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::etcd::Etcd;
use crate::store::Members;
use crate::tempfile_dir;
use crate::wrk::{self, Load, Settings};

#[derive(Args, Debug)]
pub struct BenchWriteArgs {
    /// Open connections (wrk's `-c`) to measure with, in this order.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    pub connections: Vec<u32>,
    /// Seconds each run loads its cluster.
    #[arg(long, default_value_t = 10)]
    pub seconds: u32,
    /// wrk threads (fewer when there are fewer connections).
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// Cluster members of each (Skiff servers, etcd members).
    #[arg(long, default_value_t = 3)]
    pub members: usize,
    /// Another `skiff` executable (say, the build before a change) whose cluster is measured
    /// in the same run, beside this one's.
    #[arg(long)]
    pub compare_skiff: Option<PathBuf>,
    /// Where both clusters keep their data (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// The bearer token wrk sends to Skiff, a `system:masters` user of `--token-auth-file`.
const TOKEN: &str = "bench-write-token-0123456789abcdef";
/// Bytes of each written value (Skiff's ConfigMap data, etcd's value).
const VALUE_BYTES: usize = 256;

pub async fn write(args: BenchWriteArgs) -> anyhow::Result<()> {
    wrk::executable().or_else(|_| crate::installed("wrk", "wrk"))?;
    crate::etcd::executable()?;
    let dir = tempfile_dir(args.data_dir.as_deref())?;
    let scripts = Scripts::write(dir.path())?;

    let tokens = dir.path().join("tokens.csv");
    std::fs::write(
        &tokens,
        format!("{TOKEN},bench-writer,bench-writer-uid,\"system:masters\"\n"),
    )?;
    let token_flags = [
        "--token-auth-file".to_string(),
        tokens.display().to_string(),
    ];
    let mut builds = vec![("skiff".to_string(), std::env::current_exe()?)];
    if let Some(other) = &args.compare_skiff {
        let name = other.file_name().unwrap_or(other.as_os_str());
        builds.push((format!("skiff ({})", name.to_string_lossy()), other.clone()));
    }
    // (label, leader URL, script); the clusters run until the end of the function.
    let mut targets = Vec::new();
    let mut clusters = Vec::new();
    for (n, (label, exe)) in builds.into_iter().enumerate() {
        let members = Members::start_exe(
            exe,
            &dir.path().join(format!("skiff-{n}")),
            args.members,
            &token_flags,
        )
        .await?;
        members.wait_serving().await?;
        let url = members.urls[members.wait_leader().await?].clone();
        targets.push((label, url, scripts.skiff.clone()));
        clusters.push(members);
    }
    let etcd_dir = dir.path().join("etcd");
    std::fs::create_dir_all(&etcd_dir)?;
    let etcd = Etcd::start(&etcd_dir, args.members).await?;
    let url = etcd.leader_url().await?;
    targets.push(("etcd".into(), url, scripts.etcd.clone()));

    println!(
        "writes of {VALUE_BYTES}-byte values to the leader of {} members, wrk {} s per run",
        args.members, args.seconds
    );
    println!(
        "skiff: POST of a ConfigMap with generateName over HTTPS with a bearer token; \
         etcd {}: POST /v3/kv/put of a new key",
        crate::etcd::version().unwrap_or_default()
    );
    println!(
        "{:>5}  {:<24} {:>8} {:>10} {:>10} {:>8} {:>8}",
        "conns", "", "req/s", "p50", "p99", "non-2xx", "vs etcd"
    );
    for &connections in &args.connections {
        let settings = Settings {
            threads: args.threads.min(connections).max(1),
            connections,
            seconds: args.seconds,
        };
        let mut loads = Vec::new();
        for (label, url, script) in &targets {
            let load = wrk::run_url(settings, url, Some(script))
                .await
                .with_context(|| format!("loading {label}"))?;
            loads.push(load);
        }
        let etcd_rate = loads.last().map_or(0.0, |l| l.requests_per_sec);
        for ((label, ..), load) in targets.iter().zip(&loads) {
            println!(
                "{connections:>5}  {label:<24} {:>8.0} {:>10} {:>10} {:>8} {:>7.2}x",
                load.requests_per_sec,
                load.p50,
                load.p99,
                failures(load),
                load.requests_per_sec / etcd_rate
            );
        }
    }
    drop(etcd);
    drop(clusters);
    Ok(())
}

/// Non-2xx answers, and socket errors after a `+` when there were any.
fn failures(load: &Load) -> String {
    if load.socket_errors == 0 {
        load.non_2xx.to_string()
    } else {
        format!("{}+{}err", load.non_2xx, load.socket_errors)
    }
}

/// The Lua scripts wrk runs.
struct Scripts {
    skiff: PathBuf,
    etcd: PathBuf,
}

impl Scripts {
    fn write(dir: &Path) -> anyhow::Result<Scripts> {
        let scripts = Scripts {
            skiff: dir.join("skiff-write.lua"),
            etcd: dir.join("etcd-put.lua"),
        };
        std::fs::write(&scripts.skiff, skiff_script())?;
        std::fs::write(&scripts.etcd, etcd_script())?;
        Ok(scripts)
    }
}

/// One request, the same every time: the server names each ConfigMap (`generateName`).
fn skiff_script() -> String {
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"generateName": "w-"},
        "data": {"value": "x".repeat(VALUE_BYTES)},
    });
    format!(
        "wrk.method = \"POST\"\n\
         wrk.path = \"/api/v1/namespaces/default/configmaps\"\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"Authorization\"] = \"Bearer {TOKEN}\"\n\
         wrk.body = [[{body}]]\n"
    )
}

/// A unique key per request: the thread's number and a counter, written with base64's
/// alphabet in a multiple of four characters, so the text is itself valid base64 of distinct
/// bytes (no encoder needed in Lua).
fn etcd_script() -> String {
    let value = etcd_value();
    format!(
        "local threads = 0\n\
         function setup(thread)\n\
         \x20 threads = threads + 1\n\
         \x20 thread:set(\"id\", threads)\n\
         end\n\
         local counter = 0\n\
         local headers = {{[\"Content-Type\"] = \"application/json\"}}\n\
         request = function()\n\
         \x20 counter = counter + 1\n\
         \x20 local key = string.format(\"k%03d%012d\", id, counter)\n\
         \x20 local body = '{{\"key\":\"' .. key .. '\",\"value\":\"{value}\"}}'\n\
         \x20 return wrk.format(\"POST\", \"/v3/kv/put\", headers, body)\n\
         end\n"
    )
}

/// 256 bytes of `x` in base64: "eHh4" is "xxx", "eA==" is "x".
fn etcd_value() -> String {
    format!("{}eA==", "eHh4".repeat(VALUE_BYTES / 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_value_is_256_bytes_of_base64() {
        let value = etcd_value();
        assert_eq!(value.len() % 4, 0);
        let padding = value.chars().rev().take_while(|c| *c == '=').count();
        assert_eq!(value.len() / 4 * 3 - padding, VALUE_BYTES);
        assert!(etcd_script().contains(&value));
    }

    #[test]
    fn skiff_body_is_one_json_object() {
        let script = skiff_script();
        let body = script
            .split("wrk.body = [[")
            .nth(1)
            .and_then(|rest| rest.split("]]").next())
            .expect("a body");
        let object: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(object["metadata"]["generateName"], "w-");
        assert_eq!(
            object["data"]["value"].as_str().map(str::len),
            Some(VALUE_BYTES)
        );
    }
}
