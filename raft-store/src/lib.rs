//! Raft-replicated, revisioned key-value store (etcd-like) on raft-rs and sled.
//!
//! INTERFACE STUB: the public surface the control plane codes against.
//! The implementation replaces the `todo!()`s; the signatures are the contract.

use std::path::PathBuf;

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
    Put { kv: KeyValue, prev: Option<KeyValue> },
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
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
}

/// A live watch: yields events in revision order, starting at the requested revision.
/// The channel is bounded; a watcher that falls too far behind is dropped (the channel closes)
/// and re-watches from the revision after the last event it saw, as etcd and Kubernetes clients do.
pub struct Watch {
    pub events: tokio::sync::mpsc::Receiver<WatchEvent>,
}

/// Handle to a running store member; cheap to clone.
#[derive(Clone)]
pub struct Store {}

impl Store {
    /// Opens (or creates) the store under `config.data_dir` and starts its Raft driver task.
    pub async fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let _ = config;
        todo!()
    }

    /// Reads one key at the latest applied revision.
    pub async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        let _ = key;
        todo!()
    }

    /// Reads every key starting with `prefix`, sorted by key, and the revision they were read at.
    pub async fn range(&self, prefix: &[u8]) -> Result<(Vec<KeyValue>, u64), StoreError> {
        let _ = prefix;
        todo!()
    }

    /// Proposes a txn through Raft; returns once it is durable, committed and applied.
    pub async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        let _ = txn;
        todo!()
    }

    /// Streams every change to keys under `prefix` with revision >= `from_revision`.
    pub fn watch(&self, prefix: &[u8], from_revision: u64) -> Result<Watch, StoreError> {
        let _ = (prefix, from_revision);
        todo!()
    }

    /// The latest applied revision.
    pub fn revision(&self) -> u64 {
        todo!()
    }

    /// Stops the driver task and flushes storage.
    pub async fn shutdown(&self) {
        todo!()
    }
}
