//! Exec over a SPDY/3.1 session speaking `v4.channel.k8s.io`, as kubectl's SPDY executor and
//! the kubelet speak it: the client opens one stream per channel it asked for (`error`
//! always, `stdin`, `stdout`, `stderr`, and `resize` with a terminal), each named by its
//! `streamType` header; once all are open (within 30 s, the kubelet's stream creation
//! timeout) the command's channels are relayed to and from the agent's v5 socket. The end of
//! the client's stdin stream is the close signal for stdin; the resize stream carries JSON
//! terminal sizes back to back. When the agent closes (after the exit status on the error
//! stream; a `Failure` status is written for an agent that closed without one), the output
//! and error streams end with `FIN`. Streams opened later are dropped.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use skiff_api::remotecommand::{self, Channel, STREAM_TYPE_HEADER};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::super::agent_socket::AgentSocket;
use super::super::spdy::{self, Headers, Sender, Stream};
use super::Streams;

/// How long the client has to open the streams it asked for.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether a stream is one of an exec's.
pub fn accept(headers: &Headers) -> bool {
    spdy::header(headers, STREAM_TYPE_HEADER).is_some_and(|t| Channel::of_stream_type(t).is_some())
}

/// The streams the client opened.
#[derive(Default)]
struct Opened {
    stdin: Option<mpsc::Receiver<Bytes>>,
    stdout: Option<u32>,
    stderr: Option<u32>,
    error: Option<u32>,
    resize: Option<mpsc::Receiver<Bytes>>,
}

impl Opened {
    fn add(&mut self, stream: Stream) {
        let channel = stream
            .header(STREAM_TYPE_HEADER)
            .and_then(Channel::of_stream_type);
        match channel {
            Some(Channel::Stdin) => self.stdin = Some(stream.data),
            Some(Channel::Stdout) => self.stdout = Some(stream.id),
            Some(Channel::Stderr) => self.stderr = Some(stream.id),
            Some(Channel::Error) => self.error = Some(stream.id),
            Some(Channel::Resize) => self.resize = Some(stream.data),
            Some(Channel::Close) | None => {}
        }
    }

    fn complete(&self, wanted: Streams) -> bool {
        self.error.is_some()
            && (!wanted.stdin || self.stdin.is_some())
            && (!wanted.stdout || self.stdout.is_some())
            && (!wanted.stderr || self.stderr.is_some())
            && (!wanted.tty || self.resize.is_some())
    }

    /// The stream carrying `channel` to the client.
    fn output(&self, channel: Channel) -> Option<u32> {
        match channel {
            Channel::Stdout => self.stdout,
            Channel::Stderr => self.stderr,
            Channel::Error => self.error,
            _ => None,
        }
    }
}

/// Waits for the streams `wanted` names, then relays them to and from `agent` until it
/// closes. Returns early, ending the session, when the client does not open them in time.
pub async fn relay(
    mut opening: mpsc::Receiver<Stream>,
    sender: Sender,
    agent: AgentSocket,
    wanted: Streams,
) {
    let gathering = async {
        let mut opened = Opened::default();
        while !opened.complete(wanted) {
            opened.add(opening.recv().await?);
        }
        Some(opened)
    };
    let Ok(Some(mut opened)) = tokio::time::timeout(STREAM_CREATION_TIMEOUT, gathering).await
    else {
        tracing::debug!("exec client did not open its streams");
        return;
    };
    let (mut to_agent, mut from_agent) = agent.split();
    let stdin = opened.stdin.take();
    let resize = opened.resize.take();
    let upstream = async {
        let mut inputs = futures::stream::select(
            input_stream(stdin, Channel::Stdin),
            input_stream(resize, Channel::Resize),
        );
        let mut sizes = BytesMut::new();
        while let Some((channel, data)) = inputs.next().await {
            let messages = match (channel, data) {
                (Channel::Stdin, Some(data)) => vec![remotecommand::frame(Channel::Stdin, &data)],
                (Channel::Stdin, None) => {
                    vec![remotecommand::frame(
                        Channel::Close,
                        &[Channel::Stdin.byte()],
                    )]
                }
                (_, Some(data)) => {
                    sizes.extend_from_slice(&data);
                    terminal_sizes(&mut sizes)
                        .iter()
                        .map(|size| remotecommand::frame(Channel::Resize, size))
                        .collect()
                }
                (_, None) => continue,
            };
            for message in messages {
                if to_agent
                    .send(Message::Binary(message.into()))
                    .await
                    .is_err()
                {
                    return std::future::pending().await;
                }
            }
        }
        std::future::pending::<()>().await
    };
    let mut status_sent = false;
    let downstream = async {
        while let Some(Ok(message)) = from_agent.next().await {
            let data = match message {
                Message::Binary(data) => data,
                Message::Close(_) => return,
                _ => continue,
            };
            let Ok((channel, _)) = remotecommand::split(&data) else {
                continue;
            };
            if let Some(stream) = opened.output(channel) {
                if !sender.data(stream, data.slice(1..)).await {
                    return;
                }
                status_sent |= channel == Channel::Error;
            }
        }
    };
    // Later streams are dropped, so that their bytes never hold up the session's reader.
    let draining = async {
        while opening.recv().await.is_some() {}
        std::future::pending::<()>().await
    };
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
        () = draining => {}
    }
    if let (false, Some(error)) = (status_sent, opened.error) {
        let lost = remotecommand::failure("the node's exec stream ended without an exit status");
        sender.data(error, Bytes::from(lost.to_string())).await;
    }
    for stream in [opened.stdout, opened.stderr, opened.error]
        .into_iter()
        .flatten()
    {
        sender.finish(stream).await;
    }
}

/// A client stream's bytes as `(channel, Some(bytes))`, then `(channel, None)` at its end;
/// nothing for a stream that was not opened.
fn input_stream(
    receiver: Option<mpsc::Receiver<Bytes>>,
    channel: Channel,
) -> futures::stream::BoxStream<'static, (Channel, Option<Bytes>)> {
    let Some(mut receiver) = receiver else {
        return futures::stream::empty().boxed();
    };
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
        .map(move |data| (channel, Some(data)))
        .chain(futures::stream::once(async move { (channel, None) }))
        .boxed()
}

/// Takes the whole JSON values off the front of `buf` (the resize stream's terminal sizes,
/// each as the client encoded it); a partial value stays for the next bytes, and bytes that
/// are not JSON are dropped.
fn terminal_sizes(buf: &mut BytesMut) -> Vec<Vec<u8>> {
    let mut values = serde_json::Deserializer::from_slice(buf).into_iter::<serde_json::Value>();
    let mut sizes = Vec::new();
    let mut start = 0;
    let consumed = loop {
        match values.next() {
            Some(Ok(_)) => {
                let end = values.byte_offset();
                sizes.push(buf[start..end].trim_ascii().to_vec());
                start = end;
            }
            Some(Err(err)) if err.is_eof() => break start,
            Some(Err(_)) => break buf.len(),
            None => break values.byte_offset(),
        }
    };
    let _ = buf.split_to(consumed);
    sizes
}

#[cfg(test)]
mod tests;
