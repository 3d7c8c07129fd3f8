//! SPDY/3.1 frames (draft-mbelshe-httpbis-spdy-00 and the 3.1 revision): a control frame is
//! `1 | version(15) | type(16) | flags(8) | length(24) | data`, a data frame
//! `0 | stream id(31) | flags(8) | length(24) | data`, all big-endian. Header blocks stay
//! compressed here (`header_block` reads and writes them in order).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The protocol version this server speaks.
const VERSION: u16 = 3;

/// The frame header's length: both kinds are 8 bytes.
const HEADER_LEN: usize = 8;

/// `FLAG_FIN`: the sender's last frame on the stream.
pub const FLAG_FIN: u8 = 0x01;

/// The largest frame this server accepts (the 24-bit length allows 16 MiB; spdystream sends
/// data in frames of at most 32 KiB).
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// `RST_STREAM` status: the stream could not be accepted.
pub const REFUSED_STREAM: u32 = 3;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// A frame as read or to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A peer opens a stream; `headers` is the compressed header block.
    SynStream {
        stream: u32,
        fin: bool,
        headers: Bytes,
    },
    /// The answer to a `SynStream`.
    SynReply {
        stream: u32,
        fin: bool,
        headers: Bytes,
    },
    /// More headers on a stream (read only to keep the header compression in step).
    Headers { stream: u32, headers: Bytes },
    /// A stream ends abnormally with `status`.
    RstStream { stream: u32, status: u32 },
    /// Bytes on a stream; `fin`: the sender's last.
    Data { stream: u32, fin: bool, data: Bytes },
    /// A liveness check, echoed by its receiver.
    Ping { id: u32 },
    /// The sender ends the session.
    GoAway { last_stream: u32 },
    /// `SETTINGS`, `WINDOW_UPDATE` and unknown control frames, which this server ignores.
    Ignored,
}

/// A byte sequence that is not SPDY/3.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("SPDY frame of version {0}: only version 3 is spoken")]
    Version(u16),
    #[error("SPDY frame of {0} bytes is larger than {MAX_FRAME_LEN}")]
    TooLarge(usize),
    #[error("SPDY control frame of type {kind} is too short ({len} bytes)")]
    Short { kind: u16, len: usize },
}

/// Takes one whole frame off the front of `buf`, or `None` while it holds less than one.
pub fn parse(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = usize::from(buf[5]) << 16 | usize::from(buf[6]) << 8 | usize::from(buf[7]);
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    if buf.len() < HEADER_LEN + len {
        return Ok(None);
    }
    let first = buf.get_u32();
    let flags = buf.get_u8();
    buf.advance(3);
    let mut body = buf.split_to(len).freeze();
    let fin = flags & FLAG_FIN != 0;
    if first & 0x8000_0000 == 0 {
        return Ok(Some(Frame::Data {
            stream: first,
            fin,
            data: body,
        }));
    }
    let version = ((first >> 16) & 0x7fff) as u16;
    if version != VERSION {
        return Err(FrameError::Version(version));
    }
    let kind = (first & 0xffff) as u16;
    let need = match kind {
        SYN_STREAM => 10,
        SYN_REPLY | HEADERS | PING => 4,
        RST_STREAM | GOAWAY => 8,
        _ => 0,
    };
    if len < need {
        return Err(FrameError::Short { kind, len });
    }
    let stream_id = |body: &mut Bytes| body.get_u32() & 0x7fff_ffff;
    Ok(Some(match kind {
        SYN_STREAM => {
            let stream = stream_id(&mut body);
            // The associated stream, priority and slot.
            body.advance(6);
            Frame::SynStream {
                stream,
                fin,
                headers: body,
            }
        }
        SYN_REPLY => Frame::SynReply {
            stream: stream_id(&mut body),
            fin,
            headers: body,
        },
        HEADERS => Frame::Headers {
            stream: stream_id(&mut body),
            headers: body,
        },
        RST_STREAM => Frame::RstStream {
            stream: stream_id(&mut body),
            status: body.get_u32(),
        },
        PING => Frame::Ping { id: body.get_u32() },
        GOAWAY => Frame::GoAway {
            last_stream: stream_id(&mut body),
        },
        SETTINGS | WINDOW_UPDATE => Frame::Ignored,
        _ => Frame::Ignored,
    }))
}

/// Appends `frame` to `out`. A data frame's payload must fit the 24-bit length.
pub fn write(frame: &Frame, out: &mut BytesMut) {
    match frame {
        Frame::Data { stream, fin, data } => {
            out.put_u32(stream & 0x7fff_ffff);
            put_flags_len(out, *fin, data.len());
            out.put_slice(data);
        }
        Frame::SynStream {
            stream,
            fin,
            headers,
        } => {
            control(out, SYN_STREAM, *fin, 10 + headers.len());
            out.put_u32(*stream);
            out.put_u32(0);
            out.put_u16(0);
            out.put_slice(headers);
        }
        Frame::SynReply {
            stream,
            fin,
            headers,
        } => {
            control(out, SYN_REPLY, *fin, 4 + headers.len());
            out.put_u32(*stream);
            out.put_slice(headers);
        }
        Frame::Headers { stream, headers } => {
            control(out, HEADERS, false, 4 + headers.len());
            out.put_u32(*stream);
            out.put_slice(headers);
        }
        Frame::RstStream { stream, status } => {
            control(out, RST_STREAM, false, 8);
            out.put_u32(*stream);
            out.put_u32(*status);
        }
        Frame::Ping { id } => {
            control(out, PING, false, 4);
            out.put_u32(*id);
        }
        Frame::GoAway { last_stream } => {
            control(out, GOAWAY, false, 8);
            out.put_u32(*last_stream);
            out.put_u32(0);
        }
        Frame::Ignored => {}
    }
}

fn control(out: &mut BytesMut, kind: u16, fin: bool, len: usize) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    put_flags_len(out, fin, len);
}

fn put_flags_len(out: &mut BytesMut, fin: bool, len: usize) {
    assert!(len < 1 << 24, "a SPDY frame holds at most 16 MiB");
    out.put_u8(if fin { FLAG_FIN } else { 0 });
    out.put_uint(len as u64, 3);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frame: Frame) {
        let mut buf = BytesMut::new();
        write(&frame, &mut buf);
        // Byte by byte: a frame is read only once whole.
        let mut partial = BytesMut::new();
        let bytes = buf.freeze();
        for (i, byte) in bytes.iter().enumerate() {
            partial.put_u8(*byte);
            let parsed = parse(&mut partial).expect("parses");
            if i + 1 < bytes.len() {
                assert_eq!(parsed, None);
            } else {
                assert_eq!(parsed, Some(frame.clone()));
                assert!(partial.is_empty());
            }
        }
    }

    #[test]
    fn frames_round_trip_and_wait_until_whole() {
        round_trip(Frame::Data {
            stream: 3,
            fin: true,
            data: Bytes::from_static(b"hello"),
        });
        round_trip(Frame::SynStream {
            stream: 5,
            fin: false,
            headers: Bytes::from_static(b"\x78\x01"),
        });
        round_trip(Frame::SynReply {
            stream: 5,
            fin: false,
            headers: Bytes::from_static(b"zz"),
        });
        round_trip(Frame::RstStream {
            stream: 7,
            status: REFUSED_STREAM,
        });
        round_trip(Frame::Ping { id: 9 });
        round_trip(Frame::GoAway { last_stream: 11 });
    }

    #[test]
    fn a_syn_reply_is_laid_out_as_spdy_3() {
        let mut buf = BytesMut::new();
        write(
            &Frame::SynReply {
                stream: 1,
                fin: false,
                headers: Bytes::from_static(b"ab"),
            },
            &mut buf,
        );
        assert_eq!(
            &buf[..],
            &[0x80, 3, 0, 2, 0, 0, 0, 6, 0, 0, 0, 1, b'a', b'b']
        );
    }

    #[test]
    fn other_versions_and_huge_frames_are_refused() {
        let mut v2 = BytesMut::from(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert_eq!(parse(&mut v2), Err(FrameError::Version(2)));
        let mut huge = BytesMut::from(&[0, 0, 0, 1, 0, 0xff, 0xff, 0xff][..]);
        assert_eq!(parse(&mut huge), Err(FrameError::TooLarge(0xff_ffff)));
        let mut short = BytesMut::from(&[0x80, 3, 0, 3, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert_eq!(
            parse(&mut short),
            Err(FrameError::Short { kind: 3, len: 4 })
        );
    }
}
