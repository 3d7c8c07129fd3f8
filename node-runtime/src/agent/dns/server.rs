//! The DNS server's sockets: queries over UDP (one task each, a bounded number at once) and
//! TCP (length-prefixed, several per connection), answered from the current [`Zone`] or
//! relayed to the [`Upstream`] resolvers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

use super::message::{self, Reply, Transport};
use super::records::Zone;
use super::upstream::{read_framed, write_framed, Upstream};

/// Queries in flight at once (over both transports); more UDP queries are dropped, as a
/// busy resolver does, and more TCP connections wait.
const IN_FLIGHT: usize = 256;
/// A TCP connection idle this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// The largest query read over UDP.
const MAX_UDP: usize = 4096;

/// What every query is answered from.
#[derive(Clone)]
pub struct Resolver {
    /// The cluster's records, replaced as Services and EndpointSlices change.
    pub zone: watch::Receiver<Arc<Zone>>,
    /// Where other names are relayed.
    pub upstream: Arc<Upstream>,
}

impl Resolver {
    /// The reply to `query`, if any.
    async fn reply(&self, query: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let zone = self.zone.borrow().clone();
        let reply = match message::respond(&zone, query, transport) {
            Reply::Forward => {
                let relayed = match transport {
                    Transport::Udp => self.upstream.over_udp(query).await,
                    Transport::Tcp => self.upstream.over_tcp(query).await,
                };
                match relayed {
                    Some(bytes) => Reply::Answer(bytes),
                    None => message::server_failure(query),
                }
            }
            reply => reply,
        };
        match reply {
            Reply::Answer(bytes) => Some(bytes),
            Reply::Forward | Reply::Drop => None,
        }
    }
}

/// Binds UDP and TCP on `addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let udp = UdpSocket::bind(addr).await?;
    let tcp = TcpListener::bind(addr).await?;
    Ok((udp, tcp))
}

/// Answers queries on `udp` and `tcp` until `stop`.
pub async fn serve(udp: UdpSocket, tcp: TcpListener, resolver: Resolver, stop: CancellationToken) {
    let limit = Arc::new(Semaphore::new(IN_FLIGHT));
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = serve_udp(Arc::new(udp), resolver.clone(), limit.clone()) => {}
        _ = serve_tcp(tcp, resolver, limit, stop.clone()) => {}
    }
}

async fn serve_udp(socket: Arc<UdpSocket>, resolver: Resolver, limit: Arc<Semaphore>) {
    let mut buffer = vec![0; MAX_UDP];
    loop {
        let (n, peer) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(err) => {
                tracing::debug!(%err, "receiving a DNS query");
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            continue;
        };
        let query = buffer[..n].to_vec();
        let (socket, resolver) = (socket.clone(), resolver.clone());
        tokio::spawn(async move {
            if let Some(reply) = resolver.reply(&query, Transport::Udp).await {
                if let Err(err) = socket.send_to(&reply, peer).await {
                    tracing::debug!(%peer, %err, "sending a DNS reply");
                }
            }
            drop(permit);
        });
    }
}

async fn serve_tcp(
    listener: TcpListener,
    resolver: Resolver,
    limit: Arc<Semaphore>,
    stop: CancellationToken,
) {
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::debug!(%err, "accepting a DNS connection");
                continue;
            }
        };
        let (resolver, stop) = (resolver.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = connection(stream, &resolver) => {}
            }
            drop(permit);
        });
    }
}

/// Answers the queries of one TCP connection until it closes or idles.
async fn connection(mut stream: TcpStream, resolver: &Resolver) {
    loop {
        let query = match tokio::time::timeout(TCP_IDLE, read_framed(&mut stream)).await {
            Ok(Ok(query)) => query,
            _ => return,
        };
        let Some(reply) = resolver.reply(&query, Transport::Tcp).await else {
            return;
        };
        if write_framed(&mut stream, &reply).await.is_err() {
            return;
        }
    }
}
