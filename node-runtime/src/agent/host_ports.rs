//! A pod's `hostPort`s (the CNI portmap plugin's part): once its sandbox is up, the agent
//! listens on HOST_IP:HOST_PORT for each TCP and UDP host port of its containers and forwards
//! to POD_IP:CONTAINER_PORT with the node proxy's listeners (`proxy/frontend.rs`,
//! `proxy/udp.rs`). An unset hostIP is the node's own address (its InternalIP, where the
//! agent's kubelet endpoint listens; every address when that is `0.0.0.0`). A port another
//! program holds gives the pod a Warning event naming it and is tried again every
//! [`RETRY`]; the pod runs on. A pod on the node's network needs no mapping where the host
//! port is its container port (it listens there itself). The listeners close when the pod
//! ends (a terminal phase) or goes.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use skiff_api::host_ports::{self, HostPort};
use tokio::time::Instant;

use super::proxy::balancer::Failures;
use super::proxy::listeners::Listener;
use super::proxy::table::{Address, Affinity, Frontend, Protocol};
use super::worker::Worker;

/// Pause before a host port that could not be opened is tried again.
pub const RETRY: Duration = Duration::from_secs(10);

/// One host port to forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub listen: Address,
    pub backend: SocketAddr,
}

/// What `plan` makes of a pod's host ports.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub mappings: Vec<Mapping>,
    /// Ports the node cannot forward (SCTP).
    pub unsupported: Vec<HostPort>,
}

/// The mappings of `ports` for a pod at `pod_ip` on a node at `node_ip`; a pod that
/// `shares_node_network` gets none where the host port is its container port.
pub fn plan(
    ports: &[HostPort],
    node_ip: IpAddr,
    pod_ip: IpAddr,
    shares_node_network: bool,
) -> Plan {
    let mut plan = Plan::default();
    for port in ports {
        let protocol = match port.protocol.as_str() {
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            _ => {
                plan.unsupported.push(port.clone());
                continue;
            }
        };
        if shares_node_network && port.port == port.container_port {
            continue;
        }
        let ip = port.ip.unwrap_or(node_ip);
        plan.mappings.push(Mapping {
            listen: (protocol, SocketAddr::new(ip, port.port)),
            backend: SocketAddr::new(pod_ip, port.container_port),
        });
    }
    plan
}

/// The listeners of one pod's host ports.
#[derive(Default)]
pub struct HostPorts {
    open: BTreeMap<Address, Listener>,
    /// Ports not open, with the error last reported for each.
    failed: BTreeMap<Address, String>,
    /// Whether the unsupported ports were reported.
    reported_unsupported: bool,
    retry_at: Option<Instant>,
    failures: Arc<Failures>,
}

impl HostPorts {
    /// Opens the mappings not open yet (a failed one only once `RETRY` has passed since);
    /// the ones that failed with an error not reported before, with it.
    pub async fn open(&mut self, plan: &[Mapping], now: Instant) -> Vec<(Mapping, String)> {
        if self.retry_at.is_some_and(|at| at > now) {
            return Vec::new();
        }
        self.retry_at = None;
        let mut fresh = Vec::new();
        for mapping in plan {
            if self.open.contains_key(&mapping.listen) {
                continue;
            }
            let frontend = Frontend {
                service: format!("hostPort {}", mapping.listen.1),
                affinity: Affinity::None,
                backends: vec![mapping.backend],
            };
            match Listener::bind(mapping.listen, &frontend, self.failures.clone()).await {
                Ok(listener) => {
                    tracing::info!(listen = %mapping.listen.1, protocol = ?mapping.listen.0, backend = %mapping.backend, "hostPort open");
                    self.failed.remove(&mapping.listen);
                    self.open.insert(mapping.listen, listener);
                }
                Err(err) => {
                    let err = err.to_string();
                    self.retry_at = Some(now + RETRY);
                    if self.failed.get(&mapping.listen) != Some(&err) {
                        self.failed.insert(mapping.listen, err.clone());
                        fresh.push((mapping.clone(), err));
                    }
                }
            }
        }
        fresh
    }

    /// When a port that failed is to be tried again.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Closes every listener.
    pub fn close(&mut self) {
        *self = HostPorts::default();
    }
}

/// `8080/TCP`, as a host port is named in events.
fn name(listen: &Address) -> String {
    let protocol = match listen.0 {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
    };
    format!("{}/{protocol}", listen.1.port())
}

impl Worker {
    /// Forwards the pod's host ports to it once its sandbox is up; a port that cannot be
    /// opened is a Warning event, and is tried again later.
    pub(super) async fn ensure_host_ports(&mut self, now: Instant) {
        let Some(spec) = self.pod.spec.as_ref() else {
            return;
        };
        let ports = host_ports::of_spec(spec);
        let phase = self.published.as_ref().and_then(|s| s.phase.as_deref());
        let ended = matches!(phase, Some("Succeeded" | "Failed"));
        if ports.is_empty() || self.sandbox.is_none() || ended {
            return;
        }
        let node_ip: IpAddr = match self.ctx.host_ip.parse() {
            Ok(ip) => ip,
            Err(_) => return,
        };
        let pod_ip = self
            .pod_ip
            .as_deref()
            .and_then(|ip| ip.parse().ok())
            .unwrap_or(node_ip);
        let shares_node_network = self.network.is_none() && pod_ip == node_ip;
        let plan = plan(&ports, node_ip, pod_ip, shares_node_network);
        if !plan.unsupported.is_empty() && !self.host_ports.reported_unsupported {
            self.host_ports.reported_unsupported = true;
            for port in &plan.unsupported {
                let message = format!(
                    "hostPort {}/{} is not forwarded: the node forwards TCP and UDP host ports only",
                    port.port, port.protocol
                );
                self.ctx
                    .events
                    .warning(&self.pod, "FailedHostPort", message);
            }
        }
        for (mapping, err) in self.host_ports.open(&plan.mappings, now).await {
            let message = format!(
                "cannot open hostPort {} on {} for containerPort {}: {err}; retrying every {}s",
                name(&mapping.listen),
                mapping.listen.1.ip(),
                mapping.backend.port(),
                RETRY.as_secs()
            );
            tracing::warn!(pod = %self.name, %message, "hostPort not open");
            self.ctx
                .events
                .warning(&self.pod, "FailedHostPort", message);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream, UdpSocket};

    use super::*;

    const NODE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 5));
    const POD: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 42, 0, 7));

    fn port(ip: Option<&str>, host: u16, container: u16, protocol: &str) -> HostPort {
        HostPort {
            ip: ip.map(|ip| ip.parse().unwrap()),
            port: host,
            protocol: protocol.into(),
            container_port: container,
        }
    }

    fn mapping(protocol: Protocol, listen: &str, backend: &str) -> Mapping {
        Mapping {
            listen: (protocol, listen.parse().unwrap()),
            backend: backend.parse().unwrap(),
        }
    }

    #[test]
    fn host_ports_map_to_the_pod_and_unset_host_ips_to_the_node() {
        let ports = [
            port(None, 80, 8080, "TCP"),
            port(Some("10.0.0.9"), 53, 5353, "UDP"),
            port(None, 9, 9, "SCTP"),
        ];
        let planned = plan(&ports, NODE, POD, false);
        assert_eq!(
            planned.mappings,
            [
                mapping(Protocol::Tcp, "192.168.1.5:80", "10.42.0.7:8080"),
                mapping(Protocol::Udp, "10.0.0.9:53", "10.42.0.7:5353"),
            ]
        );
        assert_eq!(planned.unsupported, [ports[2].clone()]);
    }

    #[test]
    fn a_pod_on_the_node_network_needs_no_mapping_where_it_listens_itself() {
        let ports = [port(None, 8080, 8080, "TCP"), port(None, 80, 8080, "TCP")];
        let planned = plan(&ports, NODE, NODE, true);
        assert_eq!(
            planned.mappings,
            [mapping(Protocol::Tcp, "192.168.1.5:80", "192.168.1.5:8080")]
        );
    }

    /// A free port on loopback (for TCP and UDP alike, most likely).
    async fn free_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn tcp_and_udp_reach_the_pod() {
        let tcp_backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let udp_backend = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (tcp_to, udp_to) = (
            tcp_backend.local_addr().unwrap(),
            udp_backend.local_addr().unwrap(),
        );
        tokio::spawn(async move {
            let (mut conn, _) = tcp_backend.accept().await.unwrap();
            conn.write_all(b"tcp pod").await.unwrap();
        });
        tokio::spawn(async move {
            let mut buf = [0; 64];
            let (n, from) = udp_backend.recv_from(&mut buf).await.unwrap();
            let answer = [b"udp pod:", &buf[..n]].concat();
            udp_backend.send_to(&answer, from).await.unwrap();
        });
        let port = free_port().await;
        let listen = format!("127.0.0.1:{port}");
        let plan = [
            mapping(Protocol::Tcp, &listen, &tcp_to.to_string()),
            mapping(Protocol::Udp, &listen, &udp_to.to_string()),
        ];
        let mut ports = HostPorts::default();
        let failed = ports.open(&plan, Instant::now()).await;
        assert!(failed.is_empty(), "{failed:?}");

        let mut conn = TcpStream::connect(&listen).await.unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).await.unwrap();
        assert_eq!(answer, "tcp pod");

        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.send_to(b"hi", &listen).await.unwrap();
        let mut buf = [0; 64];
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert_eq!(&buf[..n], b"udp pod:hi");
        assert_eq!(
            from.to_string(),
            listen,
            "the answer comes from the host port"
        );

        ports.close();
        // The accept task closes the socket when it next runs.
        tokio::task::yield_now().await;
        let refused = TcpStream::connect(&listen).await.err().map(|e| e.kind());
        assert_eq!(refused, Some(io::ErrorKind::ConnectionRefused));
    }

    #[tokio::test(start_paused = true)]
    async fn a_port_another_program_holds_is_reported_once_and_retried() {
        let holder = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listen = holder.local_addr().unwrap().to_string();
        let plan = [mapping(Protocol::Tcp, &listen, "127.0.0.1:1")];
        let mut ports = HostPorts::default();
        let start = Instant::now();

        let failed = ports.open(&plan, start).await;
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, plan[0]);
        assert_eq!(
            name(&failed[0].0.listen),
            format!("{}/TCP", plan[0].listen.1.port())
        );
        assert!(
            failed[0].1.to_lowercase().contains("in use"),
            "{}",
            failed[0].1
        );
        assert_eq!(ports.retry_at(), Some(start + RETRY));

        // Not tried again before its time, and the same error is not reported twice.
        assert!(ports.open(&plan, start + RETRY / 2).await.is_empty());
        assert!(ports.open(&plan, start + RETRY).await.is_empty());
        assert_eq!(ports.retry_at(), Some(start + RETRY * 2));

        // Freed by its holder: opened on the next try.
        drop(holder);
        assert!(ports.open(&plan, start + RETRY * 2).await.is_empty());
        assert_eq!(ports.retry_at(), None);
        assert!(ports.open.contains_key(&plan[0].listen));
    }
}
