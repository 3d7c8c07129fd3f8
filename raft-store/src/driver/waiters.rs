//! Callers waiting for their proposals: txns held until a leader is known, txns and
//! membership changes handed to Raft, each answered by request id when its entry applies or
//! failed when its deadline passes.

use std::collections::HashMap;

use tokio::time::Instant;

use super::{Proposal, Reply};
use crate::{StoreError, TxnResponse};

/// Proposals in flight, with their deadlines.
#[derive(Default)]
pub struct Waiters {
    /// Txns handed to Raft, by request id: deadline, the term they were proposed in.
    proposed: HashMap<u64, (Instant, u64, Reply<TxnResponse>)>,
    /// Membership changes handed to Raft, by request id: deadline, whether the change removes
    /// this member.
    changes: HashMap<u64, (Instant, bool, Reply<()>)>,
    /// Txns waiting for a leader to be elected.
    held: Vec<(Instant, Proposal)>,
}

impl Waiters {
    /// Holds a txn until a leader is known or `deadline` passes.
    pub fn hold(&mut self, deadline: Instant, proposal: Proposal) {
        self.held.push((deadline, proposal));
    }

    /// Takes every held txn (to propose them now that there is a leader).
    pub fn take_held(&mut self) -> Vec<Proposal> {
        self.held.drain(..).map(|(_, p)| p).collect()
    }

    pub fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Notes a txn handed to Raft in `term`.
    pub fn proposed(&mut self, id: u64, deadline: Instant, term: u64, reply: Reply<TxnResponse>) {
        self.proposed.insert(id, (deadline, term, reply));
    }

    /// Notes a membership change handed to Raft; `removes_local` if it removes this member.
    pub fn change_proposed(
        &mut self,
        id: u64,
        deadline: Instant,
        removes_local: bool,
        reply: Reply<()>,
    ) {
        self.changes.insert(id, (deadline, removes_local, reply));
    }

    /// Answers the txn `id` if this member proposed it.
    pub fn answer(&mut self, id: u64, result: Result<TxnResponse, StoreError>) {
        if let Some((_, _, reply)) = self.proposed.remove(&id) {
            let _ = reply.send(result);
        }
    }

    /// Answers the membership change `id` if this member proposed it.
    pub fn answer_change(&mut self, id: u64, result: Result<(), StoreError>) {
        if let Some((_, _, reply)) = self.changes.remove(&id) {
            let _ = reply.send(result);
        }
    }

    /// Answers every change that removes this member: a peer has applied the removal.
    pub fn answer_local_removal(&mut self) {
        for (_, (_, _, reply)) in self.changes.extract_if(|_, (_, removes, _)| *removes) {
            let _ = reply.send(Ok(()));
        }
    }

    /// Fails what waited too long: a proposal that reached Raft has an unknown outcome
    /// (`Timeout`); one that never found a leader did nothing (`NoLeader`).
    pub fn expire(&mut self, now: Instant) {
        let (expired, held): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(deadline, _)| *deadline <= now);
        self.held = held;
        for (_, proposal) in expired {
            let _ = proposal.reply.send(Err(StoreError::NoLeader));
        }
        let expired = self
            .proposed
            .extract_if(|_, (deadline, _, _)| *deadline <= now);
        for (_, (_, _, reply)) in expired {
            let _ = reply.send(Err(StoreError::Timeout));
        }
        let expired = self
            .changes
            .extract_if(|_, (deadline, _, _)| *deadline <= now);
        for (_, (_, _, reply)) in expired {
            let _ = reply.send(Err(StoreError::Timeout));
        }
    }

    /// Once an entry of a later term is applied, a txn proposed in an earlier term that has
    /// not applied was either lost with its leader or re-forwarded to a later one: its
    /// proposer learns at once that the outcome is unknown (etcd's "leader changed"), not
    /// after the full timeout.
    pub fn answer_overtaken(&mut self, applied_term: u64) {
        let overtaken = self
            .proposed
            .extract_if(|_, (_, term, _)| *term < applied_term);
        for (_, (_, _, reply)) in overtaken {
            let _ = reply.send(Err(StoreError::Timeout));
        }
    }

    /// Fails every waiter.
    pub fn fail_all(&mut self, error: impl Fn() -> StoreError) {
        for (_, (_, _, reply)) in self.proposed.drain() {
            let _ = reply.send(Err(error()));
        }
        for (_, (_, _, reply)) in self.changes.drain() {
            let _ = reply.send(Err(error()));
        }
        for (_, proposal) in self.held.drain(..) {
            let _ = proposal.reply.send(Err(error()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;
    use crate::command::Command;
    use crate::Txn;

    type Answer<T> = oneshot::Receiver<Result<T, StoreError>>;

    fn proposed(waiters: &mut Waiters, id: u64, term: u64) -> Answer<TxnResponse> {
        let (reply, answer) = oneshot::channel();
        let deadline = Instant::now() + Duration::from_secs(8);
        waiters.proposed(id, deadline, term, reply);
        answer
    }

    #[tokio::test(start_paused = true)]
    async fn held_txns_fail_with_no_leader_and_proposed_ones_time_out() {
        let mut waiters = Waiters::default();
        let (reply, mut held) = oneshot::channel();
        let proposal = Proposal {
            command: Command::new(1, &Txn::default(), 0),
            reply,
        };
        waiters.hold(Instant::now() + Duration::from_secs(5), proposal);
        let mut sent = proposed(&mut waiters, 2, 1);
        let (reply, mut change) = oneshot::channel();
        waiters.change_proposed(3, Instant::now() + Duration::from_secs(8), false, reply);
        tokio::time::advance(Duration::from_secs(5)).await;
        waiters.expire(Instant::now());
        assert!(matches!(held.try_recv(), Ok(Err(StoreError::NoLeader))));
        assert!(sent.try_recv().is_err(), "expired early");
        tokio::time::advance(Duration::from_secs(3)).await;
        waiters.expire(Instant::now());
        assert!(matches!(sent.try_recv(), Ok(Err(StoreError::Timeout))));
        assert!(matches!(change.try_recv(), Ok(Err(StoreError::Timeout))));
    }

    #[tokio::test(start_paused = true)]
    async fn txns_of_an_earlier_term_are_answered_when_a_later_term_applies() {
        let mut waiters = Waiters::default();
        let mut old = proposed(&mut waiters, 1, 2);
        let mut current = proposed(&mut waiters, 2, 3);
        waiters.answer_overtaken(3);
        assert!(matches!(old.try_recv(), Ok(Err(StoreError::Timeout))));
        assert!(
            current.try_recv().is_err(),
            "a txn of the applied term still waits"
        );
        waiters.answer(2, Err(StoreError::Fenced { term: 2 }));
        assert!(matches!(
            current.try_recv(),
            Ok(Err(StoreError::Fenced { term: 2 }))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_reporting_this_members_removal_answers_only_changes_that_remove_it() {
        let mut waiters = Waiters::default();
        let deadline = Instant::now() + Duration::from_secs(8);
        let (reply, mut own) = oneshot::channel();
        waiters.change_proposed(1, deadline, true, reply);
        let (reply, mut other) = oneshot::channel();
        waiters.change_proposed(2, deadline, false, reply);
        waiters.answer_local_removal();
        assert!(matches!(own.try_recv(), Ok(Ok(()))));
        assert!(other.try_recv().is_err(), "another change still waits");
    }
}
