//! A connection that can be cut from outside: once its token is cancelled, every read and
//! write fails, so that the HTTP/2 connection over it (whose task hyper runs on its own, out
//! of its owner's reach) ends, with the streams in flight on it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// `io`, failing from the moment `cut` is cancelled.
pub(super) struct Cutoff<I> {
    io: I,
    cut: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl<I> Cutoff<I> {
    pub(super) fn new(io: I, cut: CancellationToken) -> Cutoff<I> {
        Cutoff {
            io,
            cut: Box::pin(cut.cancelled_owned()),
        }
    }

    /// An error once cut; else registers `cx` to be woken by the cut.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.cut.as_mut().poll(cx) {
            Poll::Ready(()) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the tunnel was closed: the credential that opened it expired",
            )),
            Poll::Pending => Ok(()),
        }
    }
}

impl<I: Read + Unpin> Read for Cutoff<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<I: Write + Unpin> Write for Cutoff<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(cx)?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
