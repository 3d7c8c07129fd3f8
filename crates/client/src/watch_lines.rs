//! A watch answer as events: newline-delimited JSON, one `{"type", "object"}` per line.

use bytes::BytesMut;
use futures::{Stream, StreamExt};
use tokio_util::codec::{Decoder, FramedRead, LinesCodec, LinesCodecError};
use tokio_util::io::StreamReader;

use crate::{ClientError, WatchEvent};

/// The events of a watch `response` from `url`, until the server ends the stream.
pub fn events(
    response: reqwest::Response,
    url: String,
) -> impl Stream<Item = Result<WatchEvent, ClientError>> + Send {
    let bytes = response
        .bytes_stream()
        .map(|chunk| chunk.map_err(std::io::Error::other));
    FramedRead::new(StreamReader::new(bytes), WholeLines::default()).filter_map(move |line| {
        let event = match line {
            Ok(line) if line.trim().is_empty() => None,
            Ok(line) => Some(serde_json::from_str::<WatchEvent>(&line).map_err(|source| {
                ClientError::Decode {
                    url: url.clone(),
                    source,
                }
            })),
            Err(source) => Some(Err(ClientError::Stream {
                url: url.clone(),
                source,
            })),
        };
        std::future::ready(event)
    })
}

/// Lines ended by a newline; an unended last line (a stream cut mid-event) is dropped rather
/// than decoded.
#[derive(Default)]
struct WholeLines(LinesCodec);

impl Decoder for WholeLines {
    type Item = String;
    type Error = LinesCodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<String>, LinesCodecError> {
        self.0.decode(buf)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<String>, LinesCodecError> {
        let line = self.0.decode(buf)?;
        if line.is_none() {
            buf.clear();
        }
        Ok(line)
    }
}
