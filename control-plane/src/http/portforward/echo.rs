//! A forwarder for the protocols' tests, standing in for a pod: it echoes what the client
//! sends until the client's half close, and refuses port 1 as a pod with nothing listening.

use bytes::Bytes;
use tokio::sync::mpsc;

use super::forward::{Event, Forwarder};

/// The refusal of port 1.
pub const REFUSED: &str = "dial tcp 127.0.0.1:1: connect: connection refused";

/// The echoing stand-in for a pod.
#[derive(Clone)]
pub struct Echo;

impl Forwarder for Echo {
    async fn forward(
        &self,
        port: u16,
        mut from_client: mpsc::Receiver<Bytes>,
        to_client: mpsc::Sender<Event>,
    ) {
        if port == 1 {
            let _ = to_client.send(Event::Error(REFUSED.into())).await;
            return;
        }
        while let Some(data) = from_client.recv().await {
            if to_client.send(Event::Data(data)).await.is_err() {
                return;
            }
        }
    }
}
