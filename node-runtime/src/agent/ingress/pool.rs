//! Keep-alive connections to backends, reused across requests (as nginx's upstream keepalive):
//! a connection joins its backend's idle list once its response head is in, and a request takes
//! one whose previous response has finished before it opens a new one. A request a reused
//! connection could not take (closed meanwhile) goes out on a new connection instead.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use hyper::body::Incoming;
use hyper::client::conn::http1::{handshake, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::agent::proxy::balancer::{connect, Balancer, Failures};

/// Idle connections kept per backend.
const MAX_IDLE: usize = 32;

type Sender = SendRequest<Incoming>;

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No ready endpoint, or none took a connection.
    #[error("no endpoint took the connection")]
    NoEndpoint,
    #[error("backend {backend} failed the request: {source}")]
    Backend {
        backend: SocketAddr,
        source: hyper::Error,
    },
}

/// Idle connections by backend.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<SocketAddr, Vec<Sender>>>,
}

impl Pool {
    fn take(&self, backend: SocketAddr) -> Option<Sender> {
        let mut idle = self.idle.lock().expect("pool lock");
        let senders = idle.get_mut(&backend)?;
        senders.retain(|s| !s.is_closed());
        let ready = senders.iter().position(SendRequest::is_ready)?;
        Some(senders.swap_remove(ready))
    }

    fn put(&self, backend: SocketAddr, sender: Sender) {
        let mut idle = self.idle.lock().expect("pool lock");
        let senders = idle.entry(backend).or_default();
        senders.retain(|s| !s.is_closed());
        if senders.len() < MAX_IDLE {
            senders.push(sender);
        }
    }

    /// Sends `request` to the backends of `balancer` in their turn for `client`: on an idle
    /// connection of the first backend that has one, else on a new one.
    pub async fn send(
        &self,
        balancer: &Balancer,
        client: IpAddr,
        failures: &Failures,
        mut request: Request<Incoming>,
    ) -> Result<Response<Incoming>, SendError> {
        for backend in balancer.order(client, failures) {
            if let Some(mut sender) = self.take(backend) {
                match sender.try_send_request(request).await {
                    Ok(response) => {
                        self.put(backend, sender);
                        return Ok(response);
                    }
                    Err(mut err) => match err.take_message() {
                        Some(unsent) => request = unsent,
                        None => {
                            return Err(SendError::Backend {
                                backend,
                                source: err.into_error(),
                            })
                        }
                    },
                }
            }
            let Some(stream) = connect(backend, failures).await else {
                continue;
            };
            let failed = |source| SendError::Backend { backend, source };
            let (mut sender, connection) = handshake(TokioIo::new(stream)).await.map_err(failed)?;
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!(%backend, %err, "ingress: backend connection failed");
                }
            });
            let response = sender.send_request(request).await.map_err(failed)?;
            self.put(backend, sender);
            return Ok(response);
        }
        Err(SendError::NoEndpoint)
    }
}
