//! Raft-replicated, revisioned key-value store (etcd-like) on raft-rs and sled.
//!
//! One task (`driver`) owns the raft-rs `RawNode`; `storage` keeps the Raft log in sled;
//! `state_machine` is the revisioned KV the log is applied to; `watch` serves changes;
//! `transport` carries Raft messages between members; `member` and `identity` say who is in
//! the group and bind a data dir to it; `backup` saves and restores the whole store.

mod backup;
mod command;
mod driver;
mod identity;
mod member;
mod state_machine;
mod storage;
mod transport;
mod watch;

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use prost::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType};
use tokio::sync::{broadcast, mpsc, oneshot, watch as signal};
use tokio::task::JoinHandle;

pub use backup::{restore as restore_backup, BackupInfo};
pub use identity::stored as stored_cluster;
pub use member::{Cluster, ClusterError, Member};

/// One stored key with its revisions (as etcd's `mvccpb.KeyValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// Revision of the txn that created the key.
    pub create_revision: u64,
    /// Revision of the txn that last modified the key; the object's `resourceVersion`.
    pub mod_revision: u64,
    /// Number of modifications since creation (1 after create).
    pub version: u64,
}

/// A guard evaluated atomically before a txn's operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key's `mod_revision` equals the value; `0` means "the key does not exist".
    ModRevision { key: Vec<u8>, revision: u64 },
}

/// A write inside a txn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

/// A compare-then-write transaction: if every compare holds, `success` runs, else `failure`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub compare: Vec<Compare>,
    pub success: Vec<Op>,
    pub failure: Vec<Op>,
}

/// The outcome of one operation of a txn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// A put; `prev` is the value it replaced.
    Put {
        kv: KeyValue,
        prev: Option<KeyValue>,
    },
    /// A delete; `prev` is the value it removed (None if the key was absent).
    Delete { prev: Option<KeyValue> },
}

/// What a committed txn did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResponse {
    pub succeeded: bool,
    /// Store revision after the txn (unchanged if it wrote nothing).
    pub revision: u64,
    pub results: Vec<OpResult>,
    /// For a failed compare: the current value of each compared key, in compare order.
    pub compared: Vec<Option<KeyValue>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// A change observed by a watch; `kv.mod_revision` is its revision
/// (for a delete, `kv` is the deleted key with `mod_revision` = the delete's revision and an empty value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev: Option<KeyValue>,
}

impl WatchEvent {
    pub fn revision(&self) -> u64 {
        self.kv.mod_revision
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Directory for the sled database (Raft log, hard state, snapshots, state machine).
    pub data_dir: PathBuf,
    /// The members of the Raft group and which one this is.
    pub cluster: Cluster,
    /// Where this member accepts Raft messages from its peers (needed when it has peers).
    pub peer_listen: Option<SocketAddr>,
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

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("revision {requested} has been compacted; the oldest watchable revision is {oldest}")]
    Compacted { requested: u64, oldest: u64 },
    #[error("no leader is elected (a majority of the control-plane servers is unreachable)")]
    NoLeader,
    #[error("the write or read was not confirmed in time (the leader may have changed); a write's outcome is unknown")]
    Timeout,
    #[error("this write was fenced: it belongs to leader term {term}, which has ended")]
    Fenced { term: u64 },
    #[error("the store is shutting down")]
    Stopped,
    #[error("storage error in {path}: {source}")]
    Storage {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("corrupt data in {path}: {what}")]
    Corrupt { path: PathBuf, what: String },
    #[error("{path} belongs to another cluster or member: it was created for {stored}, but this server is {given}; start with the original --name and --initial-cluster or an empty data dir")]
    WrongCluster {
        path: PathBuf,
        stored: String,
        given: String,
    },
    #[error("cannot listen for peers on {addr}: {source}")]
    PeerListen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("this member has peers but no peer listen address")]
    NoPeerListen,
    #[error("membership change refused: {0}")]
    MemberConflict(String),
    #[error("no member named {0:?}")]
    NoSuchMember(String),
    #[error("{path} belongs to a member that was removed from its cluster; remove the directory to join again as a new member")]
    Removed { path: PathBuf },
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
}

/// What one member knows of the group, as `skiff cluster status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberStatus {
    /// This member's Raft id.
    pub id: u64,
    /// `Leader`, `Follower`, `Candidate` or `PreCandidate`.
    pub role: String,
    /// The leader's id as this member knows it (0: none).
    pub leader: u64,
    pub term: u64,
    pub commit: u64,
    pub applied: u64,
    /// Set to the term while this member leads and has applied an entry of its own term:
    /// the moment leader-only work (controllers, scheduler) may start, fenced to that term.
    pub leading: Option<u64>,
    /// On the leader: each member's id and the highest log index known to be replicated to it.
    pub progress: Vec<(u64, u64)>,
    /// The voting members' ids.
    pub voters: Vec<u64>,
    /// Members catching up before they vote.
    pub learners: Vec<u64>,
    /// This member was removed from the group and has stopped.
    pub removed: bool,
}

impl MemberStatus {
    /// Nothing leads or serves here any more: leader-only work stops, readiness fails.
    fn mark_stopped(&mut self) {
        self.role = "Stopped".into();
        self.leader = raft::INVALID_ID;
        self.leading = None;
    }
}

/// A live watch: yields events in revision order, starting at the requested revision.
/// The channel is bounded; a watcher that falls too far behind is dropped (the channel closes)
/// and re-watches from the revision after the last event it saw, as etcd and Kubernetes clients do.
pub struct Watch {
    pub events: tokio::sync::mpsc::Receiver<WatchEvent>,
}

/// Live changes fanned out to watchers: one batch per applied txn.
const LIVE_EVENTS: usize = 4096;
/// Proposals waiting for the driver.
const PROPOSAL_QUEUE: usize = 8192;
/// Read barriers waiting for the driver.
const READ_QUEUE: usize = 8192;
/// Raft messages from peers waiting for the driver.
const INBOX: usize = 4096;

/// Handle to a running store member; cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    /// Non-zero: txns only apply if appended in this leader term.
    fence: u64,
}

struct Shared {
    state: Arc<state_machine::StateMachine>,
    proposals: mpsc::Sender<driver::Proposal>,
    changes: mpsc::Sender<driver::ChangeProposal>,
    reads: mpsc::Sender<oneshot::Sender<Result<(), StoreError>>>,
    live: broadcast::Sender<Arc<Vec<WatchEvent>>>,
    status: signal::Receiver<MemberStatus>,
    cluster: Arc<std::sync::RwLock<Cluster>>,
    stop: signal::Sender<bool>,
    driver: std::sync::Mutex<Option<JoinHandle<()>>>,
    db: sled::Db,
}

impl Store {
    /// Opens (or creates) the store under `config.data_dir`, listens for peers, and starts
    /// its Raft driver task. A data dir made for another cluster or member is refused.
    pub async fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let storage_error = |source| StoreError::Storage {
            path: config.data_dir.clone(),
            source,
        };
        // A member with a peer address listens even while alone: the cluster can grow.
        let has_peers = config.cluster.members.len() > 1 || config.join.is_some();
        let peer_listener = match (has_peers, config.peer_listen) {
            (false, None) => None,
            (true, None) => return Err(StoreError::NoPeerListen),
            (_, Some(addr)) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| StoreError::PeerListen { addr, source })?,
            ),
        };
        let db = sled::Config::new()
            .path(&config.data_dir)
            .open()
            .map_err(storage_error)?;
        let cluster = identity::check_or_record(&db, &config.cluster, &config.data_dir)?;
        let state = Arc::new(
            state_machine::StateMachine::open(&db, config.watch_history, &config.data_dir)
                .map_err(storage_error)?,
        );
        let membership = Arc::new(std::sync::RwLock::new(cluster.clone()));
        let storage = storage::SledStorage::open(&db, state.clone(), membership.clone())
            .map_err(storage_error)?;
        if !storage.is_initialized()? {
            let (voters, learners) = match &config.join {
                Some(join) => (join.voters.clone(), join.learners.clone()),
                None => (cluster.voters(), Vec::new()),
            };
            storage.set_conf_state(&raft::eraftpb::ConfState {
                voters,
                learners,
                ..Default::default()
            })?;
        }
        // The applied index is persisted with the KV, the commit index with the hard state;
        // after a crash between the two, everything applied was committed (its log is durable).
        let mut hard_state = raft::Storage::initial_state(&storage)?.hard_state;
        if state.applied_index() > hard_state.commit {
            hard_state.commit = state.applied_index();
            storage.set_hard_state(&hard_state)?;
        }
        db.flush_async().await.map_err(storage_error)?;
        let raft_config = raft::Config {
            id: cluster.local,
            election_tick: config.timing.election_ticks,
            heartbeat_tick: config.timing.heartbeat_ticks,
            applied: state.applied_index(),
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        raft_config.validate()?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let mut node = raft::RawNode::new(&raft_config, storage.clone(), &logger)?;
        let conf_state = raft::Storage::initial_state(&storage)?.conf_state;
        if conf_state.voters == [cluster.local] {
            // A lone voter need not wait an election timeout to lead.
            node.campaign()?;
        }
        let (proposals, proposal_rx) = mpsc::channel(PROPOSAL_QUEUE);
        let (changes, change_rx) = mpsc::channel(16);
        let (reads, read_rx) = mpsc::channel(READ_QUEUE);
        let (inbox, inbox_rx) = mpsc::channel(INBOX);
        let (reports, report_rx) = mpsc::unbounded_channel();
        let (live, _) = broadcast::channel(LIVE_EVENTS);
        let (status_tx, status) = signal::channel(MemberStatus::default());
        let status_tx = Arc::new(status_tx);
        let (stop, stop_rx) = signal::channel(false);
        let transport = transport::Transport::start(&cluster, reports, &stop_rx);
        if let Some(listener) = peer_listener {
            transport::serve(listener, &cluster, inbox, stop_rx.clone());
        }
        let cluster = membership;
        let parts = driver::DriverParts {
            node,
            storage,
            db: db.clone(),
            state: state.clone(),
            proposals: proposal_rx,
            changes: change_rx,
            cluster: cluster.clone(),
            reads: read_rx,
            inbox: inbox_rx,
            reports: report_rx,
            events: live.clone(),
            status: status_tx.clone(),
            transport,
            data_dir: config.data_dir.clone(),
            tick: config.timing.tick,
            log_retain: config.log_retain,
        };
        let driver = driver::Driver::new(parts, conf_state);
        // raft-rs panics on storage errors it cannot handle (a read failing on a full disk):
        // the member then stops serving instead of taking the process down with it.
        let task = tokio::spawn(async move {
            if AssertUnwindSafe(driver.run(stop_rx))
                .catch_unwind()
                .await
                .is_err()
            {
                // Marked first: logging may fail too when the disk is full.
                status_tx.send_modify(MemberStatus::mark_stopped);
                tracing::error!(
                    "the raft loop failed (see the panic above); this member stops serving"
                );
            }
        });
        Ok(Store {
            shared: Arc::new(Shared {
                state,
                proposals,
                changes,
                reads,
                live,
                status,
                cluster,
                stop,
                driver: std::sync::Mutex::new(Some(task)),
                db,
            }),
            fence: 0,
        })
    }

    /// A handle whose txns apply only if appended in leader term `term`; once that term
    /// ends they fail with `Fenced` on every member.
    pub fn fenced(&self, term: u64) -> Store {
        Store {
            shared: self.shared.clone(),
            fence: term,
        }
    }

    /// Waits until this member has applied everything the leader had committed when the call
    /// began (Raft's ReadIndex), so that local reads after it are linearizable.
    pub async fn read_barrier(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .reads
            .send(reply)
            .await
            .map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }

    /// A backup of every key at a linearizable point (after a read barrier), for
    /// `restore_backup`.
    pub async fn backup(&self) -> Result<Vec<u8>, StoreError> {
        self.read_barrier().await?;
        let state = self.shared.state.clone();
        let cluster = self.cluster();
        tokio::task::spawn_blocking(move || backup::save(&state, &cluster))
            .await
            .map_err(|_| StoreError::Stopped)?
    }

    /// This member's view of the group; changes whenever it does.
    pub fn status(&self) -> signal::Receiver<MemberStatus> {
        self.shared.status.clone()
    }

    /// The group's members as this member has applied them.
    pub fn cluster(&self) -> Cluster {
        self.shared.cluster.read().expect("cluster").clone()
    }

    /// Adds a member as a learner, which the leader promotes to voter once it has caught up
    /// (Raft's learners, one change at a time); returns it with its new id.
    pub async fn add_member(&self, name: &str, peer_addr: &str) -> Result<Member, StoreError> {
        if let Some(alone) = self
            .cluster()
            .members
            .iter()
            .find(|m| m.peer_addr.is_empty())
        {
            return Err(StoreError::MemberConflict(format!(
                "member {:?} has no peer address, so no other member could reach it; start it \
                 with --initial-cluster {}=IP:PORT to let the cluster grow",
                alone.name, alone.name
            )));
        }
        let member = Member {
            id: self.cluster().next_id(),
            name: name.to_string(),
            peer_addr: peer_addr.to_string(),
        };
        self.change_membership(ConfChangeType::AddLearnerNode, member.clone())
            .await?;
        Ok(member)
    }

    /// Removes a member; it stops serving once it applies its removal.
    pub async fn remove_member(&self, name: &str) -> Result<(), StoreError> {
        let member = self
            .cluster()
            .by_name(name)
            .cloned()
            .ok_or_else(|| StoreError::NoSuchMember(name.to_string()))?;
        self.change_membership(ConfChangeType::RemoveNode, member)
            .await
    }

    async fn change_membership(
        &self,
        kind: ConfChangeType,
        member: Member,
    ) -> Result<(), StoreError> {
        let request_id = rand_id();
        let change = ConfChange {
            change_type: kind as i32,
            node_id: member.id,
            context: member::MemberChange {
                request_id,
                member: Some(member),
            }
            .encode_to_vec(),
            ..Default::default()
        };
        let (reply, answer) = oneshot::channel();
        self.shared
            .changes
            .send(driver::ChangeProposal {
                change,
                request_id,
                reply,
            })
            .await
            .map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }

    /// Reads one key at the latest applied revision.
    pub async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        self.shared.state.get(key)
    }

    /// Reads every key starting with `prefix`, sorted by key, and the revision they were read at.
    pub async fn range(&self, prefix: &[u8]) -> Result<(Vec<KeyValue>, u64), StoreError> {
        let state = self.shared.state.clone();
        let prefix = prefix.to_vec();
        tokio::task::spawn_blocking(move || state.range(&prefix))
            .await
            .map_err(|_| StoreError::Stopped)?
    }

    /// Proposes a txn through Raft; returns once it is durable, committed and applied.
    pub async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        let (reply, answer) = oneshot::channel();
        let command = command::Command::new(rand_id(), &txn, self.fence);
        self.shared
            .proposals
            .send(driver::Proposal { command, reply })
            .await
            .map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }

    /// Streams every change to keys under `prefix` with revision >= `from_revision`
    /// (0: only changes after now).
    pub fn watch(&self, prefix: &[u8], from_revision: u64) -> Result<Watch, StoreError> {
        watch::start(&self.shared.state, &self.shared.live, prefix, from_revision)
    }

    /// The changes to keys under `prefix` with revisions in `from..=to`, from the persisted
    /// history (what a watch replays before it goes live).
    pub fn history(
        &self,
        prefix: &[u8],
        from: u64,
        to: u64,
    ) -> Result<Vec<WatchEvent>, StoreError> {
        self.shared.state.history(prefix, from, to)
    }

    /// The latest applied revision.
    pub fn revision(&self) -> u64 {
        self.shared.state.revision()
    }

    /// Stops the driver task (a leader first hands leadership to a follower) and flushes storage.
    pub async fn shutdown(&self) {
        self.shared.stop.send_replace(true);
        let task = self.shared.driver.lock().expect("driver lock").take();
        if let Some(task) = task {
            let _ = task.await;
        }
        if let Err(err) = self.shared.db.flush_async().await {
            tracing::error!(%err, "flushing the store on shutdown failed");
        }
    }
}

/// A proposal id: this process's random-ish start time in the high half, a counter in the
/// low half, so entries replayed from an earlier process never answer a new proposal.
fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static BASE: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = *BASE.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
            .unwrap_or(0);
        (nanos ^ u64::from(std::process::id())) << 32
    });
    base | (NEXT.fetch_add(1, Ordering::Relaxed) & 0xFFFF_FFFF)
}
