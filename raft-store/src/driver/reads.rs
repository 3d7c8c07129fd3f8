//! Read barriers (Raft's ReadIndex) on their way through the driver: waiting to be sent,
//! being confirmed by the leader, then waiting for the local apply to reach their index.

use std::collections::HashMap;

use tokio::time::Instant;

use super::Reply;
use crate::StoreError;

/// Read barriers in flight, with their deadlines.
#[derive(Default)]
pub struct Reads {
    /// Not yet handed to Raft.
    unsent: Vec<(Instant, Reply<()>)>,
    /// Being confirmed with the leader, by request context.
    confirming: HashMap<Vec<u8>, (Instant, Vec<Reply<()>>)>,
    /// Confirmed, waiting for the local apply to reach their index.
    applying: Vec<(u64, Instant, Vec<Reply<()>>)>,
    /// The last request context's counter.
    next: u64,
    /// The leader as last seen: when it changes, reads sent to the old one are sent again.
    last_leader: u64,
}

impl Reads {
    /// Queues a read barrier that fails at `deadline` unless answered before.
    pub fn queue(&mut self, deadline: Instant, reply: Reply<()>) {
        self.unsent.push((deadline, reply));
    }

    /// Notes the current leader: a deposed or dead leader never confirms, so reads sent to
    /// it are queued again for the new one.
    pub fn follow_leader(&mut self, leader: u64) {
        if leader == self.last_leader {
            return;
        }
        self.last_leader = leader;
        let resend = self
            .confirming
            .drain()
            .flat_map(|(_, (deadline, r))| r.into_iter().map(move |r| (deadline, r)));
        self.unsent.extend(resend);
    }

    /// Whether reads wait to be handed to Raft.
    pub fn has_unsent(&self) -> bool {
        !self.unsent.is_empty()
    }

    /// Moves every unsent read into one batch confirmed together; returns the batch's
    /// request context (unique per member `local`) for `RawNode::read_index`.
    pub fn batch(&mut self, local: u64) -> Vec<u8> {
        self.next += 1;
        let mut ctx = local.to_be_bytes().to_vec();
        ctx.extend_from_slice(&self.next.to_be_bytes());
        let unsent = std::mem::take(&mut self.unsent);
        let deadline = unsent
            .iter()
            .map(|(d, _)| *d)
            .max()
            .unwrap_or_else(Instant::now);
        let replies = unsent.into_iter().map(|(_, r)| r).collect();
        self.confirming.insert(ctx.clone(), (deadline, replies));
        ctx
    }

    /// The leader confirmed the batch `ctx` at commit index `index`.
    pub fn confirmed(&mut self, ctx: &[u8], index: u64) {
        if let Some((deadline, replies)) = self.confirming.remove(ctx) {
            self.applying.push((index, deadline, replies));
        }
    }

    /// Answers the confirmed reads whose index has been applied.
    pub fn release(&mut self, applied: u64) {
        self.applying.retain_mut(|(index, _, replies)| {
            if *index > applied {
                return true;
            }
            for reply in replies.drain(..) {
                let _ = reply.send(Ok(()));
            }
            false
        });
    }

    /// Fails reads past their deadline: unsent ones never found a leader (`NoLeader`), the
    /// others were not confirmed or applied in time (`Timeout`).
    pub fn expire(&mut self, now: Instant) {
        let (expired, unsent): (Vec<_>, Vec<_>) = std::mem::take(&mut self.unsent)
            .into_iter()
            .partition(|(deadline, _)| *deadline <= now);
        self.unsent = unsent;
        for (_, reply) in expired {
            let _ = reply.send(Err(StoreError::NoLeader));
        }
        self.confirming.retain(|_, (deadline, replies)| {
            if *deadline > now {
                return true;
            }
            for reply in replies.drain(..) {
                let _ = reply.send(Err(StoreError::Timeout));
            }
            false
        });
        self.applying.retain_mut(|(_, deadline, replies)| {
            if *deadline > now {
                return true;
            }
            for reply in replies.drain(..) {
                let _ = reply.send(Err(StoreError::Timeout));
            }
            false
        });
    }

    /// Fails every read in flight.
    pub fn fail_all(&mut self, error: impl Fn() -> StoreError) {
        let reads = self
            .unsent
            .drain(..)
            .map(|(_, r)| r)
            .chain(self.confirming.drain().flat_map(|(_, (_, r))| r))
            .chain(self.applying.drain(..).flat_map(|(_, _, r)| r));
        for reply in reads {
            let _ = reply.send(Err(error()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    fn read(reads: &mut Reads, deadline: Instant) -> oneshot::Receiver<Result<(), StoreError>> {
        let (reply, answer) = oneshot::channel();
        reads.queue(deadline, reply);
        answer
    }

    #[tokio::test(start_paused = true)]
    async fn a_confirmed_read_is_answered_once_its_index_is_applied() {
        let mut reads = Reads::default();
        let mut answer = read(&mut reads, Instant::now() + Duration::from_secs(5));
        reads.follow_leader(1);
        let ctx = reads.batch(2);
        assert!(!reads.has_unsent());
        reads.confirmed(&ctx, 10);
        reads.release(9);
        assert!(
            answer.try_recv().is_err(),
            "answered before its index applied"
        );
        reads.release(10);
        assert!(matches!(answer.try_recv(), Ok(Ok(()))));
    }

    #[tokio::test(start_paused = true)]
    async fn reads_sent_to_a_deposed_leader_are_sent_again() {
        let mut reads = Reads::default();
        let _answer = read(&mut reads, Instant::now() + Duration::from_secs(5));
        reads.follow_leader(1);
        let first = reads.batch(2);
        reads.follow_leader(3);
        assert!(reads.has_unsent());
        let second = reads.batch(2);
        assert_ne!(first, second, "each batch has its own context");
        reads.confirmed(&first, 5);
        assert!(
            reads.applying.is_empty(),
            "the old leader's answer is ignored"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reads_fail_at_their_deadline_by_where_they_waited() {
        let mut reads = Reads::default();
        let start = Instant::now();
        let mut confirming = read(&mut reads, start + Duration::from_secs(5));
        reads.follow_leader(1);
        reads.batch(2);
        let mut unsent = read(&mut reads, start + Duration::from_secs(6));
        tokio::time::advance(Duration::from_millis(4_999)).await;
        reads.expire(Instant::now());
        assert!(confirming.try_recv().is_err(), "expired early");
        tokio::time::advance(Duration::from_millis(1)).await;
        reads.expire(Instant::now());
        assert!(matches!(
            confirming.try_recv(),
            Ok(Err(StoreError::Timeout))
        ));
        assert!(unsent.try_recv().is_err(), "expired early");
        tokio::time::advance(Duration::from_secs(1)).await;
        reads.expire(Instant::now());
        assert!(matches!(unsent.try_recv(), Ok(Err(StoreError::NoLeader))));
    }
}
