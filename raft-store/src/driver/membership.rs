//! Membership in the driver: proposing and applying member changes, promoting caught-up
//! learners, adopting a snapshot's members, and handing leadership over before stopping.

use prost::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType};
use raft::{ProgressState, StateRole};
use tokio::time::Instant;

use super::{ChangeProposal, Driver, PROPOSAL_TIMEOUT};
use crate::command::decode;
use crate::identity;
use crate::member::{Member, MemberChange};
use crate::StoreError;

/// Entries a learner may trail the leader's commit index by and still be promoted to voter.
const PROMOTION_LAG: u64 = 100;

impl Driver {
    /// A leader with peers asks the most caught-up voter to take over; false if there is
    /// nothing to hand over.
    pub(super) fn hand_over_leadership(&mut self) -> bool {
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

    pub(super) fn propose_change(&mut self, proposal: ChangeProposal) {
        if self.parts.node.raft.leader_id == raft::INVALID_ID {
            let _ = proposal.reply.send(Err(StoreError::NoLeader));
            return;
        }
        let removes_local = proposal.change.get_change_type() == ConfChangeType::RemoveNode
            && proposal.change.node_id == self.parts.node.raft.id;
        match self
            .parts
            .node
            .propose_conf_change(Vec::new(), proposal.change)
        {
            Ok(()) => {
                let deadline = Instant::now() + PROPOSAL_TIMEOUT;
                self.waiters.change_proposed(
                    proposal.request_id,
                    deadline,
                    removes_local,
                    proposal.reply,
                );
            }
            Err(err) => {
                let _ = proposal.reply.send(Err(StoreError::Raft(err)));
            }
        }
    }

    /// On the leader: a learner that has caught up becomes a voter (one change at a time).
    pub(super) fn promote_learners(&mut self) {
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

    /// Applies a membership change to Raft's configuration, the member list (persisted with
    /// the data dir's identity) and the transport, then answers its proposer. A change that
    /// would reuse an id or a name is skipped alike on every member.
    pub(super) fn apply_membership(&mut self, change: &ConfChange) -> Result<(), StoreError> {
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
        self.waiters.answer_change(context.request_id, result);
        Ok(())
    }

    /// Takes a peer's word that this member was removed (a removed follower is not always
    /// sent the commit of its own removal): the data dir records it, so a restart refuses to
    /// serve from it, and the member stops.
    pub(super) fn learn_removed(&mut self, by: u64) {
        if self.removed {
            return;
        }
        tracing::warn!(by, "a peer says this member was removed from the cluster");
        let mut cluster = self.parts.cluster.read().expect("cluster").clone();
        cluster.remove(cluster.local);
        if let Err(err) = identity::record(&self.parts.db, &cluster, &self.parts.data_dir) {
            tracing::error!(%err, "recording this member's removal failed");
        }
        *self.parts.cluster.write().expect("cluster") = cluster;
        self.waiters.answer_local_removal();
        self.removed = true;
    }

    /// Takes the membership a snapshot came with: peers are added and dropped to match, and
    /// the data dir's identity records it.
    pub(super) fn adopt_members(
        &mut self,
        members: Vec<Member>,
        max_id: u64,
    ) -> Result<(), StoreError> {
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
}
