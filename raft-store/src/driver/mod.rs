//! The one task that owns the `RawNode`: it `select!`s over ticks, peer messages,
//! proposals, read barriers and shutdown, handles each `Ready` (`ready`), answers its
//! callers (`waiters`, `reads`), changes the membership (`membership`), and publishes the
//! member's status.

mod membership;
mod reads;
mod ready;
mod waiters;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use prost::Message as _;
use raft::eraftpb::{ConfChange, ConfState, Message};
use raft::{RawNode, StateRole};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::command::Command;
use crate::member::Cluster;
use crate::state_machine::StateMachine;
use crate::storage::SledStorage;
use crate::transport::{PeerReport, Transport};
use crate::{MemberStatus, StopCause, StoreError, StoreMetrics, TxnResponse, WatchEvent};
use reads::Reads;
use waiters::Waiters;

/// How long a proposal may wait to be applied before its proposer gets `Timeout`.
pub(super) const PROPOSAL_TIMEOUT: Duration = Duration::from_secs(8);
/// How long a read barrier may wait for the leader's confirmation and the local apply.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stopping leader waits for a follower to take over.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(2);
/// Applies between history and log compactions.
const COMPACT_EVERY: u64 = 1_000;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A txn waiting to be proposed.
pub struct Proposal {
    pub command: Command,
    pub reply: Reply<TxnResponse>,
}

/// A membership change waiting to be proposed; `change.context` is an encoded `MemberChange`
/// carrying `request_id`.
pub struct ChangeProposal {
    pub change: ConfChange,
    pub request_id: u64,
    pub reply: Reply<()>,
}

/// Channels and parts the driver runs with.
pub struct DriverParts {
    pub node: RawNode<SledStorage>,
    pub storage: SledStorage,
    pub db: sled::Db,
    pub state: Arc<StateMachine>,
    pub proposals: mpsc::Receiver<Proposal>,
    pub changes: mpsc::Receiver<ChangeProposal>,
    pub cluster: Arc<RwLock<Cluster>>,
    pub reads: mpsc::Receiver<Reply<()>>,
    pub inbox: mpsc::Receiver<Message>,
    pub reports: mpsc::UnboundedReceiver<PeerReport>,
    pub events: broadcast::Sender<Arc<Vec<WatchEvent>>>,
    pub status: Arc<watch::Sender<MemberStatus>>,
    pub transport: Box<dyn Transport>,
    pub data_dir: std::path::PathBuf,
    pub tick: Duration,
    pub log_retain: u64,
    /// Where fsync latency and leader changes are counted.
    pub metrics: Arc<StoreMetrics>,
}

/// The driver task's state; see the module docs.
pub struct Driver {
    parts: DriverParts,
    /// Txns and membership changes waiting for their entries.
    waiters: Waiters,
    /// Read barriers in flight.
    reads: Reads,
    /// The voters and learners as of the last applied change.
    conf_state: ConfState,
    /// Set when a membership change removed this member: it stops.
    removed: bool,
    since_compaction: u64,
}

impl Driver {
    pub fn new(parts: DriverParts, conf_state: ConfState) -> Self {
        Driver {
            parts,
            waiters: Waiters::default(),
            reads: Reads::default(),
            conf_state,
            removed: false,
            since_compaction: 0,
        }
    }

    /// Runs until `stop` is cancelled (after handing leadership to a follower) or storage
    /// fails; then fails every waiter.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.parts.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping: Option<Instant> = None;
        let cause = loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.parts.node.tick();
                    let now = Instant::now();
                    self.waiters.expire(now);
                    self.reads.expire(now);
                }
                Some(message) = self.parts.inbox.recv() => {
                    self.step(message);
                    while let Ok(more) = self.parts.inbox.try_recv() {
                        self.step(more);
                    }
                }
                Some(report) = self.parts.reports.recv() => match report {
                    PeerReport::Unreachable(id) => self.parts.node.report_unreachable(id),
                    PeerReport::Snapshot(id, status) => self.parts.node.report_snapshot(id, status),
                    PeerReport::Removed(by) => self.learn_removed(by),
                },
                proposal = self.parts.proposals.recv() => {
                    let Some(proposal) = proposal else { break StopCause::Shutdown };
                    self.propose(proposal);
                    // Group commit: take whatever else is waiting into the same Ready.
                    while let Ok(more) = self.parts.proposals.try_recv() {
                        self.propose(more);
                    }
                }
                Some(change) = self.parts.changes.recv() => self.propose_change(change),
                Some(read) = self.parts.reads.recv() => {
                    let deadline = Instant::now() + READ_TIMEOUT;
                    self.reads.queue(deadline, read);
                    while let Ok(more) = self.parts.reads.try_recv() {
                        self.reads.queue(deadline, more);
                    }
                }
                _ = stop.cancelled(), if stopping.is_none() => {
                    stopping = Some(Instant::now() + TRANSFER_TIMEOUT);
                    if !self.hand_over_leadership() {
                        break StopCause::Shutdown;
                    }
                }
            }
            self.propose_held();
            self.send_reads();
            if let Err(err) = self.on_ready() {
                tracing::error!(%err, "raft storage failed; this member stops serving");
                break StopCause::StorageFailed(err.to_string());
            }
            self.publish_status();
            self.promote_learners();
            if self.removed {
                tracing::warn!("this member was removed from the cluster; it stops serving");
                break StopCause::Removed;
            }
            if let Some(deadline) = stopping {
                let raft = &self.parts.node.raft;
                if raft.state != StateRole::Leader || Instant::now() >= deadline {
                    break StopCause::Shutdown;
                }
            }
        };
        self.parts
            .status
            .send_modify(|status| status.mark_stopped(cause));
        self.waiters.fail_all(|| StoreError::Stopped);
        self.reads.fail_all(|| StoreError::Stopped);
        self.parts.proposals.close();
        while let Ok(p) = self.parts.proposals.try_recv() {
            let _ = p.reply.send(Err(StoreError::Stopped));
        }
        if let Err(err) = self.parts.db.flush() {
            tracing::error!(%err, "final flush failed");
        }
    }

    fn step(&mut self, message: Message) {
        if let Err(err) = self.parts.node.step(message) {
            tracing::debug!(%err, "raft message ignored");
        }
    }

    /// Proposes held txns once there is a leader.
    fn propose_held(&mut self) {
        if !self.waiters.has_held() || self.parts.node.raft.leader_id == raft::INVALID_ID {
            return;
        }
        for proposal in self.waiters.take_held() {
            self.propose(proposal);
        }
    }

    fn propose(&mut self, proposal: Proposal) {
        // During an election the proposal waits for the new leader (until its deadline).
        if self.parts.node.raft.leader_id == raft::INVALID_ID {
            let deadline = Instant::now() + READ_TIMEOUT;
            self.waiters.hold(deadline, proposal);
            return;
        }
        // A follower forwards the proposal to the leader (raft-rs does); the entry is answered
        // when this member applies it, like any other.
        let id = proposal.command.request_id;
        match self
            .parts
            .node
            .propose(Vec::new(), proposal.command.encode_to_vec())
        {
            Ok(()) => {
                let deadline = Instant::now() + PROPOSAL_TIMEOUT;
                let term = self.parts.node.raft.term;
                self.waiters.proposed(id, deadline, term, proposal.reply);
            }
            Err(err) => {
                tracing::debug!(%err, "proposal dropped");
                let _ = proposal.reply.send(Err(StoreError::NoLeader));
            }
        }
    }

    /// Hands waiting read barriers to Raft as one ReadIndex request.
    fn send_reads(&mut self) {
        self.reads.follow_leader(self.parts.node.raft.leader_id);
        let raft = &self.parts.node.raft;
        // Without a leader, reads wait for the election (until their deadline).
        if !self.reads.has_unsent() || raft.leader_id == raft::INVALID_ID {
            return;
        }
        // A new leader answers reads only once it has committed an entry of its term.
        if raft.state == StateRole::Leader && !raft.commit_to_current_term() {
            return;
        }
        let ctx = self.reads.batch(raft.id);
        self.parts.node.read_index(ctx);
    }

    fn storage_error(&self, source: impl std::fmt::Display) -> StoreError {
        StoreError::Raft(raft::Error::Store(raft::StorageError::Other(
            format!("{}: {source}", self.parts.data_dir.display()).into(),
        )))
    }

    fn publish_status(&self) {
        let raft = &self.parts.node.raft;
        let leading =
            (raft.state == StateRole::Leader && raft.apply_to_current_term()).then_some(raft.term);
        let progress = if raft.state == StateRole::Leader {
            let mut progress: Vec<(u64, u64)> = raft
                .prs()
                .iter()
                .map(|(id, pr)| (*id, pr.matched))
                .collect();
            progress.sort_unstable();
            progress
        } else {
            Vec::new()
        };
        let status = MemberStatus {
            id: raft.id,
            role: format!("{:?}", raft.state),
            leader: raft.leader_id,
            term: raft.term,
            commit: raft.raft_log.committed,
            applied: self.parts.state.applied_index(),
            leading,
            progress,
            voters: self.conf_state.voters.clone(),
            learners: self.conf_state.learners.clone(),
            removed: self.removed,
            stopped: None,
        };
        let leader = status.leader;
        self.parts.status.send_if_modified(|current| {
            if leader != raft::INVALID_ID && leader != current.leader {
                self.parts
                    .metrics
                    .leader_changes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let changed = *current != status;
            if changed {
                *current = status;
            }
            changed
        });
    }
}
