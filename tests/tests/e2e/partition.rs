//! Network partitions: three `skiff server`s, each in its own network namespace on a bridge;
//! the leader is cut off from the others with nftables, then healed. Needs root (CI is).

use std::collections::BTreeSet;

use skiff_e2e::{wait_until, Cluster};

#[test]
fn a_cut_off_leader_cannot_commit_and_catches_up_after_healing() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cluster = Cluster::start_partitionable(tmp.path(), 3, &["--log-retain", "20"])?;
    let mut acked = Vec::new();
    for i in 0..10 {
        let name = format!("before-{i}");
        anyhow::ensure!(cluster.create_config_map(&name)?, "{name} not acknowledged");
        acked.push(name);
    }
    let old = cluster.leader()?;
    let majority: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    cluster.isolate(old)?;

    // The cut-off member cannot commit: its write is never acknowledged, and a linearizable
    // read there is refused, while its local replica still answers resourceVersion=0 reads.
    assert!(
        !cluster.create_config_map_on(old, "minority"),
        "a member cut off from the majority acknowledged a write"
    );
    assert!(
        cluster.config_maps(old).is_err(),
        "linearizable read without a quorum"
    );
    assert!(cluster.local_config_maps(old)?.len() >= 10);

    // The majority elects a leader among itself and goes on; the cut-off member's copy of
    // the group is left out of the retry loop so that writes go to the majority.
    let new = wait_until(
        "a leader in the majority",
        std::time::Duration::from_secs(30),
        || {
            Ok(majority
                .iter()
                .copied()
                .find(|i| matches!(cluster.status(*i), Ok(s) if s["role"] == "Leader")))
        },
    )?;
    for i in 0..150 {
        let name = format!("during-{i}");
        if cluster.create_config_map_on(new, &name) {
            acked.push(name);
        }
    }
    anyhow::ensure!(
        acked.len() > 150,
        "the majority stopped taking writes: {}",
        acked.len()
    );

    // Healed, the old leader rejoins as a follower and catches up by snapshot (it missed more
    // than the 20 retained entries); the write it took alone is nowhere.
    cluster.heal(old)?;
    cluster.wait_caught_up(old, new)?;
    for i in 0..3 {
        let present: BTreeSet<String> = cluster.config_maps(i)?.into_iter().collect();
        let missing: Vec<&String> = acked.iter().filter(|n| !present.contains(*n)).collect();
        anyhow::ensure!(missing.is_empty(), "member {i} lacks {missing:?}");
        anyhow::ensure!(
            !present.contains("minority"),
            "member {i} applied a write that only a minority saw"
        );
    }
    let log = cluster.members[old].process.log();
    assert!(
        log.contains("installing a snapshot from the leader"),
        "the healed member should have caught up by snapshot:\n{log}"
    );
    // The healed member is a full voter again: with the new leader gone, it and the third
    // member form the majority (a write may first come back "outcome unknown", 504).
    cluster.kill9(new)?;
    cluster.acknowledged_write("after-heal")?;
    Ok(())
}
