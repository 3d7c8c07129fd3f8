//! The proxy's listeners, made what the table says: one per frontend that has backends (a
//! frontend without any has no listener, so its clients are refused at once, as Kubernetes'
//! reject rule does), updated in place when only its backends change. TCP frontends are
//! `frontend.rs`'s, UDP ones `udp.rs`'s. Pods' host ports use the same listeners
//! (`host_ports.rs`).

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use super::balancer::Failures;
use super::table::{Address, Frontend, Protocol};
use super::{frontend, udp};

/// An open listener of either transport; dropping it closes it.
pub enum Listener {
    Tcp(frontend::Listener),
    Udp(udp::Listener),
}

impl Listener {
    /// Listens on `addr` and forwards to `frontend`'s backends.
    pub async fn bind(
        (protocol, addr): Address,
        frontend: &Frontend,
        failures: Arc<Failures>,
    ) -> io::Result<Listener> {
        Ok(match protocol {
            Protocol::Tcp => {
                Listener::Tcp(frontend::Listener::bind(addr, frontend, failures).await?)
            }
            Protocol::Udp => Listener::Udp(udp::Listener::bind(addr, frontend, failures).await?),
        })
    }

    fn local_addr(&self) -> SocketAddr {
        match self {
            Listener::Tcp(l) => l.local_addr(),
            Listener::Udp(l) => l.local_addr(),
        }
    }

    fn update(&self, frontend: &Frontend) {
        match self {
            Listener::Tcp(l) => l.update(frontend),
            Listener::Udp(l) => l.update(frontend),
        }
    }
}

/// The open listeners by protocol and address.
#[derive(Default)]
pub struct Listeners {
    failures: Arc<Failures>,
    open: BTreeMap<Address, (Frontend, Listener)>,
}

impl Listeners {
    /// Opens, updates and closes listeners to serve `frontends`; true if every one that
    /// should listen does (a bind can fail, e.g. while another program holds a NodePort).
    pub async fn apply(&mut self, frontends: &BTreeMap<Address, Frontend>) -> bool {
        self.open.retain(|addr, (_, _)| {
            let keep = frontends.get(addr).is_some_and(|f| !f.backends.is_empty());
            if !keep {
                tracing::info!(addr = %addr.1, protocol = ?addr.0, "service listener closed");
            }
            keep
        });
        let mut complete = true;
        for (addr, frontend) in frontends {
            if frontend.backends.is_empty() {
                continue;
            }
            if let Some((current, listener)) = self.open.get_mut(addr) {
                if current != frontend {
                    listener.update(frontend);
                    *current = frontend.clone();
                }
                continue;
            }
            match Listener::bind(*addr, frontend, self.failures.clone()).await {
                Ok(listener) => {
                    let local = listener.local_addr();
                    tracing::info!(%local, protocol = ?addr.0, service = frontend.service, "service listener opened");
                    self.open.insert(*addr, (frontend.clone(), listener));
                }
                Err(err) => {
                    tracing::warn!(addr = %addr.1, protocol = ?addr.0, service = frontend.service, %err, "cannot listen for a service");
                    complete = false;
                }
            }
        }
        complete
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::agent::proxy::table::Affinity;

    async fn free_port() -> Address {
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        (Protocol::Tcp, addr)
    }

    fn frontend(backends: Vec<SocketAddr>) -> Frontend {
        Frontend {
            service: "default/web:80".into(),
            affinity: Affinity::None,
            backends,
        }
    }

    #[tokio::test]
    async fn listeners_follow_the_backends() {
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = free_port().await;
        let mut listeners = Listeners::default();

        assert!(
            listeners
                .apply(&BTreeMap::from([(addr, frontend(vec![]))]))
                .await
        );
        let refused = TcpStream::connect(addr.1).await.err().map(|e| e.kind());
        assert_eq!(refused, Some(io::ErrorKind::ConnectionRefused));

        let serving = BTreeMap::from([(addr, frontend(vec![backend.local_addr().unwrap()]))]);
        assert!(listeners.apply(&serving).await);
        TcpStream::connect(addr.1)
            .await
            .expect("a listener with a backend");

        assert!(listeners.apply(&BTreeMap::new()).await);
        // The accept task closes the socket when it next runs.
        tokio::task::yield_now().await;
        let refused = TcpStream::connect(addr.1).await.err().map(|e| e.kind());
        assert_eq!(refused, Some(io::ErrorKind::ConnectionRefused));
    }
}
