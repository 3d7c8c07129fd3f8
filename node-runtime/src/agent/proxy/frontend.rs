//! One listening socket of the proxy: each accepted connection is joined to a backend the
//! frontend's balancer picks, and bytes are copied both ways until either side closes. A
//! connection no backend takes is reset at once. New backends apply to new connections;
//! connections already joined run on after the listener goes.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::balancer::{Balancer, Failures};
use super::table::Frontend;

/// A listening frontend; dropping it closes the listener.
pub struct Listener {
    balancer: Arc<RwLock<Arc<Balancer>>>,
    local: SocketAddr,
    stop: CancellationToken,
}

impl Listener {
    /// Listens on `addr` for `frontend`'s Service port.
    pub async fn bind(
        addr: SocketAddr,
        frontend: &Frontend,
        failures: Arc<Failures>,
    ) -> io::Result<Listener> {
        let socket = TcpListener::bind(addr).await?;
        let local = socket.local_addr()?;
        let balancer = Arc::new(RwLock::new(Arc::new(balancer(frontend))));
        let stop = CancellationToken::new();
        tokio::spawn(accept(
            socket,
            balancer.clone(),
            failures,
            stop.clone(),
            frontend.service.clone(),
        ));
        Ok(Listener {
            balancer,
            local,
            stop,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends new connections to `frontend`'s backends.
    pub fn update(&self, frontend: &Frontend) {
        *self.balancer.write().expect("balancer lock") = Arc::new(balancer(frontend));
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

async fn accept(
    socket: TcpListener,
    balancer: Arc<RwLock<Arc<Balancer>>>,
    failures: Arc<Failures>,
    stop: CancellationToken,
    service: String,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = socket.accept() => accepted,
        };
        match accepted {
            Ok((client, peer)) => {
                let balancer = balancer.read().expect("balancer lock").clone();
                tokio::spawn(join(client, peer, balancer, failures.clone()));
            }
            Err(err) => tracing::debug!(service, %err, "accepting a connection failed"),
        }
    }
}

/// Joins `client` to a backend, or resets it when none takes it.
async fn join(
    mut client: TcpStream,
    peer: SocketAddr,
    balancer: Arc<Balancer>,
    failures: Arc<Failures>,
) {
    let Some((backend, mut upstream)) = balancer.connect(peer.ip(), &failures).await else {
        // A reset, not a silent close: the client learns at once that nobody serves.
        let _ = client.set_zero_linger();
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::trace!(%peer, %backend, %err, "proxied connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::agent::proxy::table::Affinity;

    /// A backend that answers each connection with `name` and closes.
    async fn named_backend(name: &'static str) -> SocketAddr {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = socket.accept().await {
                let _ = conn.write_all(name.as_bytes()).await;
            }
        });
        addr
    }

    /// An address where nothing listens.
    async fn refusing_backend() -> SocketAddr {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        socket.local_addr().unwrap()
    }

    fn frontend(backends: Vec<SocketAddr>) -> Frontend {
        Frontend {
            service: "default/web:80".into(),
            affinity: Affinity::None,
            backends,
        }
    }

    async fn ask(addr: SocketAddr) -> io::Result<String> {
        let mut conn = TcpStream::connect(addr).await?;
        let mut answer = String::new();
        conn.read_to_string(&mut answer).await?;
        Ok(answer)
    }

    async fn listen(backends: Vec<SocketAddr>) -> Listener {
        let any = "127.0.0.1:0".parse().unwrap();
        Listener::bind(any, &frontend(backends), Arc::default())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn connections_go_round_the_backends() {
        let backends = vec![
            named_backend("a").await,
            named_backend("b").await,
            named_backend("c").await,
        ];
        let listener = listen(backends).await;
        let mut counts = BTreeMap::new();
        for _ in 0..9 {
            *counts
                .entry(ask(listener.local_addr()).await.unwrap())
                .or_insert(0) += 1;
        }
        assert_eq!(
            counts,
            BTreeMap::from([("a".into(), 3), ("b".into(), 3), ("c".into(), 3)])
        );
    }

    #[tokio::test]
    async fn a_refusing_backend_is_skipped() {
        let dead = refusing_backend().await;
        let listener = listen(vec![dead, named_backend("alive").await]).await;
        for _ in 0..4 {
            assert_eq!(ask(listener.local_addr()).await.unwrap(), "alive");
        }
    }

    #[tokio::test]
    async fn with_no_backend_taking_it_the_connection_is_reset() {
        let listener = listen(vec![refusing_backend().await]).await;
        let answer = ask(listener.local_addr()).await;
        assert!(
            matches!(&answer, Err(err) if err.kind() == io::ErrorKind::ConnectionReset),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn new_backends_apply_to_new_connections() {
        let listener = listen(vec![named_backend("old").await]).await;
        assert_eq!(ask(listener.local_addr()).await.unwrap(), "old");
        listener.update(&frontend(vec![named_backend("new").await]));
        assert_eq!(ask(listener.local_addr()).await.unwrap(), "new");
    }

    #[tokio::test]
    async fn bytes_flow_both_ways() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut conn, _) = echo.accept().await.unwrap();
            let (mut read, mut write) = conn.split();
            tokio::io::copy(&mut read, &mut write).await.unwrap();
        });
        let listener = listen(vec![backend]).await;
        let mut conn = TcpStream::connect(listener.local_addr()).await.unwrap();
        conn.write_all(b"ping").await.unwrap();
        conn.shutdown().await.unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"ping");
    }
}
