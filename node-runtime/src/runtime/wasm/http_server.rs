//! Serving a wasi:http handler: HTTP/1.1 on a listener, one fresh instance of the
//! pre-instantiated component per request (as `wasmtime serve` does), and a graceful stop that
//! accepts nothing more and lets requests in flight finish.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use wasmtime::Store;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

use super::http::HttpState;

/// How long accepting pauses after it failed (out of descriptors, say), so that a failure that
/// lasts does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a connection accepted before the stop may take to start its first request.
const FIRST_REQUEST_WAIT: Duration = Duration::from_secs(1);

/// Makes the store one request's instance lives in (its WASI context, limits and deadlines).
pub type StoreFactory = Box<dyn Fn() -> wasmtime::Result<Store<HttpState>> + Send + Sync>;

/// A handler component ready to serve.
pub struct Handler {
    pre: ProxyPre<HttpState>,
    store: StoreFactory,
    /// Where failed requests are told (the container's log).
    report: Box<dyn Fn(&str) + Send + Sync>,
}

impl Handler {
    pub fn new(
        pre: ProxyPre<HttpState>,
        store: StoreFactory,
        report: impl Fn(&str) + Send + Sync + 'static,
    ) -> Self {
        Handler {
            pre,
            store,
            report: Box::new(report),
        }
    }

    /// The guest's response, or a 500 whose cause goes to the report.
    async fn respond(
        &self,
        request: Request<hyper::body::Incoming>,
    ) -> Response<HyperOutgoingBody> {
        match self.call(request).await {
            Ok(response) => response,
            Err(err) => {
                (self.report)(&format!("wasi:http request failed: {err:#}"));
                let body = Full::new(Bytes::from_static(b"internal server error\n"))
                    .map_err(|never| match never {})
                    .boxed_unsync();
                let mut response = Response::new(body);
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                response
            }
        }
    }

    /// Runs one instance on its own task, so that it may go on writing the body after the
    /// response's head has been sent.
    async fn call(
        &self,
        request: Request<hyper::body::Incoming>,
    ) -> wasmtime::Result<Response<HyperOutgoingBody>> {
        let mut store = (self.store)()?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = self.pre.clone();
        let task = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, request, out)
                .await
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(wasmtime::format_err!("the handler answered {code:?}")),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(wasmtime::format_err!(
                    "the handler returned without setting a response"
                )),
                Ok(Err(err)) => Err(err),
                Err(err) => Err(wasmtime::format_err!("the handler's task failed: {err}")),
            },
        }
    }
}

/// Serves `handler` on `listener` until `stop` is cancelled; then stops accepting and waits
/// for the open connections to finish their requests in flight (idle ones close at once).
/// Connections the kernel had already accepted when the stop came are served too: a node
/// proxy that connected a moment before has sent its client's request on them.
pub async fn serve(listener: TcpListener, handler: Arc<Handler>, stop: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, handler.clone(), stop.clone()));
                }
                Err(err) => {
                    (handler.report)(&format!("accepting a connection: {err}"));
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    for stream in backlog(listener) {
        connections.spawn(connection(stream, handler.clone(), stop.clone()));
    }
    while connections.join_next().await.is_some() {}
}

/// Closes `listener`, returning the connections the kernel had already accepted for it (asked
/// of the socket itself: the runtime may not have seen them yet).
fn backlog(listener: TcpListener) -> Vec<TcpStream> {
    let Ok(listener) = listener.into_std() else {
        return Vec::new();
    };
    let mut streams = Vec::new();
    while let Ok((stream, _)) = listener.accept() {
        let stream = stream
            .set_nonblocking(true)
            .and_then(|()| TcpStream::from_std(stream));
        if let Ok(stream) = stream {
            streams.push(stream);
        }
    }
    streams
}

/// One client's connection, closed gracefully once `stop` is cancelled. A connection that has
/// not yet started a request gets `FIRST_REQUEST_WAIT` for one to arrive, so that a request
/// already on its way is answered rather than met by a closed connection.
async fn connection(stream: TcpStream, handler: Arc<Handler>, stop: CancellationToken) {
    let (started, mut first_request) = tokio::sync::watch::channel(false);
    let service = service_fn(move |request| {
        let handler = handler.clone();
        started.send_replace(true);
        async move { Ok::<_, Infallible>(handler.respond(request).await) }
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = stop.cancelled() => {}
    }
    if !*first_request.borrow() {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = first_request.wait_for(|started| *started) => {}
            () = tokio::time::sleep(FIRST_REQUEST_WAIT) => {}
        }
    }
    conn.as_mut().graceful_shutdown();
    // A client that goes away mid-request is the client's business, not the guest's.
    let _ = conn.await;
}
