//! The two sled databases of a data dir. The Raft log (entries, hard state, conf state and
//! the compaction point) lives in `raft-log/` and is flushed once per `Ready` that wrote to
//! it: it is the durable record. The data (the key-value state machine, its watch history
//! and applied index, the member's identity) lives in the data dir itself and needs no flush
//! of its own: sled writes it back in the background, and after a crash the entries after
//! its durable applied index are applied again from the log. The log is compacted only up to
//! an index the data has durably applied (`Disk::flush_data` runs first).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

/// The Raft log's directory inside the data dir.
const LOG_DIR: &str = "raft-log";
/// The trees of the Raft log (in the data DB itself before the log had a DB of its own).
const LOG_TREES: [&str; 2] = ["raft_log", "raft_meta"];
/// How long opening waits for a data dir's lock (see `open_locked`).
const LOCK_WAIT: Duration = Duration::from_secs(1);
/// How often opening tries the lock again meanwhile.
const LOCK_RETRY: Duration = Duration::from_millis(10);

/// A data dir's two databases; cheap to clone.
#[derive(Clone)]
pub struct Disk {
    /// The state machine, its history and the member's identity.
    pub data: sled::Db,
    /// The Raft log, hard state and conf state.
    pub log: sled::Db,
}

/// Where the Raft log of the data dir `data_dir` lives.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join(LOG_DIR)
}

impl Disk {
    /// Opens (or creates) both databases under `data_dir`, waiting briefly for locks a store
    /// closed in this process may still hold; a data dir written before the log had a
    /// database of its own has its log moved over.
    pub async fn open(data_dir: &Path) -> Result<Disk, sled::Error> {
        let data = open_locked(data_dir).await?;
        let log = open_locked(&log_path(data_dir)).await?;
        let disk = Disk { data, log };
        disk.move_old_log()?;
        Ok(disk)
    }

    /// Opens both databases of a data dir no running store holds (restoring a backup).
    pub fn open_unshared(data_dir: &Path) -> Result<Disk, sled::Error> {
        let data = sled::Config::new().path(data_dir).open()?;
        let log = sled::Config::new().path(log_path(data_dir)).open()?;
        Ok(Disk { data, log })
    }

    /// Makes the Raft log durable: what a member acknowledges rests on it.
    pub fn flush_log(&self) -> Result<(), sled::Error> {
        self.log.flush().map(drop)
    }

    /// Makes the data durable up to its applied index: before the log is compacted past it,
    /// and on shutdown (so a restart need not apply the log's tail again).
    pub fn flush_data(&self) -> Result<(), sled::Error> {
        self.data.flush().map(drop)
    }

    /// Flushes both.
    pub fn flush(&self) -> Result<(), sled::Error> {
        self.flush_data()?;
        self.flush_log()
    }

    /// Copies the Raft log trees of a data dir from before the split into the log database,
    /// durably, and only then drops them from the data database. A crash in between leaves
    /// the old trees in place and the copy is made again.
    fn move_old_log(&self) -> Result<(), sled::Error> {
        let names = self.data.tree_names();
        if !LOG_TREES
            .iter()
            .any(|tree| names.iter().any(|n| n.as_ref() == tree.as_bytes()))
        {
            return Ok(());
        }
        for tree in LOG_TREES {
            let from = self.data.open_tree(tree)?;
            let to = self.log.open_tree(tree)?;
            to.clear()?;
            let mut batch = sled::Batch::default();
            for item in from.iter() {
                let (key, value) = item?;
                batch.insert(key, value);
            }
            to.apply_batch(batch)?;
        }
        self.flush_log()?;
        for tree in LOG_TREES {
            self.data.drop_tree(tree)?;
        }
        self.flush_data()?;
        tracing::info!("moved the raft log into a database of its own");
        Ok(())
    }
}

/// Opens the sled database under `path`. A store closed in this process may keep the data
/// dir locked for a moment after `shutdown` (sled's background writer lets go of it last,
/// as sled's own tests know), so a restart in one process waits up to `LOCK_WAIT` for the
/// lock; a data dir another server holds is still refused.
async fn open_locked(path: &Path) -> Result<sled::Db, sled::Error> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new().path(path).open() {
            Err(sled::Error::Io(err)) if is_locked(&err) && Instant::now() < deadline => {
                tokio::time::sleep(LOCK_RETRY).await;
            }
            opened => return opened,
        }
    }
}

/// sled reports a held lock only in its message.
fn is_locked(err: &std::io::Error) -> bool {
    err.to_string().contains("could not acquire lock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opening_waits_briefly_for_a_closing_store_to_let_go_of_the_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let closing = open_locked(dir.path()).await.expect("first open");
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(closing);
        });
        let start = Instant::now();
        open_locked(dir.path())
            .await
            .expect("opened once the first let go");
        assert!(start.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_data_dir_held_open_is_refused_after_the_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _held = open_locked(dir.path()).await.expect("first open");
        let start = Instant::now();
        match open_locked(dir.path()).await {
            Err(sled::Error::Io(err)) => assert!(is_locked(&err), "{err}"),
            other => panic!("a held data dir opened twice: {:?}", other.map(|_| ())),
        }
        assert!(start.elapsed() >= LOCK_WAIT);
    }

    #[tokio::test]
    async fn a_log_kept_with_the_data_moves_to_its_own_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let old = sled::open(dir.path()).expect("old layout");
            old.open_tree("raft_log")
                .and_then(|t| t.insert(1u64.to_be_bytes(), b"entry".to_vec()))
                .expect("log");
            old.open_tree("raft_meta")
                .and_then(|t| t.insert(b"hard_state", b"hs".to_vec()))
                .expect("meta");
            old.open_tree("kv")
                .and_then(|t| t.insert(b"k", b"v".to_vec()))
                .expect("kv");
            old.flush().expect("flush");
        }
        let disk = Disk::open(dir.path()).await.expect("open");
        let log = disk.log.open_tree("raft_log").expect("log tree");
        assert_eq!(
            log.get(1u64.to_be_bytes()).expect("get").as_deref(),
            Some(&b"entry"[..])
        );
        let meta = disk.log.open_tree("raft_meta").expect("meta tree");
        assert_eq!(
            meta.get(b"hard_state").expect("get").as_deref(),
            Some(&b"hs"[..])
        );
        let names = disk.data.tree_names();
        assert!(!names.iter().any(|n| n.as_ref() == b"raft_log"));
        let kv = disk.data.open_tree("kv").expect("kv tree");
        assert_eq!(kv.get(b"k").expect("get").as_deref(), Some(&b"v"[..]));
    }
}
