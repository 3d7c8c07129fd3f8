//! raft-rs `Storage` on sled: log entries, hard state, conf state and the compaction point;
//! snapshots are taken from the state machine when a follower needs one.

use std::sync::{Arc, RwLock};

use crate::member::{Cluster, RaftSnapshot};
use crate::state_machine::StateMachine;

use prost::Message;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};

/// Where the log was last compacted: entries up to `index` are gone; `term` is that entry's term.
#[derive(Clone, Copy, Default)]
struct CompactionPoint {
    index: u64,
    term: u64,
}

struct Bounds {
    /// Index of the first entry still in the log.
    first: u64,
    /// Index of the last entry (== compaction index when the log is empty).
    last: u64,
    compacted: CompactionPoint,
}

/// The Raft log in sled trees; cheap to clone (RawNode owns one clone, the driver writes through another).
#[derive(Clone)]
pub struct SledStorage {
    log: sled::Tree,
    meta: sled::Tree,
    bounds: Arc<RwLock<Bounds>>,
    state: Arc<StateMachine>,
    cluster: Arc<RwLock<Cluster>>,
}

const HARD_STATE: &[u8] = b"hard_state";
const CONF_STATE: &[u8] = b"conf_state";
const COMPACTED: &[u8] = b"compacted";

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn storage_error(err: impl std::error::Error + Send + Sync + 'static) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(err)))
}

impl SledStorage {
    pub fn open(
        db: &sled::Db,
        state: Arc<StateMachine>,
        cluster: Arc<RwLock<Cluster>>,
    ) -> Result<Self, sled::Error> {
        let log = db.open_tree("raft_log")?;
        let meta = db.open_tree("raft_meta")?;
        let compacted = match meta.get(COMPACTED)? {
            Some(bytes) if bytes.len() == 16 => CompactionPoint {
                index: u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")),
                term: u64::from_be_bytes(bytes[8..].try_into().expect("8 bytes")),
            },
            _ => CompactionPoint::default(),
        };
        let last = match log.last()? {
            Some((key, _)) => u64::from_be_bytes(key.as_ref().try_into().unwrap_or([0; 8])),
            None => compacted.index,
        };
        Ok(SledStorage {
            log,
            meta,
            bounds: Arc::new(RwLock::new(Bounds {
                first: compacted.index + 1,
                last,
                compacted,
            })),
            state,
            cluster,
        })
    }

    /// Whether this member has ever been initialized (has a conf state).
    pub fn is_initialized(&self) -> raft::Result<bool> {
        Ok(self.meta.get(CONF_STATE).map_err(storage_error)?.is_some())
    }

    /// Appends entries, replacing any conflicting suffix (not yet durable: call `Db::flush`).
    pub fn append(&self, entries: &[Entry]) -> raft::Result<()> {
        let Some(first_new) = entries.first().map(|e| e.index) else {
            return Ok(());
        };
        let mut bounds = self.bounds.write().expect("bounds lock");
        let mut batch = sled::Batch::default();
        for stale in first_new..=bounds.last {
            batch.remove(&index_key(stale));
        }
        for entry in entries {
            batch.insert(&index_key(entry.index), entry.encode_to_vec());
        }
        self.log.apply_batch(batch).map_err(storage_error)?;
        bounds.last = entries.last().map(|e| e.index).unwrap_or(bounds.last);
        Ok(())
    }

    pub fn set_hard_state(&self, hs: &HardState) -> raft::Result<()> {
        self.meta
            .insert(HARD_STATE, hs.encode_to_vec())
            .map_err(storage_error)?;
        Ok(())
    }

    pub fn set_commit(&self, commit: u64) -> raft::Result<()> {
        let mut hs = self.hard_state()?;
        hs.commit = commit;
        self.set_hard_state(&hs)
    }

    pub fn set_conf_state(&self, cs: &ConfState) -> raft::Result<()> {
        self.meta
            .insert(CONF_STATE, cs.encode_to_vec())
            .map_err(storage_error)?;
        Ok(())
    }

    fn hard_state(&self) -> raft::Result<HardState> {
        match self.meta.get(HARD_STATE).map_err(storage_error)? {
            Some(bytes) => HardState::decode(bytes.as_ref()).map_err(storage_error),
            None => Ok(HardState::default()),
        }
    }

    fn conf_state(&self) -> raft::Result<ConfState> {
        match self.meta.get(CONF_STATE).map_err(storage_error)? {
            Some(bytes) => ConfState::decode(bytes.as_ref()).map_err(storage_error),
            None => Ok(ConfState::default()),
        }
    }

    /// Drops entries up to and including `index` (which must be applied).
    pub fn compact(&self, index: u64) -> raft::Result<()> {
        let term = raft::Storage::term(self, index)?;
        let mut bounds = self.bounds.write().expect("bounds lock");
        if index < bounds.first {
            return Ok(());
        }
        let mut point = Vec::with_capacity(16);
        point.extend_from_slice(&index.to_be_bytes());
        point.extend_from_slice(&term.to_be_bytes());
        self.meta.insert(COMPACTED, point).map_err(storage_error)?;
        let mut batch = sled::Batch::default();
        for old in bounds.first..=index {
            batch.remove(&index_key(old));
        }
        self.log.apply_batch(batch).map_err(storage_error)?;
        bounds.compacted = CompactionPoint { index, term };
        bounds.first = index + 1;
        Ok(())
    }

    /// Makes a leader's snapshot the start of the log: entries are dropped, the compaction
    /// point moves to the snapshot, and the commit index and conf state follow it.
    pub fn apply_snapshot(&self, snapshot: &Snapshot) -> raft::Result<()> {
        let meta = snapshot.get_metadata();
        let mut bounds = self.bounds.write().expect("bounds lock");
        let mut point = Vec::with_capacity(16);
        point.extend_from_slice(&meta.index.to_be_bytes());
        point.extend_from_slice(&meta.term.to_be_bytes());
        self.meta.insert(COMPACTED, point).map_err(storage_error)?;
        self.log.clear().map_err(storage_error)?;
        bounds.compacted = CompactionPoint {
            index: meta.index,
            term: meta.term,
        };
        bounds.first = meta.index + 1;
        bounds.last = meta.index;
        drop(bounds);
        let mut hs = self.hard_state()?;
        hs.commit = hs.commit.max(meta.index);
        hs.term = hs.term.max(meta.term);
        self.set_hard_state(&hs)?;
        self.set_conf_state(meta.get_conf_state())
    }

    fn entry(&self, index: u64) -> raft::Result<Entry> {
        let bytes = self
            .log
            .get(index_key(index))
            .map_err(storage_error)?
            .ok_or(raft::Error::Store(StorageError::Unavailable))?;
        Entry::decode(bytes.as_ref()).map_err(storage_error)
    }
}

impl raft::Storage for SledStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(self.hard_state()?, self.conf_state()?))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let bounds = self.bounds.read().expect("bounds lock");
        if low < bounds.first {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > bounds.last + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        drop(bounds);
        let max_size = max_size.into().unwrap_or(u64::MAX);
        let mut entries = Vec::with_capacity((high - low) as usize);
        let mut size = 0u64;
        for item in self.log.range(index_key(low)..index_key(high)) {
            let (_, bytes) = item.map_err(storage_error)?;
            size += bytes.len() as u64;
            if !entries.is_empty() && size > max_size {
                break;
            }
            entries.push(Entry::decode(bytes.as_ref()).map_err(storage_error)?);
        }
        Ok(entries)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        let bounds = self.bounds.read().expect("bounds lock");
        if index == bounds.compacted.index {
            return Ok(bounds.compacted.term);
        }
        if index < bounds.first {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if index > bounds.last {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        drop(bounds);
        Ok(self.entry(index)?.term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.bounds.read().expect("bounds lock").first)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.bounds.read().expect("bounds lock").last)
    }

    /// The state machine at its applied index, for a follower whose next entry was compacted.
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let (index, state) = self
            .state
            .snapshot()
            .map_err(|e| raft::Error::Store(StorageError::Other(Box::new(e))))?;
        if index < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let cluster = self.cluster.read().expect("cluster").clone();
        let data = RaftSnapshot {
            state,
            members: cluster.members,
            max_id: cluster.max_id,
        };
        let mut snapshot = Snapshot {
            data: data.encode_to_vec(),
            ..Default::default()
        };
        let meta = snapshot.mut_metadata();
        meta.index = index;
        meta.term = self.term(index)?;
        meta.set_conf_state(self.conf_state()?);
        tracing::info!(to, index, "sending a snapshot to a follower");
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::Storage;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Default::default()
        }
    }

    #[test]
    fn append_truncates_conflicts_and_compacts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("db");
        let state = Arc::new(StateMachine::open(&db, 10, dir.path()).expect("state"));
        let cluster = Arc::new(RwLock::new(Cluster::single("s1")));
        let storage = SledStorage::open(&db, state.clone(), cluster.clone()).expect("storage");
        storage
            .append(&[entry(1, 1), entry(2, 1), entry(3, 1)])
            .expect("append");
        storage.append(&[entry(2, 2)]).expect("overwrite");
        assert_eq!(storage.last_index().expect("last"), 2);
        assert_eq!(storage.term(2).expect("term"), 2);
        assert!(storage.term(3).is_err());
        storage.append(&[entry(3, 2), entry(4, 2)]).expect("append");
        storage.compact(2).expect("compact");
        assert_eq!(storage.first_index().expect("first"), 3);
        assert_eq!(storage.term(2).expect("compacted term"), 2);
        assert!(matches!(
            storage.entries(2, 4, None, GetEntriesContext::empty(false)),
            Err(raft::Error::Store(StorageError::Compacted))
        ));
        let got = storage
            .entries(3, 5, None, GetEntriesContext::empty(false))
            .expect("entries");
        assert_eq!(got.iter().map(|e| e.index).collect::<Vec<_>>(), vec![3, 4]);
        drop(storage);
        let reopened = SledStorage::open(&db, state, cluster).expect("reopen");
        assert_eq!(reopened.first_index().expect("first"), 3);
        assert_eq!(reopened.last_index().expect("last"), 4);
    }
}
