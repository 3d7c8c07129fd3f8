//! Turns the bytes of log files into what a reader asked for: records parsed back into the
//! guest's output, those before `since` left out, timestamps shown on request, and at most
//! `limit_bytes` in all.

use bytes::Bytes;
use jiff::Timestamp;

use super::record::{decode, MAX_CONTENT};

/// The longest unfinished line held back waiting for its newline; a longer one (not written
/// by [`LogWriter`](super::LogWriter)) is shown as it is.
const MAX_LINE: usize = MAX_CONTENT + 256;

/// What a log reader asked for, as the kubelet's `PodLogOptions`.
#[derive(Debug, Clone, Default)]
pub struct LogRequest {
    /// Only the last N lines.
    pub tail_lines: Option<u64>,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
    /// Only lines written at or after this time.
    pub since: Option<Timestamp>,
    /// Each line prefixed with the time it was written (RFC 3339, nanoseconds).
    pub timestamps: bool,
}

/// Turns stored log records into what a reader asked for (the since filter, timestamps or
/// not), carrying a record split across two reads.
pub struct Renderer {
    carry: Vec<u8>,
    since: Option<Timestamp>,
    timestamps: bool,
    remaining: Option<u64>,
}

impl Renderer {
    pub fn new(request: &LogRequest) -> Self {
        Renderer {
            carry: Vec::new(),
            since: request.since,
            timestamps: request.timestamps,
            remaining: request.limit_bytes,
        }
    }

    /// Whether `limit_bytes` has been reached.
    pub fn done(&self) -> bool {
        self.remaining == Some(0)
    }

    /// What the reader is shown of the next bytes of the log.
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        self.carry.extend_from_slice(chunk);
        let mut out = Vec::with_capacity(self.carry.len());
        let complete = match self.carry.iter().rposition(|b| *b == b'\n') {
            Some(i) => i + 1,
            None if self.carry.len() > MAX_LINE => self.carry.len(),
            None => 0,
        };
        for line in self.carry[..complete].split_inclusive(|b| *b == b'\n') {
            let record = decode(line.strip_suffix(b"\n").unwrap_or(line));
            if matches!((record.time, self.since), (Some(t), Some(since)) if t < since) {
                continue;
            }
            record.render(self.timestamps, &mut out);
        }
        self.carry.drain(..complete);
        self.limit(out)
    }

    /// What is left of an unfinished last line once the log has ended.
    pub fn finish(&mut self) -> Bytes {
        if self.carry.is_empty() {
            return Bytes::new();
        }
        self.carry.push(b'\n');
        let mut out = self.feed(&[]).to_vec();
        // The line never got its newline: do not show one.
        if out.ends_with(b"\n") && !self.done() {
            out.pop();
        }
        Bytes::from(out)
    }

    fn limit(&mut self, mut out: Vec<u8>) -> Bytes {
        if let Some(remaining) = self.remaining.as_mut() {
            out.truncate((*remaining).min(out.len() as u64) as usize);
            *remaining -= out.len() as u64;
        }
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::logs::record::{encode, Stream};

    fn log(lines: &[(&str, &str)]) -> Vec<u8> {
        let mut file = Vec::new();
        for (time, text) in lines {
            encode(
                time.parse().expect("time"),
                Stream::Stdout,
                text.as_bytes(),
                &mut file,
            );
        }
        file
    }

    #[test]
    fn filters_by_time_limits_bytes_and_joins_split_chunks() {
        let file = log(&[
            ("2026-01-01T00:00:00Z", "old\n"),
            ("2026-01-01T00:01:00Z", "new\n"),
            ("2026-01-01T00:02:00Z", "newer\n"),
        ]);
        let since = LogRequest {
            since: Some("2026-01-01T00:00:30Z".parse().expect("time")),
            ..LogRequest::default()
        };
        let mut renderer = Renderer::new(&since);
        let (a, b) = file.split_at(40);
        let mut shown = renderer.feed(a).to_vec();
        shown.extend_from_slice(&renderer.feed(b));
        assert_eq!(shown, b"new\nnewer\n");

        let limited = LogRequest {
            limit_bytes: Some(6),
            ..LogRequest::default()
        };
        let mut renderer = Renderer::new(&limited);
        assert_eq!(&renderer.feed(&file)[..], b"old\nne");
        assert!(renderer.done());

        let stamped = LogRequest {
            timestamps: true,
            ..LogRequest::default()
        };
        assert!(Renderer::new(&stamped)
            .feed(&file)
            .starts_with(b"2026-01-01T00:00:00.000000000Z old\n"));
    }

    #[test]
    fn shows_an_unfinished_line_at_the_end() {
        let mut renderer = Renderer::new(&LogRequest::default());
        assert_eq!(&renderer.feed(b"plain, no newline")[..], b"");
        assert_eq!(&renderer.finish()[..], b"plain, no newline");
    }
}
