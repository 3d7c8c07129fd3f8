//! How a store is opened: its data dir, its members, Raft's timing and log retention.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::member::Cluster;
use crate::transport::tcp::PeerTls;

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Directory for the sled database (Raft log, hard state, snapshots, state machine).
    pub data_dir: PathBuf,
    /// The members of the Raft group and which one this is.
    pub cluster: Cluster,
    /// Where this member accepts Raft messages from its peers (needed when it has peers).
    pub peer_listen: Option<SocketAddr>,
    /// Mutual TLS with the peers; without it they talk plain TCP (the in-memory network of
    /// `Store::open_on` ignores it).
    pub peer_tls: Option<PeerTls>,
    /// How many past revisions a watch can start from; older starts get `StoreError::Compacted`.
    pub watch_history: u64,
    /// Raft timing.
    pub timing: Timing,
    /// Log entries kept behind the applied index; a follower further behind gets a snapshot.
    pub log_retain: u64,
    /// For a member joining an existing cluster with a new data dir: the group's voters and
    /// learners (this member among the learners), as the cluster reported them.
    pub join: Option<JoinConf>,
}

/// The Raft configuration a joining member starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinConf {
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
}

impl StoreConfig {
    /// A lone member with default timing and retention.
    pub fn single(data_dir: PathBuf, name: &str, watch_history: u64) -> StoreConfig {
        StoreConfig {
            data_dir,
            cluster: Cluster::single(name),
            peer_listen: None,
            peer_tls: None,
            watch_history,
            timing: Timing::default(),
            log_retain: DEFAULT_LOG_RETAIN,
            join: None,
        }
    }
}

/// Raft's clock: one tick every `tick`; heartbeats and elections count ticks (as etcd's
/// `--heartbeat-interval` and `--election-timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub tick: Duration,
    pub heartbeat_ticks: usize,
    pub election_ticks: usize,
}

impl Default for Timing {
    /// etcd's defaults: 100 ms heartbeats, 1 s election timeout.
    fn default() -> Self {
        Timing {
            tick: Duration::from_millis(100),
            heartbeat_ticks: 1,
            election_ticks: 10,
        }
    }
}

/// Log entries retained behind the applied index by default.
pub const DEFAULT_LOG_RETAIN: u64 = 10_000;
