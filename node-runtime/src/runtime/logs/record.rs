//! One line of a container log file, in the CRI log format the kubelet and containerd use:
//! `<RFC3339Nano time> <stdout|stderr> <F|P> <content>\n`, `P` marking a partial line (the
//! guest's line goes on in the next record) and `F` the record that ends it.

use jiff::Timestamp;

/// The longest content one record carries; longer lines are split into `P` records, so a
/// reader never needs more than this (plus the prefix) to hold one record.
pub const MAX_CONTENT: usize = 16 * 1024;

/// Which of the guest's output streams a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Appends the records for `bytes`, written by the guest at `time`, to `out`: one per line,
/// lines longer than [`MAX_CONTENT`] and an unfinished last line as `P` records.
pub fn encode(time: Timestamp, stream: Stream, bytes: &[u8], out: &mut Vec<u8>) {
    let prefix = format!("{time:.9} {}", stream.as_str());
    let mut rest = bytes;
    while !rest.is_empty() {
        let window = &rest[..rest.len().min(MAX_CONTENT + 1)];
        let (content, consumed, tag) = match window.iter().position(|b| *b == b'\n') {
            Some(end) => (&window[..end], end + 1, 'F'),
            None => {
                let len = window.len().min(MAX_CONTENT);
                (&window[..len], len, 'P')
            }
        };
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(format!(" {tag} ").as_bytes());
        out.extend_from_slice(content);
        out.push(b'\n');
        rest = &rest[consumed..];
    }
}

/// A record read back: when it was written and the guest's bytes it carries.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// `None` for a line not in the CRI format (written before it), passed through as is.
    pub time: Option<Timestamp>,
    /// The guest's bytes, with the newline back on an `F` record.
    pub content: &'a [u8],
    pub ends_line: bool,
}

/// Parses one record (`line` without its newline).
pub fn decode(line: &[u8]) -> Record<'_> {
    let raw = Record {
        time: None,
        content: line,
        ends_line: true,
    };
    let mut fields = line.splitn(4, |b| *b == b' ');
    let (Some(time), Some(stream), Some(tag)) = (fields.next(), fields.next(), fields.next())
    else {
        return raw;
    };
    let content = fields.next().unwrap_or_default();
    let time = std::str::from_utf8(time)
        .ok()
        .and_then(|t| t.parse::<Timestamp>().ok());
    match (time, stream, tag) {
        (Some(time), b"stdout" | b"stderr", b"F" | b"P") => Record {
            time: Some(time),
            content,
            ends_line: tag == b"F",
        },
        _ => raw,
    }
}

impl Record<'_> {
    /// What a reader is shown: the content (with its newline if the record ends a line),
    /// after the record's time and a space when `timestamps` is asked for.
    pub fn render(&self, timestamps: bool, out: &mut Vec<u8>) {
        if let (true, Some(time)) = (timestamps, self.time) {
            out.extend_from_slice(format!("{time:.9} ").as_bytes());
        }
        out.extend_from_slice(self.content);
        if self.ends_line {
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(bytes: &[u8], timestamps: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            decode(line.strip_suffix(b"\n").unwrap_or(line)).render(timestamps, &mut out);
        }
        out
    }

    #[test]
    fn round_trips_lines_partial_lines_and_long_lines() {
        let time: Timestamp = "2026-01-02T03:04:05.5Z".parse().expect("time");
        let mut file = Vec::new();
        encode(time, Stream::Stdout, b"one\ntwo\nthr", &mut file);
        encode(time, Stream::Stderr, b"ee\n", &mut file);
        assert_eq!(
            String::from_utf8_lossy(&file),
            "2026-01-02T03:04:05.500000000Z stdout F one\n\
             2026-01-02T03:04:05.500000000Z stdout F two\n\
             2026-01-02T03:04:05.500000000Z stdout P thr\n\
             2026-01-02T03:04:05.500000000Z stderr F ee\n"
        );
        assert_eq!(shown(&file, false), b"one\ntwo\nthree\n");
        assert!(String::from_utf8_lossy(&shown(&file, true))
            .starts_with("2026-01-02T03:04:05.500000000Z one\n"));

        let long = vec![b'x'; MAX_CONTENT * 2 + 5];
        let mut file = Vec::new();
        encode(time, Stream::Stdout, &long, &mut file);
        assert_eq!(file.iter().filter(|b| **b == b'\n').count(), 3);
        assert_eq!(shown(&file, false), long);
    }

    #[test]
    fn passes_lines_of_other_formats_through() {
        assert_eq!(shown(b"plain text\n", false), b"plain text\n");
        assert_eq!(
            shown(b"not-a-time stdout F x\n", false),
            b"not-a-time stdout F x\n"
        );
    }
}
