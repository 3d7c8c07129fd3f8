//! Three store members in one process, talking Raft over real loopback sockets: election,
//! writes through followers, linearizable reads, leadership hand-over, fencing, and a
//! follower catching up by snapshot after the log it missed was compacted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use skiff_raft_store::{Cluster, Op, Store, StoreConfig, StoreError, Timing, Txn};

const NAMES: [&str; 3] = ["s1", "s2", "s3"];

struct Group {
    dirs: Vec<tempfile::TempDir>,
    addrs: Vec<SocketAddr>,
    stores: Vec<Option<Store>>,
    log_retain: u64,
}

/// A peer listener on a port of its own, and its address.
async fn listener() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    (listener, addr)
}

fn config(dir: &Path, name: &str, addrs: &[SocketAddr], log_retain: u64) -> StoreConfig {
    let initial: Vec<String> = NAMES
        .iter()
        .zip(addrs)
        .map(|(n, a)| format!("{n}={a}"))
        .collect();
    let cluster = Cluster::parse(name, &initial.join(",")).expect("cluster");
    let local = cluster.local as usize - 1;
    StoreConfig {
        data_dir: PathBuf::from(dir),
        peer_listen: Some(addrs[local]),
        peer_tls: None,
        cluster,
        watch_history: 10_000,
        timing: Timing {
            tick: Duration::from_millis(20),
            heartbeat_ticks: 1,
            election_ticks: 10,
        },
        log_retain,
        join: None,
    }
}

impl Group {
    async fn start(log_retain: u64) -> Group {
        let dirs: Vec<_> = NAMES
            .iter()
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        let mut listeners = Vec::new();
        for _ in NAMES {
            listeners.push(listener().await);
        }
        let addrs: Vec<_> = listeners.iter().map(|(_, addr)| *addr).collect();
        let mut group = Group {
            dirs,
            addrs,
            stores: vec![None, None, None],
            log_retain,
        };
        for (i, (listener, _)) in listeners.into_iter().enumerate() {
            let config = config(group.dirs[i].path(), NAMES[i], &group.addrs, log_retain);
            let store = Store::open_with_listener(config, listener).await;
            group.stores[i] = Some(store.expect("open member"));
        }
        group
    }

    /// Starts member `i` again on the address it had.
    async fn restart(&mut self, i: usize) {
        let config = config(self.dirs[i].path(), NAMES[i], &self.addrs, self.log_retain);
        self.stores[i] = Some(Store::open(config).await.expect("open member"));
    }

    async fn stop(&mut self, i: usize) {
        if let Some(store) = self.stores[i].take() {
            store.shutdown().await;
        }
    }

    fn store(&self, i: usize) -> &Store {
        self.stores[i].as_ref().expect("member running")
    }

    /// The index of the member that leads, once one does (bounded wait).
    async fn leader(&self) -> usize {
        for _ in 0..200 {
            for (i, store) in self.stores.iter().enumerate() {
                if let Some(store) = store {
                    if store.status().borrow().leading.is_some() {
                        return i;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no leader elected within 5 s");
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

/// Retries a write while leadership settles (bounded).
async fn write(store: &Store, key: &str, value: &str) -> u64 {
    for _ in 0..100 {
        match store.txn(put(key, value)).await {
            Ok(done) => return done.revision,
            Err(StoreError::NoLeader | StoreError::Timeout) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(err) => panic!("write {key}: {err}"),
        }
    }
    panic!("write {key} never succeeded");
}

async fn read(store: &Store, key: &str) -> Option<String> {
    store.read_barrier().await.expect("read barrier");
    store
        .get(key.as_bytes())
        .await
        .expect("get")
        .map(|kv| String::from_utf8(kv.value).expect("utf8"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_forward_writes_and_read_linearizably() {
    let mut group = Group::start(10_000).await;
    let leader = group.leader().await;
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let revision = write(group.store(follower), "/k", "from-follower").await;
    assert!(revision > 0);
    // Acknowledged on one follower: every member's linearizable read sees it.
    for i in [leader, follower, other] {
        assert_eq!(
            read(group.store(i), "/k").await.as_deref(),
            Some("from-follower")
        );
    }
    // Every member lists the same members; the leader reports replication progress.
    let status = group.store(leader).status().borrow().clone();
    assert_eq!(status.progress.len(), 3);
    assert_eq!(group.store(other).cluster().members.len(), 3);

    // A graceful stop hands leadership over; the others keep accepting writes.
    let fenced = group.store(leader).fenced(status.term);
    group.stop(leader).await;
    let next = group.leader().await;
    assert_ne!(next, leader);
    assert!(group.store(next).status().borrow().term > status.term);
    write(group.store(follower), "/k", "after-handover").await;
    assert_eq!(
        read(group.store(other), "/k").await.as_deref(),
        Some("after-handover")
    );
    // A write fenced to the old leader's term never applies, whichever member carries it.
    let new_term = group.store(next).status().borrow().term;
    let survivor_fenced = group.store(next).fenced(status.term);
    match survivor_fenced.txn(put("/k", "stale")).await {
        Err(StoreError::Fenced { term }) => assert_eq!(term, status.term),
        other => panic!("a write fenced to term {} applied: {other:?}", status.term),
    }
    assert!(matches!(
        fenced.txn(put("/k", "stale")).await,
        Err(StoreError::Stopped)
    ));
    let current = group.store(next).fenced(new_term);
    current
        .txn(put("/k", "current-term"))
        .await
        .expect("a write fenced to the current term applies");
    assert_eq!(
        read(group.store(follower), "/k").await.as_deref(),
        Some("current-term")
    );
    for i in 0..3 {
        group.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_the_retained_log_catches_up_by_snapshot() {
    let mut group = Group::start(20).await;
    let leader = group.leader().await;
    let lagging = (leader + 1) % 3;
    group.stop(lagging).await;
    let writer = group.store(leader).clone();
    for i in 0..300 {
        write(&writer, &format!("/keys/{i:03}"), &i.to_string()).await;
    }
    group.restart(lagging).await;
    // Bounded wait until the restarted member has applied what the leader committed.
    let target = writer.status().borrow().commit;
    let mut status = group.store(lagging).status();
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.applied >= target),
    )
    .await
    .expect("the lagging member caught up within 10 s")
    .expect("status");
    let (keys, _) = group.store(lagging).range(b"/keys/").await.expect("range");
    assert_eq!(keys.len(), 300);
    assert_eq!(keys[299].value, b"299");
    // Watches from before the snapshot are gone; new ones work.
    assert!(matches!(
        group.store(lagging).watch(b"/keys/", 1),
        Err(StoreError::Compacted { .. })
    ));
    for i in 0..3 {
        group.stop(i).await;
    }
}

#[tokio::test]
async fn a_data_dir_from_another_cluster_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The peers' listeners stay bound (unanswered) so that no one else takes their ports.
    let (s1, s1_addr) = listener().await;
    let (_s2, s2_addr) = listener().await;
    let (_s3, s3_addr) = listener().await;
    let addrs = [s1_addr, s2_addr, s3_addr];
    let store = Store::open_with_listener(config(dir.path(), "s1", &addrs, 100), s1)
        .await
        .expect("first start");
    store.shutdown().await;
    drop(store);
    let (s1, _) = listener().await;
    let (_elsewhere, elsewhere) = listener().await;
    let moved = [addrs[0], addrs[1], elsewhere];
    let err = match Store::open_with_listener(config(dir.path(), "s1", &moved, 100), s1).await {
        Err(err) => err,
        Ok(_) => panic!("a data dir opened under another peer list"),
    };
    assert!(
        err.to_string().contains("belongs to another cluster"),
        "{err}"
    );
}

/// A peer connection's first frame as the transport writes it: a length-prefixed prost
/// `Hello { cluster_id = 1, from = 2, to = 3 }`, encoded by hand as a stranger would.
fn hello_frame(cluster_id: &str, from: u8, to: u8) -> Vec<u8> {
    let mut body = vec![0x0a, cluster_id.len() as u8];
    body.extend_from_slice(cluster_id.as_bytes());
    body.extend_from_slice(&[0x10, from, 0x18, to]);
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend(body);
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_from_another_cluster_or_for_another_member_are_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let group = Group::start(10_000).await;
    let cluster_id = group.store(0).cluster().cluster_id;
    for (id, to) in [("not-our-cluster", 1), (cluster_id.as_str(), 3)] {
        let mut stream = tokio::net::TcpStream::connect(group.addrs[0])
            .await
            .expect("connect to s1's peer port");
        stream
            .write_all(&hello_frame(id, 2, to))
            .await
            .expect("hello");
        // s1 (id 1) closes the connection instead of waiting for Raft messages.
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut byte))
            .await
            .expect("s1 closes the connection within 2 s");
        assert_eq!(read.expect("read"), 0, "cluster {id:?}, to {to}");
    }
    // Its own members' connections are kept: the group still commits.
    write(group.store(0), "/still", "fine").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_to_the_peer_port_are_bounded_and_closed() {
    use tokio::io::AsyncReadExt;
    let group = Group::start(10_000).await;
    write(group.store(0), "/before", "flood").await;
    // More silent connections than the listener holds (64): they never say hello.
    let mut flood = Vec::new();
    for _ in 0..100 {
        let stream = tokio::net::TcpStream::connect(group.addrs[0])
            .await
            .expect("connect to s1's peer port");
        flood.push(stream);
    }
    // The members' own connections are untouched: the group still commits through s1.
    write(group.store(0), "/during", "flood").await;
    // The silent ones are closed once the hello timeout (10 s) has passed.
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(20), flood[0].read(&mut byte))
        .await
        .expect("a silent connection is closed within 20 s");
    assert_eq!(read.expect("read"), 0);
}
