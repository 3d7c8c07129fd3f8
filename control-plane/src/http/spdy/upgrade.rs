//! SPDY/3.1 over an HTTP/1.1 upgrade, as older kubectl asks for its streams: the client names
//! the stream protocols it speaks in `X-Stream-Protocol-Version`, the server answers `101`
//! naming the one it picked, and the connection carries the session from then on.

use std::future::Future;

use axum::body::Body;
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::Response;
use futures::StreamExt;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_util::codec::{BytesCodec, FramedWrite};
use tokio_util::io::ReaderStream;

use super::{Headers, Sender, Stream};
use crate::error::ApiError;

/// The `Upgrade` token of SPDY.
pub const SPDY_UPGRADE: &str = "SPDY/3.1";

/// The header a SPDY client names its stream protocols in.
pub const STREAM_PROTOCOL_HEADER: &str = "x-stream-protocol-version";

/// Whether the request asks for an upgrade to SPDY.
pub fn requested(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.eq_ignore_ascii_case(SPDY_UPGRADE))
}

/// The first stream protocol the client offers that the server speaks (`supported`), or a
/// 403 that names both lists, as the kubelet refuses.
pub fn negotiate(
    headers: &HeaderMap,
    supported: &[&'static str],
    resource: &str,
    name: &str,
) -> Result<&'static str, ApiError> {
    let offered: Vec<&str> = headers
        .get_all(STREAM_PROTOCOL_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    offered
        .iter()
        .find_map(|p| supported.iter().find(|s| *s == p).copied())
        .ok_or_else(|| ApiError::Forbidden {
            resource: resource.into(),
            name: name.into(),
            message: format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, \
                 server accepts {supported:?} ({STREAM_PROTOCOL_HEADER})"
            ),
        })
}

/// The request's upgrade, or a 400 for a connection that cannot be upgraded (HTTP/2).
pub fn on_upgrade(extensions: &mut Extensions) -> Result<OnUpgrade, ApiError> {
    extensions.remove().ok_or_else(|| {
        ApiError::BadRequest("this connection cannot be upgraded (HTTP/1.1 only)".into())
    })
}

/// Answers the upgrade naming `protocol` and serves the session on the upgraded connection
/// (see [`super::serve`] for `accept` and `endpoint`).
pub fn respond<A, E, F>(
    on_upgrade: OnUpgrade,
    protocol: &'static str,
    accept: A,
    endpoint: E,
) -> Result<Response, ApiError>
where
    A: Fn(&Headers) -> bool + Send + 'static,
    E: FnOnce(mpsc::Receiver<Stream>, Sender) -> F + Send + 'static,
    F: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let (read, write) = tokio::io::split(TokioIo::new(upgraded));
                let incoming = ReaderStream::new(read)
                    .take_while(|read| std::future::ready(read.is_ok()))
                    .filter_map(|read| std::future::ready(read.ok()));
                let outgoing = FramedWrite::new(write, BytesCodec::new());
                super::serve(Box::pin(incoming), outgoing, accept, endpoint).await;
            }
            Err(err) => tracing::debug!(%err, "SPDY upgrade failed"),
        }
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, SPDY_UPGRADE)
        .header(STREAM_PROTOCOL_HEADER, protocol)
        .body(Body::empty())
        .expect("a static response"))
}
