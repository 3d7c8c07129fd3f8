//! `pods/{name}/portforward`: one connection to a port of a pod, over a WebSocket speaking
//! `v5.channel.k8s.io` (see `skiff_api::portforward`), as `skiff port-forward` opens one per
//! local connection. The [`PortForwardStream`] reads and writes the connection's bytes.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures::{Sink, StreamExt};
use skiff_api::portforward::{self, WEBSOCKET_PROTOCOL_V5};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::websocket::{websocket_error, Socket};
use crate::{Client, ClientError};

/// The most bytes one data message carries.
const MAX_MESSAGE_BYTES: usize = 32 << 10;

/// A connection to a pod's port. Reads end when the server closes the socket or sends its
/// close signal; the server's error message fails a read. Shutting it down sends our close
/// signal (a half close, as a TCP FIN): reads go on until the server ends.
pub struct PortForwardStream {
    socket: Socket,
    url: String,
    channels: Channels,
    /// Received data not read yet.
    unread: Bytes,
    /// The server sends no more data.
    read_closed: bool,
    /// Our close signal is sent.
    write_closed: bool,
}

impl Client {
    /// Connects to `port` of pod `namespace/pod`. Only the preferred server is tried.
    pub async fn port_forward(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> Result<PortForwardStream, ClientError> {
        let path = format!("/api/v1/namespaces/{namespace}/pods/{pod}/portforward?ports={port}");
        let (socket, url) = self.websocket(&path, WEBSOCKET_PROTOCOL_V5).await?;
        Ok(PortForwardStream {
            socket,
            url,
            channels: Channels::new(port),
            unread: Bytes::new(),
            read_closed: false,
            write_closed: false,
        })
    }
}

/// What one message of the server means for the connection.
#[derive(Debug, PartialEq)]
enum Incoming {
    Data(Bytes),
    /// The server writes no more data.
    End,
    /// The server's error message: the connection failed.
    Error(String),
    /// Nothing for the reader (a port announcement, another channel).
    Nothing,
}

/// The channels of the socket's one port and whether the server announced the port on them.
struct Channels {
    port: u16,
    data_announced: bool,
    error_announced: bool,
}

impl Channels {
    fn new(port: u16) -> Channels {
        Channels {
            port,
            data_announced: false,
            error_announced: false,
        }
    }

    /// Reads a binary message; the first of each channel must announce our port.
    fn read(&mut self, mut message: Bytes) -> io::Result<Incoming> {
        let (data, error) = (portforward::data_channel(0), portforward::error_channel(0));
        if message.is_empty() {
            return Ok(Incoming::Nothing);
        }
        let channel = message.get_u8();
        let announced = match channel {
            portforward::CLOSE_CHANNEL if message.first() == Some(&data) => {
                return Ok(Incoming::End)
            }
            c if c == data => &mut self.data_announced,
            c if c == error => &mut self.error_announced,
            _ => return Ok(Incoming::Nothing),
        };
        if !*announced {
            if message.len() < 2 {
                return Err(invalid(format!(
                    "the server's first message on channel {channel} is not a port"
                )));
            }
            let port = message.get_u16_le();
            if port != self.port {
                return Err(invalid(format!(
                    "the server forwards port {port}, not {}",
                    self.port
                )));
            }
            *announced = true;
        }
        Ok(match channel {
            _ if message.is_empty() => Incoming::Nothing,
            c if c == data => Incoming::Data(message),
            _ => Incoming::Error(String::from_utf8_lossy(&message).into_owned()),
        })
    }
}

impl AsyncRead for PortForwardStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.unread.is_empty() && !this.read_closed {
            let incoming = match ready!(this.socket.poll_next_unpin(cx)) {
                None | Some(Ok(Message::Close(_))) => Incoming::End,
                Some(Ok(Message::Binary(message))) => this.channels.read(message)?,
                Some(Ok(_)) => Incoming::Nothing,
                Some(Err(source)) => return Poll::Ready(Err(io_error(&this.url, source))),
            };
            match incoming {
                Incoming::Data(data) => this.unread = data,
                Incoming::End => this.read_closed = true,
                Incoming::Error(message) => return Poll::Ready(Err(io::Error::other(message))),
                Incoming::Nothing => {}
            }
        }
        let n = this.unread.len().min(buf.remaining());
        buf.put_slice(&this.unread.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for PortForwardStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.write_closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the connection is shut down for writing",
            )));
        }
        let n = buf.len().min(MAX_MESSAGE_BYTES);
        let message = portforward::data_message(portforward::data_channel(0), &buf[..n]);
        ready!(this.send(cx, message))?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        Pin::new(&mut this.socket)
            .poll_flush(cx)
            .map_err(|source| io_error(&this.url, source))
    }

    /// Sends our close signal once, then flushes.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.write_closed {
            let close = portforward::close_message(portforward::data_channel(0));
            ready!(self.send(cx, close))?;
            self.write_closed = true;
        }
        self.poll_flush(cx)
    }
}

impl PortForwardStream {
    /// Queues a binary message once the socket takes one.
    fn send(&mut self, cx: &mut Context<'_>, message: Vec<u8>) -> Poll<io::Result<()>> {
        let mut socket = Pin::new(&mut self.socket);
        let sent = match ready!(socket.as_mut().poll_ready(cx)) {
            Ok(()) => socket.start_send(Message::Binary(message.into())),
            Err(source) => Err(source),
        };
        Poll::Ready(sent.map_err(|source| io_error(&self.url, source)))
    }
}

fn io_error(url: &str, source: tungstenite::Error) -> io::Error {
    io::Error::other(websocket_error(url, source))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests;
