//! Where the last N records of a log start, found by reading backwards from the end in
//! bounded chunks: the bytes read grow with N, not with the log.

use std::io::{Read, Seek, SeekFrom};

/// How much is read per step backwards.
pub const CHUNK: usize = 64 * 1024;

/// A place in a log made of several files, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub file: usize,
    pub offset: u64,
}

/// The start of the last `lines` records of `files` (oldest first), each given with its
/// length; a record is one line, the last one possibly without its newline yet.
pub fn start_of_last<R: Read + Seek>(
    files: &mut [(R, u64)],
    lines: u64,
) -> std::io::Result<Position> {
    let end = Position {
        file: files.len().saturating_sub(1),
        offset: files.last().map_or(0, |(_, len)| *len),
    };
    if lines == 0 {
        return Ok(end);
    }
    // Newlines to pass going backwards: one per record, but the very last byte's newline
    // ends the last record rather than starting one.
    let mut to_pass = lines;
    let mut first_byte = true;
    let mut buf = vec![0; CHUNK];
    for index in (0..files.len()).rev() {
        let (file, len) = &mut files[index];
        let mut upto = *len;
        while upto > 0 {
            let from = upto.saturating_sub(CHUNK as u64);
            let chunk = &mut buf[..(upto - from) as usize];
            file.seek(SeekFrom::Start(from))?;
            file.read_exact(chunk)?;
            for (i, byte) in chunk.iter().enumerate().rev() {
                let last = std::mem::take(&mut first_byte);
                if *byte != b'\n' || last {
                    continue;
                }
                if to_pass == 1 {
                    return Ok(Position {
                        file: index,
                        offset: from + i as u64 + 1,
                    });
                }
                to_pass -= 1;
            }
            upto = from;
        }
    }
    Ok(Position { file: 0, offset: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A reader that counts the bytes read through it.
    struct Counting<'a> {
        inner: Cursor<&'a [u8]>,
        read: u64,
    }

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n as u64;
            Ok(n)
        }
    }

    impl Seek for Counting<'_> {
        fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    fn tail(files: &[&[u8]], lines: u64) -> (Position, u64) {
        let mut readers: Vec<_> = files
            .iter()
            .map(|f| {
                let reader = Counting {
                    inner: Cursor::new(*f),
                    read: 0,
                };
                (reader, f.len() as u64)
            })
            .collect();
        let pos = start_of_last(&mut readers, lines).expect("tail");
        (pos, readers.iter().map(|(r, _)| r.read).sum())
    }

    #[test]
    fn finds_the_last_lines_across_files() {
        let at = |file, offset| Position { file, offset };
        assert_eq!(tail(&[b"a\nb\nc\n"], 2).0, at(0, 2));
        assert_eq!(tail(&[b"a\nb\nc\n"], 5).0, at(0, 0));
        assert_eq!(tail(&[b"a\nb\nc\n"], 0).0, at(0, 6));
        assert_eq!(tail(&[b"x\ny"], 1).0, at(0, 2));
        assert_eq!(tail(&[b"a\nb\n", b"c\n"], 2).0, at(0, 2));
        assert_eq!(tail(&[b"a\nb\n", b"c\n"], 3).0, at(0, 0));
        assert_eq!(tail(&[b"a\nb\n", b""], 1).0, at(0, 2));
        assert_eq!(tail(&[], 1).0, at(0, 0));
    }

    #[test]
    fn reads_a_bounded_amount_for_a_short_tail_of_a_large_log() {
        let big: Vec<u8> = b"a line of the log flood\n".repeat(1 << 20);
        let (pos, read) = tail(&[&big, &big], 1);
        assert_eq!(pos.file, 1);
        assert_eq!(&big[pos.offset as usize..], b"a line of the log flood\n");
        assert!(
            read <= CHUNK as u64,
            "read {read} bytes of {}",
            2 * big.len()
        );
        let (_, read) = tail(&[&big, &big], 10_000);
        assert!(read <= 10_000 * 24 + CHUNK as u64, "read {read} bytes");
    }
}
