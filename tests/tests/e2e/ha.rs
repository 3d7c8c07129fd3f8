//! Multi-master control planes: three real `skiff server` processes in one Raft group on
//! loopback, with kill -9, restarts and a member that falls behind the retained log.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use skiff_e2e::{example, wait_until, Cluster, Skiff};

/// Writes `count` ConfigMaps named `{prefix}-{i}`; returns those acknowledged.
fn write(cluster: &Cluster, prefix: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let mut acked = Vec::new();
    for i in 0..count {
        let name = format!("{prefix}-{i}");
        if cluster.create_config_map(&name)? {
            acked.push(name);
        }
    }
    Ok(acked)
}

/// Fails unless every running member serves every acknowledged ConfigMap.
fn assert_all_present(
    cluster: &Cluster,
    acked: &[String],
    running: &[usize],
) -> anyhow::Result<()> {
    for &i in running {
        let present: BTreeSet<String> = cluster.config_maps(i)?.into_iter().collect();
        let missing: Vec<&String> = acked.iter().filter(|n| !present.contains(*n)).collect();
        anyhow::ensure!(
            missing.is_empty(),
            "{} lost acknowledged writes: {missing:?}",
            cluster.members[i].name
        );
    }
    Ok(())
}

fn replicas_of(cli: &Skiff) -> anyhow::Result<usize> {
    let pods = cli.json(&["get", "pods", "-l", "app=web"])?;
    Ok(pods["items"].as_array().map(Vec::len).unwrap_or(0))
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.example/web:1}]
";

#[test]
fn leader_loss_and_full_restarts_keep_every_acknowledged_write() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cluster = Cluster::start(tmp.path(), 3, &[])?;
    let cli = cluster.cli();
    let mut acked = write(&cluster, "before", 20)?;
    cli.run_with_stdin(&["apply", "-f", "-"], Some(DEPLOYMENT))?;
    wait_until(
        "the leader's controllers to create a pod",
        Duration::from_secs(30),
        || Ok((replicas_of(&cli)? == 1).then_some(())),
    )?;

    // kill -9 the leader: another member takes over and writes resume through any member.
    let leader = cluster.leader()?;
    cluster.kill9(leader)?;
    acked.extend(write(&cluster, "failover", 20)?);
    let next = cluster.leader()?;
    assert_ne!(next, leader, "a killed member cannot lead");
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    assert_all_present(&cluster, &acked, &survivors)?;
    // The controllers moved with the leadership: scaling is acted on by the new leader.
    cli.ok(&["scale", "deployment", "web", "--replicas", "3"])?;
    wait_until(
        "the new leader's controllers to scale",
        Duration::from_secs(30),
        || Ok((replicas_of(&cli)? == 3).then_some(())),
    )?;

    // The old leader rejoins as a follower and catches up.
    cluster.restart(leader)?;
    acked.extend(write(&cluster, "rejoined", 10)?);
    cluster.wait_caught_up(leader, cluster.leader()?)?;
    assert_all_present(&cluster, &acked, &[0, 1, 2])?;

    // kill -9 a follower, write, bring it back.
    let follower = (cluster.leader()? + 1) % 3;
    cluster.kill9(follower)?;
    acked.extend(write(&cluster, "one-down", 10)?);
    cluster.restart(follower)?;
    cluster.wait_caught_up(follower, cluster.leader()?)?;

    // kill -9 every member in turn, then start them all again: nothing acknowledged is lost.
    for i in 0..3 {
        cluster.kill9(i)?;
    }
    for i in 0..3 {
        cluster.members[i].process.restart()?;
    }
    for i in 0..3 {
        cluster.wait_ready(i)?;
    }
    assert_all_present(&cluster, &acked, &[0, 1, 2])?;
    assert_eq!(replicas_of(&cli)?, 3);
    Ok(())
}

#[test]
fn a_member_behind_the_log_catches_up_by_snapshot_and_bad_peers_are_refused() -> anyhow::Result<()>
{
    let tmp = tempfile::tempdir()?;
    let mut cluster = Cluster::start(tmp.path(), 3, &["--log-retain", "20"])?;
    let leader = cluster.leader()?;
    let lagging = (leader + 1) % 3;
    cluster.kill9(lagging)?;
    let acked = write(&cluster, "while-away", 150)?;
    cluster.restart(lagging)?;
    cluster.wait_caught_up(lagging, cluster.leader()?)?;
    assert_all_present(&cluster, &acked, &[lagging])?;
    let log = cluster.members[lagging].process.log();
    assert!(
        log.contains("installing a snapshot from the leader"),
        "the lagging member should have caught up by snapshot:\n{log}"
    );

    // A graceful stop of the leader hands leadership over first.
    let leader = cluster.leader()?;
    let status = cluster.members[leader].process.terminate()?;
    assert!(status.success(), "SIGTERM exit: {status}");
    assert!(cluster.members[leader]
        .process
        .log()
        .contains("handing leadership over before stopping"));
    let next = cluster.leader()?;
    assert_ne!(next, leader);

    // A data dir reused under another peer list refuses to start, naming the problem.
    let cli = cluster.cli();
    let stolen = cluster.members[leader].data_dir.display().to_string();
    let out = cli.run(&[
        "server",
        "--name",
        &cluster.members[leader].name,
        "--data-dir",
        &stolen,
        "--listen",
        "127.0.0.1:0",
        "--initial-cluster",
        "s1=127.0.0.1:1,s2=127.0.0.1:2,s3=127.0.0.1:3",
    ])?;
    assert!(!out.success);
    assert!(
        out.stderr.contains("belongs to another cluster or member"),
        "{}",
        out.stderr
    );
    let out = cli.run(&[
        "server",
        "--name",
        "s9",
        "--data-dir",
        &tmp.path().join("s9").display().to_string(),
        "--initial-cluster",
        "s1=127.0.0.1:1,s2=127.0.0.1:2",
    ])?;
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("does not list this server's --name \"s9\""),
        "{}",
        out.stderr
    );

    // `skiff cluster status` shows every member, the leader, and an unreachable one.
    let status = cli.ok(&["cluster", "status"])?;
    assert!(status.contains("Leader"), "{status}");
    assert!(status.contains("unreachable"), "{status}");
    assert!(
        status.contains(&format!("leader: {}", cluster.members[next].name)),
        "{status}"
    );
    Ok(())
}

#[test]
fn a_backup_seeds_a_new_cluster_and_a_damaged_one_is_refused() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let source = Cluster::start(&tmp.path().join("a"), 3, &[])?;
    let acked = write(&source, "saved", 30)?;
    let cli = source.cli();
    let original = cli.json(&["get", "configmap", "saved-7"])?;
    let file = tmp.path().join("backup.db");
    cli.ok(&["backup", "save", &file.display().to_string()])?;

    // A damaged file is refused by name, and the data dir is left without a store.
    let mut bytes = std::fs::read(&file)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    let damaged = tmp.path().join("damaged.db");
    std::fs::write(&damaged, &bytes)?;
    let target = tmp.path().join("refused");
    let out = cli.run(&[
        "backup",
        "restore",
        &damaged.display().to_string(),
        "--data-dir",
        &target.display().to_string(),
    ])?;
    assert!(!out.success);
    assert!(out.stderr.contains("damaged.db"), "{}", out.stderr);
    assert!(
        !target.join("store").exists(),
        "a refused restore leaves no store"
    );

    // Every member of a new cluster restored from the file serves what was saved, with the
    // same resourceVersions, and takes new writes.
    let restored = Cluster::start_from_backup(&tmp.path().join("b"), 3, &file)?;
    assert_all_present(&restored, &acked, &[0, 1, 2])?;
    let copy = restored.cli().json(&["get", "configmap", "saved-7"])?;
    assert_eq!(
        copy["metadata"]["resourceVersion"],
        original["metadata"]["resourceVersion"]
    );
    assert!(restored.create_config_map("after-restore")?);
    Ok(())
}

#[test]
fn members_are_added_and_removed_while_a_writer_runs() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cluster = Cluster::start(tmp.path(), 3, &["--log-retain", "50"])?;
    let writer = cluster.writer("steady");
    write(&cluster, "warm-up", 100)?;

    // A fourth member joins as a learner, catches up, and becomes a voter.
    let s4 = cluster.join(tmp.path(), "s4")?;
    wait_until(
        "s4 to be promoted to voter",
        Duration::from_secs(30),
        || {
            let leader = cluster.leader()?;
            let status = cluster.status(leader)?;
            let id = status["members"]
                .as_array()
                .and_then(|m| m.iter().find(|m| m["name"] == "s4"))
                .map(|m| m["id"].clone());
            Ok(id
                .filter(|id| status["voters"].as_array().is_some_and(|v| v.contains(id)))
                .map(drop))
        },
    )?;

    // Remove a follower, then the leader: the group goes on, and each removed server stops.
    let leader = cluster.leader()?;
    let follower = (0..3).find(|i| *i != leader).expect("a follower");
    for removed in [follower, leader] {
        let name = cluster.members[removed].name.clone();
        cluster.cli().ok(&["cluster", "remove", &name])?;
        wait_until(
            "the removed server to exit",
            Duration::from_secs(30),
            || {
                Ok(cluster.members[removed]
                    .process
                    .check_running()
                    .err()
                    .map(drop))
            },
        )
        .with_context(|| cluster.members[removed].process.log_tail(40))?;
    }
    let acked = writer.stop();
    anyhow::ensure!(acked.len() > 10, "the writer barely ran: {}", acked.len());
    let remaining: Vec<usize> = (0..4).filter(|i| *i != follower && *i != leader).collect();
    assert!(remaining.contains(&s4));
    for &i in &remaining {
        cluster.wait_caught_up(i, cluster.leader()?)?;
    }
    assert_all_present(&cluster, &acked, &remaining)?;
    let status = cluster.status(remaining[0])?;
    assert_eq!(status["members"].as_array().map(Vec::len), Some(2));

    // A removed member's data dir refuses to start again.
    cluster.members[follower].process.restart()?;
    wait_until(
        "the removed member to refuse to start",
        Duration::from_secs(30),
        || {
            Ok(cluster.members[follower]
                .process
                .check_running()
                .err()
                .map(drop))
        },
    )?;
    assert!(cluster.members[follower]
        .process
        .log()
        .contains("belongs to a member that was removed"));
    Ok(())
}

/// (name, revision) of each event a watcher saw, in order.
type Seen = Arc<Mutex<Vec<(String, u64)>>>;

/// Follows ConfigMap events from `urls[0]` on, resuming on the next server from the last
/// revision seen whenever a stream ends, until `stop`; records each event in `seen`.
fn follow(urls: Vec<String>, from: u64, stop: Arc<AtomicBool>, seen: Seen) {
    let http = skiff_e2e::https_client_builder(&urls.join(","))
        .expect("http client")
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client");
    let mut revision = from;
    let mut server = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let url = format!(
            "{}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={revision}&timeoutSeconds=15",
            urls[server % urls.len()]
        );
        match http.get(&url).send() {
            Ok(response) if response.status().is_success() => {
                for line in BufReader::new(response).lines() {
                    let Ok(line) = line else { break };
                    let Ok(event) = serde_json::from_str::<Value>(&line) else {
                        break;
                    };
                    let meta = &event["object"]["metadata"];
                    let rv: u64 = meta["resourceVersion"]
                        .as_str()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_default();
                    let name = meta["name"].as_str().unwrap_or_default().to_string();
                    seen.lock().expect("seen").push((name, rv));
                    revision = rv;
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                }
            }
            _ => server += 1,
        }
        // The stream ended (its server died or the timeout passed): resume elsewhere.
        server += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_watch_resumes_on_another_server_without_gaps_or_repeats() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cluster = Cluster::start(tmp.path(), 3, &[])?;
    let mut acked = write(&cluster, "early", 5)?;
    let leader = cluster.leader()?;
    let watched = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let list: Value = skiff_e2e::https_client(&cluster.servers())?
        .get(format!(
            "{}/api/v1/namespaces/default/configmaps",
            cluster.members[watched].url()
        ))
        .send()?
        .json()?;
    let from: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("list revision");
    // The watch starts on a follower and may resume only on the third member: the leader
    // is about to die.
    let urls = vec![cluster.members[watched].url(), cluster.members[other].url()];
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Seen = Arc::default();
    let (flag, record) = (stop.clone(), seen.clone());
    let watcher = std::thread::spawn(move || follow(urls, from, flag, record));

    acked.extend(write(&cluster, "w-a", 10)?);
    cluster.kill9(leader)?;
    acked.extend(write(&cluster, "w-b", 10)?);
    cluster.restart(leader)?;
    // Now the watched member dies: the watch resumes on the other one from its last revision.
    cluster.kill9(watched)?;
    acked.extend(write(&cluster, "w-c", 10)?);
    let expected: Vec<&String> = acked.iter().filter(|n| !n.starts_with("early")).collect();
    let last = expected.last().map(|n| n.to_string()).expect("writes");
    wait_until(
        "the watch to see the last write",
        Duration::from_secs(60),
        || {
            let seen = seen.lock().expect("seen");
            Ok(seen.iter().any(|(name, _)| *name == last).then_some(()))
        },
    )?;
    stop.store(true, Ordering::Relaxed);
    // One more write wakes a watcher blocked on its stream so that it sees `stop`.
    cluster.create_config_map("wake-up")?;
    watcher.join().expect("watcher");
    let events = seen.lock().expect("seen").clone();

    let revisions: Vec<u64> = events.iter().map(|(_, rv)| *rv).collect();
    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "revisions must strictly increase (no repeats): {revisions:?}"
    );
    for name in expected {
        let count = events.iter().filter(|(n, _)| n == name).count();
        assert_eq!(count, 1, "{name} seen {count} times in {events:?}");
    }
    Ok(())
}

#[test]
fn a_cluster_of_one_grows_to_three_and_five_survive_any_two_losses() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    // One server started with its own peer address grows by `cluster add` and `--join`.
    let mut grown = Cluster::start(&tmp.path().join("grown"), 1, &[])?;
    write(&grown, "alone", 5)?;
    for name in ["s2", "s3"] {
        grown.join(&tmp.path().join("grown"), name)?;
    }
    wait_until("three voters", Duration::from_secs(30), || {
        let status = grown.status(grown.leader()?)?;
        Ok((status["voters"].as_array().map(Vec::len) == Some(3)).then_some(()))
    })?;
    // The first server can go: the other two are a majority of three. Restarted with its
    // original flags, it rejoins as one of three rather than as a cluster of one.
    grown.kill9(0)?;
    let acked = write(&grown, "after-growing", 5)?;
    assert_all_present(&grown, &acked, &[1, 2])?;
    grown.kill9(1)?;
    grown.restart(0)?;
    grown.wait_caught_up(0, grown.leader()?)?;
    assert_all_present(&grown, &acked, &[0, 2])?;
    drop(grown);

    // Five servers: any two may be lost; a third loss stops writes until one comes back.
    let mut five = Cluster::start(&tmp.path().join("five"), 5, &[])?;
    five.kill9(five.leader()?)?;
    five.kill9(five.leader()?)?;
    let acked = write(&five, "two-down", 10)?;
    // A write in flight when leadership moved may come back "outcome unknown" (504).
    assert!(
        acked.len() >= 8,
        "three of five servers took only {acked:?}"
    );
    let third = five.leader()?;
    five.kill9(third)?;
    let alive: Vec<usize> = (0..5).filter(|i| five.status(*i).is_ok()).collect();
    assert_eq!(alive.len(), 2);
    assert!(
        !five.create_config_map_on(alive[0], "without-quorum"),
        "two of five servers acknowledged a write"
    );
    five.restart(third)?;
    five.acknowledged_write("quorum-again")?;
    let mut running = alive.clone();
    running.push(third);
    assert_all_present(&five, &acked, &running)?;
    Ok(())
}

#[test]
fn an_agent_fails_over_between_servers_and_keeps_its_pods() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cluster = Cluster::start(&tmp.path().join("servers"), 3, &[])?;
    let cli = cluster.cli();
    let _agent = cluster.join_agent("n1", &tmp.path().join("n1"), &[])?;
    cli.ok(&["apply", "-f", example("ticker").to_str().expect("utf-8")])?;
    let running = |cli: &Skiff| -> anyhow::Result<usize> {
        let pods = cli.json(&["get", "pods", "-l", "app=ticker"])?;
        Ok(pods["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|p| p["status"]["phase"] == "Running")
                    .count()
            })
            .unwrap_or(0))
    };
    wait_until("3 ticker pods Running", Duration::from_secs(60), || {
        Ok((running(&cli)? == 3).then_some(()))
    })?;
    // The agent talks to the first server first: kill it, and the leader too if it is another.
    let leader = cluster.leader()?;
    cluster.kill9(0)?;
    if leader != 0 {
        cluster.kill9(leader)?;
        cluster.restart(leader)?;
    }
    // The node stays Ready through the other servers (its Lease is renewed there), and the new
    // leader's controllers and scheduler place new replicas on it.
    cli.ok(&["scale", "deployment", "ticker", "--replicas", "4"])?;
    wait_until("4 ticker pods Running", Duration::from_secs(60), || {
        Ok((running(&cli)? == 4).then_some(()))
    })?;
    let node = cli.json(&["get", "node", "n1"])?;
    let ready = node["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .map(|c| c["status"].clone());
    assert_eq!(ready, Some(Value::from("True")), "{node}");
    Ok(())
}
