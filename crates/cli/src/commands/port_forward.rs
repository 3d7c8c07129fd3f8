//! `skiff port-forward POD|TYPE/NAME [LOCAL:]REMOTE... [--address ADDR,...]`: local ports
//! forwarded to a running pod's, as `kubectl port-forward` forwards them: each local
//! connection gets a WebSocket of its own, and a failed one is reported and closed while the
//! others go on, until Ctrl-C or SIGTERM.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use skiff_client::Client;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::daemon::terminated;
use super::{client, port_forward_target};
use crate::cli::ClientOpts;

/// `skiff port-forward POD|TYPE/NAME [LOCAL:]REMOTE... [--address ADDR,...]`.
#[derive(Args, Debug)]
pub struct PortForwardArgs {
    /// The pod (`NAME` or `pod/NAME`), or a running pod of `deployment/NAME`,
    /// `replicaset/NAME`, `statefulset/NAME`, `daemonset/NAME`, `job/NAME` or `service/NAME`.
    pub target: String,
    /// `LOCAL:REMOTE`, `REMOTE` (the same local port) or `:REMOTE` (a free local port); a
    /// Service's REMOTE is its port, forwarded to the pod's target port.
    #[arg(required = true, value_name = "[LOCAL:]REMOTE", value_parser = parse_port)]
    pub ports: Vec<PortSpec>,
    /// The local addresses to listen on, comma-separated: IP addresses, or `localhost`
    /// (127.0.0.1, and ::1 where it can be bound).
    #[arg(long, value_delimiter = ',', default_value = "localhost", value_parser = parse_address)]
    pub address: Vec<ListenAddress>,
}

/// A local port (0: a free one) and the pod's port it forwards to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    pub local: u16,
    pub remote: u16,
}

/// A value of `--address`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenAddress {
    Localhost,
    Ip(IpAddr),
}

/// `[LOCAL:]REMOTE`, as kubectl reads it.
fn parse_port(text: &str) -> Result<PortSpec, String> {
    let (local, remote) = match text.split_once(':') {
        None => (text, text),
        Some(("", remote)) => ("0", remote),
        Some(pair) => pair,
    };
    let local = local
        .parse::<u16>()
        .map_err(|e| format!("local port {local:?}: {e}"))?;
    match remote.parse::<u16>() {
        Ok(remote) if remote > 0 => Ok(PortSpec { local, remote }),
        _ => Err(format!(
            "remote port {remote:?}: a port is a number from 1 to 65535"
        )),
    }
}

fn parse_address(text: &str) -> Result<ListenAddress, String> {
    match text.trim() {
        "localhost" => Ok(ListenAddress::Localhost),
        ip => ip
            .parse()
            .map(ListenAddress::Ip)
            .map_err(|_| format!("{ip:?} is not an IP address or localhost")),
    }
}

/// The addresses to bind, each with whether it may be skipped when it cannot be bound.
fn binds(addresses: &[ListenAddress]) -> Vec<(IpAddr, bool)> {
    addresses
        .iter()
        .flat_map(|address| match address {
            ListenAddress::Localhost => vec![
                (IpAddr::V4(Ipv4Addr::LOCALHOST), false),
                (IpAddr::V6(Ipv6Addr::LOCALHOST), true),
            ],
            ListenAddress::Ip(ip) => vec![(*ip, false)],
        })
        .collect()
}

pub async fn run(args: PortForwardArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let client = client(opts)?;
    let mut ports = args.ports;
    let pod =
        port_forward_target::resolve(&client, &opts.namespace, &args.target, &mut ports).await?;
    let binds = binds(&args.address);
    for mut port in ports {
        for listener in listen(&binds, &mut port).await? {
            println!(
                "Forwarding from {} -> {}",
                listener.local_addr()?,
                port.remote
            );
            let forward = Forward {
                client: client.clone(),
                namespace: opts.namespace.clone(),
                pod: pod.clone(),
                port,
            };
            tokio::spawn(Arc::new(forward).accept(listener));
        }
    }
    terminated().await;
    Ok(())
}

/// Listens on `port.local` at each address; a free port becomes the one the first address
/// got, which the others share (as kubectl does).
async fn listen(binds: &[(IpAddr, bool)], port: &mut PortSpec) -> anyhow::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    for &(ip, optional) in binds {
        let address = SocketAddr::new(ip, port.local);
        match TcpListener::bind(address).await {
            Ok(listener) => {
                port.local = listener.local_addr()?.port();
                listeners.push(listener);
            }
            Err(_) if optional => {}
            Err(err) => return Err(err).with_context(|| format!("unable to listen on {address}")),
        }
    }
    Ok(listeners)
}

/// Where one local port's connections go.
struct Forward {
    client: Client,
    namespace: String,
    pod: String,
    port: PortSpec,
}

impl Forward {
    /// Forwards each connection `listener` accepts, until accepting fails.
    async fn accept(self: Arc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((local, _)) => {
                    println!("Handling connection for {}", self.port.local);
                    tokio::spawn(self.clone().connection(local));
                }
                Err(err) => {
                    eprintln!(
                        "error accepting a connection on port {}: {err}",
                        self.port.local
                    );
                    return;
                }
            }
        }
    }

    /// Forwards one local connection; a failure is reported and closes only it.
    async fn connection(self: Arc<Self>, local: TcpStream) {
        let remote = self
            .client
            .port_forward(&self.namespace, &self.pod, self.port.remote)
            .await;
        let forwarded = match remote {
            Ok(remote) => relay(remote, local).await.map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        if let Err(message) = forwarded {
            self.report(&message);
        }
    }

    /// Reports an error as kubectl logs it.
    fn report(&self, message: &str) {
        let now = jiff::Zoned::now().strftime("%m%d %H:%M:%S%.6f");
        eprintln!(
            "E{now} an error occurred forwarding {} -> {}: {message}",
            self.port.local, self.port.remote
        );
    }
}

/// Relays bytes both ways until the pod's side ends: our end of file half-closes the pod's
/// side, and the end of the pod's shuts our connection down.
async fn relay(remote: impl AsyncRead + AsyncWrite, mut local: TcpStream) -> io::Result<()> {
    let (mut local_read, mut local_write) = local.split();
    let (mut remote_read, mut remote_write) = tokio::io::split(remote);
    let upload = async {
        tokio::io::copy(&mut local_read, &mut remote_write).await?;
        remote_write.shutdown().await?;
        std::future::pending::<io::Result<()>>().await
    };
    let download = async {
        tokio::io::copy(&mut remote_read, &mut local_write).await?;
        local_write.shutdown().await
    };
    tokio::select! {
        done = download => done,
        failed = upload => failed,
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    /// A relay of a connection accepted here, the connection's client and the pod's end.
    async fn relayed() -> (
        tokio::task::JoinHandle<io::Result<()>>,
        TcpStream,
        tokio::io::DuplexStream,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let user = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (local, _) = listener.accept().await.unwrap();
        let (remote, pod) = tokio::io::duplex(64);
        (tokio::spawn(relay(remote, local)), user, pod)
    }

    #[tokio::test]
    async fn our_end_of_file_half_closes_the_pods_side() {
        let (relay, mut user, mut pod) = relayed().await;
        user.write_all(b"ping").await.unwrap();
        user.shutdown().await.unwrap();
        let mut request = Vec::new();
        pod.read_to_end(&mut request).await.unwrap();
        assert_eq!(request, b"ping");
        pod.write_all(b"pong").await.unwrap();
        drop(pod);
        let mut answer = Vec::new();
        user.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"pong");
        relay.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn the_pods_end_ends_our_connection() {
        let (relay, mut user, mut pod) = relayed().await;
        pod.write_all(b"bye").await.unwrap();
        drop(pod);
        let mut answer = Vec::new();
        user.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"bye");
        relay.await.unwrap().unwrap();
    }

    #[test]
    fn ports_are_read_as_kubectl_reads_them() {
        let spec = |local, remote| Ok(PortSpec { local, remote });
        assert_eq!(parse_port("8080:80"), spec(8080, 80));
        assert_eq!(parse_port("80"), spec(80, 80));
        assert_eq!(parse_port(":80"), spec(0, 80));
        assert_eq!(parse_port("0:80"), spec(0, 80));
        assert!(parse_port("8080:0").unwrap_err().contains("\"0\""));
        assert!(parse_port("x:80").unwrap_err().contains("local port \"x\""));
        assert!(parse_port("80:http").unwrap_err().contains("\"http\""));
        assert!(parse_port("1:2:3").is_err());
        assert!(parse_port("70000").is_err());
    }

    #[test]
    fn localhost_is_both_loopbacks_the_ipv6_one_optional() {
        let addresses = [
            parse_address("localhost").unwrap(),
            parse_address("0.0.0.0").unwrap(),
        ];
        assert_eq!(
            binds(&addresses),
            [
                (IpAddr::V4(Ipv4Addr::LOCALHOST), false),
                (IpAddr::V6(Ipv6Addr::LOCALHOST), true),
                (IpAddr::V4(Ipv4Addr::UNSPECIFIED), false),
            ]
        );
        assert!(parse_address("example.com").is_err());
    }

    #[tokio::test]
    async fn a_free_port_is_shared_by_the_addresses() {
        let mut port = PortSpec {
            local: 0,
            remote: 80,
        };
        let binds = binds(&[ListenAddress::Localhost]);
        let listeners = listen(&binds, &mut port).await.unwrap();
        assert_ne!(port.local, 0);
        for listener in listeners {
            assert_eq!(listener.local_addr().unwrap().port(), port.local);
        }
    }
}
