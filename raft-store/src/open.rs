//! Opening a store: binding the data dir to its member, restoring Raft's state from sled,
//! and starting the transport and the driver task.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{broadcast, mpsc, watch as signal};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::member::SharedCluster;
use crate::store::{Shared, Store};
use crate::transport::{tcp, Links, Transport};
use crate::MemoryNetwork;
use crate::{driver, identity, raft_log, state_machine, storage};
use crate::{MemberStatus, StopCause, StoreConfig, StoreError, StoreMetrics};

/// Live changes fanned out to watchers: one batch per applied txn.
const LIVE_EVENTS: usize = 4096;
/// Proposals waiting for the driver.
const PROPOSAL_QUEUE: usize = 8192;
/// Read barriers waiting for the driver.
const READ_QUEUE: usize = 8192;
/// Raft messages from peers waiting for the driver.
const INBOX: usize = 4096;
/// How long opening waits for the data dir's lock (see `open_db`).
const LOCK_WAIT: Duration = Duration::from_secs(1);
/// How often opening tries the lock again meanwhile.
const LOCK_RETRY: Duration = Duration::from_millis(10);

impl Store {
    /// Opens (or creates) the store under `config.data_dir`, listens for peers, and starts
    /// its Raft driver task. A data dir made for another cluster or member is refused.
    pub async fn open(config: StoreConfig) -> Result<Store, StoreError> {
        // A member with a peer address listens even while alone: the cluster can grow.
        let has_peers = config.cluster.members.len() > 1 || config.join.is_some();
        let listener = match (has_peers, config.peer_listen) {
            (false, None) => None,
            (true, None) => return Err(StoreError::NoPeerListen),
            (_, Some(addr)) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| StoreError::PeerListen { addr, source })?,
            ),
        };
        let tls = config.peer_tls.clone();
        Store::start(config, |cluster, links, stop| {
            Box::new(tcp::start(listener, cluster, links, tls, stop))
        })
        .await
    }

    /// Opens the store as `open` does, accepting peers on `listener` instead of binding
    /// `config.peer_listen`: a caller that binds port 0 and reads the address it got leaves
    /// no moment in which another process could take the port.
    pub async fn open_with_listener(
        config: StoreConfig,
        listener: tokio::net::TcpListener,
    ) -> Result<Store, StoreError> {
        let tls = config.peer_tls.clone();
        Store::start(config, |cluster, links, stop| {
            Box::new(tcp::start(Some(listener), cluster, links, tls, stop))
        })
        .await
    }

    /// Opens the store as `open` does, but its member talks to its peers over `network`
    /// instead of TCP (`peer_listen` is not used): for fast, deterministic tests.
    pub async fn open_on(
        config: StoreConfig,
        network: &MemoryNetwork,
    ) -> Result<Store, StoreError> {
        Store::start(config, |cluster, links, stop| {
            Box::new(network.join(cluster, links, stop))
        })
        .await
    }

    /// Opens the data dir, connects the member to its peers with `connect` and starts the
    /// driver; the transport stops when the driver has.
    async fn start(
        config: StoreConfig,
        connect: impl FnOnce(&SharedCluster, Links, CancellationToken) -> Box<dyn Transport>,
    ) -> Result<Store, StoreError> {
        let storage_error = |source| StoreError::Storage {
            path: config.data_dir.clone(),
            source,
        };
        let db = open_db(&config.data_dir).await.map_err(storage_error)?;
        let cluster = identity::check_or_record(&db, &config.cluster, &config.data_dir)?;
        let state = Arc::new(
            state_machine::StateMachine::open(&db, config.watch_history, &config.data_dir)
                .map_err(storage_error)?,
        );
        let membership = Arc::new(std::sync::RwLock::new(cluster.clone()));
        let storage = storage::SledStorage::open(&db, state.clone(), membership.clone())
            .map_err(storage_error)?;
        if !storage.is_initialized()? {
            let (voters, learners) = match &config.join {
                Some(join) => (join.voters.clone(), join.learners.clone()),
                None => (cluster.voters(), Vec::new()),
            };
            storage.set_conf_state(&raft::eraftpb::ConfState {
                voters,
                learners,
                ..Default::default()
            })?;
        }
        // The applied index is persisted with the KV, the commit index with the hard state;
        // after a crash between the two, everything applied was committed (its log is durable).
        let mut hard_state = raft::Storage::initial_state(&storage)?.hard_state;
        if state.applied_index() > hard_state.commit {
            hard_state.commit = state.applied_index();
            storage.set_hard_state(&hard_state)?;
        }
        // On a blocking thread rather than sled's own future: tokio's paused clock (tests)
        // stands still while a blocking task runs, not while sled's thread flushes.
        let flushing = db.clone();
        tokio::task::spawn_blocking(move || flushing.flush())
            .await
            .map_err(|_| StoreError::Stopped)?
            .map_err(storage_error)?;
        let raft_config = raft::Config {
            id: cluster.local,
            election_tick: config.timing.election_ticks,
            heartbeat_tick: config.timing.heartbeat_ticks,
            applied: state.applied_index(),
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        raft_config.validate()?;
        let mut node = raft::RawNode::new(&raft_config, storage.clone(), &raft_log::logger())?;
        let conf_state = raft::Storage::initial_state(&storage)?.conf_state;
        if conf_state.voters == [cluster.local] {
            // A lone voter need not wait an election timeout to lead.
            node.campaign()?;
        }
        let (proposals, proposal_rx) = mpsc::channel(PROPOSAL_QUEUE);
        let (changes, change_rx) = mpsc::channel(16);
        let (reads, read_rx) = mpsc::channel(READ_QUEUE);
        let (inbox, inbox_rx) = mpsc::channel(INBOX);
        let (reports, report_rx) = mpsc::unbounded_channel();
        let (live, _) = broadcast::channel(LIVE_EVENTS);
        let (status_tx, status) = signal::channel(MemberStatus::default());
        let status_tx = Arc::new(status_tx);
        let stop = CancellationToken::new();
        let metrics = Arc::new(StoreMetrics::default());
        // The transport outlives the stop signal: a stopping leader still hands over.
        let transport_stop = CancellationToken::new();
        let transport = connect(
            &membership,
            Links { inbox, reports },
            transport_stop.clone(),
        );
        let cluster = membership;
        let parts = driver::DriverParts {
            node,
            storage,
            db: db.clone(),
            state: state.clone(),
            proposals: proposal_rx,
            changes: change_rx,
            cluster: cluster.clone(),
            reads: read_rx,
            inbox: inbox_rx,
            reports: report_rx,
            events: live.clone(),
            status: status_tx.clone(),
            transport,
            data_dir: config.data_dir.clone(),
            tick: config.timing.tick,
            log_retain: config.log_retain,
            metrics: metrics.clone(),
        };
        let driver = driver::Driver::new(parts, conf_state);
        let driver_stop = stop.clone();
        // raft-rs panics on storage errors it cannot handle (a read failing on a full disk):
        // the member then stops serving instead of taking the process down with it.
        let task = tokio::spawn(async move {
            // However the driver ends, the transport ends with it.
            let _transport = transport_stop.drop_guard();
            if AssertUnwindSafe(driver.run(driver_stop))
                .catch_unwind()
                .await
                .is_err()
            {
                // Marked first: logging may fail too when the disk is full.
                status_tx.send_modify(|status| {
                    status.mark_stopped(StopCause::StorageFailed(
                        "the raft loop panicked (see the panic in the log)".into(),
                    ))
                });
                tracing::error!(
                    "the raft loop failed (see the panic above); this member stops serving"
                );
            }
        });
        Ok(Store::new(Shared {
            state,
            proposals,
            changes,
            reads,
            live,
            status,
            cluster,
            stop,
            driver: std::sync::Mutex::new(Some(task)),
            db,
            metrics,
        }))
    }
}

/// Opens the sled database under `path`. A store closed in this process may keep the data
/// dir locked for a moment after `shutdown` (sled's background writer lets go of it last,
/// as sled's own tests know), so a restart in one process waits up to `LOCK_WAIT` for the
/// lock; a data dir another server holds is still refused.
async fn open_db(path: &Path) -> Result<sled::Db, sled::Error> {
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
        let closing = open_db(dir.path()).await.expect("first open");
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(closing);
        });
        let start = Instant::now();
        open_db(dir.path())
            .await
            .expect("opened once the first let go");
        assert!(start.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_data_dir_held_open_is_refused_after_the_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _held = open_db(dir.path()).await.expect("first open");
        let start = Instant::now();
        match open_db(dir.path()).await {
            Err(sled::Error::Io(err)) => assert!(is_locked(&err), "{err}"),
            other => panic!("a held data dir opened twice: {:?}", other.map(|_| ())),
        }
        assert!(start.elapsed() >= LOCK_WAIT);
    }
}
