//! The Ingress listeners: HTTP/1.1 requests (over TLS on the HTTPS listener) routed by Host
//! and path to a ready endpoint of the Service in turn (on a kept-alive connection when one is
//! idle, `pool.rs`), with `X-Forwarded-For/Proto/Host`;
//! 404 when no rule matches, 503 when the Service has no ready endpoint (or none takes the
//! connection), 502 when the backend fails the request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, HOST};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::pool::{Pool, SendError};
use super::routes::Routes;
use crate::agent::proxy::balancer::Failures;

/// A response body: the backend's, or a short text of ours.
type Body = UnsyncBoxBody<Bytes, hyper::Error>;

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers (the first, or the next on a
/// kept-alive connection) before the connection is closed, so slow clients cannot hold the
/// node's ingress ports.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long accepting pauses after it failed (out of descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Headers that concern one connection, not the request (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// What every connection of a listener shares.
#[derive(Clone)]
pub struct Shared {
    /// The routes, rebuilt as Ingresses, Services and EndpointSlices change.
    pub routes: watch::Receiver<Arc<Routes>>,
    /// Backends that just failed, passed over for a while.
    pub failures: Arc<Failures>,
    /// Kept-alive connections to backends.
    pub pool: Arc<Pool>,
}

/// Serves `listener` (TLS first when `tls` is given) until `stop`; then stops accepting and
/// lets the requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Shared,
    stop: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection(stream, peer, tls.clone(), shared.clone(), stop.clone()));
                }
                Err(err) => {
                    tracing::warn!(%err, "ingress: accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    while connections.join_next().await.is_some() {}
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    shared: Shared,
    stop: CancellationToken,
) {
    let Some(acceptor) = tls else {
        return http(TokioIo::new(stream), peer, "http", shared, stop).await;
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => http(TokioIo::new(stream), peer, "https", shared, stop).await,
        Ok(Err(err)) => tracing::debug!(%peer, %err, "ingress: TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "ingress: TLS handshake timed out"),
    }
}

async fn http<IO>(
    io: IO,
    peer: SocketAddr,
    scheme: &'static str,
    shared: Shared,
    stop: CancellationToken,
) where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(request, peer, scheme, &shared).await) }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(io, service);
    tokio::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        () = stop.cancelled() => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%peer, %err, "ingress: connection ended with an error");
    }
}

fn text(status: StatusCode, message: String) -> Response<Body> {
    let body = Full::new(Bytes::from(message))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

/// `example.com` of `example.com:8443`; an IPv6 literal stays whole.
fn host_name(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority;
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

async fn handle(
    request: Request<Incoming>,
    peer: SocketAddr,
    scheme: &'static str,
    shared: &Shared,
) -> Response<Body> {
    let authority = request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let host = host_name(&authority).to_string();
    let path = request.uri().path().to_string();
    let routes = shared.routes.borrow().clone();
    let Some(target) = routes.route(&host, &path) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("no Ingress rule matches {host}{path}\n"),
        );
    };
    let Some(balancer) = target.balancer.as_ref() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the Ingress backend {} does not exist\n", target.service),
        );
    };
    let request = forwarded(request, peer, scheme, &authority);
    match shared
        .pool
        .send(balancer, peer.ip(), &shared.failures, request)
        .await
    {
        Ok(response) => response.map(BodyExt::boxed_unsync),
        Err(SendError::NoEndpoint) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no ready endpoint for {}\n", target.service),
        ),
        Err(err) => {
            tracing::debug!(%err, "ingress: backend request failed");
            text(StatusCode::BAD_GATEWAY, format!("{err}\n"))
        }
    }
}

/// The request as the backend gets it: origin-form, no hop-by-hop headers, and the
/// `X-Forwarded-*` headers telling who asked for what.
fn forwarded(
    request: Request<Incoming>,
    peer: SocketAddr,
    scheme: &'static str,
    authority: &str,
) -> Request<Incoming> {
    let (mut parts, body) = request.into_parts();
    if parts.uri.scheme().is_some() {
        let origin = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        parts.uri = origin
            .parse::<Uri>()
            .unwrap_or_else(|_| Uri::from_static("/"));
    }
    let headers = &mut parts.headers;
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    let client = peer.ip().to_string();
    let chain = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {client}"),
        None => client,
    };
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("x-forwarded-for", &chain);
    set("x-forwarded-proto", scheme);
    set("x-forwarded-host", authority);
    Request::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("a.example.com:8080"), "a.example.com");
        assert_eq!(host_name("a.example.com"), "a.example.com");
        assert_eq!(host_name("[::1]:80"), "[::1]:80");
    }
}
