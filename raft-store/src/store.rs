//! The handle callers hold: txns, reads, watches, membership changes and shutdown, each
//! handed to the driver task or served from the state machine.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use prost::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType};
use tokio::sync::{broadcast, mpsc, oneshot, watch as signal};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::member::{self, Cluster, Member};
use crate::{backup, command, driver, state_machine, watch};
use crate::{
    KeyValue, MemberStatus, StoreError, StoreMetrics, Txn, TxnResponse, Watch, WatchEvent,
};

/// Handle to a running store member; cheap to clone.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    /// Non-zero: txns only apply if appended in this leader term.
    fence: u64,
}

pub(crate) struct Shared {
    pub(crate) state: Arc<state_machine::StateMachine>,
    pub(crate) proposals: mpsc::Sender<driver::Proposal>,
    pub(crate) changes: mpsc::Sender<driver::ChangeProposal>,
    pub(crate) reads: mpsc::Sender<oneshot::Sender<Result<(), StoreError>>>,
    pub(crate) live: broadcast::Sender<Arc<Vec<WatchEvent>>>,
    pub(crate) status: signal::Receiver<MemberStatus>,
    pub(crate) cluster: Arc<std::sync::RwLock<Cluster>>,
    /// Cancelled to stop the driver (by `shutdown`, or when the last handle is dropped).
    pub(crate) stop: CancellationToken,
    pub(crate) driver: std::sync::Mutex<Option<JoinHandle<()>>>,
    pub(crate) db: sled::Db,
    pub(crate) metrics: Arc<StoreMetrics>,
}

impl Drop for Shared {
    /// The last handle gone: the driver stops as on `shutdown` (without waiting for it).
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Store {
    /// A handle on a started member, writing unfenced.
    pub(crate) fn new(shared: Shared) -> Store {
        Store {
            shared: Arc::new(shared),
            fence: 0,
        }
    }

    /// A handle whose txns apply only if appended in leader term `term`; once that term
    /// ends they fail with `Fenced` on every member.
    pub fn fenced(&self, term: u64) -> Store {
        Store {
            shared: self.shared.clone(),
            fence: term,
        }
    }

    /// Waits until this member has applied everything the leader had committed when the call
    /// began (Raft's ReadIndex), so that local reads after it are linearizable.
    pub async fn read_barrier(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .reads
            .send(reply)
            .await
            .map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }

    /// A backup of every key at a linearizable point (after a read barrier), for
    /// `restore_backup`.
    pub async fn backup(&self) -> Result<Vec<u8>, StoreError> {
        self.read_barrier().await?;
        let state = self.shared.state.clone();
        let cluster = self.cluster();
        tokio::task::spawn_blocking(move || backup::save(&state, &cluster))
            .await
            .map_err(|_| StoreError::Stopped)?
    }

    /// This member's view of the group; changes whenever it does.
    pub fn status(&self) -> signal::Receiver<MemberStatus> {
        self.shared.status.clone()
    }

    /// The group's members as this member has applied them.
    pub fn cluster(&self) -> Cluster {
        self.shared.cluster.read().expect("cluster").clone()
    }

    /// Adds a member as a learner, which the leader promotes to voter once it has caught up
    /// (Raft's learners, one change at a time); returns it with its new id.
    pub async fn add_member(&self, name: &str, peer_addr: &str) -> Result<Member, StoreError> {
        if let Some(alone) = self
            .cluster()
            .members
            .iter()
            .find(|m| m.peer_addr.is_empty())
        {
            return Err(StoreError::MemberConflict(format!(
                "member {:?} has no peer address, so no other member could reach it; start it \
                 with --initial-cluster {}=IP:PORT to let the cluster grow",
                alone.name, alone.name
            )));
        }
        let member = Member {
            id: self.cluster().next_id(),
            name: name.to_string(),
            peer_addr: peer_addr.to_string(),
        };
        self.change_membership(ConfChangeType::AddLearnerNode, member.clone())
            .await?;
        Ok(member)
    }

    /// Removes a member; it stops serving once it applies its removal, or once a remaining
    /// member tells it (when it never heard that its removal committed).
    pub async fn remove_member(&self, name: &str) -> Result<(), StoreError> {
        let member = self
            .cluster()
            .by_name(name)
            .cloned()
            .ok_or_else(|| StoreError::NoSuchMember(name.to_string()))?;
        self.change_membership(ConfChangeType::RemoveNode, member)
            .await
    }

    async fn change_membership(
        &self,
        kind: ConfChangeType,
        member: Member,
    ) -> Result<(), StoreError> {
        let request_id = rand_id();
        let change = ConfChange {
            change_type: kind as i32,
            node_id: member.id,
            context: member::MemberChange {
                request_id,
                member: Some(member),
            }
            .encode_to_vec(),
            ..Default::default()
        };
        let (reply, answer) = oneshot::channel();
        self.shared
            .changes
            .send(driver::ChangeProposal {
                change,
                request_id,
                reply,
            })
            .await
            .map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }

    /// Reads one key at the latest applied revision.
    pub async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        self.shared.state.get(key)
    }

    /// Reads every key starting with `prefix`, sorted by key, and the revision they were read at.
    pub async fn range(&self, prefix: &[u8]) -> Result<(Vec<KeyValue>, u64), StoreError> {
        let state = self.shared.state.clone();
        let prefix = prefix.to_vec();
        tokio::task::spawn_blocking(move || state.range(&prefix))
            .await
            .map_err(|_| StoreError::Stopped)?
    }

    /// Whether any key starts with `prefix`, at the latest applied revision: a check that
    /// reads one key at most, inline (it leaves for a blocking thread only to wait for an
    /// apply in progress), so a caller can skip a `range` that would come back empty.
    pub async fn has_prefix(&self, prefix: &[u8]) -> Result<bool, StoreError> {
        if let Some(answer) = self.shared.state.try_has_prefix(prefix) {
            return answer;
        }
        let state = self.shared.state.clone();
        let prefix = prefix.to_vec();
        tokio::task::spawn_blocking(move || state.has_prefix(&prefix))
            .await
            .map_err(|_| StoreError::Stopped)?
    }

    /// Every key under `prefix` as it was at `revision`, sorted by key: the current range with
    /// the later changes undone from the history (how a paged list stays on one snapshot).
    /// `Compacted` when the history since `revision` is gone.
    pub async fn range_at(
        &self,
        prefix: &[u8],
        revision: u64,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let (now, current) = self.range(prefix).await?;
        if revision >= current {
            return Ok(now);
        }
        let later = self.history(prefix, revision + 1, current)?;
        let mut keys: std::collections::BTreeMap<Vec<u8>, KeyValue> =
            now.into_iter().map(|kv| (kv.key.clone(), kv)).collect();
        for event in later.into_iter().rev() {
            match event.prev {
                Some(prev) => keys.insert(event.kv.key, prev),
                None => keys.remove(&event.kv.key),
            };
        }
        Ok(keys.into_values().collect())
    }

    /// Proposes a txn through Raft; returns once it is durable, committed and applied.
    pub async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        let metrics = &self.shared.metrics;
        let started = std::time::Instant::now();
        let pending = metrics.pending();
        let answer = self.propose(txn).await;
        drop(pending);
        metrics.proposal_seconds.observe(started.elapsed());
        if answer.is_err() {
            metrics.proposals_failed.fetch_add(1, Ordering::Relaxed);
        }
        answer
    }

    async fn propose(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        let (reply, answer) = oneshot::channel();
        let command = command::Command::new(rand_id(), &txn, self.fence);
        self.shared
            .proposals
            .send(driver::Proposal { command, reply })
            .await
            .map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }

    /// This member's counters (proposal and fsync latency, leader changes) for `/metrics`.
    pub fn metrics(&self) -> Arc<StoreMetrics> {
        self.shared.metrics.clone()
    }

    /// Streams every change to keys under `prefix` with revision >= `from_revision`
    /// (0: only changes after now).
    pub fn watch(&self, prefix: &[u8], from_revision: u64) -> Result<Watch, StoreError> {
        watch::start(&self.shared.state, &self.shared.live, prefix, from_revision)
    }

    /// The changes to keys under `prefix` with revisions in `from..=to`, from the persisted
    /// history (what a watch replays before it goes live).
    pub fn history(
        &self,
        prefix: &[u8],
        from: u64,
        to: u64,
    ) -> Result<Vec<WatchEvent>, StoreError> {
        self.shared.state.history(prefix, from, to)
    }

    /// The latest applied revision.
    pub fn revision(&self) -> u64 {
        self.shared.state.revision()
    }

    /// Stops the driver task (a leader first hands leadership to a follower) and flushes storage.
    pub async fn shutdown(&self) {
        self.shared.stop.cancel();
        let task = self.shared.driver.lock().expect("driver lock").take();
        if let Some(task) = task {
            let _ = task.await;
        }
        let db = self.shared.db.clone();
        match tokio::task::spawn_blocking(move || db.flush()).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::error!(%err, "flushing the store on shutdown failed"),
            Err(err) => tracing::error!(%err, "flushing the store on shutdown failed"),
        }
    }
}

/// A proposal id: this process's random-ish start time in the high half, a counter in the
/// low half, so entries replayed from an earlier process never answer a new proposal.
fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static BASE: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = *BASE.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
            .unwrap_or(0);
        (nanos ^ u64::from(std::process::id())) << 32
    });
    base | (NEXT.fetch_add(1, Ordering::Relaxed) & 0xFFFF_FFFF)
}
