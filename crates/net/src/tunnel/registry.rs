//! The API server's side of the tunnels: one HTTP/2 client connection per node, over the
//! connection the node's agent opened.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio_util::sync::CancellationToken;

use super::cutoff::Cutoff;

use super::{CONNECTION_WINDOW, KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT, STREAM_WINDOW};

/// Why a request through a tunnel failed.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("opening the tunnel of node {node}: {source}")]
    Handshake {
        node: String,
        #[source]
        source: hyper::Error,
    },
    #[error("the tunnel of node {node}: {source}")]
    Request {
        node: String,
        #[source]
        source: hyper::Error,
    },
}

/// The open tunnels by node name; cheap to clone.
#[derive(Clone, Default)]
pub struct Tunnels {
    open: Arc<Mutex<HashMap<String, Tunnel>>>,
    next_id: Arc<AtomicU64>,
}

/// One node's tunnel: requests sent on it are served by the node's agent.
#[derive(Clone)]
pub struct Tunnel {
    node: String,
    id: u64,
    sender: http2::SendRequest<Body>,
}

impl Tunnels {
    /// No tunnels yet.
    pub fn new() -> Tunnels {
        Tunnels::default()
    }

    /// Speaks HTTP/2 over `io`, the connection `node`'s agent opened, and serves requests for
    /// `node` through it until it closes. A tunnel already open for `node` is dropped (it
    /// closes once its requests in flight end): the newer connection is the agent's latest.
    /// When `ending` resolves (to why: the end of the credential that opened it, say; the
    /// agent dials again with its current one) the tunnel is closed if it is still open,
    /// requests in flight included; closing it leaves a newer tunnel of `node` in place.
    pub async fn attach_until<I>(
        &self,
        node: &str,
        io: I,
        ending: impl Future<Output = String>,
    ) -> Result<(), TunnelError>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let cut = CancellationToken::new();
        let io = Cutoff::new(io, cut.clone());
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .handshake(io)
            .await
            .map_err(|source| TunnelError::Handshake {
                node: node.to_string(),
                source,
            })?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let tunnel = Tunnel {
            node: node.to_string(),
            id,
            sender,
        };
        if self.lock().insert(node.to_string(), tunnel).is_some() {
            tracing::info!(%node, "a newer tunnel replaces the node's open one");
        }
        tracing::info!(%node, "node tunnel open");
        let ended = tokio::select! {
            ended = connection => Ok(ended),
            why = ending => {
                cut.cancel();
                Err(why)
            }
        };
        {
            let mut open = self.lock();
            if open.get(node).is_some_and(|t| t.id == id) {
                open.remove(node);
            }
        }
        let ended = match ended {
            Ok(ended) => ended,
            Err(why) => {
                tracing::info!(%node, %why, "node tunnel closed");
                return Ok(());
            }
        };
        tracing::info!(%node, "node tunnel closed");
        ended.map_err(|source| TunnelError::Request {
            node: node.to_string(),
            source,
        })
    }

    /// `node`'s tunnel, if its agent has one open to this server.
    pub fn get(&self, node: &str) -> Option<Tunnel> {
        self.lock()
            .get(node)
            .filter(|t| !t.sender.is_closed())
            .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tunnel>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Tunnel {
    /// Sends `request` to the node's agent on a stream of its own. The URI should be absolute
    /// (`http://NODE/path`), as HTTP/2 wants a scheme and an authority.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Incoming>, TunnelError> {
        let failed = |source| TunnelError::Request {
            node: self.node.clone(),
            source,
        };
        let mut sender = self.sender.clone();
        sender.ready().await.map_err(failed)?;
        sender.send_request(request).await.map_err(failed)
    }
}
