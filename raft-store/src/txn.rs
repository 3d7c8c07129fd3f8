//! The etcd-like data model: stored keys with their revisions, and compare-then-write
//! transactions with their outcomes.

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
