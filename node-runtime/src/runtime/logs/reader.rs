//! Serves a container log the way the kubelet does: from the start of the asked-for tail
//! (found by reading backwards), in bounded chunks, through the rotated files in order, and
//! with `follow`, on into bytes appended later, across rotations.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::Stream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::files;
use super::render::{LogRequest, Renderer};
use super::tail::{start_of_last, Position, CHUNK};

/// How often a followed log is looked at for new bytes.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// A container log opened for reading: its files, oldest first, and where to start.
pub struct LogReader {
    path: PathBuf,
    files: Vec<std::fs::File>,
    start: Position,
    request: LogRequest,
}

/// Whether the log of a followed container is still being written.
pub type StillWriting = Box<dyn Fn() -> bool + Send + Sync>;

impl LogReader {
    /// Opens the log whose live file is `path` (`NotFound` if it has none yet) and finds
    /// where `request` starts.
    pub async fn open(path: &Path, request: LogRequest) -> std::io::Result<Self> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(path, request))
            .await
            .map_err(std::io::Error::other)?
    }

    fn open_blocking(path: PathBuf, request: LogRequest) -> std::io::Result<Self> {
        let live = std::fs::File::open(&path)?;
        let mut files = Vec::new();
        for file in files::existing(&path) {
            if file == path {
                break;
            }
            // Rotated away between listing and opening: it is no longer part of the log.
            if let Ok(opened) = std::fs::File::open(&file) {
                files.push(opened);
            }
        }
        files.push(live);
        let mut start = Position { file: 0, offset: 0 };
        if let Some(since) = request.since {
            // A rotated file last written before `since` holds nothing to show.
            let since = SystemTime::from(since);
            while start.file + 1 < files.len() && files[start.file].metadata()?.modified()? < since
            {
                start.file += 1;
            }
        }
        if let Some(lines) = request.tail_lines {
            let mut sized = files
                .iter()
                .map(|f| Ok((f, f.metadata()?.len())))
                .collect::<std::io::Result<Vec<_>>>()?;
            start = start.max(start_of_last(&mut sized, lines)?);
        }
        Ok(LogReader {
            path,
            files,
            start,
            request,
        })
    }

    /// The log as asked for; with `follow`, then what is appended until `still_writing`
    /// says the container stopped (all its output read).
    pub fn stream(
        self,
        follow: Option<StillWriting>,
    ) -> impl Stream<Item = std::io::Result<Bytes>> {
        async_stream::try_stream! {
            let mut renderer = Renderer::new(&self.request);
            let mut buf = vec![0; CHUNK];
            let count = self.files.len();
            let mut current = None;
            for (index, file) in self.files.into_iter().enumerate().skip(self.start.file) {
                let mut file = tokio::fs::File::from_std(file);
                // Every file is read from its place: finding the tail moved their cursors.
                let from = if index == self.start.file { self.start.offset } else { 0 };
                file.seek(std::io::SeekFrom::Start(from)).await?;
                loop {
                    let n = file.read(&mut buf).await?;
                    if n == 0 || renderer.done() {
                        break;
                    }
                    yield renderer.feed(&buf[..n]);
                }
                if index + 1 == count {
                    current = Some(file);
                }
            }
            let (Some(mut file), Some(still_writing)) = (current, follow) else {
                yield renderer.finish();
                return;
            };
            while !renderer.done() {
                let n = file.read(&mut buf).await?;
                if n > 0 {
                    yield renderer.feed(&buf[..n]);
                    continue;
                }
                if rotated(&self.path, &file).await? {
                    // Everything is in the old file up to the rename: drain it, go on in the new.
                    while let n @ 1.. = file.read(&mut buf).await? {
                        yield renderer.feed(&buf[..n]);
                    }
                    file = tokio::fs::File::open(&self.path).await?;
                    continue;
                }
                if truncated(&mut file).await? {
                    // Emptied in place (one file allowed): start again at its beginning.
                    file.seek(std::io::SeekFrom::Start(0)).await?;
                    continue;
                }
                if !still_writing() {
                    // Bytes written just before the container stopped.
                    while let n @ 1.. = file.read(&mut buf).await? {
                        yield renderer.feed(&buf[..n]);
                    }
                    break;
                }
                tokio::time::sleep(FOLLOW_POLL).await;
            }
            yield renderer.finish();
        }
    }
}

/// Whether `path` now names another file than the one `file` is reading.
async fn rotated(path: &Path, file: &tokio::fs::File) -> std::io::Result<bool> {
    let open = file.metadata().await?;
    match tokio::fs::metadata(path).await {
        Ok(now) => Ok((now.dev(), now.ino()) != (open.dev(), open.ino())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether `file` was cut shorter than where it is being read.
async fn truncated(file: &mut tokio::fs::File) -> std::io::Result<bool> {
    let at = file.stream_position().await?;
    Ok(file.metadata().await?.len() < at)
}
