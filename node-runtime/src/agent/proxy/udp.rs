//! One UDP frontend of the proxy: a flow per client address, to the backend the frontend's
//! balancer picks for the client's first datagram. Each flow has a socket of its own connected
//! to its backend; the backend's replies go back to the client from the frontend's address.
//! A flow ends after `IDLE_TIMEOUT` without a datagram either way (conntrack's idea of a UDP
//! stream), when its backend leaves the frontend, or when the backend answers with an ICMP
//! error (the backend is then avoided for a while, as a refused TCP connect is). A datagram
//! no backend takes is dropped, as UDP does.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::balancer::{Balancer, Failures};
use super::table::Frontend;

/// How long a flow lives without a datagram either way.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest datagram relayed.
const MAX_DATAGRAM: usize = 65_535;
/// Open flows per UDP frontend: each holds a socket and a task, so a flood of new source
/// addresses cannot exhaust the agent's descriptors; datagrams of new clients past it are
/// dropped until flows idle out.
const MAX_FLOWS: usize = 4_096;

/// A listening UDP frontend; dropping it ends its flows.
pub struct Listener {
    shared: Arc<Shared>,
    local: SocketAddr,
    stop: CancellationToken,
}

/// What the receiving task and the flows share.
struct Shared {
    socket: UdpSocket,
    balancer: RwLock<Arc<Balancer>>,
    failures: Arc<Failures>,
    flows: Mutex<HashMap<SocketAddr, Flow>>,
}

/// One client's flow to its backend.
#[derive(Clone)]
struct Flow {
    backend: SocketAddr,
    upstream: Arc<UdpSocket>,
    /// Poked on each datagram from the client, restarting the idle timer.
    activity: Arc<Notify>,
    stop: CancellationToken,
}

impl Listener {
    /// Listens on `addr` for `frontend`'s Service port.
    pub async fn bind(
        addr: SocketAddr,
        frontend: &Frontend,
        failures: Arc<Failures>,
    ) -> io::Result<Listener> {
        let socket = UdpSocket::bind(addr).await?;
        let local = socket.local_addr()?;
        let shared = Arc::new(Shared {
            socket,
            balancer: RwLock::new(Arc::new(balancer(frontend))),
            failures,
            flows: Mutex::default(),
        });
        let stop = CancellationToken::new();
        tokio::spawn(receive(shared.clone(), stop.clone()));
        Ok(Listener {
            shared,
            local,
            stop,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends new flows to `frontend`'s backends, and ends the flows of backends it dropped.
    pub fn update(&self, frontend: &Frontend) {
        *self.shared.balancer.write().expect("balancer lock") = Arc::new(balancer(frontend));
        self.shared
            .flows
            .lock()
            .expect("flows lock")
            .retain(|_, flow| {
                let keep = frontend.backends.contains(&flow.backend);
                if !keep {
                    flow.stop.cancel();
                }
                keep
            });
    }

    /// The number of live flows.
    #[cfg(test)]
    fn flows(&self) -> usize {
        self.shared.flows.lock().expect("flows lock").len()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn balancer(frontend: &Frontend) -> Balancer {
    Balancer::new(frontend.backends.clone(), frontend.affinity)
}

/// Relays each client's datagrams to its flow's backend until `stop`.
async fn receive(shared: Arc<Shared>, stop: CancellationToken) {
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            received = shared.socket.recv_from(&mut buf) => received,
        };
        let (n, client) = match received {
            Ok(received) => received,
            Err(err) => {
                tracing::trace!(%err, "receiving a datagram failed");
                continue;
            }
        };
        let flow = match flow_for(&shared, client, &stop) {
            Ok(Some(flow)) => flow,
            Ok(None) => continue,
            Err(err) => {
                tracing::debug!(%client, %err, "opening a UDP flow failed");
                continue;
            }
        };
        flow.activity.notify_one();
        if let Err(err) = flow.upstream.send(&buf[..n]).await {
            tracing::debug!(backend = %flow.backend, %err, "backend refused a datagram");
            shared.failures.mark(flow.backend);
            end(&shared, client, &flow);
        }
    }
}

/// The client's flow, opened now if it has none; None when no backend takes it or the
/// frontend already has `MAX_FLOWS`.
fn flow_for(
    shared: &Arc<Shared>,
    client: SocketAddr,
    stop: &CancellationToken,
) -> io::Result<Option<Flow>> {
    let mut flows = shared.flows.lock().expect("flows lock");
    if let Some(flow) = flows.get(&client) {
        return Ok(Some(flow.clone()));
    }
    if flows.len() >= MAX_FLOWS {
        tracing::debug!(%client, "UDP frontend at its flow limit; datagram dropped");
        return Ok(None);
    }
    let balancer = shared.balancer.read().expect("balancer lock").clone();
    let Some(backend) = balancer.pick(client.ip(), &shared.failures) else {
        return Ok(None);
    };
    let any = match backend.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let socket = std::net::UdpSocket::bind(SocketAddr::new(any, 0))?;
    socket.connect(backend)?;
    socket.set_nonblocking(true)?;
    let flow = Flow {
        backend,
        upstream: Arc::new(UdpSocket::from_std(socket)?),
        activity: Arc::default(),
        stop: stop.child_token(),
    };
    flows.insert(client, flow.clone());
    tokio::spawn(reply(shared.clone(), client, flow.clone()));
    Ok(Some(flow))
}

/// Sends the backend's replies to the client until the flow ends.
async fn reply(shared: Arc<Shared>, client: SocketAddr, flow: Flow) {
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        tokio::select! {
            _ = flow.stop.cancelled() => break,
            _ = flow.activity.notified() => {}
            _ = tokio::time::sleep(IDLE_TIMEOUT) => break,
            received = flow.upstream.recv(&mut buf) => match received {
                Ok(n) => {
                    if let Err(err) = shared.socket.send_to(&buf[..n], client).await {
                        tracing::trace!(%client, %err, "replying to a client failed");
                    }
                }
                Err(err) => {
                    tracing::debug!(backend = %flow.backend, %err, "backend refused a datagram");
                    shared.failures.mark(flow.backend);
                    break;
                }
            },
        }
    }
    end(&shared, client, &flow);
}

/// Forgets `flow` of `client` (not a newer one).
fn end(shared: &Shared, client: SocketAddr, flow: &Flow) {
    flow.stop.cancel();
    let mut flows = shared.flows.lock().expect("flows lock");
    if flows
        .get(&client)
        .is_some_and(|f| Arc::ptr_eq(&f.upstream, &flow.upstream))
    {
        flows.remove(&client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::proxy::table::Affinity;

    /// A backend that answers each datagram with `name:` and the datagram.
    async fn named_backend(name: &'static str) -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0; 1500];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let answer = [name.as_bytes(), b":", &buf[..n]].concat();
                let _ = socket.send_to(&answer, from).await;
            }
        });
        addr
    }

    fn frontend(backends: Vec<SocketAddr>) -> Frontend {
        Frontend {
            service: "default/dns:53".into(),
            affinity: Affinity::None,
            backends,
        }
    }

    async fn listen(backends: Vec<SocketAddr>) -> Listener {
        let any = "127.0.0.1:0".parse().unwrap();
        Listener::bind(any, &frontend(backends), Arc::default())
            .await
            .unwrap()
    }

    async fn client() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").await.unwrap()
    }

    /// Sends `text` to `to` and waits (a second at most) for the answer.
    async fn ask(socket: &UdpSocket, to: SocketAddr, text: &str) -> Option<String> {
        socket.send_to(text.as_bytes(), to).await.unwrap();
        let mut buf = [0; 1500];
        let (n, from) = tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        assert_eq!(from, to, "the answer comes from the frontend's address");
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    #[tokio::test]
    async fn each_client_gets_a_flow_to_one_backend_in_turn() {
        let listener = listen(vec![named_backend("a").await, named_backend("b").await]).await;
        let to = listener.local_addr();
        let (first, second) = (client().await, client().await);
        assert_eq!(ask(&first, to, "1").await.as_deref(), Some("a:1"));
        assert_eq!(ask(&second, to, "1").await.as_deref(), Some("b:1"));
        assert_eq!(ask(&first, to, "2").await.as_deref(), Some("a:2"));
        assert_eq!(ask(&second, to, "2").await.as_deref(), Some("b:2"));
        assert_eq!(listener.flows(), 2);
    }

    #[tokio::test]
    async fn an_idle_flow_ends_and_the_next_datagram_starts_another() {
        let listener = listen(vec![named_backend("a").await, named_backend("b").await]).await;
        let to = listener.local_addr();
        let socket = client().await;
        assert_eq!(ask(&socket, to, "1").await.as_deref(), Some("a:1"));
        assert_eq!(listener.flows(), 1);
        // Only timers from here until resume: the flow's idle timer fires.
        tokio::time::pause();
        tokio::time::advance(IDLE_TIMEOUT - Duration::from_secs(1)).await;
        assert_eq!(listener.flows(), 1, "not idle long enough yet");
        tokio::time::advance(Duration::from_secs(2)).await;
        for _ in 0..100 {
            if listener.flows() == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(listener.flows(), 0);
        tokio::time::resume();
        assert_eq!(ask(&socket, to, "2").await.as_deref(), Some("b:2"));
    }

    #[tokio::test]
    async fn a_backend_leaving_ends_its_flows() {
        let a = named_backend("a").await;
        let b = named_backend("b").await;
        let listener = listen(vec![a]).await;
        let to = listener.local_addr();
        let socket = client().await;
        assert_eq!(ask(&socket, to, "1").await.as_deref(), Some("a:1"));
        listener.update(&frontend(vec![b]));
        assert_eq!(listener.flows(), 0);
        assert_eq!(ask(&socket, to, "2").await.as_deref(), Some("b:2"));
    }

    #[tokio::test]
    async fn a_refusing_backend_is_avoided_by_the_next_flow() {
        let closed = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let dead = closed.local_addr().unwrap();
        drop(closed);
        let listener = listen(vec![dead, named_backend("alive").await]).await;
        let to = listener.local_addr();
        let socket = client().await;
        // The first datagram goes to the dead backend, whose port unreachable ends the flow;
        // a client's retry then reaches the live one.
        let mut answers = Vec::new();
        for i in 0..3 {
            if let Some(answer) = ask(&socket, to, &i.to_string()).await {
                answers.push(answer);
                break;
            }
        }
        assert_eq!(answers.len(), 1, "a retry was answered");
        assert!(answers[0].starts_with("alive:"), "{answers:?}");
    }
}
