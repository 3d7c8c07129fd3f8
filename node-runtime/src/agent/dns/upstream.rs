//! Relaying queries for names outside the cluster to the node's own resolvers, each tried in
//! turn with a timeout, over the transport the query came by.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::message;

/// How long one upstream resolver gets to answer.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The largest reply taken over UDP (EDNS's common limit).
const MAX_UDP: usize = 4096;

/// The resolvers names outside the cluster go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    servers: Vec<SocketAddr>,
}

impl Upstream {
    /// `nameservers` on port 53, less `own` (the cluster DNS address: no loops).
    pub fn new(nameservers: &[IpAddr], own: IpAddr) -> Upstream {
        Upstream {
            servers: nameservers
                .iter()
                .filter(|ip| **ip != own)
                .map(|ip| SocketAddr::new(*ip, 53))
                .collect(),
        }
    }

    /// Exactly these resolvers (tests use ones on other ports).
    #[cfg(test)]
    pub fn with_servers(servers: Vec<SocketAddr>) -> Upstream {
        Upstream { servers }
    }

    /// The first reply to `query` over UDP from a resolver, or None if none answers.
    pub async fn over_udp(&self, query: &[u8]) -> Option<Vec<u8>> {
        for server in &self.servers {
            match tokio::time::timeout(TIMEOUT, udp_exchange(*server, query)).await {
                Ok(Ok(reply)) => return Some(reply),
                Ok(Err(err)) => tracing::debug!(%server, %err, "upstream resolver failed"),
                Err(_) => tracing::debug!(%server, "upstream resolver timed out"),
            }
        }
        None
    }

    /// The first reply to `query` over TCP from a resolver, or None if none answers.
    pub async fn over_tcp(&self, query: &[u8]) -> Option<Vec<u8>> {
        for server in &self.servers {
            match tokio::time::timeout(TIMEOUT, tcp_exchange(*server, query)).await {
                Ok(Ok(reply)) => return Some(reply),
                Ok(Err(err)) => tracing::debug!(%server, %err, "upstream resolver failed"),
                Err(_) => tracing::debug!(%server, "upstream resolver timed out"),
            }
        }
        None
    }
}

async fn udp_exchange(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let any = match server {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let socket = UdpSocket::bind(any).await?;
    socket.connect(server).await?;
    socket.send(query).await?;
    let mut buffer = vec![0; MAX_UDP];
    loop {
        let n = socket.recv(&mut buffer).await?;
        if message::answers(query, &buffer[..n]) {
            buffer.truncate(n);
            return Ok(buffer);
        }
    }
}

/// One length-prefixed query and reply (RFC 1035 4.2.2).
async fn tcp_exchange(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(server).await?;
    write_framed(&mut stream, query).await?;
    read_framed(&mut stream).await
}

/// Writes one length-prefixed DNS message.
pub async fn write_framed(
    stream: &mut (impl AsyncWriteExt + Unpin),
    message: &[u8],
) -> std::io::Result<()> {
    let length = u16::try_from(message.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "message too long"))?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

/// Reads one length-prefixed DNS message.
pub async fn read_framed(stream: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Vec<u8>> {
    let length = stream.read_u16().await?;
    let mut message = vec![0; usize::from(length)];
    stream.read_exact(&mut message).await?;
    Ok(message)
}
