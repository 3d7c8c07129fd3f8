//! Raft peers on mutual TLS (`--peer-cert-file`, `--peer-key-file`,
//! `--peer-trusted-ca-file`): three real `skiff server` processes replicate and survive the
//! loss of their leader; a member joining with `--join` and the flags catches up and becomes
//! a voter, one joining without them is never replicated to. The peer CA is rotated under
//! the running members by rewriting the files, and members restarted on each step rejoin.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use skiff_control_plane::pki::{CertRequest, ClusterCa, IssuedCert, Usage};
use skiff_e2e::{wait_until, Cluster, SkiffProcess};

/// The files of the `--peer-*` flags, shared by every member; the trusted CAs first, as a
/// rotation trusts the new CA before certificates move to it.
const PEER_FILES: [(&str, &str); 3] = [
    ("--peer-trusted-ca-file", "peer-ca.pem"),
    ("--peer-cert-file", "peer.pem"),
    ("--peer-key-file", "peer-key.pem"),
];

/// One peer certificate from `ca` naming every member (s1..s4).
fn peer_cert(ca: &ClusterCa) -> anyhow::Result<IssuedCert> {
    Ok(ca.issue(&CertRequest {
        common_name: "skiff peer".into(),
        organizations: Vec::new(),
        sans: (1..=4).map(|i| format!("s{i}")).collect(),
        usage: Usage::ServerAndClient,
        validity: Duration::from_secs(24 * 3600),
    })?)
}

/// Writes the peer files: `cert` and the trusted CAs `trusted` (PEM), each as a new file
/// renamed over the old, as a secret manager does.
fn write_peer_files(dir: &Path, cert: &IssuedCert, trusted: &str) -> anyhow::Result<()> {
    let pems = [trusted, cert.cert_pem.as_str(), cert.key_pem.as_str()];
    for ((_, file), pem) in PEER_FILES.iter().zip(pems) {
        let staged = dir.join(format!("{file}.new"));
        std::fs::write(&staged, pem)?;
        std::fs::rename(&staged, dir.join(file))?;
    }
    Ok(())
}

/// The flags that name the peer files in `dir`.
fn peer_flags(dir: &Path) -> Vec<String> {
    PEER_FILES
        .iter()
        .flat_map(|(flag, file)| [flag.to_string(), dir.join(file).display().to_string()])
        .collect()
}

/// Writes a peer CA and one peer certificate naming every member, and returns their flags.
fn peer_files(dir: &Path) -> anyhow::Result<Vec<String>> {
    let ca = ClusterCa::create()?;
    write_peer_files(dir, &peer_cert(&ca)?, ca.cert_pem())?;
    Ok(peer_flags(dir))
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

#[test]
fn the_peer_ca_is_rotated_by_rewriting_its_files_without_a_restart() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let old = ClusterCa::create()?;
    let new = ClusterCa::create()?;
    write_peer_files(tmp.path(), &peer_cert(&old)?, old.cert_pem())?;
    let flags = peer_flags(tmp.path());
    let extra: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut cluster = Cluster::start(tmp.path(), 3, &extra)?;
    cluster.acknowledged_write("old-ca")?;

    // Both CAs trusted, and the certificate moved to the new one, while the members run. A
    // member restarted now presents the new certificate to members started on the old CA
    // alone: it rejoins only if they read the trusted file again.
    let both = format!("{}{}", old.cert_pem(), new.cert_pem());
    write_peer_files(tmp.path(), &peer_cert(&new)?, &both)?;
    let leader = cluster.leader()?;
    let follower = (leader + 1) % 3;
    cluster.kill9(follower)?;
    let while_down = cluster.acknowledged_write("bundle")?;
    cluster.restart(follower)?;
    cluster.wait_caught_up(follower, cluster.leader()?)?;
    anyhow::ensure!(
        cluster.config_maps(follower)?.contains(&while_down),
        "the member restarted on the new certificate misses {while_down}"
    );

    // The new CA alone: the leader's loss forces new connections, verified with it.
    write_peer_files(tmp.path(), &peer_cert(&new)?, new.cert_pem())?;
    let leader = cluster.leader()?;
    cluster.kill9(leader)?;
    let after = cluster.acknowledged_write("new-ca")?;
    cluster.restart(leader)?;
    cluster.wait_caught_up(leader, cluster.leader()?)?;
    anyhow::ensure!(
        cluster.config_maps(leader)?.contains(&after),
        "the member restarted on the new CA alone misses {after}"
    );

    // A member still holding a certificate of the old CA is refused now.
    let outdated = tempfile::tempdir()?;
    write_peer_files(outdated.path(), &peer_cert(&old)?, old.cert_pem())?;
    let _s4 = join(&cluster, tmp.path(), "s4", &peer_flags(outdated.path()))?;
    for n in 0..20 {
        cluster.acknowledged_write(&format!("after-s4-{n}"))?;
    }
    let s4 = member(&cluster, "s4")?;
    anyhow::ensure!(
        s4["role"] == "learner" && s4["matched"].as_u64().unwrap_or(0) == 0,
        "a member on the old CA was replicated to: {s4}"
    );
    Ok(())
}
