//! Three members over an in-memory network on tokio's paused clock: elections, partitions,
//! healing, lost and reordered messages, removal, and the proposal and read deadlines, all
//! deterministic and costing milliseconds of real time.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use skiff_raft_store::{
    Cluster, MemoryNetwork, Op, Store, StoreConfig, StoreError, Timing, Txn, DEFAULT_LOG_RETAIN,
};
use tokio::time::Instant;

const NAMES: [&str; 3] = ["s1", "s2", "s3"];

struct Group {
    net: MemoryNetwork,
    dirs: Vec<tempfile::TempDir>,
    stores: Vec<Store>,
}

fn config(dir: &Path, name: &str) -> StoreConfig {
    let cluster = Cluster::parse(name, "s1=mem:1,s2=mem:2,s3=mem:3").expect("cluster");
    StoreConfig {
        data_dir: dir.to_path_buf(),
        cluster,
        peer_listen: None,
        peer_tls: None,
        watch_history: 10_000,
        timing: Timing::default(),
        log_retain: DEFAULT_LOG_RETAIN,
        join: None,
    }
}

impl Group {
    async fn start(seed: u64) -> Group {
        let net = MemoryNetwork::new(seed);
        let dirs: Vec<_> = NAMES
            .iter()
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        let mut stores = Vec::new();
        for (dir, name) in dirs.iter().zip(NAMES) {
            let store = Store::open_on(config(dir.path(), name), &net)
                .await
                .expect("open member");
            stores.push(store);
        }
        Group { net, dirs, stores }
    }

    /// The member (index) that leads with every member agreeing on it, within `within`.
    async fn leader(&self, members: &[usize], within: Duration) -> usize {
        let found = until(within, || {
            let statuses: Vec<_> = members
                .iter()
                .map(|&i| self.stores[i].status().borrow().clone())
                .collect();
            let leading: Vec<usize> = members
                .iter()
                .zip(&statuses)
                .filter(|(_, s)| s.leading.is_some())
                .map(|(&i, _)| i)
                .collect();
            match leading[..] {
                [leader] if statuses.iter().all(|s| s.leader == id(leader)) => Some(leader),
                _ => None,
            }
        })
        .await;
        found.unwrap_or_else(|| panic!("members {members:?} agreed on no leader within {within:?}"))
    }

    /// Waits for the leader of all three, then cuts it off from the other two; returns the
    /// old leader and the majority (indexes).
    async fn isolate_leader(&self) -> (usize, Vec<usize>) {
        let leader = self.leader(&[0, 1, 2], Duration::from_secs(5)).await;
        let majority: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
        let others: Vec<u64> = majority.iter().map(|&i| id(i)).collect();
        self.net.partition(&[id(leader)], &others);
        (leader, majority)
    }

    async fn stop(self) {
        for store in &self.stores {
            store.shutdown().await;
        }
    }
}

/// The Raft id of member `i` (ids follow the sorted names).
fn id(i: usize) -> u64 {
    i as u64 + 1
}

/// Checks `probe` every 10 ms of (paused) time until it answers or `within` passes.
async fn until<T>(within: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn put(key: &str, value: &str) -> Txn {
    Txn {
        success: vec![Op::Put {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        }],
        ..Default::default()
    }
}

/// Writes through `store`, retrying while leadership settles or messages are lost
/// (a put of the same value is idempotent); panics after `attempts`.
async fn write(store: &Store, key: &str, value: &str, attempts: usize) {
    for _ in 0..attempts {
        match store.txn(put(key, value)).await {
            Ok(_) => return,
            Err(StoreError::NoLeader | StoreError::Timeout) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(err) => panic!("write {key}: {err}"),
        }
    }
    panic!("write {key} never succeeded");
}

/// A linearizable read, retried while the member cannot confirm with a leader.
async fn read(store: &Store, key: &str) -> Option<String> {
    let mut barrier = Err(StoreError::NoLeader);
    for _ in 0..20 {
        barrier = store.read_barrier().await;
        if barrier.is_ok() {
            break;
        }
    }
    barrier.expect("read barrier");
    store
        .get(key.as_bytes())
        .await
        .expect("get")
        .map(|kv| String::from_utf8(kv.value).expect("utf8"))
}

/// Runs `future` and returns its output with the (paused) time it took.
async fn timed<T>(future: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let output = future.await;
    (output, start.elapsed())
}

#[tokio::test(start_paused = true)]
async fn three_members_elect_one_leader_they_all_follow() {
    let group = Group::start(1).await;
    let leader = group.leader(&[0, 1, 2], Duration::from_secs(5)).await;
    let term = group.stores[leader].status().borrow().term;
    for store in &group.stores {
        let status = store.status().borrow().clone();
        assert_eq!((status.leader, status.term), (id(leader), term));
        assert_eq!(status.voters, vec![1, 2, 3]);
    }
    group.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_partitioned_minority_cannot_commit_and_the_majority_can() {
    let group = Group::start(2).await;
    let (old, majority) = group.isolate_leader().await;
    // The old leader still believes it leads: it accepts the write but can never commit it.
    let isolated = group.stores[old].clone();
    let minority_write = tokio::spawn(async move { isolated.txn(put("/minority", "lost")).await });
    let new = group.leader(&majority, Duration::from_secs(10)).await;
    write(&group.stores[new], "/majority", "committed", 50).await;
    assert_eq!(
        read(&group.stores[majority[0]], "/majority")
            .await
            .as_deref(),
        Some("committed")
    );
    let outcome = minority_write.await.expect("minority write task");
    assert!(
        matches!(outcome, Err(StoreError::Timeout | StoreError::NoLeader)),
        "a write on the isolated old leader must not succeed: {outcome:?}"
    );
    for &i in &majority {
        assert_eq!(read(&group.stores[i], "/minority").await, None);
    }
    group.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_healed_partition_converges_on_the_majority_history() {
    let group = Group::start(3).await;
    let (old, majority) = group.isolate_leader().await;
    let isolated = group.stores[old].clone();
    let minority_write = tokio::spawn(async move { isolated.txn(put("/k", "minority")).await });
    let new = group.leader(&majority, Duration::from_secs(10)).await;
    write(&group.stores[new], "/k", "majority", 50).await;
    assert!(minority_write.await.expect("task").is_err());

    group.net.heal();
    let leader = group.leader(&[0, 1, 2], Duration::from_secs(10)).await;
    assert_ne!(
        leader, old,
        "the isolated member's log is behind: it cannot win"
    );
    // The old leader's uncommitted entry is replaced by the majority's history.
    for store in &group.stores {
        assert_eq!(read(store, "/k").await.as_deref(), Some("majority"));
    }
    let revisions: Vec<u64> = group.stores.iter().map(Store::revision).collect();
    assert!(
        revisions.windows(2).all(|w| w[0] == w[1]),
        "members disagree on the revision: {revisions:?}"
    );
    group.stop().await;
}

#[tokio::test(start_paused = true)]
async fn lost_and_reordered_messages_never_lose_acknowledged_writes() {
    let group = Group::start(4).await;
    group.leader(&[0, 1, 2], Duration::from_secs(5)).await;
    group.net.drop_rate(0.2);
    group.net.max_delay(Duration::from_millis(40));
    for i in 0..30 {
        // Through every member in turn: followers forward to the leader.
        write(
            &group.stores[i % 3],
            &format!("/keys/{i:02}"),
            &i.to_string(),
            200,
        )
        .await;
    }
    let (lost, delayed) = group.net.faults();
    assert!(
        lost > 0 && delayed > 0,
        "no faults happened: {lost} lost, {delayed} delayed"
    );
    group.net.heal();
    for store in &group.stores {
        read(store, "/keys/00").await;
        let (keys, _) = store.range(b"/keys/").await.expect("range");
        let values: Vec<String> = keys
            .iter()
            .map(|kv| String::from_utf8(kv.value.clone()).expect("utf8"))
            .collect();
        let expected: Vec<String> = (0..30).map(|i| i.to_string()).collect();
        assert_eq!(values, expected);
    }
    group.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_write_that_cannot_commit_times_out_after_the_proposal_timeout() {
    let group = Group::start(5).await;
    let (leader, _) = group.isolate_leader().await;
    let (outcome, took) = timed(group.stores[leader].txn(put("/k", "v"))).await;
    assert!(matches!(outcome, Err(StoreError::Timeout)), "{outcome:?}");
    // 8 s, noticed at the next 100 ms tick.
    assert!(
        took >= Duration::from_secs(8) && took <= Duration::from_millis(8_200),
        "took {took:?}"
    );
    group.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_read_barrier_that_cannot_be_confirmed_fails_at_its_deadline() {
    let group = Group::start(6).await;
    let (leader, _) = group.isolate_leader().await;
    let (outcome, took) = timed(group.stores[leader].read_barrier()).await;
    assert!(
        matches!(outcome, Err(StoreError::Timeout | StoreError::NoLeader)),
        "{outcome:?}"
    );
    // 5 s, noticed at the next 100 ms tick.
    assert!(
        took >= Duration::from_secs(5) && took <= Duration::from_millis(5_200),
        "took {took:?}"
    );
    group.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_stopping_leader_hands_over_before_an_election_timeout() {
    let group = Group::start(7).await;
    let old = group.leader(&[0, 1, 2], Duration::from_secs(5)).await;
    let term = group.stores[old].status().borrow().term;
    let others: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let (_, took) = timed(async {
        group.stores[old].shutdown().await;
        group.leader(&others, Duration::from_secs(5)).await
    })
    .await;
    // Without the hand-over the others would wait out an election timeout (1 s or more).
    assert!(took < Duration::from_millis(500), "took {took:?}");
    // The old leader saw its successor's campaign before it stopped.
    assert_eq!(group.stores[old].status().borrow().term, term + 1);
    let next = group.leader(&others, Duration::ZERO).await;
    assert_eq!(group.stores[next].status().borrow().term, term + 1);
    group.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_follower_that_missed_its_own_removal_is_told_and_stops_for_good() {
    let mut group = Group::start(8).await;
    let leader = group.leader(&[0, 1, 2], Duration::from_secs(5)).await;
    let removed = (0..3).find(|&i| i != leader).expect("a follower");
    let others: Vec<u64> = (0..3).filter(|&i| i != removed).map(id).collect();
    // Cut off, the follower never hears that its removal committed; the other two commit it.
    group.net.partition(&[id(removed)], &others);
    group.stores[leader]
        .remove_member(NAMES[removed])
        .await
        .expect("remove");
    group.net.heal();
    let stopped = until(Duration::from_secs(30), || {
        let status = group.stores[removed].status().borrow().clone();
        (status.removed && status.role == "Stopped").then_some(())
    })
    .await;
    assert!(stopped.is_some(), "the removed follower still serves");
    let remaining: Vec<usize> = (0..3).filter(|&i| i != removed).collect();
    group.leader(&remaining, Duration::from_secs(5)).await;
    let store = group.stores.remove(removed);
    store.shutdown().await;
    drop(store);
    // Its data dir records the removal: it refuses to start again.
    let again = Store::open_on(
        config(group.dirs[removed].path(), NAMES[removed]),
        &group.net,
    )
    .await;
    assert!(
        matches!(again, Err(StoreError::Removed { .. })),
        "{:?}",
        again.err()
    );
    group.stop().await;
}
