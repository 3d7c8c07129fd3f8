//! Handling a `Ready` in the order raft-rs documents: send, install a snapshot, note
//! confirmed reads, apply committed entries, persist, advance; then answer waiters and
//! compact.

use std::sync::Arc;

use raft::eraftpb::{ConfChange, Entry, EntryType};

use super::{Driver, COMPACT_EVERY};
use crate::command::{decode, Command};
use crate::member::RaftSnapshot;
use crate::StoreError;

impl Driver {
    /// Handles one `Ready`, in the order raft-rs documents.
    pub(super) fn on_ready(&mut self) -> Result<(), StoreError> {
        if !self.parts.node.has_ready() {
            return Ok(());
        }
        let mut ready = self.parts.node.ready();
        self.parts.transport.send(ready.take_messages());
        if !ready.snapshot().is_empty() {
            self.install_snapshot(ready.snapshot())?;
        }
        for read in ready.take_read_states() {
            self.reads.confirmed(&read.request_ctx, read.index);
        }
        self.apply(ready.take_committed_entries())?;
        if self.removed {
            // A leader that applied its own removal must go no further: persisting entries it
            // appended meanwhile makes raft-rs look up the leader's own progress, which the
            // removal dropped (a panic in `on_persist_entries`). The member stops serving
            // once this returns, so what this Ready still holds is not needed.
            return Ok(());
        }
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
            let started = std::time::Instant::now();
            self.parts.db.flush().map_err(|e| self.storage_error(e))?;
            self.parts
                .metrics
                .wal_fsync_seconds
                .observe(started.elapsed());
        }
        self.parts.transport.send(ready.take_persisted_messages());
        let mut light = self.parts.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.parts.storage.set_commit(commit)?;
        }
        self.parts.transport.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.parts.node.advance_apply();
        self.reads.release(self.parts.state.applied_index());
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
        self.parts.state.finish_restore()?;
        let _ = self.parts.events.send(Arc::new(Vec::new()));
        Ok(())
    }

    /// Applies committed entries in log order: each run of normal entries in one sled
    /// transaction (`apply_run`), membership changes one at a time between runs.
    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), StoreError> {
        let last_term = entries.last().map(|e| e.term);
        let mut run = Vec::new();
        for entry in entries {
            match entry.get_entry_type() {
                EntryType::EntryNormal => run.push(entry),
                EntryType::EntryConfChange => {
                    self.apply_run(std::mem::take(&mut run))?;
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
        self.apply_run(run)?;
        if let Some(term) = last_term {
            self.waiters.answer_overtaken(term);
        }
        Ok(())
    }

    /// Applies consecutive normal entries in one sled transaction, then answers their
    /// waiters. An empty entry only advances the applied index; a txn fenced to another
    /// leader term does too, and fails on every member alike (a deposed leader's controllers
    /// never write).
    fn apply_run(&mut self, run: Vec<Entry>) -> Result<(), StoreError> {
        if run.is_empty() {
            return Ok(());
        }
        let mut commands: Vec<(u64, u64, Option<Command>)> = Vec::with_capacity(run.len());
        for entry in &run {
            let command = if entry.data.is_empty() {
                None
            } else {
                Some(decode::<Command>(&entry.data).map_err(|e| {
                    self.storage_error(format!("undecodable entry {}: {e}", entry.index))
                })?)
            };
            commands.push((entry.index, entry.term, command));
        }
        let plan: Vec<(u64, Option<&Command>)> = commands
            .iter()
            .map(|(index, term, command)| {
                let unfenced = command
                    .as_ref()
                    .filter(|c| c.fence_term == 0 || c.fence_term == *term);
                (*index, unfenced)
            })
            .collect();
        let applied = self.parts.state.apply_all(&plan)?;
        for ((_, _, command), outcome) in commands.iter().zip(applied) {
            let Some(command) = command else { continue };
            let result = match outcome {
                Some((response, events)) => {
                    if !events.is_empty() {
                        let _ = self.parts.events.send(Arc::new(events));
                    }
                    self.since_compaction += 1;
                    Ok(response)
                }
                None => Err(StoreError::Fenced {
                    term: command.fence_term,
                }),
            };
            self.waiters.answer(command.request_id, result);
        }
        Ok(())
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
