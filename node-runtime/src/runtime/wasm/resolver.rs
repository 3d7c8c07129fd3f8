//! A Wasm pod's stub resolver: what glibc's does with the pod's resolv.conf settings
//! ([`DnsConfig`]), for guests' `wasi:sockets/ip-name-lookup` calls. A name with fewer dots
//! than `ndots` is tried with each search domain first, then as given (the other way round
//! otherwise; a final dot means as given only); each try asks the nameservers in turn for A
//! records over UDP (TCP when the reply is truncated). Sockets are made on the calling thread,
//! so in the pod's network namespace when a guest calls.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::runtime::DnsConfig;

/// How long one nameserver gets to answer one query (glibc's default `timeout:5` is longer;
/// a pod's nameserver is the node-local one).
const TIMEOUT: Duration = Duration::from_secs(2);
/// glibc's default `ndots`.
const DEFAULT_NDOTS: usize = 1;
/// The largest UDP reply read.
const MAX_UDP: usize = 4096;

/// Why a name has no addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("not a valid host name")]
    InvalidName,
    #[error("no such name")]
    NoName,
    #[error("no nameserver answered")]
    Unreachable,
}

/// One pod's resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodResolver {
    nameservers: Vec<IpAddr>,
    searches: Vec<String>,
    ndots: usize,
}

/// What one nameserver said about one name.
enum Outcome {
    Found(Vec<IpAddr>),
    NoName,
}

impl PodResolver {
    /// The resolver `config` describes (`ndots:N` from its options).
    pub fn new(config: &DnsConfig) -> PodResolver {
        let ndots = config
            .options
            .iter()
            .filter_map(|o| o.strip_prefix("ndots:")?.parse().ok())
            .next_back()
            .unwrap_or(DEFAULT_NDOTS);
        PodResolver {
            nameservers: config.nameservers.clone(),
            searches: config.searches.clone(),
            ndots,
        }
    }

    /// The names tried for `name`, in order, all absolute.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if let Some(absolute) = name.strip_suffix('.') {
            return vec![format!("{absolute}.")];
        }
        let searched = self
            .searches
            .iter()
            .map(|domain| format!("{name}.{}.", domain.trim_end_matches('.')));
        let as_given = format!("{name}.");
        if name.matches('.').count() >= self.ndots {
            std::iter::once(as_given).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(as_given)).collect()
        }
    }

    /// The addresses of `name` (an IP address is itself).
    pub async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if name.is_empty() || name.len() > 253 || Name::from_ascii(name).is_err() {
            return Err(LookupError::InvalidName);
        }
        let mut unreachable = false;
        for candidate in self.candidates(name) {
            match self.ask(&candidate).await {
                Some(Outcome::Found(ips)) if !ips.is_empty() => return Ok(ips),
                Some(_) => {}
                None => unreachable = true,
            }
        }
        Err(if unreachable {
            LookupError::Unreachable
        } else {
            LookupError::NoName
        })
    }

    /// The first nameserver's word on `name`; None if none answered.
    async fn ask(&self, name: &str) -> Option<Outcome> {
        let query = query(name)?;
        for server in &self.nameservers {
            let server = SocketAddr::new(*server, 53);
            let reply = match tokio::time::timeout(TIMEOUT, exchange(server, &query)).await {
                Ok(Ok(reply)) => reply,
                _ => continue,
            };
            match reply.response_code() {
                ResponseCode::NoError => {
                    let ips = reply
                        .answers()
                        .iter()
                        .filter_map(|r| r.data().as_a().map(|a| IpAddr::V4(a.0)))
                        .collect();
                    return Some(Outcome::Found(ips));
                }
                ResponseCode::NXDomain => return Some(Outcome::NoName),
                _ => continue,
            }
        }
        None
    }
}

/// An A query for `name` with a random ID, encoded.
fn query(name: &str) -> Option<Vec<u8>> {
    let mut message = Message::new();
    message
        .set_id(rand::random())
        .set_message_type(MessageType::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).ok()?, RecordType::A));
    message.to_vec().ok()
}

/// `query` to `server` over UDP, again over TCP if the reply is truncated.
async fn exchange(server: SocketAddr, query: &[u8]) -> std::io::Result<Message> {
    let any = match server {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    };
    let socket = UdpSocket::bind(any).await?;
    socket.connect(server).await?;
    socket.send(query).await?;
    let mut buffer = vec![0; MAX_UDP];
    let reply = loop {
        let n = socket.recv(&mut buffer).await?;
        match Message::from_vec(&buffer[..n]) {
            Ok(reply) if buffer[..2] == query[..2] => break reply,
            _ => continue, // not the reply to this query
        }
    };
    if !reply.truncated() {
        return Ok(reply);
    }
    let mut stream = TcpStream::connect(server).await?;
    let length = u16::try_from(query.len()).map_err(std::io::Error::other)?;
    stream.write_all(&length.to_be_bytes()).await?;
    stream.write_all(query).await?;
    let length = stream.read_u16().await?;
    let mut bytes = vec![0; usize::from(length)];
    stream.read_exact(&mut bytes).await?;
    Message::from_vec(&bytes).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster_first() -> PodResolver {
        PodResolver::new(&DnsConfig {
            nameservers: vec!["10.43.0.10".parse().unwrap()],
            searches: vec![
                "shop.svc.cluster.local".into(),
                "svc.cluster.local".into(),
                "cluster.local".into(),
            ],
            options: vec!["ndots:5".into()],
        })
    }

    #[test]
    fn short_names_go_through_the_search_list_first() {
        assert_eq!(
            cluster_first().candidates("echo"),
            [
                "echo.shop.svc.cluster.local.",
                "echo.svc.cluster.local.",
                "echo.cluster.local.",
                "echo."
            ]
        );
        assert_eq!(
            cluster_first().candidates("echo.default.svc.cluster.local")[0],
            "echo.default.svc.cluster.local.shop.svc.cluster.local."
        );
    }

    #[test]
    fn names_with_enough_dots_or_a_final_dot_go_as_given_first() {
        let resolver = PodResolver::new(&DnsConfig {
            searches: vec!["corp.example".into()],
            ..DnsConfig::default()
        });
        assert_eq!(
            resolver.candidates("example.com"),
            ["example.com.", "example.com.corp.example."]
        );
        assert_eq!(
            cluster_first().candidates("echo.default.svc.cluster.local."),
            ["echo.default.svc.cluster.local."]
        );
    }

    #[tokio::test]
    async fn addresses_are_themselves_and_bad_names_are_refused() {
        let resolver = cluster_first();
        assert_eq!(
            resolver.resolve("10.1.2.3").await,
            Ok(vec!["10.1.2.3".parse::<IpAddr>().unwrap()])
        );
        assert_eq!(
            resolver.resolve("bad name").await,
            Err(LookupError::InvalidName)
        );
    }
}
