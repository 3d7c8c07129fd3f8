//! Which socket addresses a guest may use (WASI preview 2 sockets, checked by wasmtime-wasi's
//! `socket_addr_check`): connections out anywhere, but listening only on the ports the pod
//! spec declares for the container. A refused address fails the guest's call with
//! `access-denied`; the guest goes on running.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::WasiCtxBuilder;

use crate::runtime::{ContainerPort, Protocol};

/// The ports one container may bind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortPolicy {
    tcp: BTreeSet<u16>,
    udp: BTreeSet<u16>,
}

impl PortPolicy {
    /// The policy for a container declaring `ports` (SCTP ports have no WASI socket to use them).
    pub fn new(ports: &[ContainerPort]) -> Self {
        let mut policy = PortPolicy::default();
        for port in ports {
            match port.protocol {
                Protocol::Tcp => policy.tcp.insert(port.port),
                Protocol::Udp => policy.udp.insert(port.port),
                Protocol::Sctp => false,
            };
        }
        policy
    }

    /// Whether the guest may use `addr` for `use_`. Port 0 (an ephemeral port the system picks)
    /// may be bound, as a client's socket is, but a TCP socket may only listen on a declared
    /// port, so an ephemeral one serves no one.
    pub fn allows(&self, addr: SocketAddr, use_: SocketAddrUse) -> bool {
        let port = addr.port();
        match use_ {
            SocketAddrUse::TcpBind => port == 0 || self.tcp.contains(&port),
            SocketAddrUse::TcpListen => self.tcp.contains(&port),
            SocketAddrUse::UdpBind => port == 0 || self.udp.contains(&port),
            SocketAddrUse::TcpConnect
            | SocketAddrUse::TcpAccept
            | SocketAddrUse::UdpSend
            | SocketAddrUse::UdpReceive => true,
        }
    }

    /// Gives the guest TCP, UDP and name lookup, within this policy.
    pub fn apply(self, builder: &mut WasiCtxBuilder) {
        let policy = Arc::new(self);
        builder
            .allow_tcp(true)
            .allow_udp(true)
            .allow_ip_name_lookup(true)
            .socket_addr_check(move |addr, use_| {
                let allowed = policy.allows(addr, use_);
                Box::pin(async move { allowed })
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn only_declared_ports_are_bound_and_listened_on() {
        let policy = PortPolicy::new(&[
            ContainerPort {
                port: 8080,
                protocol: Protocol::Tcp,
            },
            ContainerPort {
                port: 5353,
                protocol: Protocol::Udp,
            },
        ]);
        let cases = [
            ("0.0.0.0:8080", SocketAddrUse::TcpBind, true),
            ("0.0.0.0:8080", SocketAddrUse::TcpListen, true),
            ("[::]:8080", SocketAddrUse::TcpBind, true),
            ("0.0.0.0:8081", SocketAddrUse::TcpBind, false),
            ("0.0.0.0:5353", SocketAddrUse::TcpBind, false),
            ("0.0.0.0:0", SocketAddrUse::TcpBind, true),
            ("0.0.0.0:0", SocketAddrUse::TcpListen, false),
            ("0.0.0.0:41234", SocketAddrUse::TcpListen, false),
            ("0.0.0.0:5353", SocketAddrUse::UdpBind, true),
            ("0.0.0.0:8080", SocketAddrUse::UdpBind, false),
            ("0.0.0.0:0", SocketAddrUse::UdpBind, true),
            ("10.1.2.3:443", SocketAddrUse::TcpConnect, true),
            ("10.1.2.3:51000", SocketAddrUse::TcpAccept, true),
            ("10.1.2.3:53", SocketAddrUse::UdpSend, true),
            ("10.1.2.3:53", SocketAddrUse::UdpReceive, true),
        ];
        for (address, use_, allowed) in cases {
            assert_eq!(
                policy.allows(addr(address), use_),
                allowed,
                "{use_:?} {address}"
            );
        }
    }

    #[test]
    fn no_ports_means_clients_only() {
        let policy = PortPolicy::new(&[]);
        assert!(!policy.allows(addr("0.0.0.0:80"), SocketAddrUse::TcpBind));
        assert!(!policy.allows(addr("0.0.0.0:0"), SocketAddrUse::TcpListen));
        assert!(policy.allows(addr("0.0.0.0:0"), SocketAddrUse::TcpBind));
        assert!(policy.allows(addr("192.0.2.1:80"), SocketAddrUse::TcpConnect));
    }
}
