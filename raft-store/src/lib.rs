//! Raft-replicated, revisioned key-value store (etcd-like) on raft-rs and sled.
//!
//! One task (`driver`) owns the raft-rs `RawNode`; `storage` keeps the Raft log in sled;
//! `state_machine` is the revisioned KV the log is applied to; `watch` serves changes;
//! `transport` carries Raft messages between members; `member` and `identity` say who is in
//! the group and bind a data dir to it; `backup` saves and restores the whole store.
//! `store` is the handle callers hold and `open` starts one; `metrics` counts what `/metrics`
//! exports.

mod backup;
mod command;
mod config;
mod driver;
mod error;
mod identity;
mod member;
mod metrics;
mod open;
mod raft_log;
mod state_machine;
mod status;
mod storage;
mod store;
mod transport;
mod txn;
mod watch;

pub use backup::{restore as restore_backup, BackupInfo};
pub use config::{JoinConf, StoreConfig, Timing, DEFAULT_LOG_RETAIN};
pub use error::StoreError;
pub use identity::stored as stored_cluster;
pub use member::{Cluster, ClusterError, Member};
pub use metrics::{HistogramSnapshot, LatencyHistogram, StoreMetrics};
pub use status::{MemberStatus, StopCause};
pub use store::Store;
pub use transport::memory::MemoryNetwork;
pub use transport::tcp::{PeerTls, PeerTlsError, MAX_PEER_CONNECTIONS};
pub use txn::{Compare, KeyValue, Op, OpResult, Txn, TxnResponse};
pub use watch::{EventKind, Watch, WatchEvent};
