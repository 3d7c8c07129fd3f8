//! How Raft messages reach other members.

use raft::eraftpb::Message;

/// Delivers Raft messages to peers; implementations must not block the driver.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, messages: Vec<Message>);
}

/// The transport of a single-member group: there is nobody to talk to.
pub struct NoPeers;

impl Transport for NoPeers {
    fn send(&self, messages: Vec<Message>) {
        if !messages.is_empty() {
            tracing::warn!(
                count = messages.len(),
                "dropping raft messages: this member has no peers"
            );
        }
    }
}
