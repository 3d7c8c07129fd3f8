//! Raft peers on mutual TLS (`--peer-cert-file`, `--peer-key-file`,
//! `--peer-trusted-ca-file`): three real `skiff server` processes replicate and survive the
//! loss of their leader; a member joining with `--join` and the flags catches up and becomes
//! a voter, one joining without them is never replicated to.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use skiff_control_plane::pki::{CertRequest, ClusterCa, Usage};
use skiff_e2e::{wait_until, Cluster, SkiffProcess};

/// Writes a peer CA and one peer certificate naming every member (s1..s4), as the
/// `--peer-*` flags of each member take them.
fn peer_files(dir: &Path) -> anyhow::Result<Vec<String>> {
    let ca = ClusterCa::create()?;
    let peer = ca.issue(&CertRequest {
        common_name: "skiff peer".into(),
        organizations: Vec::new(),
        sans: (1..=4).map(|i| format!("s{i}")).collect(),
        usage: Usage::ServerAndClient,
        validity: Duration::from_secs(24 * 3600),
    })?;
    let mut flags = Vec::new();
    for (flag, file, pem) in [
        ("--peer-cert-file", "peer.pem", peer.cert_pem.as_str()),
        ("--peer-key-file", "peer-key.pem", peer.key_pem.as_str()),
        ("--peer-trusted-ca-file", "peer-ca.pem", ca.cert_pem()),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, pem)?;
        flags.extend([flag.to_string(), path.display().to_string()]);
    }
    Ok(flags)
}

/// A peer address on 127.0.0.1 that was free a moment ago.
fn free_peer_address() -> anyhow::Result<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(format!("127.0.0.1:{port}"))
}

/// Adds member `name` with `skiff cluster add` and starts it with `--join` and `extra`.
fn join(
    cluster: &Cluster,
    dir: &Path,
    name: &str,
    extra: &[String],
) -> anyhow::Result<SkiffProcess> {
    let peer = free_peer_address()?;
    cluster
        .cli()
        .ok(&["cluster", "add", name, "--peer-address", &peer])?;
    let mut args: Vec<String> = [
        "server",
        "--name",
        name,
        "--join",
        &cluster.servers(),
        "--data-dir",
        &dir.join(name).display().to_string(),
        "--listen",
        "127.0.0.1:0",
        "--cluster-ca",
        &cluster.ca_dir().display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().cloned());
    SkiffProcess::spawn(args, dir.join(format!("{name}.log")))
}

/// Member `name` as the leader reports it.
fn member(cluster: &Cluster, name: &str) -> anyhow::Result<Value> {
    let leader = cluster.leader()?;
    let status = cluster.status(leader)?;
    status["members"]
        .as_array()
        .and_then(|members| members.iter().find(|m| m["name"] == name))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no member {name} in {status}"))
}

#[test]
fn a_cluster_on_peer_tls_replicates_fails_over_and_admits_only_members_with_its_certificate(
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let flags = peer_files(tmp.path())?;
    let extra: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut cluster = Cluster::start(tmp.path(), 3, &extra)?;
    let first = cluster.acknowledged_write("first")?;
    for i in 0..3 {
        wait_until(
            &format!("{} to serve {first}", cluster.members[i].name),
            Duration::from_secs(30),
            || Ok(cluster.config_maps(i)?.contains(&first).then_some(())),
        )?;
    }

    // The leader's loss: the others elect over TLS, and it catches up when back.
    let leader = cluster.leader()?;
    cluster.kill9(leader)?;
    let during = cluster.acknowledged_write("during")?;
    cluster.restart(leader)?;
    cluster.wait_caught_up(leader, cluster.leader()?)?;
    anyhow::ensure!(
        cluster.config_maps(leader)?.contains(&during),
        "the restarted member misses {during}"
    );

    // `--join` with the flags: replicated to, then promoted to voter.
    let _s4 = join(&cluster, tmp.path(), "s4", &flags)?;
    wait_until("s4 to become a voter", Duration::from_secs(60), || {
        let s4 = member(&cluster, "s4").ok();
        Ok(s4.filter(|s4| s4["role"] == "voter").map(drop))
    })?;

    // `--join` without them: the members refuse its connections and it never gets an entry,
    // while the cluster goes on writing.
    let _s5 = join(&cluster, tmp.path(), "s5", &[])?;
    for n in 0..20 {
        cluster.acknowledged_write(&format!("after-s5-{n}"))?;
    }
    let s5 = member(&cluster, "s5")?;
    anyhow::ensure!(
        s5["role"] == "learner" && s5["matched"].as_u64().unwrap_or(0) == 0,
        "a member without the peer certificate was replicated to: {s5}"
    );
    Ok(())
}
