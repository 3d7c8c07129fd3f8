//! The agent's HTTP endpoint for logs, as the kubelet's `/containerLogs/...`; the API server
//! proxies `pods/{name}/log` to it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use super::log_index::LogIndex;
use crate::runtime::logs::{LogReader, LogRequest, StillWriting};

/// What the log endpoint serves from: where each container's log files are.
#[derive(Clone)]
pub struct LogServerState {
    pub index: Arc<LogIndex>,
}

/// The kubelet's `PodLogOptions` as query parameters.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    #[serde(default)]
    follow: bool,
    tail_lines: Option<u64>,
    limit_bytes: Option<u64>,
    since_seconds: Option<u64>,
    since_time: Option<Timestamp>,
    #[serde(default)]
    timestamps: bool,
    #[serde(default)]
    previous: bool,
}

impl LogQuery {
    fn request(&self) -> LogRequest {
        let since_seconds = self.since_seconds.map(|s| {
            Timestamp::now()
                .checked_sub(SignedDuration::from_secs(s.min(i64::MAX as u64) as i64))
                .unwrap_or(Timestamp::MIN)
        });
        LogRequest {
            tail_lines: self.tail_lines,
            limit_bytes: self.limit_bytes,
            since: since_seconds.or(self.since_time),
            timestamps: self.timestamps,
        }
    }
}

/// The kubelet-style log endpoint (`/containerLogs/...`) and a health check.
pub fn router(state: LogServerState) -> Router {
    Router::new()
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

fn not_found(message: String) -> Response {
    (StatusCode::NOT_FOUND, message).into_response()
}

async fn container_logs(
    State(state): State<LogServerState>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    Query(query): Query<LogQuery>,
) -> Response {
    let Some((_, log)) = state.index.get(&namespace, &pod, &container) else {
        return not_found(format!(
            "container {container} of pod {namespace}/{pod} is not on this node"
        ));
    };
    let path = if query.previous {
        match log.previous {
            Some(previous) => previous,
            None => {
                return not_found(format!(
                    "previous terminated container {container} in pod {pod} not found"
                ))
            }
        }
    } else {
        match log.current {
            Some(current) => current,
            None => {
                return not_found(format!(
                    "container {container} in pod {pod} has not started yet"
                ))
            }
        }
    };
    let reader = match LogReader::open(&path, query.request()).await {
        Ok(reader) => reader,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return not_found(format!(
                "container {container} in pod {pod} has not started yet"
            ))
        }
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading {}: {e}", path.display()),
            )
                .into_response()
        }
    };
    let follow = (query.follow && !query.previous).then(|| -> StillWriting {
        // Followed until the container stops or restarts (its log is then another file).
        Box::new(move || {
            state
                .index
                .get(&namespace, &pod, &container)
                .is_some_and(|(_, log)| log.running && log.current.as_ref() == Some(&path))
        })
    });
    Body::from_stream(reader.stream(follow)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::log_index::ContainerLog;
    use futures::StreamExt;
    use std::time::Duration;

    async fn serve(state: LogServerState) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router(state)).await.expect("serve") });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn serves_current_previous_and_followed_logs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Arc::new(LogIndex::default());
        let state = LogServerState {
            index: index.clone(),
        };
        let file = |attempt| dir.path().join(format!("c/{attempt}.log"));
        for (attempt, text) in [(0, "first run\n"), (1, "second run\n")] {
            let path = file(attempt);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, text).expect("write");
        }
        let log = |running| ContainerLog {
            current: Some(file(1)),
            previous: Some(file(0)),
            running,
        };
        index.set("ns", "p", "uid", "c", log(true));
        let url = serve(state).await;
        let get = |q: &str| reqwest::get(format!("{url}/containerLogs/ns/p/c{q}"));
        assert_eq!(
            get("").await.expect("get").text().await.expect("text"),
            "second run\n"
        );
        assert_eq!(
            get("?previous=true")
                .await
                .expect("get")
                .text()
                .await
                .expect("text"),
            "first run\n"
        );
        assert_eq!(
            reqwest::get(format!("{url}/containerLogs/ns/p/other"))
                .await
                .expect("get")
                .status(),
            404
        );

        // Follow sees appended bytes and ends when the container stops.
        let mut stream = get("?follow=true").await.expect("follow").bytes_stream();
        let mut appended = std::fs::OpenOptions::new()
            .append(true)
            .open(file(1))
            .expect("open");
        std::io::Write::write_all(&mut appended, b"more\n").expect("append");
        let mut body = Vec::new();
        let wait = Duration::from_secs(5);
        while !body.ends_with(b"more\n") {
            let chunk = tokio::time::timeout(wait, stream.next())
                .await
                .expect("the appended line in time")
                .expect("still following")
                .expect("chunk");
            body.extend_from_slice(&chunk);
        }
        index.set("ns", "p", "uid", "c", log(false));
        while let Some(chunk) = tokio::time::timeout(wait, stream.next())
            .await
            .expect("ends once the container stopped")
        {
            body.extend_from_slice(&chunk.expect("chunk"));
        }
        assert_eq!(String::from_utf8_lossy(&body), "second run\nmore\n");
    }

    /// Reads chunks of `stream` until `body` ends with `want`.
    async fn read_until<S>(stream: &mut S, body: &mut Vec<u8>, want: &[u8])
    where
        S: futures::Stream<Item = reqwest::Result<axum::body::Bytes>> + Unpin,
    {
        while !body.ends_with(want) {
            let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{:?} in time; got {:?}",
                        String::from_utf8_lossy(want),
                        String::from_utf8_lossy(body)
                    )
                })
                .expect("still following")
                .expect("chunk");
            body.extend_from_slice(&chunk);
        }
    }

    #[tokio::test]
    async fn follows_a_log_across_rotations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Arc::new(LogIndex::default());
        let path = dir.path().join("0.log");
        std::fs::write(&path, "first\n").expect("write");
        let log = |running| ContainerLog {
            current: Some(path.clone()),
            previous: None,
            running,
        };
        index.set("ns", "p", "uid", "c", log(true));
        let url = serve(LogServerState {
            index: index.clone(),
        })
        .await;
        let mut stream = reqwest::get(format!("{url}/containerLogs/ns/p/c?follow=true"))
            .await
            .expect("follow")
            .bytes_stream();
        let mut body = Vec::new();
        read_until(&mut stream, &mut body, b"first\n").await;
        // Rotated as logrotate does: the live file renamed to `.1`, a new, shorter one in its place.
        for (n, line) in ["second\n", "3\n", "4\n"].into_iter().enumerate() {
            let older = dir.path().join(format!("0.log.{}", n + 1));
            std::fs::rename(&path, &older).expect("rotate");
            std::fs::write(&path, line).expect("write");
            read_until(&mut stream, &mut body, line.as_bytes()).await;
        }
        index.set("ns", "p", "uid", "c", log(false));
        while let Some(chunk) = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("ends once the container stopped")
        {
            body.extend_from_slice(&chunk.expect("chunk"));
        }
        assert_eq!(String::from_utf8_lossy(&body), "first\nsecond\n3\n4\n");
    }

    #[tokio::test]
    async fn follows_the_log_writer_through_its_rotations() {
        use crate::runtime::logs::{LogLimits, LogWriter, Stream};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        // Every record (about 45 bytes) passes the 64-byte cap, so every line rotates.
        let limits = LogLimits {
            max_size: 64,
            max_files: 2,
            min_free: 0,
        };
        let writer = LogWriter::open(path.clone(), limits).expect("open");
        writer.write(Stream::Stdout, b"line 0\n").expect("write");
        let index = Arc::new(LogIndex::default());
        let log = |running| ContainerLog {
            current: Some(path.clone()),
            previous: None,
            running,
        };
        index.set("ns", "p", "uid", "c", log(true));
        let url = serve(LogServerState {
            index: index.clone(),
        })
        .await;
        let mut stream = reqwest::get(format!("{url}/containerLogs/ns/p/c?follow=true"))
            .await
            .expect("follow")
            .bytes_stream();
        let mut body = Vec::new();
        let mut expected = String::new();
        for i in 0..5 {
            let line = format!("line {i}\n");
            if i > 0 {
                writer
                    .write(Stream::Stdout, line.as_bytes())
                    .expect("write");
            }
            read_until(&mut stream, &mut body, line.as_bytes()).await;
            expected.push_str(&line);
        }
        assert_eq!(String::from_utf8_lossy(&body), expected);
        assert!(dir.path().join("0.log.1").exists() && !dir.path().join("0.log.2").exists());
    }

    #[tokio::test]
    async fn serves_tails_byte_limits_times_and_timestamps_of_a_rotated_log() {
        use crate::runtime::logs::{LogLimits, LogWriter, Stream};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        let limits = LogLimits {
            max_size: 4096,
            max_files: 3,
            min_free: 0,
        };
        let writer = LogWriter::open(path.clone(), limits).expect("open");
        for i in 0..1000 {
            writer
                .write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .expect("write");
        }
        let on_disk: u64 = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").metadata().expect("meta").len())
            .sum();
        assert!(on_disk <= 3 * 4096, "{on_disk} bytes of logs on disk");
        let index = Arc::new(LogIndex::default());
        index.set(
            "ns",
            "p",
            "uid",
            "c",
            ContainerLog {
                current: Some(path),
                previous: None,
                running: false,
            },
        );
        let url = serve(LogServerState { index }).await;
        let get = |q: &str| {
            let url = format!("{url}/containerLogs/ns/p/c?{q}");
            async move {
                reqwest::get(url)
                    .await
                    .expect("get")
                    .text()
                    .await
                    .expect("text")
            }
        };
        assert_eq!(get("tailLines=2").await, "line 998\nline 999\n");
        assert_eq!(get("tailLines=1&limitBytes=6").await, "line 9");
        assert_eq!(get("sinceSeconds=3600&tailLines=1").await, "line 999\n");
        assert_eq!(get("sinceTime=2999-01-01T00:00:00Z").await, "");
        let stamped = get("tailLines=1&timestamps=true").await;
        let (time, line) = stamped.split_once(' ').expect("a timestamp");
        assert!(time.parse::<Timestamp>().is_ok(), "{stamped:?}");
        assert_eq!(line, "line 999\n");
        let all = get("").await;
        assert!(
            all.ends_with("line 999\n") && all.len() < 3 * 4096,
            "{all:?}"
        );
    }
}
