//! One peer's sender task: connects (with back-off), writes the `Hello`, then drains the
//! peer's queue into length-delimited frames, batching what is waiting into one flush.

use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use prost::Message as _;
use raft::eraftpb::Message;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use super::{codec, Hello};
use crate::transport::{Links, PeerReport};

/// Reconnect back-off bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Messages written before one flush.
const BATCH: usize = 256;

/// Sends one peer's queue over TCP.
pub struct PeerSender {
    addr: String,
    hello: Hello,
    queue: mpsc::Receiver<Message>,
    links: Links,
}

impl PeerSender {
    pub fn new(addr: String, hello: Hello, queue: mpsc::Receiver<Message>, links: Links) -> Self {
        PeerSender {
            addr,
            hello,
            queue,
            links,
        }
    }

    /// Sends until the peer is removed (its queue closes) or `stop` is cancelled.
    pub async fn run(mut self, stop: CancellationToken) {
        stop.run_until_cancelled(self.deliver()).await;
    }

    async fn deliver(&mut self) {
        let mut backoff = BACKOFF_MIN;
        while !self.queue.is_closed() {
            let result = match self.connect().await {
                Ok(stream) => {
                    backoff = BACKOFF_MIN;
                    self.pump(stream).await
                }
                Err(err) => Err(err),
            };
            let Err(err) = result else { return };
            tracing::debug!(peer = self.hello.to, addr = %self.addr, %err, "peer connection failed");
            let _ = self
                .links
                .reports
                .send(PeerReport::Unreachable(self.hello.to));
            // Whatever queued while the peer was away is stale: Raft resends what matters.
            while let Ok(message) = self.queue.try_recv() {
                self.links
                    .snapshot_failed(message.to, message.get_msg_type());
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn connect(&self) -> std::io::Result<TcpStream> {
        let stream =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.addr)).await??;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Writes queued messages until the queue closes (Ok) or the connection fails.
    async fn pump(&mut self, stream: TcpStream) -> std::io::Result<()> {
        let mut frames = FramedWrite::new(stream, codec());
        frames.send(Bytes::from(self.hello.encode_to_vec())).await?;
        while let Some(message) = self.queue.recv().await {
            let mut sent = vec![message];
            while sent.len() < BATCH {
                match self.queue.try_recv() {
                    Ok(more) => sent.push(more),
                    Err(_) => break,
                }
            }
            if let Err(err) = write_batch(&mut frames, &sent).await {
                for message in &sent {
                    self.links
                        .snapshot_failed(message.to, message.get_msg_type());
                }
                return Err(err);
            }
            for message in &sent {
                self.links.snapshot_sent(message.to, message.get_msg_type());
            }
        }
        Ok(())
    }
}

/// Writes a batch of messages and flushes once.
async fn write_batch(
    frames: &mut FramedWrite<TcpStream, LengthDelimitedCodec>,
    batch: &[Message],
) -> std::io::Result<()> {
    for message in batch {
        frames.feed(Bytes::from(message.encode_to_vec())).await?;
    }
    SinkExt::<Bytes>::flush(frames).await
}
