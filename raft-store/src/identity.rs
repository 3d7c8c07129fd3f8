//! Binds a data dir to one member of one cluster: recorded at first start, checked at every
//! later start, so a server given another peer list or another member's data dir refuses to
//! start before it touches anything.

use std::path::Path;

use prost::Message;

use crate::member::Cluster;
use crate::StoreError;

const IDENTITY: &[u8] = b"identity";

/// Records `cluster` in a new data dir, or checks that an existing one was made for it; returns
/// the membership to run with: the recorded one (which follows membership changes) if any.
pub fn check_or_record(
    db: &sled::Db,
    cluster: &Cluster,
    path: &Path,
) -> Result<Cluster, StoreError> {
    let storage_error = |source| StoreError::Storage {
        path: path.to_path_buf(),
        source,
    };
    let meta = db.open_tree("identity").map_err(storage_error)?;
    match meta.get(IDENTITY).map_err(storage_error)? {
        Some(bytes) => {
            let stored = Cluster::decode(bytes.as_ref()).map_err(|e| StoreError::Corrupt {
                path: path.to_path_buf(),
                what: format!("cluster identity: {e}"),
            })?;
            if stored.cluster_id != cluster.cluster_id || stored.local != cluster.local {
                return Err(StoreError::WrongCluster {
                    path: path.to_path_buf(),
                    stored: describe(&stored),
                    given: describe(cluster),
                });
            }
            if stored.member(stored.local).is_none() {
                return Err(StoreError::Removed {
                    path: path.to_path_buf(),
                });
            }
            Ok(stored)
        }
        None => {
            record(db, cluster, path)?;
            Ok(cluster.clone())
        }
    }
}

/// Records the membership after a change (not yet durable: the caller flushes).
pub fn record(db: &sled::Db, cluster: &Cluster, path: &Path) -> Result<(), StoreError> {
    let storage_error = |source| StoreError::Storage {
        path: path.to_path_buf(),
        source,
    };
    db.open_tree("identity")
        .and_then(|meta| meta.insert(IDENTITY, cluster.encode_to_vec()))
        .map_err(storage_error)?;
    Ok(())
}

/// The membership recorded in an existing data dir, if any (for a restart with `--join`).
pub fn stored(path: &Path) -> Result<Option<Cluster>, StoreError> {
    if !path.join("conf").exists() {
        return Ok(None);
    }
    let storage_error = |source| StoreError::Storage {
        path: path.to_path_buf(),
        source,
    };
    let db = sled::Config::new()
        .path(path)
        .open()
        .map_err(storage_error)?;
    let meta = db.open_tree("identity").map_err(storage_error)?;
    let Some(bytes) = meta.get(IDENTITY).map_err(storage_error)? else {
        return Ok(None);
    };
    Cluster::decode(bytes.as_ref())
        .map(Some)
        .map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            what: format!("cluster identity: {e}"),
        })
}

fn describe(cluster: &Cluster) -> String {
    let name = cluster
        .member(cluster.local)
        .map(|m| m.name.as_str())
        .unwrap_or("?");
    format!("member {name:?} of [{}]", cluster.describe())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_stays_with_its_member_and_cluster() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("db");
        let s1 = Cluster::parse("s1", "s1=h:1,s2=h:2,s3=h:3").expect("cluster");
        check_or_record(&db, &s1, dir.path()).expect("first start records");
        let mut grown = check_or_record(&db, &s1, dir.path()).expect("same member restarts");
        grown.add(crate::member::Member {
            id: 4,
            name: "s4".into(),
            peer_addr: "h:4".into(),
        });
        record(&db, &grown, dir.path()).expect("record");
        let again = check_or_record(&db, &s1, dir.path()).expect("restart after a change");
        assert_eq!(again.members.len(), 4, "the recorded membership wins");
        let s2 = Cluster::parse("s2", "s1=h:1,s2=h:2,s3=h:3").expect("cluster");
        let err = check_or_record(&db, &s2, dir.path()).expect_err("another member");
        assert!(err.to_string().contains("member \"s1\""), "{err}");
        let other = Cluster::parse("s1", "s1=h:1,s2=h:2,s9=h:9").expect("cluster");
        let err = check_or_record(&db, &other, dir.path()).expect_err("another cluster");
        assert!(err.to_string().contains("s9=h:9"), "{err}");
    }
}
