//! The replicated state machine: a revisioned key-value store (as etcd's mvcc) in sled,
//! with a bounded, persisted history of changes for watches. Deterministic: the same log
//! applied to the same state gives the same result on every member.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, TryLockError};

use prost::Message;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
};

use crate::command::{decode, Command, HistoryRecord, SnapshotData, StoredValue};
use crate::{EventKind, KeyValue, OpResult, StoreError, TxnResponse, WatchEvent};

const APPLIED: &[u8] = b"applied_index";
const REVISION: &[u8] = b"revision";
/// Present while a snapshot from the leader is being installed.
const RESTORING: &[u8] = b"restoring";

pub struct StateMachine {
    kv: sled::Tree,
    history: sled::Tree,
    meta: sled::Tree,
    revision: AtomicU64,
    applied: AtomicU64,
    /// Oldest revision a watch can start from.
    oldest: AtomicU64,
    watch_history: u64,
    /// Applies take it for writing, ranges for reading, so a range sees one revision.
    apply_lock: RwLock<()>,
    path: std::path::PathBuf,
}

fn read_u64(tree: &sled::Tree, key: &[u8]) -> Result<u64, sled::Error> {
    Ok(tree
        .get(key)?
        .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0))
}

/// History keys: revision then the op's position in its txn, both big-endian, so they sort.
fn history_key(revision: u64, seq: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&revision.to_be_bytes());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// One entry's txn response and watch events, if it was applied.
pub type Applied = Option<(TxnResponse, Vec<WatchEvent>)>;

type TxnError = ConflictableTransactionError<String>;

/// Applies `command` inside a sled transaction on top of `current_revision`: evaluates its
/// compares, runs the chosen branch, records history. The response carries the new revision
/// (the same one when nothing changed).
fn apply_txn(
    kv: &TransactionalTree,
    history: &TransactionalTree,
    current_revision: u64,
    command: &Command,
) -> Result<(TxnResponse, Vec<WatchEvent>), TxnError> {
    let decode_stored = |key: &[u8], bytes: &[u8]| {
        decode::<StoredValue>(bytes)
            .map(|v| v.into_kv(key.to_vec()))
            .map_err(|e| ConflictableTransactionError::Abort(format!("corrupt value: {e}")))
    };
    let mut compared = Vec::with_capacity(command.compare.len());
    let mut succeeded = true;
    for compare in &command.compare {
        let current = match kv.get(&compare.key)? {
            Some(bytes) => Some(decode_stored(&compare.key, &bytes)?),
            None => None,
        };
        let actual = current.as_ref().map(|kv| kv.mod_revision).unwrap_or(0);
        succeeded &= actual == compare.mod_revision;
        compared.push(current);
    }
    let ops = if succeeded {
        &command.success
    } else {
        &command.failure
    };
    let revision = current_revision + 1;
    let mut results = Vec::with_capacity(ops.len());
    let mut events = Vec::new();
    for op in ops {
        let prev = match kv.get(&op.key)? {
            Some(bytes) => Some(decode_stored(&op.key, &bytes)?),
            None => None,
        };
        if op.is_put() {
            let stored = StoredValue {
                value: op.value.clone(),
                create_revision: prev.as_ref().map(|p| p.create_revision).unwrap_or(revision),
                mod_revision: revision,
                version: prev.as_ref().map(|p| p.version + 1).unwrap_or(1),
            };
            kv.insert(op.key.as_slice(), stored.encode_to_vec())?;
            let new = stored.into_kv(op.key.clone());
            events.push(WatchEvent {
                kind: EventKind::Put,
                kv: new.clone(),
                prev: prev.clone(),
            });
            results.push(OpResult::Put { kv: new, prev });
        } else {
            if let Some(prev) = prev.as_ref() {
                kv.remove(op.key.as_slice())?;
                events.push(WatchEvent {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key: op.key.clone(),
                        value: Vec::new(),
                        create_revision: prev.create_revision,
                        mod_revision: revision,
                        version: 0,
                    },
                    prev: Some(prev.clone()),
                });
            }
            results.push(OpResult::Delete { prev });
        }
    }
    let new_revision = if events.is_empty() {
        current_revision
    } else {
        revision
    };
    for (seq, event) in events.iter().enumerate() {
        history.insert(
            &history_key(revision, seq as u32),
            HistoryRecord::from_event(event).encode_to_vec(),
        )?;
    }
    Ok((
        TxnResponse {
            succeeded,
            revision: new_revision,
            results,
            compared: if succeeded { Vec::new() } else { compared },
        },
        events,
    ))
}

fn revision_of_history_key(key: &[u8]) -> u64 {
    key.get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

impl StateMachine {
    pub fn open(
        db: &sled::Db,
        watch_history: u64,
        path: &std::path::Path,
    ) -> Result<Self, sled::Error> {
        let kv = db.open_tree("kv")?;
        let history = db.open_tree("history")?;
        let meta = db.open_tree("sm_meta")?;
        if meta.get(RESTORING)?.is_some() {
            return Err(sled::Error::Unsupported(format!(
                "{}: a snapshot install was interrupted and the state is incomplete; \
                 move this data dir away and start the member again to receive a fresh copy",
                path.display()
            )));
        }
        let revision = read_u64(&meta, REVISION)?;
        let applied = read_u64(&meta, APPLIED)?;
        let oldest = match history.first()? {
            Some((key, _)) => revision_of_history_key(&key),
            None => revision + 1,
        };
        Ok(StateMachine {
            kv,
            history,
            meta,
            revision: AtomicU64::new(revision),
            applied: AtomicU64::new(applied),
            oldest: AtomicU64::new(oldest),
            watch_history: watch_history.max(1),
            apply_lock: RwLock::new(()),
            path: path.to_path_buf(),
        })
    }

    fn storage_error(&self, source: sled::Error) -> StoreError {
        StoreError::Storage {
            path: self.path.clone(),
            source,
        }
    }

    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::SeqCst)
    }

    pub fn applied_index(&self) -> u64 {
        self.applied.load(Ordering::SeqCst)
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        let stored = self.kv.get(key).map_err(|e| self.storage_error(e))?;
        stored
            .map(|bytes| self.decode_value(key, &bytes))
            .transpose()
    }

    fn decode_value(&self, key: &[u8], bytes: &[u8]) -> Result<KeyValue, StoreError> {
        decode::<StoredValue>(bytes)
            .map(|v| v.into_kv(key.to_vec()))
            .map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                what: format!("value of key {}: {e}", String::from_utf8_lossy(key)),
            })
    }

    /// Every key under `prefix` and the revision they were read at (one consistent snapshot).
    pub fn range(&self, prefix: &[u8]) -> Result<(Vec<KeyValue>, u64), StoreError> {
        let _read = self.apply_lock.read().expect("apply lock");
        let revision = self.revision();
        let mut out = Vec::new();
        for item in self.kv.scan_prefix(prefix) {
            let (key, bytes) = item.map_err(|e| self.storage_error(e))?;
            out.push(self.decode_value(&key, &bytes)?);
        }
        Ok((out, revision))
    }

    /// Whether any key starts with `prefix`, reading one key at most. Under the apply lock
    /// like `range`, so it never sees a snapshot install half done; `None` instead of waiting
    /// while an apply holds it (ask again with `has_prefix`, off the async workers).
    pub fn try_has_prefix(&self, prefix: &[u8]) -> Option<Result<bool, StoreError>> {
        let _read = match self.apply_lock.try_read() {
            Err(TryLockError::WouldBlock) => return None,
            read => read.expect("apply lock"),
        };
        Some(self.first_under(prefix))
    }

    /// Whether any key starts with `prefix`, waiting for a running apply.
    pub fn has_prefix(&self, prefix: &[u8]) -> Result<bool, StoreError> {
        let _read = self.apply_lock.read().expect("apply lock");
        self.first_under(prefix)
    }

    fn first_under(&self, prefix: &[u8]) -> Result<bool, StoreError> {
        match self.kv.scan_prefix(prefix).next() {
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) => Err(self.storage_error(e)),
            None => Ok(false),
        }
    }

    /// Records that `index` was applied without changing the KV (empty or config entries).
    pub fn set_applied(&self, index: u64) -> Result<(), StoreError> {
        self.meta
            .insert(APPLIED, &index.to_be_bytes())
            .map_err(|e| self.storage_error(e))?;
        self.applied.store(index, Ordering::SeqCst);
        Ok(())
    }

    /// Applies a run of consecutive entries in one sled transaction: for each `(index,
    /// command)` the txn (evaluate its compares, run the chosen branch, record history), or
    /// nothing for `None` (an empty or fenced entry, which only advances the applied index).
    /// Returns each entry's response and watch events (`None` where nothing was applied).
    pub fn apply_all(
        &self,
        entries: &[(u64, Option<&Command>)],
    ) -> Result<Vec<Applied>, StoreError> {
        let Some(&(last_index, _)) = entries.last() else {
            return Ok(Vec::new());
        };
        let _write = self.apply_lock.write().expect("apply lock");
        let current_revision = self.revision();
        let outcome = (&self.kv, &self.history, &self.meta).transaction(|(kv, history, meta)| {
            let mut revision = current_revision;
            let mut applied = Vec::with_capacity(entries.len());
            for (_, command) in entries {
                applied.push(match command {
                    Some(command) => {
                        let (response, events) = apply_txn(kv, history, revision, command)?;
                        revision = response.revision;
                        Some((response, events))
                    }
                    None => None,
                });
            }
            meta.insert(APPLIED, &last_index.to_be_bytes())?;
            meta.insert(REVISION, &revision.to_be_bytes())?;
            Ok((applied, revision))
        });
        let (applied, revision) = outcome.map_err(|err| match err {
            TransactionError::Abort(what) => StoreError::Corrupt {
                path: self.path.clone(),
                what,
            },
            TransactionError::Storage(source) => self.storage_error(source),
        })?;
        self.applied.store(last_index, Ordering::SeqCst);
        self.revision.store(revision, Ordering::SeqCst);
        Ok(applied)
    }

    /// Every key at the applied index, encoded for a follower; returns `(applied, data)`.
    pub fn snapshot(&self) -> Result<(u64, Vec<u8>), StoreError> {
        let _read = self.apply_lock.read().expect("apply lock");
        let mut data = SnapshotData {
            revision: self.revision(),
            ..Default::default()
        };
        for item in self.kv.iter() {
            let (key, value) = item.map_err(|e| self.storage_error(e))?;
            data.keys.push(key.to_vec());
            data.values.push(value.to_vec());
        }
        Ok((self.applied_index(), data.encode_to_vec()))
    }

    /// Replaces every key with a snapshot's, applied at `index`; returns how many keys it
    /// holds. Watch history restarts after the snapshot's revision: older watches get
    /// `Compacted` and re-list. The data stays marked as being restored (a restart refuses
    /// it) until `finish_restore`, which the caller runs once the Raft log agrees with it
    /// durably: otherwise a crash could leave data applied past the end of the log.
    pub fn restore(&self, bytes: &[u8], index: u64) -> Result<usize, StoreError> {
        let data: SnapshotData = decode(bytes).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            what: format!("snapshot from the leader: {e}"),
        })?;
        if data.keys.len() != data.values.len() {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                what: "snapshot from the leader: keys and values differ in number".into(),
            });
        }
        let _write = self.apply_lock.write().expect("apply lock");
        let sled_error = |e| self.storage_error(e);
        self.meta.insert(RESTORING, &[1]).map_err(sled_error)?;
        self.meta.flush().map_err(sled_error)?;
        self.kv.clear().map_err(sled_error)?;
        self.history.clear().map_err(sled_error)?;
        let mut batch = sled::Batch::default();
        for (key, value) in data.keys.iter().zip(&data.values) {
            batch.insert(key.as_slice(), value.as_slice());
        }
        self.kv.apply_batch(batch).map_err(sled_error)?;
        self.meta
            .insert(REVISION, &data.revision.to_be_bytes())
            .map_err(sled_error)?;
        self.meta
            .insert(APPLIED, &index.to_be_bytes())
            .map_err(sled_error)?;
        self.kv.flush().map_err(sled_error)?;
        self.revision.store(data.revision, Ordering::SeqCst);
        self.applied.store(index, Ordering::SeqCst);
        self.oldest.store(data.revision + 1, Ordering::SeqCst);
        Ok(data.keys.len())
    }

    /// Ends a `restore` once the Raft log starts at the restored index, durably.
    pub fn finish_restore(&self) -> Result<(), StoreError> {
        let sled_error = |e| self.storage_error(e);
        self.meta.remove(RESTORING).map_err(sled_error)?;
        self.meta.flush().map_err(sled_error)?;
        Ok(())
    }

    /// Changes under `prefix` with revisions in `from..=to`, from the persisted history.
    pub fn history(
        &self,
        prefix: &[u8],
        from: u64,
        to: u64,
    ) -> Result<Vec<WatchEvent>, StoreError> {
        let oldest = self.oldest.load(Ordering::SeqCst);
        if from < oldest {
            return Err(StoreError::Compacted {
                requested: from,
                oldest,
            });
        }
        let mut events = Vec::new();
        for item in self
            .history
            .range(history_key(from, 0)..history_key(to.saturating_add(1), 0))
        {
            let (_, bytes) = item.map_err(|e| self.storage_error(e))?;
            let record: HistoryRecord = decode(&bytes).map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                what: format!("watch history: {e}"),
            })?;
            if record.key.starts_with(prefix) {
                events.push(record.into_event());
            }
        }
        // A concurrent compaction may have removed part of the range while it was read.
        let oldest = self.oldest.load(Ordering::SeqCst);
        if from < oldest {
            return Err(StoreError::Compacted {
                requested: from,
                oldest,
            });
        }
        Ok(events)
    }

    /// Drops history older than the newest `watch_history` revisions.
    pub fn compact_history(&self) -> Result<(), StoreError> {
        let revision = self.revision();
        let keep_from = revision.saturating_sub(self.watch_history) + 1;
        if keep_from <= self.oldest.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.oldest.store(keep_from, Ordering::SeqCst);
        let mut batch = sled::Batch::default();
        for item in self.history.range(..history_key(keep_from, 0)) {
            let (key, _) = item.map_err(|e| self.storage_error(e))?;
            batch.remove(key);
        }
        self.history
            .apply_batch(batch)
            .map_err(|e| self.storage_error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_counts_only_once_finished() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("db");
        let state = StateMachine::open(&db, 10, dir.path()).expect("state");
        let value = StoredValue {
            value: b"v".to_vec(),
            create_revision: 3,
            mod_revision: 5,
            version: 2,
        };
        let snapshot = SnapshotData {
            revision: 5,
            keys: vec![b"/a".to_vec()],
            values: vec![value.encode_to_vec()],
        };
        assert_eq!(
            state
                .restore(&snapshot.encode_to_vec(), 7)
                .expect("restore"),
            1
        );
        // Until the log agrees, a restart refuses the data rather than run ahead of the log.
        let err = StateMachine::open(&db, 10, dir.path())
            .err()
            .expect("refused");
        assert!(err.to_string().contains("interrupted"), "{err}");
        state.finish_restore().expect("finish");
        let reopened = StateMachine::open(&db, 10, dir.path()).expect("reopen");
        assert_eq!(reopened.applied_index(), 7);
        assert_eq!(reopened.revision(), 5);
        let kv = reopened.get(b"/a").expect("get").expect("restored key");
        assert_eq!(kv.mod_revision, 5);
    }
}
