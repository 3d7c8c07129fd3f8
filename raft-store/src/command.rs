//! What goes into Raft log entries and the state machine's trees, encoded with prost.

use prost::Message;

use crate::{Compare, EventKind, KeyValue, Op, Txn, WatchEvent};

/// A proposed txn, tagged with the id the proposer waits on.
#[derive(Clone, PartialEq, Message)]
pub struct Command {
    #[prost(uint64, tag = "1")]
    pub request_id: u64,
    #[prost(message, repeated, tag = "2")]
    pub compare: Vec<CompareMsg>,
    #[prost(message, repeated, tag = "3")]
    pub success: Vec<OpMsg>,
    #[prost(message, repeated, tag = "4")]
    pub failure: Vec<OpMsg>,
    /// Non-zero: apply only if the entry was appended in this leader term (else `Fenced`).
    #[prost(uint64, tag = "5")]
    pub fence_term: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct CompareMsg {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub mod_revision: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct OpMsg {
    /// 1 = put, 2 = delete.
    #[prost(uint32, tag = "1")]
    pub kind: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub value: Vec<u8>,
}

const PUT: u32 = 1;
const DELETE: u32 = 2;

impl Command {
    pub fn new(request_id: u64, txn: &Txn, fence_term: u64) -> Self {
        let ops = |ops: &[Op]| ops.iter().map(OpMsg::from).collect();
        Command {
            request_id,
            compare: txn
                .compare
                .iter()
                .map(|c| match c {
                    Compare::ModRevision { key, revision } => CompareMsg {
                        key: key.clone(),
                        mod_revision: *revision,
                    },
                })
                .collect(),
            success: ops(&txn.success),
            failure: ops(&txn.failure),
            fence_term,
        }
    }
}

impl From<&Op> for OpMsg {
    fn from(op: &Op) -> Self {
        match op {
            Op::Put { key, value } => OpMsg {
                kind: PUT,
                key: key.clone(),
                value: value.clone(),
            },
            Op::Delete { key } => OpMsg {
                kind: DELETE,
                key: key.clone(),
                value: Vec::new(),
            },
        }
    }
}

impl OpMsg {
    pub fn is_put(&self) -> bool {
        self.kind == PUT
    }
}

/// A key's stored value with its revisions.
#[derive(Clone, PartialEq, Message)]
pub struct StoredValue {
    #[prost(bytes = "vec", tag = "1")]
    pub value: Vec<u8>,
    #[prost(uint64, tag = "2")]
    pub create_revision: u64,
    #[prost(uint64, tag = "3")]
    pub mod_revision: u64,
    #[prost(uint64, tag = "4")]
    pub version: u64,
}

impl StoredValue {
    pub fn into_kv(self, key: Vec<u8>) -> KeyValue {
        KeyValue {
            key,
            value: self.value,
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
        }
    }

    pub fn from_kv(kv: &KeyValue) -> Self {
        StoredValue {
            value: kv.value.clone(),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
        }
    }
}

/// One change kept in the watch history.
#[derive(Clone, PartialEq, Message)]
pub struct HistoryRecord {
    #[prost(bool, tag = "1")]
    pub delete: bool,
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    #[prost(message, optional, tag = "3")]
    pub kv: Option<StoredValue>,
    #[prost(message, optional, tag = "4")]
    pub prev: Option<StoredValue>,
}

impl HistoryRecord {
    pub fn from_event(event: &WatchEvent) -> Self {
        HistoryRecord {
            delete: event.kind == EventKind::Delete,
            key: event.kv.key.clone(),
            kv: Some(StoredValue::from_kv(&event.kv)),
            prev: event.prev.as_ref().map(StoredValue::from_kv),
        }
    }

    pub fn into_event(self) -> WatchEvent {
        WatchEvent {
            kind: if self.delete {
                EventKind::Delete
            } else {
                EventKind::Put
            },
            kv: self.kv.unwrap_or_default().into_kv(self.key.clone()),
            prev: self.prev.map(|p| p.into_kv(self.key)),
        }
    }
}

/// A state machine snapshot: every key with its revisions, at one applied index.
#[derive(Clone, PartialEq, Message)]
pub struct SnapshotData {
    #[prost(uint64, tag = "1")]
    pub revision: u64,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub keys: Vec<Vec<u8>>,
    /// Encoded `StoredValue`s, one per key.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub values: Vec<Vec<u8>>,
}

/// Decodes a prost message stored by this crate.
pub fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, prost::DecodeError> {
    M::decode(bytes)
}
