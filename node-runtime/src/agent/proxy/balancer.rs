//! Choosing a backend for a connection: the next ready endpoint in turn (or, with ClientIP
//! affinity, the one the client's address hashes to), skipping for a while any backend that
//! just refused or timed out a connect (kube-proxy's userspace mode did the same); those are
//! tried last, so a connection still goes through when every backend was marked.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::table::Affinity;

/// How long a connect to a backend may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a backend that failed a connect is passed over.
pub const AVOID_FOR: Duration = Duration::from_secs(5);

/// Backends that failed a connect recently, shared by every frontend of the node.
#[derive(Debug, Default)]
pub struct Failures {
    until: Mutex<HashMap<SocketAddr, Instant>>,
}

impl Failures {
    /// Passes `backend` over for a while.
    pub fn mark(&self, backend: SocketAddr) {
        let mut until = self.until.lock().expect("failures lock");
        let now = Instant::now();
        until.retain(|_, t| *t > now);
        until.insert(backend, now + AVOID_FOR);
    }

    fn clear(&self, backend: SocketAddr) {
        self.until.lock().expect("failures lock").remove(&backend);
    }

    fn avoided(&self, backend: SocketAddr) -> bool {
        self.until
            .lock()
            .expect("failures lock")
            .get(&backend)
            .is_some_and(|t| *t > Instant::now())
    }
}

/// One frontend's backends and its turn.
#[derive(Debug)]
pub struct Balancer {
    backends: Vec<SocketAddr>,
    affinity: Affinity,
    next: AtomicUsize,
}

impl Balancer {
    /// A balancer over `backends` (tried in their order, round robin).
    pub fn new(backends: Vec<SocketAddr>, affinity: Affinity) -> Self {
        Balancer {
            backends,
            affinity,
            next: AtomicUsize::new(0),
        }
    }

    /// The backends, in their turn order.
    #[cfg(test)]
    pub fn backends(&self) -> &[SocketAddr] {
        &self.backends
    }

    /// The backends to try for a client at `client`, best first.
    pub(crate) fn order(&self, client: IpAddr, failures: &Failures) -> Vec<SocketAddr> {
        let n = self.backends.len();
        if n == 0 {
            return Vec::new();
        }
        let start = match self.affinity {
            Affinity::None => self.next.fetch_add(1, Ordering::Relaxed),
            Affinity::ClientIp => {
                let mut hasher = DefaultHasher::new();
                client.hash(&mut hasher);
                hasher.finish() as usize
            }
        } % n;
        let turn = (0..n).map(|i| self.backends[(start + i) % n]);
        let (avoided, fresh): (Vec<_>, Vec<_>) = turn.partition(|b| failures.avoided(*b));
        fresh.into_iter().chain(avoided).collect()
    }

    /// The backend a new datagram flow from `client` goes to; None without backends. UDP has
    /// no connect to fail, so a flow whose backend answers with an ICMP error is marked and
    /// ended, and the client's next datagram starts a flow to another.
    pub fn pick(&self, client: IpAddr, failures: &Failures) -> Option<SocketAddr> {
        self.order(client, failures).into_iter().next()
    }

    /// A connection to the first backend that takes one; None when none does.
    pub async fn connect(
        &self,
        client: IpAddr,
        failures: &Failures,
    ) -> Option<(SocketAddr, TcpStream)> {
        for backend in self.order(client, failures) {
            if let Some(stream) = connect(backend, failures).await {
                return Some((backend, stream));
            }
        }
        None
    }
}

/// A connection to `backend` within [`CONNECT_TIMEOUT`]; a failure marks it to be passed over,
/// a success clears that.
pub async fn connect(backend: SocketAddr, failures: &Failures) -> Option<TcpStream> {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backend)).await {
        Ok(Ok(stream)) => {
            failures.clear(backend);
            return Some(stream);
        }
        Ok(Err(err)) => tracing::debug!(%backend, %err, "backend refused a connection"),
        Err(_) => tracing::debug!(%backend, "backend timed out a connection"),
    }
    failures.mark(backend);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(ports: &[u16]) -> Vec<SocketAddr> {
        ports
            .iter()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect()
    }

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn turns_go_round() {
        let balancer = Balancer::new(addrs(&[1, 2, 3]), Affinity::None);
        let failures = Failures::default();
        let firsts: Vec<u16> = (0..6)
            .map(|_| balancer.order(CLIENT, &failures)[0].port())
            .collect();
        assert_eq!(firsts, [1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn client_affinity_keeps_the_first_choice() {
        let balancer = Balancer::new(addrs(&[1, 2, 3]), Affinity::ClientIp);
        let failures = Failures::default();
        let first = balancer.order(CLIENT, &failures);
        for _ in 0..5 {
            assert_eq!(balancer.order(CLIENT, &failures), first);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failed_backends_go_last_until_their_time_is_up() {
        let balancer = Balancer::new(addrs(&[1, 2, 3]), Affinity::None);
        let failures = Failures::default();
        failures.mark(addrs(&[1])[0]);
        let order: Vec<u16> = balancer
            .order(CLIENT, &failures)
            .iter()
            .map(|b| b.port())
            .collect();
        assert_eq!(order, [2, 3, 1]);
        tokio::time::advance(AVOID_FOR + Duration::from_millis(1)).await;
        let order: Vec<u16> = balancer
            .order(CLIENT, &failures)
            .iter()
            .map(|b| b.port())
            .collect();
        assert_eq!(order, [2, 3, 1], "the turn moved on, nothing is avoided");
        assert!(!failures.avoided(addrs(&[1])[0]));
    }
}
