//! Raft-replicated, revisioned key-value store (etcd-like) on raft-rs and sled.
//!
//! One task (`driver`) owns the raft-rs `RawNode`; `storage` keeps the Raft log in sled;
//! `state_machine` is the revisioned KV the log is applied to; `watch` serves changes.
//! Today a store is a single voter; peers plug in through `Transport`.

mod command;
mod driver;
mod state_machine;
mod storage;
mod transport;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot, watch as signal};
use tokio::task::JoinHandle;

pub use transport::{NoPeers, Transport};

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
    /// This member's Raft id (non-zero).
    pub id: u64,
    /// How many past revisions a watch can start from; older starts get `StoreError::Compacted`.
    pub watch_history: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("revision {requested} has been compacted; the oldest watchable revision is {oldest}")]
    Compacted { requested: u64, oldest: u64 },
    #[error("this member is not the leader and has no leader to forward to")]
    NoLeader,
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
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
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

/// Handle to a running store member; cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    state: Arc<state_machine::StateMachine>,
    proposals: mpsc::Sender<driver::Proposal>,
    live: broadcast::Sender<Arc<Vec<WatchEvent>>>,
    stop: signal::Sender<bool>,
    driver: std::sync::Mutex<Option<JoinHandle<()>>>,
    db: sled::Db,
}

impl Store {
    /// Opens (or creates) the store under `config.data_dir` and starts its Raft driver task.
    pub async fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let storage_error = |source| StoreError::Storage {
            path: config.data_dir.clone(),
            source,
        };
        let db = sled::Config::new()
            .path(&config.data_dir)
            .open()
            .map_err(storage_error)?;
        let storage = storage::SledStorage::open(&db).map_err(storage_error)?;
        let state = Arc::new(
            state_machine::StateMachine::open(&db, config.watch_history, &config.data_dir)
                .map_err(storage_error)?,
        );
        if !storage.is_initialized()? {
            storage.set_conf_state(&raft::eraftpb::ConfState {
                voters: vec![config.id],
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
            id: config.id,
            election_tick: 10,
            heartbeat_tick: 1,
            applied: state.applied_index(),
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let mut node = raft::RawNode::new(&raft_config, storage.clone(), &logger)?;
        let voters = raft::Storage::initial_state(&storage)?.conf_state.voters;
        if voters == [config.id] {
            // A lone voter need not wait an election timeout to lead.
            node.campaign()?;
        }
        let (proposals, proposal_rx) = mpsc::channel(PROPOSAL_QUEUE);
        let (live, _) = broadcast::channel(LIVE_EVENTS);
        let (stop, stop_rx) = signal::channel(false);
        let driver = driver::Driver::new(
            node,
            storage,
            db.clone(),
            state.clone(),
            proposal_rx,
            live.clone(),
            Arc::new(NoPeers),
            config.data_dir.clone(),
        );
        let task = tokio::spawn(driver.run(stop_rx));
        Ok(Store {
            shared: Arc::new(Shared {
                state,
                proposals,
                live,
                stop,
                driver: std::sync::Mutex::new(Some(task)),
                db,
            }),
        })
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
        let command = command::Command::new(rand_id(), &txn);
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

    /// Stops the driver task and flushes storage.
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
