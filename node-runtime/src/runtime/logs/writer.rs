//! A container's log file, capped and rotated as the kubelet rotates CRI logs: once the live
//! file would pass `max_size` it becomes `<log>.1` (older ones shift to `.2`, ...), keeping
//! `max_files` files in all, the live one counted; and nothing is written while the disk is
//! short (see [`guard`](super::guard)).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;

use super::files::rotated;
use super::guard::{self, CHECK_EVERY};
use super::record::{encode, Stream};
use super::LogLimits;

/// The log of one container attempt, shared by its stdout and stderr.
pub struct LogWriter {
    path: PathBuf,
    limits: LogLimits,
    inner: Mutex<Inner>,
}

struct Inner {
    file: File,
    size: u64,
    /// Bytes written since the free space was last looked at.
    unchecked: u64,
    /// Output is being dropped for want of disk space.
    dropping: bool,
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl LogWriter {
    /// Opens (appending to) the log at `path`, creating its directory.
    pub fn open(path: PathBuf, limits: LogLimits) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = open(&path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path,
            limits,
            inner: Mutex::new(Inner {
                file,
                size,
                unchecked: CHECK_EVERY,
                dropping: false,
            }),
        })
    }

    /// Writes what the guest wrote to `stream` as log records. A full disk drops the output
    /// (the guest's write succeeds, as containerd's do) rather than failing the guest.
    pub fn write(&self, stream: Stream, bytes: &[u8]) -> std::io::Result<()> {
        match self.write_records(stream, bytes) {
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => {
                self.inner.lock().expect("log writer lock").dropping = true;
                Ok(())
            }
            other => other,
        }
    }

    fn write_records(&self, stream: Stream, bytes: &[u8]) -> std::io::Result<()> {
        let mut records = Vec::with_capacity(bytes.len() + 64);
        encode(Timestamp::now(), stream, bytes, &mut records);
        let mut inner = self.inner.lock().expect("log writer lock");
        if !self.disk_has_room(&mut inner, records.len() as u64)? {
            return Ok(());
        }
        // Consecutive records go out in one write; a rotation cuts between two records.
        let (mut start, mut end) = (0, 0);
        for record in records.split_inclusive(|b| *b == b'\n') {
            let len = record.len() as u64;
            if inner.size > 0 && inner.size + len > self.limits.max_size {
                inner.file.write_all(&records[start..end])?;
                self.rotate(&mut inner)?;
                start = end;
            }
            inner.size += len;
            end += record.len();
        }
        inner.file.write_all(&records[start..end])
    }

    /// Looks at the free space every [`CHECK_EVERY`] bytes; when it falls below the floor,
    /// writes one marker record and drops output until it is back above it.
    fn disk_has_room(&self, inner: &mut Inner, len: u64) -> std::io::Result<bool> {
        inner.unchecked += len;
        if inner.unchecked < CHECK_EVERY {
            return Ok(!inner.dropping);
        }
        inner.unchecked = 0;
        // Unknown free space (the directory removed under a running guest) does not stop output.
        let short = guard::available(&self.path).is_ok_and(|free| free < self.limits.min_free);
        if short && !inner.dropping {
            let mut marker = Vec::new();
            let text = format!(
                "skiff: log output dropped: less than {} bytes free on the log filesystem\n",
                self.limits.min_free
            );
            encode(
                Timestamp::now(),
                Stream::Stderr,
                text.as_bytes(),
                &mut marker,
            );
            inner.file.write_all(&marker)?;
            inner.size += marker.len() as u64;
        }
        inner.dropping = short;
        Ok(!short)
    }

    /// `<log>` → `<log>.1` → ... → `<log>.<max_files-1>`, the oldest dropped; with one file
    /// allowed the live file is emptied instead.
    fn rotate(&self, inner: &mut Inner) -> std::io::Result<()> {
        inner.file.flush()?;
        if self.limits.max_files <= 1 {
            inner.file.set_len(0)?;
            inner.size = 0;
            return Ok(());
        }
        let oldest = rotated(&self.path, self.limits.max_files - 1);
        match std::fs::remove_file(&oldest) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        for n in (1..self.limits.max_files - 1).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, n + 1))?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))?;
        inner.file = open(&self.path)?;
        inner.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_keeping_max_files_and_drops_output_when_the_disk_is_short() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c/0.log");
        let limits = LogLimits {
            max_size: 1000,
            max_files: 3,
            min_free: 0,
        };
        let writer = LogWriter::open(path.clone(), limits).expect("open");
        for _ in 0..100 {
            writer.write(Stream::Stdout, &[b'x'; 99]).expect("write");
        }
        let mut names: Vec<_> = std::fs::read_dir(dir.path().join("c"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        names.sort();
        assert_eq!(names, ["0.log", "0.log.1", "0.log.2"]);
        for name in names {
            let len = std::fs::metadata(dir.path().join("c").join(name))
                .expect("meta")
                .len();
            assert!(len <= 1000, "{len}");
        }

        let full = LogLimits {
            min_free: u64::MAX,
            ..limits
        };
        let path = dir.path().join("full.log");
        let writer = LogWriter::open(path.clone(), full).expect("open");
        for _ in 0..10 {
            writer.write(Stream::Stdout, b"dropped\n").expect("write");
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("log output dropped"), "{text}");
    }
}
