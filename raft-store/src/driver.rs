//! The one task that owns the `RawNode`: ticks, proposals, persisting and applying `Ready`s
//! in raft-rs's documented order, and answering proposers by request id.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use raft::eraftpb::{ConfChange, ConfChangeV2, EntryType};
use raft::RawNode;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::command::{decode, Command};
use crate::state_machine::StateMachine;
use crate::storage::SledStorage;
use crate::transport::Transport;
use crate::{StoreError, TxnResponse, WatchEvent};

/// Raft's logical clock period.
pub const TICK: Duration = Duration::from_millis(100);
/// Entries kept in the log behind the applied index before compaction.
const LOG_RETAIN: u64 = 10_000;
/// Applies between history and log compactions.
const COMPACT_EVERY: u64 = 1_000;

/// A txn waiting to be proposed.
pub struct Proposal {
    pub command: Command,
    pub reply: oneshot::Sender<Result<TxnResponse, StoreError>>,
}

pub struct Driver {
    pub node: RawNode<SledStorage>,
    pub storage: SledStorage,
    pub db: sled::Db,
    pub state: Arc<StateMachine>,
    pub proposals: mpsc::Receiver<Proposal>,
    pub events: broadcast::Sender<Arc<Vec<WatchEvent>>>,
    pub transport: Arc<dyn Transport>,
    pub data_dir: std::path::PathBuf,
    pending: HashMap<u64, oneshot::Sender<Result<TxnResponse, StoreError>>>,
    since_compaction: u64,
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        node: RawNode<SledStorage>,
        storage: SledStorage,
        db: sled::Db,
        state: Arc<StateMachine>,
        proposals: mpsc::Receiver<Proposal>,
        events: broadcast::Sender<Arc<Vec<WatchEvent>>>,
        transport: Arc<dyn Transport>,
        data_dir: std::path::PathBuf,
    ) -> Self {
        Driver {
            node,
            storage,
            db,
            state,
            proposals,
            events,
            transport,
            data_dir,
            pending: HashMap::new(),
            since_compaction: 0,
        }
    }

    /// Runs until `stop` is set or storage fails; then fails every waiting proposal.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.node.tick();
                }
                proposal = self.proposals.recv() => {
                    let Some(proposal) = proposal else { break };
                    self.propose(proposal);
                    // Group commit: take whatever else is waiting into the same Ready.
                    while let Ok(more) = self.proposals.try_recv() {
                        self.propose(more);
                    }
                }
                _ = stop.wait_for(|s| *s) => break,
            }
            if let Err(err) = self.on_ready() {
                tracing::error!(%err, "raft storage failed; this member stops serving writes");
                break;
            }
        }
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(StoreError::Stopped));
        }
        self.proposals.close();
        while let Ok(p) = self.proposals.try_recv() {
            let _ = p.reply.send(Err(StoreError::Stopped));
        }
        if let Err(err) = self.db.flush() {
            tracing::error!(%err, "final flush failed");
        }
    }

    fn propose(&mut self, proposal: Proposal) {
        if self.node.raft.state != raft::StateRole::Leader {
            let _ = proposal.reply.send(Err(StoreError::NoLeader));
            return;
        }
        let id = proposal.command.request_id;
        match self
            .node
            .propose(Vec::new(), proposal.command.encode_to_vec())
        {
            Ok(()) => {
                self.pending.insert(id, proposal.reply);
            }
            Err(err) => {
                tracing::debug!(%err, "proposal dropped");
                let _ = proposal.reply.send(Err(StoreError::NoLeader));
            }
        }
    }

    fn storage_error(&self, source: impl std::fmt::Display) -> StoreError {
        StoreError::Raft(raft::Error::Store(raft::StorageError::Other(
            format!("{}: {source}", self.data_dir.display()).into(),
        )))
    }

    /// Handles one `Ready`, in the order raft-rs documents.
    fn on_ready(&mut self) -> Result<(), StoreError> {
        if !self.node.has_ready() {
            return Ok(());
        }
        let mut ready = self.node.ready();
        self.transport.send(ready.take_messages());
        if !ready.snapshot().is_empty() {
            return Err(self.storage_error("installing snapshots from peers is not supported yet"));
        }
        self.apply(ready.take_committed_entries())?;
        let mut wrote = false;
        if !ready.entries().is_empty() {
            self.storage.append(ready.entries())?;
            wrote = true;
        }
        if let Some(hs) = ready.hs() {
            self.storage.set_hard_state(hs)?;
            wrote = true;
        }
        if wrote {
            // Durable before anything depends on it: the log is our acknowledgement.
            self.db.flush().map_err(|e| self.storage_error(e))?;
        }
        self.transport.send(ready.take_persisted_messages());
        let mut light = self.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.storage.set_commit(commit)?;
        }
        self.transport.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.node.advance_apply();
        self.maybe_compact()
    }

    fn apply(&mut self, entries: Vec<raft::eraftpb::Entry>) -> Result<(), StoreError> {
        for entry in entries {
            match entry.get_entry_type() {
                EntryType::EntryNormal if entry.data.is_empty() => {
                    self.state.set_applied(entry.index)?
                }
                EntryType::EntryNormal => {
                    let command: Command = decode(&entry.data).map_err(|e| {
                        self.storage_error(format!("undecodable entry {}: {e}", entry.index))
                    })?;
                    let (response, events) = self.state.apply(entry.index, &command)?;
                    if !events.is_empty() {
                        let _ = self.events.send(Arc::new(events));
                    }
                    if let Some(reply) = self.pending.remove(&command.request_id) {
                        let _ = reply.send(Ok(response));
                    }
                    self.since_compaction += 1;
                }
                EntryType::EntryConfChange => {
                    let change: ConfChange = decode(&entry.data).map_err(|e| {
                        self.storage_error(format!("undecodable conf change {}: {e}", entry.index))
                    })?;
                    let conf_state = self.node.apply_conf_change(&change)?;
                    self.storage.set_conf_state(&conf_state)?;
                    self.state.set_applied(entry.index)?;
                }
                EntryType::EntryConfChangeV2 => {
                    let change: ConfChangeV2 = decode(&entry.data).map_err(|e| {
                        self.storage_error(format!("undecodable conf change {}: {e}", entry.index))
                    })?;
                    let conf_state = self.node.apply_conf_change(&change)?;
                    self.storage.set_conf_state(&conf_state)?;
                    self.state.set_applied(entry.index)?;
                }
            }
        }
        Ok(())
    }

    fn maybe_compact(&mut self) -> Result<(), StoreError> {
        if self.since_compaction < COMPACT_EVERY {
            return Ok(());
        }
        self.since_compaction = 0;
        self.state.compact_history()?;
        let applied = self.state.applied_index();
        let first = raft::Storage::first_index(&self.storage)?;
        if applied > first + LOG_RETAIN {
            self.storage.compact(applied - LOG_RETAIN)?;
        }
        Ok(())
    }
}
