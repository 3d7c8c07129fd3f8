//! Making the Raft log durable off the driver task (raft-rs's asynchronous `Ready`): each
//! Ready's entries and hard state are written to sled at once, the fsync runs on a blocking
//! thread while the driver keeps stepping messages and taking proposals, and one fsync
//! covers every Ready written before it started. A Ready's persisted messages (a follower's
//! append responses, votes) wait until it and every earlier Ready are durable; then raft-rs
//! hears of it (`on_persist_ready`), which is what lets a leader count its own log towards
//! a commit. Nothing is acknowledged before a quorum has it on disk.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use raft::eraftpb::Message;
use tokio::task::JoinHandle;

use crate::disk::Disk;

/// A Ready written to sled and not yet released.
struct Written {
    number: u64,
    /// Whether it wrote what raft-rs needs durable (entries, a term or a vote).
    needs_sync: bool,
    /// Messages to send once it is durable.
    messages: Vec<Message>,
}

/// The result of one fsync: the last Ready it covers and how long it took.
type Flushed = Result<(u64, Duration), sled::Error>;

/// Readies waiting for the log's fsync, and the fsync in flight.
#[derive(Default)]
pub struct Persist {
    written: VecDeque<Written>,
    /// The newest Ready known durable.
    synced: u64,
    /// The newest Ready that needs an fsync.
    wanted: u64,
    /// The fsync in flight and the newest Ready it covers.
    flushing: Option<(u64, JoinHandle<Flushed>)>,
}

/// Readies now durable: their messages, and the newest one's number for `on_persist_ready`.
pub struct Released {
    pub number: u64,
    pub messages: Vec<Message>,
}

impl Persist {
    /// Notes Ready `number`, written to sled, with the messages to send once it is durable.
    pub fn written(&mut self, number: u64, needs_sync: bool, messages: Vec<Message>) {
        if needs_sync {
            self.wanted = number;
        }
        self.written.push_back(Written {
            number,
            needs_sync,
            messages,
        });
    }

    /// Notes that everything written up to Ready `number` was flushed by the driver itself.
    pub fn synced_through(&mut self, number: u64) {
        self.synced = self.synced.max(number);
    }

    /// Starts an fsync of the log if a written Ready needs one and none is in flight.
    pub fn start_flush(&mut self, disk: &Disk) {
        if self.flushing.is_some() || self.wanted <= self.synced {
            return;
        }
        let number = self.wanted;
        let disk = disk.clone();
        let task = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            disk.flush_log().map(|()| (number, started.elapsed()))
        });
        self.flushing = Some((number, task));
    }

    /// Waits for the fsync in flight (forever when there is none).
    pub async fn flushed(&mut self) -> Flushed {
        let Some((_, task)) = self.flushing.as_mut() else {
            return std::future::pending().await;
        };
        let result = task.await;
        self.flushing = None;
        match result {
            Ok(flushed) => flushed,
            Err(join) => Err(sled::Error::ReportableBug(format!(
                "the raft log's fsync task failed: {join}"
            ))),
        }
    }

    /// Notes a finished fsync covering Ready `number`.
    pub fn on_flushed(&mut self, number: u64) {
        self.synced_through(number);
    }

    /// Takes the Readies that are durable, in order: those up to the newest synced one, and
    /// after them those that needed no fsync. `None` when none is.
    pub fn release(&mut self) -> Option<Released> {
        let mut released: Option<Released> = None;
        while let Some(front) = self.written.front() {
            if front.needs_sync && front.number > self.synced {
                break;
            }
            let front = self.written.pop_front().expect("front");
            match released.as_mut() {
                Some(done) => {
                    done.number = front.number;
                    done.messages.extend(front.messages);
                }
                None => {
                    released = Some(Released {
                        number: front.number,
                        messages: front.messages,
                    })
                }
            }
        }
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(to: u64) -> Message {
        Message {
            to,
            ..Default::default()
        }
    }

    #[test]
    fn readies_are_released_in_order_once_durable() {
        let mut persist = Persist::default();
        persist.written(1, false, vec![message(1)]);
        let first = persist.release().expect("nothing to sync");
        assert_eq!(first.number, 1);
        assert_eq!(first.messages.len(), 1);
        persist.written(2, true, vec![message(2)]);
        // A later Ready that needs no fsync still waits behind one that does.
        persist.written(3, false, vec![message(3)]);
        assert!(persist.release().is_none());
        persist.written(4, true, vec![message(4)]);
        persist.on_flushed(2);
        let through_three = persist.release().expect("2 is durable");
        assert_eq!(through_three.number, 3);
        let to: Vec<u64> = through_three.messages.iter().map(|m| m.to).collect();
        assert_eq!(to, vec![2, 3]);
        assert!(persist.release().is_none(), "4 is not durable yet");
        persist.synced_through(4);
        assert_eq!(persist.release().expect("4").number, 4);
        assert!(persist.release().is_none());
    }
}
