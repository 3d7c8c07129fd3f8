//! A connection's socket as hyper serves it: hyper's own shutdown only flushes (the
//! connection's task closes the socket itself, lingering), and once the connection is
//! upgraded (a WebSocket) the socket travels on with the handler, so it tells the task when
//! it is dropped and fails its reads and writes once the task closes it (server shutdown).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The accepted stream (TCP, or TLS over TCP), closable from the connection's task.
pub struct Socket<S> {
    stream: S,
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Dropped with the socket: the connection's task then knows an upgraded connection ended.
    _open: oneshot::Sender<()>,
}

/// The connection task's handles on its socket.
pub struct SocketHandle {
    /// Cancelled: the socket's reads and writes fail from then on.
    pub close: CancellationToken,
    /// Resolves (with an error) once the socket is dropped.
    pub dropped: oneshot::Receiver<()>,
}

impl<S> Socket<S> {
    /// Wraps an accepted `stream`; the handle tells when the socket is dropped and closes it.
    pub fn new(stream: S) -> (Socket<S>, SocketHandle) {
        let close = CancellationToken::new();
        let (open, dropped) = oneshot::channel();
        let socket = Socket {
            stream,
            closed: Box::pin(close.clone().cancelled_owned()),
            _open: open,
        };
        (socket, SocketHandle { close, dropped })
    }

    /// The stream, to close it (the connection was not upgraded).
    pub fn into_stream(self) -> S {
        self.stream
    }

    fn check_open(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.closed.as_mut().poll(cx) {
            Poll::Ready(()) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the server is shutting down",
            )),
            Poll::Pending => Ok(()),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Socket<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check_open(cx)?;
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Socket<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check_open(cx)?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    /// Only flushes: the connection's task shuts the socket down when it closes it.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
}
