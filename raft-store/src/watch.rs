//! Watches: replay from the persisted history, then follow live changes, without gaps or
//! duplicates across the switch.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use crate::state_machine::StateMachine;
use crate::{KeyValue, StoreError};

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// A change observed by a watch; `kv.mod_revision` is its revision
/// (for a delete, `kv` is the deleted key with `mod_revision` = the delete's revision and an empty value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub kv: KeyValue,
    /// The value before the change (None if the key was created).
    pub prev: Option<KeyValue>,
}

impl WatchEvent {
    /// The revision of the txn that made this change.
    pub fn revision(&self) -> u64 {
        self.kv.mod_revision
    }
}

/// A live watch: yields events in revision order, starting at the requested revision.
/// The channel is bounded; a watcher that falls too far behind is dropped (the channel closes)
/// and re-watches from the revision after the last event it saw, as etcd and Kubernetes clients do.
pub struct Watch {
    pub events: mpsc::Receiver<WatchEvent>,
}

/// Events buffered per watcher before a slow one is dropped.
const WATCH_BUFFER: usize = 1024;

/// Starts a watcher task for keys under `prefix` from revision `from` (0: only future changes).
pub fn start(
    state: &Arc<StateMachine>,
    live: &broadcast::Sender<Arc<Vec<WatchEvent>>>,
    prefix: &[u8],
    from: u64,
) -> Result<Watch, StoreError> {
    // Subscribe first, then read the revision: every later change is in `live`, every earlier
    // one in the history; `live` events at or below `current` are skipped as already replayed.
    let mut live = live.subscribe();
    let current = state.revision();
    let from = if from == 0 { current + 1 } else { from };
    let replay = if from <= current {
        state.history(prefix, from, current)?
    } else {
        Vec::new()
    };
    let (tx, rx) = mpsc::channel(WATCH_BUFFER);
    let prefix = prefix.to_vec();
    tokio::spawn(async move {
        for event in replay {
            if tx.send(event).await.is_err() {
                return;
            }
        }
        loop {
            let batch = match live.recv().await {
                // An empty batch: the state was replaced by a snapshot; revisions were skipped.
                Ok(batch) if batch.is_empty() => return,
                Ok(batch) => batch,
                // Lagged: this watcher cannot be served without a gap; closing it makes the
                // client re-watch from its last revision.
                Err(_) => return,
            };
            for event in batch.iter() {
                if event.revision() < from
                    || event.revision() <= current
                    || !event.kv.key.starts_with(&prefix)
                {
                    continue;
                }
                if tx.send(event.clone()).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(Watch { events: rx })
}
