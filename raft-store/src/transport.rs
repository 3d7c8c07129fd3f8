//! How Raft messages travel between members: prost-encoded, length-prefixed frames over one
//! TCP connection per peer and direction. Each peer has a bounded queue drained by its own
//! task, which reconnects with back-off; a full queue drops messages (Raft retransmits) and
//! reports the peer unreachable, so a slow peer never stalls the driver.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use prost::Message as _;
use raft::eraftpb::{Message, MessageType};
use raft::SnapshotStatus;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::member::{Cluster, Member};

/// Messages queued per peer before new ones are dropped.
const PEER_QUEUE: usize = 4096;
/// The largest frame accepted (a snapshot of the whole state machine travels as one).
const MAX_FRAME: usize = 1 << 30;
/// Reconnect back-off bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The first frame on every connection: which cluster and member it comes from and is for.
#[derive(Clone, PartialEq, prost::Message)]
struct Hello {
    #[prost(string, tag = "1")]
    cluster_id: String,
    #[prost(uint64, tag = "2")]
    from: u64,
    #[prost(uint64, tag = "3")]
    to: u64,
}

/// What the transport tells the driver about deliveries (raft-rs's `report_*` calls).
#[derive(Debug)]
pub enum PeerReport {
    Unreachable(u64),
    Snapshot(u64, SnapshotStatus),
}

/// Sends messages to peers; `send` never blocks.
pub struct Transport {
    peers: HashMap<u64, mpsc::Sender<Message>>,
    reports: mpsc::UnboundedSender<PeerReport>,
    cluster_id: String,
    local: u64,
    stop: watch::Receiver<bool>,
}

impl Transport {
    /// Starts one sender task per peer of `cluster`; they end when `stop` is set.
    pub fn start(
        cluster: &Cluster,
        reports: mpsc::UnboundedSender<PeerReport>,
        stop: &watch::Receiver<bool>,
    ) -> Transport {
        let mut transport = Transport {
            peers: HashMap::new(),
            reports,
            cluster_id: cluster.cluster_id.clone(),
            local: cluster.local,
            stop: stop.clone(),
        };
        for peer in cluster.peers() {
            transport.add_peer(peer);
        }
        transport
    }

    /// Starts sending to a member (added by a membership change); known members are kept.
    pub fn add_peer(&mut self, peer: &Member) {
        if peer.id == self.local || self.peers.contains_key(&peer.id) {
            return;
        }
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        let sender = PeerSender {
            addr: peer.peer_addr.clone(),
            hello: Hello {
                cluster_id: self.cluster_id.clone(),
                from: self.local,
                to: peer.id,
            },
            queue: rx,
            reports: self.reports.clone(),
        };
        tokio::spawn(sender.run(self.stop.clone()));
        self.peers.insert(peer.id, tx);
    }

    /// Stops sending to a removed member (its sender task ends).
    pub fn remove_peer(&mut self, id: u64) {
        self.peers.remove(&id);
    }

    pub fn send(&self, messages: Vec<Message>) {
        for message in messages {
            let to = message.to;
            let Some(queue) = self.peers.get(&to) else {
                tracing::warn!(to, "dropping a raft message for an unknown member");
                continue;
            };
            let is_snapshot = message.get_msg_type() == MessageType::MsgSnapshot;
            if queue.try_send(message).is_err() {
                let _ = self.reports.send(PeerReport::Unreachable(to));
                if is_snapshot {
                    let _ = self
                        .reports
                        .send(PeerReport::Snapshot(to, SnapshotStatus::Failure));
                }
            }
        }
    }
}

struct PeerSender {
    addr: String,
    hello: Hello,
    queue: mpsc::Receiver<Message>,
    reports: mpsc::UnboundedSender<PeerReport>,
}

impl PeerSender {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut backoff = BACKOFF_MIN;
        // Ends when the member is removed (its queue's sender is dropped) or the store stops.
        while !self.queue.is_closed() {
            let connected = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                connected = self.connect() => connected,
            };
            let result = match connected {
                Ok(stream) => {
                    backoff = BACKOFF_MIN;
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => return,
                        result = self.pump(stream) => result,
                    }
                }
                Err(err) => Err(err),
            };
            match result {
                Ok(()) => return,
                Err(err) => {
                    tracing::debug!(peer = self.hello.to, addr = %self.addr, %err, "peer connection failed");
                    let _ = self.reports.send(PeerReport::Unreachable(self.hello.to));
                    // Whatever queued while the peer was away is stale: Raft resends what matters.
                    while let Ok(message) = self.queue.try_recv() {
                        self.report_failed_snapshot(&message);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    async fn connect(&self) -> std::io::Result<TcpStream> {
        let stream =
            tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(&self.addr)).await??;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Writes queued messages until the queue closes (Ok) or the connection fails.
    async fn pump(&mut self, stream: TcpStream) -> std::io::Result<()> {
        let mut writer = BufWriter::new(stream);
        write_frame(&mut writer, &self.hello.encode_to_vec()).await?;
        writer.flush().await?;
        while let Some(message) = self.queue.recv().await {
            let mut sent = vec![message];
            while let Ok(more) = self.queue.try_recv() {
                sent.push(more);
                if sent.len() >= 256 {
                    break;
                }
            }
            for message in &sent {
                if let Err(err) = write_frame(&mut writer, &message.encode_to_vec()).await {
                    sent.iter().for_each(|m| self.report_failed_snapshot(m));
                    return Err(err);
                }
            }
            if let Err(err) = writer.flush().await {
                sent.iter().for_each(|m| self.report_failed_snapshot(m));
                return Err(err);
            }
            for message in sent
                .iter()
                .filter(|m| m.get_msg_type() == MessageType::MsgSnapshot)
            {
                let _ = self
                    .reports
                    .send(PeerReport::Snapshot(message.to, SnapshotStatus::Finish));
            }
        }
        Ok(())
    }

    fn report_failed_snapshot(&self, message: &Message) {
        if message.get_msg_type() == MessageType::MsgSnapshot {
            let _ = self
                .reports
                .send(PeerReport::Snapshot(message.to, SnapshotStatus::Failure));
        }
    }
}

async fn write_frame(writer: &mut BufWriter<TcpStream>, body: &[u8]) -> std::io::Result<()> {
    writer.write_u32(body.len() as u32).await?;
    writer.write_all(body).await
}

async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let len = stream.read_u32().await? as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the {MAX_FRAME}-byte limit"),
        ));
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

/// Accepts peer connections on `listener` and feeds their messages to `inbox`; a connection
/// from another cluster, or meant for another member, is refused with an error in the log.
/// Waiting on a full inbox stops reading the socket, which back-pressures the sender.
pub fn serve(
    listener: TcpListener,
    cluster: &Cluster,
    inbox: mpsc::Sender<Message>,
    mut stop: watch::Receiver<bool>,
) {
    let cluster_id = cluster.cluster_id.clone();
    let local = cluster.local;
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, from) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%err, "accepting a peer connection failed");
                    tokio::time::sleep(BACKOFF_MIN).await;
                    continue;
                }
            };
            let (cluster_id, inbox, stop) = (cluster_id.clone(), inbox.clone(), stop.clone());
            tokio::spawn(receive(stream, from, cluster_id, local, inbox, stop));
        }
    });
}

async fn receive(
    mut stream: TcpStream,
    from: SocketAddr,
    cluster_id: String,
    local: u64,
    inbox: mpsc::Sender<Message>,
    mut stop: watch::Receiver<bool>,
) {
    let result: std::io::Result<()> = async {
        let hello = Hello::decode(read_frame(&mut stream).await?.as_slice())?;
        if hello.cluster_id != cluster_id || hello.to != local {
            tracing::error!(
                %from,
                their_cluster = %hello.cluster_id,
                our_cluster = %cluster_id,
                to = hello.to,
                local,
                "refusing a peer connection from another cluster or for another member: \
                 check that every server has the same --initial-cluster"
            );
            return Ok(());
        }
        loop {
            let frame = tokio::select! {
                _ = stop.wait_for(|s| *s) => return Ok(()),
                frame = read_frame(&mut stream) => frame?,
            };
            let message = Message::decode(frame.as_slice())?;
            if message.from != hello.from || message.to != local {
                tracing::warn!(%from, "dropping a raft message with mismatched from/to");
                continue;
            }
            if inbox.send(message).await.is_err() {
                return Ok(());
            }
        }
    }
    .await;
    if let Err(err) = result {
        tracing::debug!(%from, %err, "peer connection ended");
    }
}
