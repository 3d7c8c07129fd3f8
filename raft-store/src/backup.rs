//! Backups (as etcd's `snapshot save` / `snapshot restore`): every key of the store at one
//! linearizable point, in a checksummed file; restoring seeds the data dir of a new cluster.

use std::path::Path;

use prost::Message;
use sha2::{Digest, Sha256};

use crate::member::Cluster;
use crate::state_machine::StateMachine;
use crate::{identity, storage, StoreError};

const FORMAT: u32 = 1;

/// The backup file: a state machine snapshot and its checksum.
#[derive(Clone, PartialEq, Message)]
struct BackupFile {
    #[prost(uint32, tag = "1")]
    format: u32,
    /// The store revision the backup was taken at.
    #[prost(uint64, tag = "2")]
    revision: u64,
    /// The cluster it was taken from.
    #[prost(string, tag = "3")]
    cluster_id: String,
    /// An encoded state machine snapshot.
    #[prost(bytes = "vec", tag = "4")]
    snapshot: Vec<u8>,
    /// SHA-256 of `snapshot`.
    #[prost(bytes = "vec", tag = "5")]
    sha256: Vec<u8>,
}

/// What a backup holds, as `skiff backup` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupInfo {
    pub revision: u64,
    pub keys: usize,
}

/// Encodes the state machine as it is now.
pub(crate) fn save(state: &StateMachine, cluster: &Cluster) -> Result<Vec<u8>, StoreError> {
    let (_, snapshot) = state.snapshot()?;
    let sha256 = Sha256::digest(&snapshot).to_vec();
    Ok(BackupFile {
        format: FORMAT,
        revision: state.revision(),
        cluster_id: cluster.cluster_id.clone(),
        snapshot,
        sha256,
    }
    .encode_to_vec())
}

/// Checks a backup file's format and checksum; `file` names it in errors.
fn open(bytes: &[u8], file: &Path) -> Result<BackupFile, StoreError> {
    let corrupt = |what: String| StoreError::Corrupt {
        path: file.to_path_buf(),
        what,
    };
    let backup = BackupFile::decode(bytes).map_err(|e| corrupt(format!("not a backup: {e}")))?;
    if backup.format != FORMAT {
        return Err(corrupt(format!(
            "backup format {} (this build reads {FORMAT})",
            backup.format
        )));
    }
    if Sha256::digest(&backup.snapshot).as_slice() != backup.sha256.as_slice() {
        return Err(corrupt("checksum mismatch: the file is damaged".into()));
    }
    Ok(backup)
}

/// Seeds a new (absent or empty) `data_dir` from a backup, as member `cluster.local` of a new
/// cluster; refuses a damaged file or a data dir that already holds data, and leaves nothing
/// behind on failure.
pub fn restore(
    bytes: &[u8],
    file: &Path,
    data_dir: &Path,
    cluster: &Cluster,
) -> Result<BackupInfo, StoreError> {
    let backup = open(bytes, file)?;
    let non_empty = std::fs::read_dir(data_dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if non_empty {
        return Err(StoreError::Corrupt {
            path: data_dir.to_path_buf(),
            what: "the data dir is not empty; restore into a new directory".into(),
        });
    }
    let result = seed(&backup, data_dir, cluster);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(data_dir);
    }
    result
}

fn seed(backup: &BackupFile, data_dir: &Path, cluster: &Cluster) -> Result<BackupInfo, StoreError> {
    let storage_error = |source| StoreError::Storage {
        path: data_dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(|e| storage_error(e.into()))?;
    let db = sled::Config::new()
        .path(data_dir)
        .open()
        .map_err(storage_error)?;
    identity::check_or_record(&db, cluster, data_dir)?;
    let state = std::sync::Arc::new(
        // The watch history starts empty; its length only matters to a running store.
        StateMachine::open(&db, 1, data_dir).map_err(storage_error)?,
    );
    // The new cluster's log starts empty; the keys and their revisions carry over, so
    // resourceVersions keep growing from where the backup was taken.
    let keys = state.restore(&backup.snapshot, 0)?;
    let membership = std::sync::Arc::new(std::sync::RwLock::new(cluster.clone()));
    let log = storage::SledStorage::open(&db, state.clone(), membership).map_err(storage_error)?;
    log.set_conf_state(&raft::eraftpb::ConfState {
        voters: cluster.voters(),
        ..Default::default()
    })?;
    db.flush().map_err(storage_error)?;
    state.finish_restore()?;
    Ok(BackupInfo {
        revision: backup.revision,
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_files_are_refused_by_name() {
        let file = Path::new("/backups/b1");
        let good = BackupFile {
            format: FORMAT,
            revision: 7,
            cluster_id: "c".into(),
            snapshot: b"data".to_vec(),
            sha256: Sha256::digest(b"data").to_vec(),
        };
        assert!(open(&good.encode_to_vec(), file).is_ok());
        let mut flipped = good.clone();
        flipped.snapshot = b"dato".to_vec();
        let err = open(&flipped.encode_to_vec(), file).expect_err("damaged");
        assert!(err.to_string().contains("/backups/b1"), "{err}");
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        assert!(open(b"\xff\xff garbage", file).is_err());
    }
}
