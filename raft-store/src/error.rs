//! What can go wrong in the store, with the context an operator needs.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Errors of the store's operations.
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
