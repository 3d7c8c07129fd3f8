//! The one task that owns the `RawNode`: ticks, peer messages, proposals, read barriers,
//! persisting and applying `Ready`s in raft-rs's documented order, answering waiters, and
//! publishing the member's status.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use prost::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType, ConfState, Entry, EntryType, Message};
use raft::{ProgressState, RawNode, StateRole};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::command::{decode, Command};
use crate::identity;
use crate::member::{Cluster, Member, MemberChange, RaftSnapshot};
use crate::state_machine::StateMachine;
use crate::storage::SledStorage;
use crate::transport::{PeerReport, Transport};
use crate::{MemberStatus, StoreError, TxnResponse, WatchEvent};

/// How long a proposal may wait to be applied before its proposer gets `Timeout`.
const PROPOSAL_TIMEOUT: Duration = Duration::from_secs(8);
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

/// Entries a learner may trail the leader's commit index by and still be promoted to voter.
const PROMOTION_LAG: u64 = 100;

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
    pub transport: Transport,
    pub data_dir: std::path::PathBuf,
    pub tick: Duration,
    pub log_retain: u64,
}

pub struct Driver {
    parts: DriverParts,
    /// Proposals handed to Raft, by request id: deadline, the term they were proposed in.
    pending: HashMap<u64, (Instant, u64, Reply<TxnResponse>)>,
    /// Membership changes handed to Raft, by request id.
    pending_changes: HashMap<u64, (Instant, Reply<()>)>,
    /// The voters and learners as of the last applied change.
    conf_state: ConfState,
    /// Set when a membership change removed this member: it stops.
    removed: bool,
    /// Proposals waiting for a leader to be elected, with their deadlines.
    held_proposals: Vec<(Instant, Proposal)>,
    /// Read barriers not yet handed to Raft, with their deadlines.
    unsent_reads: Vec<(Instant, Reply<()>)>,
    /// Read barriers Raft is confirming with the leader, by request context.
    confirming_reads: HashMap<Vec<u8>, (Instant, Vec<Reply<()>>)>,
    /// Confirmed read barriers waiting for the local apply to reach their index.
    applying_reads: Vec<(u64, Instant, Vec<Reply<()>>)>,
    next_read: u64,
    /// The leader as last seen: when it changes, reads sent to the old one are sent again.
    last_leader: u64,
    since_compaction: u64,
}

impl Driver {
    pub fn new(parts: DriverParts, conf_state: ConfState) -> Self {
        Driver {
            parts,
            pending: HashMap::new(),
            pending_changes: HashMap::new(),
            conf_state,
            removed: false,
            held_proposals: Vec::new(),
            unsent_reads: Vec::new(),
            confirming_reads: HashMap::new(),
            applying_reads: Vec::new(),
            next_read: 0,
            last_leader: raft::INVALID_ID,
            since_compaction: 0,
        }
    }

    /// Runs until `stop` is set (after handing leadership to a follower) or storage fails;
    /// then fails every waiter.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.parts.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.parts.node.tick();
                    self.expire(Instant::now());
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
                },
                proposal = self.parts.proposals.recv() => {
                    let Some(proposal) = proposal else { break };
                    self.propose(proposal);
                    // Group commit: take whatever else is waiting into the same Ready.
                    while let Ok(more) = self.parts.proposals.try_recv() {
                        self.propose(more);
                    }
                }
                Some(change) = self.parts.changes.recv() => self.propose_change(change),
                Some(read) = self.parts.reads.recv() => {
                    let deadline = Instant::now() + READ_TIMEOUT;
                    self.unsent_reads.push((deadline, read));
                    while let Ok(more) = self.parts.reads.try_recv() {
                        self.unsent_reads.push((deadline, more));
                    }
                }
                _ = stop.wait_for(|s| *s), if stopping.is_none() => {
                    stopping = Some(Instant::now() + TRANSFER_TIMEOUT);
                    if !self.hand_over_leadership() {
                        break;
                    }
                }
            }
            self.propose_held();
            self.send_reads();
            if let Err(err) = self.on_ready() {
                tracing::error!(%err, "raft storage failed; this member stops serving");
                break;
            }
            self.publish_status();
            self.promote_learners();
            if self.removed {
                tracing::warn!("this member was removed from the cluster; it stops serving");
                break;
            }
            if let Some(deadline) = stopping {
                let raft = &self.parts.node.raft;
                if raft.state != StateRole::Leader || Instant::now() >= deadline {
                    break;
                }
            }
        }
        self.parts.status.send_modify(MemberStatus::mark_stopped);
        self.fail_all(|| StoreError::Stopped);
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

    /// A leader with peers asks the most caught-up voter to take over; false if there is
    /// nothing to hand over.
    fn hand_over_leadership(&mut self) -> bool {
        let raft = &self.parts.node.raft;
        if raft.state != StateRole::Leader {
            return false;
        }
        let voters = &self.conf_state.voters;
        let best = raft
            .prs()
            .iter()
            .filter(|(id, _)| **id != raft.id && voters.contains(id))
            .max_by_key(|(_, pr)| pr.matched)
            .map(|(id, _)| *id);
        match best {
            Some(id) => {
                tracing::info!(to = id, "handing leadership over before stopping");
                self.parts.node.transfer_leader(id);
                true
            }
            None => false,
        }
    }

    fn propose_change(&mut self, proposal: ChangeProposal) {
        if self.parts.node.raft.leader_id == raft::INVALID_ID {
            let _ = proposal.reply.send(Err(StoreError::NoLeader));
            return;
        }
        match self
            .parts
            .node
            .propose_conf_change(Vec::new(), proposal.change)
        {
            Ok(()) => {
                let deadline = Instant::now() + PROPOSAL_TIMEOUT;
                self.pending_changes
                    .insert(proposal.request_id, (deadline, proposal.reply));
            }
            Err(err) => {
                let _ = proposal.reply.send(Err(StoreError::Raft(err)));
            }
        }
    }

    /// On the leader: a learner that has caught up becomes a voter (one change at a time).
    fn promote_learners(&mut self) {
        let raft = &self.parts.node.raft;
        if raft.state != StateRole::Leader || raft.has_pending_conf() {
            return;
        }
        let committed = raft.raft_log.committed;
        // Caught up means replicating (it has answered appends) and close to the commit index:
        // a learner that has not started yet must not become a voter the quorum waits for.
        let ready = self.conf_state.learners.iter().copied().find(|id| {
            raft.prs().get(*id).is_some_and(|pr| {
                pr.state == ProgressState::Replicate
                    && pr.matched > 0
                    && pr.matched + PROMOTION_LAG >= committed
            })
        });
        let Some(id) = ready else { return };
        let member = self
            .parts
            .cluster
            .read()
            .expect("cluster")
            .member(id)
            .cloned();
        let change = ConfChange {
            change_type: ConfChangeType::AddNode as i32,
            node_id: id,
            context: MemberChange {
                request_id: 0,
                member,
            }
            .encode_to_vec(),
            ..Default::default()
        };
        tracing::info!(id, "promoting a caught-up learner to voter");
        if let Err(err) = self.parts.node.propose_conf_change(Vec::new(), change) {
            tracing::warn!(%err, id, "promoting a learner failed");
        }
    }

    /// Proposes held proposals once there is a leader.
    fn propose_held(&mut self) {
        if self.held_proposals.is_empty() || self.parts.node.raft.leader_id == raft::INVALID_ID {
            return;
        }
        for (_, proposal) in std::mem::take(&mut self.held_proposals) {
            self.propose(proposal);
        }
    }

    fn propose(&mut self, proposal: Proposal) {
        // During an election the proposal waits for the new leader (until its deadline).
        if self.parts.node.raft.leader_id == raft::INVALID_ID {
            let deadline = Instant::now() + READ_TIMEOUT;
            self.held_proposals.push((deadline, proposal));
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
                self.pending.insert(id, (deadline, term, proposal.reply));
            }
            Err(err) => {
                tracing::debug!(%err, "proposal dropped");
                let _ = proposal.reply.send(Err(StoreError::NoLeader));
            }
        }
    }

    /// Hands waiting read barriers to Raft as one ReadIndex request.
    fn send_reads(&mut self) {
        let leader = self.parts.node.raft.leader_id;
        if leader != self.last_leader {
            // A deposed or dead leader never confirms: ask the new one.
            self.last_leader = leader;
            let resend = self
                .confirming_reads
                .drain()
                .flat_map(|(_, (deadline, r))| r.into_iter().map(move |r| (deadline, r)));
            self.unsent_reads.extend(resend);
        }
        let raft = &self.parts.node.raft;
        // Without a leader, reads wait for the election (until their deadline).
        if self.unsent_reads.is_empty() || raft.leader_id == raft::INVALID_ID {
            return;
        }
        // A new leader answers reads only once it has committed an entry of its term.
        if raft.state == StateRole::Leader && !raft.commit_to_current_term() {
            return;
        }
        self.next_read += 1;
        let mut ctx = raft.id.to_be_bytes().to_vec();
        ctx.extend_from_slice(&self.next_read.to_be_bytes());
        self.parts.node.read_index(ctx.clone());
        let unsent = std::mem::take(&mut self.unsent_reads);
        let deadline = unsent
            .iter()
            .map(|(d, _)| *d)
            .max()
            .unwrap_or_else(Instant::now);
        let replies = unsent.into_iter().map(|(_, r)| r).collect();
        self.confirming_reads.insert(ctx, (deadline, replies));
    }

    /// Fails proposals and reads that waited too long: a proposal that reached Raft has an
    /// unknown outcome (`Timeout`); one that never found a leader did nothing (`NoLeader`).
    fn expire(&mut self, now: Instant) {
        let (expired, held): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held_proposals)
            .into_iter()
            .partition(|(deadline, _)| *deadline <= now);
        self.held_proposals = held;
        for (_, proposal) in expired {
            let _ = proposal.reply.send(Err(StoreError::NoLeader));
        }
        let (expired, unsent): (Vec<_>, Vec<_>) = std::mem::take(&mut self.unsent_reads)
            .into_iter()
            .partition(|(deadline, _)| *deadline <= now);
        self.unsent_reads = unsent;
        for (_, reply) in expired {
            let _ = reply.send(Err(StoreError::NoLeader));
        }
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, (deadline, _, _))| *deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some((_, _, reply)) = self.pending.remove(&id) {
                let _ = reply.send(Err(StoreError::Timeout));
            }
        }
        let expired = self
            .pending_changes
            .extract_if(|_, (deadline, _)| *deadline <= now);
        for (_, (_, reply)) in expired {
            let _ = reply.send(Err(StoreError::Timeout));
        }
        self.confirming_reads.retain(|_, (deadline, replies)| {
            if *deadline > now {
                return true;
            }
            for reply in replies.drain(..) {
                let _ = reply.send(Err(StoreError::Timeout));
            }
            false
        });
        self.applying_reads.retain_mut(|(_, deadline, replies)| {
            if *deadline > now {
                return true;
            }
            for reply in replies.drain(..) {
                let _ = reply.send(Err(StoreError::Timeout));
            }
            false
        });
    }

    fn fail_all(&mut self, error: impl Fn() -> StoreError) {
        for (_, (_, _, reply)) in self.pending.drain() {
            let _ = reply.send(Err(error()));
        }
        for (_, (_, reply)) in self.pending_changes.drain() {
            let _ = reply.send(Err(error()));
        }
        for (_, proposal) in self.held_proposals.drain(..) {
            let _ = proposal.reply.send(Err(error()));
        }
        let reads = self
            .unsent_reads
            .drain(..)
            .map(|(_, r)| r)
            .chain(self.confirming_reads.drain().flat_map(|(_, (_, r))| r))
            .chain(self.applying_reads.drain(..).flat_map(|(_, _, r)| r));
        for reply in reads {
            let _ = reply.send(Err(error()));
        }
    }

    fn storage_error(&self, source: impl std::fmt::Display) -> StoreError {
        StoreError::Raft(raft::Error::Store(raft::StorageError::Other(
            format!("{}: {source}", self.parts.data_dir.display()).into(),
        )))
    }

    /// Handles one `Ready`, in the order raft-rs documents.
    fn on_ready(&mut self) -> Result<(), StoreError> {
        if !self.parts.node.has_ready() {
            return Ok(());
        }
        let mut ready = self.parts.node.ready();
        self.parts.transport.send(ready.take_messages());
        if !ready.snapshot().is_empty() {
            self.install_snapshot(ready.snapshot())?;
        }
        for read in ready.take_read_states() {
            if let Some((deadline, replies)) = self.confirming_reads.remove(&read.request_ctx) {
                self.applying_reads.push((read.index, deadline, replies));
            }
        }
        self.apply(ready.take_committed_entries())?;
        let mut wrote = false;
        if !ready.entries().is_empty() {
            self.parts.storage.append(ready.entries())?;
            wrote = true;
        }
        if let Some(hs) = ready.hs() {
            self.parts.storage.set_hard_state(hs)?;
            wrote = true;
        }
        if wrote {
            // Durable before anything depends on it: the log is our acknowledgement.
            self.parts.db.flush().map_err(|e| self.storage_error(e))?;
        }
        self.parts.transport.send(ready.take_persisted_messages());
        let mut light = self.parts.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.parts.storage.set_commit(commit)?;
        }
        self.parts.transport.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.parts.node.advance_apply();
        self.release_reads();
        self.maybe_compact()
    }

    /// Replaces the state machine with a leader's snapshot; open watches end (they would
    /// otherwise miss the revisions the snapshot skipped) and their clients re-watch.
    fn install_snapshot(&mut self, snapshot: &raft::eraftpb::Snapshot) -> Result<(), StoreError> {
        let meta = snapshot.get_metadata();
        tracing::info!(
            index = meta.index,
            term = meta.term,
            bytes = snapshot.data.len(),
            "installing a snapshot from the leader"
        );
        let data: RaftSnapshot = decode(&snapshot.data)
            .map_err(|e| self.storage_error(format!("undecodable snapshot: {e}")))?;
        let keys = self.parts.state.restore(&data.state, meta.index)?;
        tracing::info!(keys, "snapshot installed");
        self.parts.storage.apply_snapshot(snapshot)?;
        self.conf_state = meta.get_conf_state().clone();
        self.adopt_members(data.members, data.max_id)?;
        self.parts.db.flush().map_err(|e| self.storage_error(e))?;
        let _ = self.parts.events.send(Arc::new(Vec::new()));
        Ok(())
    }

    /// Takes the membership a snapshot came with: peers are added and dropped to match, and
    /// the data dir's identity records it.
    fn adopt_members(&mut self, members: Vec<Member>, max_id: u64) -> Result<(), StoreError> {
        let mut cluster = self.parts.cluster.read().expect("cluster").clone();
        for old in &cluster.members {
            if !members.iter().any(|m| m.id == old.id) {
                self.parts.transport.remove_peer(old.id);
            }
        }
        for new in &members {
            self.parts.transport.add_peer(new);
        }
        self.removed |= !members.iter().any(|m| m.id == cluster.local);
        cluster.members = members;
        cluster.max_id = max_id;
        identity::record(&self.parts.db, &cluster, &self.parts.data_dir)?;
        *self.parts.cluster.write().expect("cluster") = cluster;
        Ok(())
    }

    fn release_reads(&mut self) {
        let applied = self.parts.state.applied_index();
        self.applying_reads.retain_mut(|(index, _, replies)| {
            if *index > applied {
                return true;
            }
            for reply in replies.drain(..) {
                let _ = reply.send(Ok(()));
            }
            false
        });
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), StoreError> {
        let last_term = entries.last().map(|e| e.term);
        for entry in entries {
            match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => {
                    self.parts.state.set_applied(entry.index)?
                }
                EntryType::EntryNormal => self.apply_command(&entry)?,
                EntryType::EntryConfChange => {
                    let change: ConfChange = decode(&entry.data).map_err(|e| {
                        self.storage_error(format!("undecodable conf change {}: {e}", entry.index))
                    })?;
                    self.apply_membership(&change)?;
                    self.parts.state.set_applied(entry.index)?;
                }
                EntryType::EntryConfChangeV2 => {
                    // Members are added and removed one at a time; joint changes are never
                    // proposed, so one in the log means the log is not ours.
                    return Err(self.storage_error(format!(
                        "entry {} is a joint membership change, which this store never proposes",
                        entry.index
                    )));
                }
            }
        }
        if let Some(term) = last_term {
            self.answer_overtaken(term);
        }
        Ok(())
    }

    /// Applies a membership change to Raft's configuration, the member list (persisted with
    /// the data dir's identity) and the transport, then answers its proposer. A change that
    /// would reuse an id or a name is skipped alike on every member.
    fn apply_membership(&mut self, change: &ConfChange) -> Result<(), StoreError> {
        let context: MemberChange = decode(&change.context).unwrap_or_default();
        let id = change.node_id;
        let mut cluster = self.parts.cluster.read().expect("cluster").clone();
        let result = match change.get_change_type() {
            ConfChangeType::AddLearnerNode => match context.member {
                Some(member) if member.id == id && cluster.add(member.clone()) => {
                    self.parts.transport.add_peer(&member);
                    Ok(())
                }
                _ => Err(StoreError::MemberConflict(format!(
                    "member id {id} or its name is already taken"
                ))),
            },
            ConfChangeType::AddNode if cluster.member(id).is_some() => Ok(()),
            ConfChangeType::RemoveNode if cluster.remove(id) => {
                self.parts.transport.remove_peer(id);
                self.removed |= id == cluster.local;
                Ok(())
            }
            _ => Err(StoreError::MemberConflict(format!(
                "no member with id {id}"
            ))),
        };
        if result.is_ok() {
            self.conf_state = self.parts.node.apply_conf_change(change)?;
            self.parts.storage.set_conf_state(&self.conf_state)?;
            identity::record(&self.parts.db, &cluster, &self.parts.data_dir)?;
            tracing::info!(id, change = ?change.get_change_type(), members = %cluster.describe(), "membership changed");
            *self.parts.cluster.write().expect("cluster") = cluster;
        }
        if let Some((_, reply)) = self.pending_changes.remove(&context.request_id) {
            let _ = reply.send(result);
        }
        Ok(())
    }

    /// Applies a txn, unless it is fenced to another leader term: then it fails on every
    /// member alike (a deposed leader's controllers never write).
    fn apply_command(&mut self, entry: &Entry) -> Result<(), StoreError> {
        let command: Command = decode(&entry.data)
            .map_err(|e| self.storage_error(format!("undecodable entry {}: {e}", entry.index)))?;
        let result = if command.fence_term != 0 && command.fence_term != entry.term {
            self.parts.state.set_applied(entry.index)?;
            Err(StoreError::Fenced {
                term: command.fence_term,
            })
        } else {
            let (response, events) = self.parts.state.apply(entry.index, &command)?;
            if !events.is_empty() {
                let _ = self.parts.events.send(Arc::new(events));
            }
            self.since_compaction += 1;
            Ok(response)
        };
        if let Some((_, _, reply)) = self.pending.remove(&command.request_id) {
            let _ = reply.send(result);
        }
        Ok(())
    }

    /// Once an entry of a later term is applied, a proposal from an earlier term that has not
    /// applied was either lost with its leader or re-forwarded to a later one: its proposer
    /// learns at once that the outcome is unknown (etcd's "leader changed"), not after the
    /// full timeout.
    fn answer_overtaken(&mut self, applied_term: u64) {
        let overtaken: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, (_, term, _))| *term < applied_term)
            .map(|(id, _)| *id)
            .collect();
        for id in overtaken {
            if let Some((_, _, reply)) = self.pending.remove(&id) {
                let _ = reply.send(Err(StoreError::Timeout));
            }
        }
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
        };
        self.parts.status.send_if_modified(|current| {
            let changed = *current != status;
            if changed {
                *current = status;
            }
            changed
        });
    }

    fn maybe_compact(&mut self) -> Result<(), StoreError> {
        if self.since_compaction < COMPACT_EVERY.min(self.parts.log_retain.max(1)) {
            return Ok(());
        }
        self.since_compaction = 0;
        self.parts.state.compact_history()?;
        let applied = self.parts.state.applied_index();
        let first = raft::Storage::first_index(&self.parts.storage)?;
        if applied > first + self.parts.log_retain {
            self.parts
                .storage
                .compact(applied - self.parts.log_retain)?;
        }
        Ok(())
    }
}
