//! Serving an axum router with bounded connections: hyper's HTTP/1 connection behind an
//! `Acceptor`, with hyper's header-read timeout closing idle and slow clients, and idle
//! connections shed when the listener is full. Connections may be upgraded (axum's
//! WebSocket): an upgraded connection keeps its slot, is never shed as idle, and ends when
//! either side closes it or the server shuts down. `serve_tls` does the same over TLS: the
//! handshake runs in the connection's task (a slow one never holds up accepting), bounded by
//! the idle timeout, and each request carries the connection's `TlsPeer`.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::accept::{Accepted, Acceptor};
use crate::idle::Activity;
use crate::socket::{Socket, SocketHandle};
use crate::ConnLimits;
use crate::GuardedBody;

/// How long a connection being closed may take to send what it has, once no request is in
/// flight (hyper's graceful shutdown waits for a request that a silent client never sends).
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How long, and for how many bytes, a closing connection reads and discards what the client
/// still sends (a body refused before it was read), so that closing does not reset the
/// connection before the client has read the answer (Apache's "lingering close").
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 16 << 20;

/// What a request served over TLS knows of its connection: the client's certificate chain,
/// already verified by the TLS configuration's client verifier (empty: the client sent none).
#[derive(Clone, Debug, Default)]
pub struct TlsPeer {
    pub certificates: Arc<Vec<CertificateDer<'static>>>,
    /// What the server made of `certificates` (the user they name), worked out on the
    /// connection's first request and shared by its later ones, so that a keep-alive client's
    /// certificate is parsed once per connection rather than once per request.
    pub identity: Arc<std::sync::OnceLock<Box<dyn std::any::Any + Send + Sync>>>,
}

/// Serves `app` on `listener` within `limits` until `shutdown` is cancelled, then closes idle
/// connections, lets requests in flight finish and returns when every connection has ended.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: CancellationToken,
) {
    serve_with(listener, app, None, limits, shutdown).await
}

/// `serve`, over TLS with `tls`; every request carries a `TlsPeer` extension.
pub async fn serve_tls(
    listener: TcpListener,
    app: Router,
    tls: Arc<ServerConfig>,
    limits: ConnLimits,
    shutdown: CancellationToken,
) {
    serve_with(
        listener,
        app,
        Some(TlsAcceptor::from(tls)),
        limits,
        shutdown,
    )
    .await
}

async fn serve_with(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: ConnLimits,
    shutdown: CancellationToken,
) {
    let mut acceptor = Acceptor::new(listener, limits.max_connections);
    let pressure = acceptor.pressure();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout);
    let builder = Arc::new(builder);
    while let Some(accepted) = shutdown.run_until_cancelled(acceptor.accept()).await {
        let connection = Connection {
            app: app.clone(),
            builder: builder.clone(),
            pressure: pressure.clone(),
            shutdown: shutdown.clone(),
        };
        match &tls {
            None => tokio::spawn(connection.serve(accepted)),
            Some(tls) => {
                tokio::spawn(connection.handshake(tls.clone(), accepted, limits.idle_timeout))
            }
        };
    }
    acceptor.drain().await;
}

/// What one connection's task needs.
struct Connection {
    app: Router,
    builder: Arc<http1::Builder>,
    pressure: Arc<Notify>,
    shutdown: CancellationToken,
}

impl Connection {
    /// Completes the TLS handshake within `timeout` (or until shutdown), then serves.
    async fn handshake(self, tls: TlsAcceptor, accepted: Accepted, timeout: Duration) {
        let Accepted {
            stream,
            from,
            permit,
        } = accepted;
        let handshake = tokio::time::timeout(timeout, tls.accept(stream));
        let stream = tokio::select! {
            done = handshake => match done {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    tracing::debug!(%from, %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%from, "TLS handshake timed out");
                    return;
                }
            },
            () = self.shutdown.cancelled() => return,
        };
        let peer = TlsPeer {
            certificates: Arc::new(
                stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
                    .unwrap_or_default(),
            ),
            identity: Arc::default(),
        };
        self.serve_stream(stream, from, Some(peer), permit).await
    }

    async fn serve(self, accepted: Accepted) {
        let Accepted {
            stream,
            from,
            permit,
        } = accepted;
        self.serve_stream(stream, from, None, permit).await
    }

    async fn serve_stream<S>(
        self,
        stream: S,
        from: std::net::SocketAddr,
        peer: Option<TlsPeer>,
        _slot: tokio::sync::OwnedSemaphorePermit,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Activity::new();
        let requests = activity.clone();
        let app = self.app;
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let busy = requests.busy();
            let mut request = request.map(Body::new);
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(from));
            if let Some(peer) = &peer {
                request.extensions_mut().insert(peer.clone());
            }
            let response = app.clone().oneshot(request);
            Box::pin(async move {
                let response = response
                    .await
                    .unwrap_or_else(|never: Infallible| match never {});
                Ok::<_, Infallible>(response.map(|body| Body::new(GuardedBody::new(body, busy))))
            })
        });
        let (socket, handle) = Socket::new(stream);
        let SocketHandle { close, dropped } = handle;
        // However this task ends, an upgraded socket still open is closed with it.
        let _close = close.clone().drop_guard();
        let mut connection = self
            .builder
            .serve_connection(TokioIo::new(socket), service)
            .with_upgrades();
        tokio::select! {
            result = &mut connection => {
                match result {
                    Ok(()) => match connection.into_parts() {
                        Some(parts) => linger(parts.io.into_inner().into_stream()).await,
                        // Upgraded: the handler holds the socket; this task holds its slot.
                        None => {
                            let mut dropped = dropped;
                            tokio::select! {
                                _ = &mut dropped => {}
                                () = self.shutdown.cancelled() => {
                                    close.cancel();
                                    let _ = tokio::time::timeout(CLOSE_GRACE, dropped).await;
                                }
                            }
                        }
                    },
                    Err(err) => tracing::debug!(%from, %err, "connection ended"),
                }
                return;
            }
            () = activity.idle_under(&self.pressure) => {
                tracing::debug!(%from, "closing an idle connection to make room");
            }
            () = self.shutdown.cancelled() => {}
        }
        Pin::new(&mut connection).graceful_shutdown();
        tokio::select! {
            _ = &mut connection => {}
            () = activity.idle_for(CLOSE_GRACE) => {}
        }
    }
}

/// Closes our side, then reads and discards what the client still sends until it closes its
/// side, for at most `LINGER` and `LINGER_BYTES`.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let discard = async {
        let mut sink = vec![0; 16 << 10];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, discard).await;
}
