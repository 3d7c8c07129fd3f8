//! An in-process network for deterministic Raft tests (after raft-rs's test `Network`):
//! members of one cluster deliver straight into each other's inbox, and the test cuts
//! links, drops messages at random or delays them by random amounts (which reorders them).
//! With tokio's paused clock the delays and Raft's timers cost no real time. A member that
//! the receiver knows was removed is refused and told so, as over TCP.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raft::eraftpb::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Links, PeerReport, Transport};
use crate::member::{Member, SharedCluster};

/// A network the members of one cluster join with `Store::open_on`; cheap to clone.
#[derive(Clone)]
pub struct MemoryNetwork {
    state: Arc<Mutex<Conditions>>,
}

/// What happens to messages in flight.
struct Conditions {
    /// Each joined member's inbox and membership, by Raft id (a restarted member replaces
    /// its entry).
    members: HashMap<u64, (mpsc::Sender<Message>, SharedCluster)>,
    /// Directed links `(from, to)` that carry nothing.
    cut: HashSet<(u64, u64)>,
    /// The chance that any one message is lost.
    drop_rate: f64,
    /// Each message is delivered after a random delay up to this.
    max_delay: Duration,
    rng: StdRng,
    /// Messages lost so far.
    lost: u64,
    /// Messages delivered later than sent so far.
    delayed: u64,
}

/// The fate of one message.
enum Route {
    /// The link is cut: the sender sees the peer unreachable.
    Cut,
    /// Lost on the way, unnoticed.
    Lost,
    /// The receiver knows the sender was removed: the sender is told so.
    Refused,
    /// Delivered to this inbox after this delay.
    Deliver(mpsc::Sender<Message>, Duration),
}

impl MemoryNetwork {
    /// A fully connected, lossless network; `seed` fixes the random drops and delays.
    pub fn new(seed: u64) -> MemoryNetwork {
        MemoryNetwork {
            state: Arc::new(Mutex::new(Conditions {
                members: HashMap::new(),
                cut: HashSet::new(),
                drop_rate: 0.0,
                max_delay: Duration::ZERO,
                rng: StdRng::seed_from_u64(seed),
                lost: 0,
                delayed: 0,
            })),
        }
    }

    /// Cuts every link between a member of `a` and a member of `b`, both ways.
    pub fn partition(&self, a: &[u64], b: &[u64]) {
        let mut state = self.lock();
        for &x in a {
            for &y in b {
                state.cut.insert((x, y));
                state.cut.insert((y, x));
            }
        }
    }

    /// Loses each message with probability `rate` (0.0 to 1.0).
    pub fn drop_rate(&self, rate: f64) {
        self.lock().drop_rate = rate.clamp(0.0, 1.0);
    }

    /// Delays each message by a random time up to `max`, so later messages may overtake it.
    pub fn max_delay(&self, max: Duration) {
        self.lock().max_delay = max;
    }

    /// Restores every link and stops dropping and delaying messages.
    pub fn heal(&self) {
        let mut state = self.lock();
        state.cut.clear();
        state.drop_rate = 0.0;
        state.max_delay = Duration::ZERO;
    }

    /// How many messages were lost and how many delayed so far: a test can check that its
    /// faults happened.
    pub fn faults(&self) -> (u64, u64) {
        let state = self.lock();
        (state.lost, state.delayed)
    }

    /// Joins the member `cluster.local`: its inbox receives what the others send it.
    pub(crate) fn join(
        &self,
        membership: &SharedCluster,
        links: Links,
        stop: CancellationToken,
    ) -> MemoryTransport {
        let cluster = membership.read().expect("cluster").clone();
        self.lock()
            .members
            .insert(cluster.local, (links.inbox.clone(), membership.clone()));
        MemoryTransport {
            network: self.clone(),
            local: cluster.local,
            peers: cluster.peers().map(|m| m.id).collect(),
            links,
            stop,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Conditions> {
        self.state.lock().expect("memory network")
    }

    fn route(&self, from: u64, to: u64) -> Route {
        let mut state = self.lock();
        let Some((inbox, membership)) = state.members.get(&to).cloned() else {
            return Route::Cut;
        };
        if state.cut.contains(&(from, to)) {
            return Route::Cut;
        }
        if membership.read().expect("cluster").was_removed(from) {
            return Route::Refused;
        }
        let drop_rate = state.drop_rate;
        if drop_rate > 0.0 && state.rng.gen_bool(drop_rate) {
            state.lost += 1;
            return Route::Lost;
        }
        let max = state.max_delay.as_micros() as u64;
        let delay = match max {
            0 => Duration::ZERO,
            max => Duration::from_micros(state.rng.gen_range(0..=max)),
        };
        if !delay.is_zero() {
            state.delayed += 1;
        }
        Route::Deliver(inbox, delay)
    }
}

/// One member's side of a [`MemoryNetwork`].
pub struct MemoryTransport {
    network: MemoryNetwork,
    local: u64,
    peers: HashSet<u64>,
    links: Links,
    /// Once cancelled, nothing more is sent, not even what was delayed.
    stop: CancellationToken,
}

impl Transport for MemoryTransport {
    fn send(&mut self, messages: Vec<Message>) {
        for message in messages {
            let to = message.to;
            let message_type = message.get_msg_type();
            if !self.peers.contains(&to) {
                tracing::warn!(to, "dropping a raft message for an unknown member");
                continue;
            }
            // Stopped, like the TCP transport, this member reaches no one.
            if self.stop.is_cancelled() {
                self.links.undelivered(to, message_type);
                continue;
            }
            match self.network.route(self.local, to) {
                Route::Cut => self.links.undelivered(to, message_type),
                Route::Lost => self.links.snapshot_failed(to, message_type),
                Route::Refused => {
                    let _ = self.links.reports.send(PeerReport::Removed(to));
                }
                Route::Deliver(inbox, delay) if delay.is_zero() => {
                    deliver(&self.links, &inbox, message)
                }
                Route::Deliver(inbox, delay) => {
                    let links = self.links.clone();
                    let later = async move {
                        tokio::time::sleep(delay).await;
                        deliver(&links, &inbox, message);
                    };
                    tokio::spawn(self.stop.clone().run_until_cancelled_owned(later));
                }
            }
        }
    }

    fn add_peer(&mut self, peer: &Member) {
        if peer.id != self.local {
            self.peers.insert(peer.id);
        }
    }

    fn remove_peer(&mut self, id: u64) {
        self.peers.remove(&id);
    }
}

/// Puts a message in a peer's inbox, or reports it undelivered if that is full or gone.
fn deliver(links: &Links, inbox: &mpsc::Sender<Message>, message: Message) {
    let (to, message_type) = (message.to, message.get_msg_type());
    match inbox.try_send(message) {
        Ok(()) => links.snapshot_sent(to, message_type),
        Err(_) => links.undelivered(to, message_type),
    }
}
