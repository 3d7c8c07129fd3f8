//! How Raft messages travel between members. The driver sends through a [`Transport`] and
//! receives from its inbox; `tcp` is the real one, `memory` an in-process network for
//! deterministic tests that can partition, drop, delay and reorder messages.

pub mod memory;
pub mod tcp;

use raft::eraftpb::{Message, MessageType};
use raft::SnapshotStatus;
use tokio::sync::mpsc;

use crate::member::Member;

/// Sends a member's Raft messages to its peers.
pub trait Transport: Send {
    /// Queues messages for their peers without blocking; a message that cannot be queued
    /// is dropped (Raft retransmits) and its peer reported unreachable.
    fn send(&mut self, messages: Vec<Message>);
    /// Starts sending to a member (added by a membership change); known members are kept.
    fn add_peer(&mut self, peer: &Member);
    /// Stops sending to a removed member.
    fn remove_peer(&mut self, id: u64);
}

/// What the transport tells the driver about deliveries (raft-rs's `report_*` calls).
#[derive(Debug)]
pub enum PeerReport {
    Unreachable(u64),
    Snapshot(u64, SnapshotStatus),
    /// The peer with this id has applied this member's removal: this member must stop. (A
    /// removed member is not always sent the commit of its own removal, so it learns it from
    /// the members it still talks to, as etcd's members answer a removed one.)
    Removed(u64),
}

/// Where a transport delivers what it receives and what it learns about deliveries.
#[derive(Clone)]
pub struct Links {
    /// Raft messages from peers, for the driver to step.
    pub inbox: mpsc::Sender<Message>,
    pub reports: mpsc::UnboundedSender<PeerReport>,
}

impl Links {
    /// Reports a message that never reached `to` (and a failed snapshot, if it was one).
    fn undelivered(&self, to: u64, message_type: MessageType) {
        let _ = self.reports.send(PeerReport::Unreachable(to));
        self.snapshot_failed(to, message_type);
    }

    /// Reports a failed snapshot if `message_type` is one, so the leader sends it again.
    fn snapshot_failed(&self, to: u64, message_type: MessageType) {
        if message_type == MessageType::MsgSnapshot {
            let _ = self
                .reports
                .send(PeerReport::Snapshot(to, SnapshotStatus::Failure));
        }
    }

    /// Reports a delivered snapshot.
    fn snapshot_sent(&self, to: u64, message_type: MessageType) {
        if message_type == MessageType::MsgSnapshot {
            let _ = self
                .reports
                .send(PeerReport::Snapshot(to, SnapshotStatus::Finish));
        }
    }
}
