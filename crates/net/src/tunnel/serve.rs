//! The agent's side of a tunnel: its router served over HTTP/2 on the connection it opened.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::{
    CONNECTION_WINDOW, KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT, MAX_STREAMS, STREAM_WINDOW,
};

/// Serves `app` to the server at the other end of `io` (an upgraded tunnel connection) until
/// either side closes it or `shutdown` is cancelled, then lets requests in flight finish.
/// WebSocket routes are reached by extended CONNECT, so they must accept that method
/// (`axum::routing::any`).
pub async fn serve<I>(io: I, app: Router, shutdown: CancellationToken) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let response = app.clone().oneshot(request.map(Body::new));
        async move { Ok::<_, Infallible>(response.await.unwrap_or_else(|never| match never {})) }
    });
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .enable_connect_protocol()
        .max_concurrent_streams(MAX_STREAMS)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT);
    let mut connection = std::pin::pin!(builder.serve_connection(TokioIo::new(io), service));
    tokio::select! {
        result = &mut connection => return result,
        () = shutdown.cancelled() => {}
    }
    connection.as_mut().graceful_shutdown();
    connection.await
}
