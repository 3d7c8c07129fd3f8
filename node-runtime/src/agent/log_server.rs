//! The agent's HTTP endpoint for logs, as the kubelet's `/containerLogs/...`; the API server
//! proxies `pods/{name}/log` to it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::log_index::LogIndex;

/// How often a followed log is checked for new bytes.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub struct LogServerState {
    pub index: Arc<LogIndex>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    #[serde(default)]
    follow: bool,
    tail_lines: Option<usize>,
    #[serde(default)]
    previous: bool,
}

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
    let content = match tokio::fs::read(&path).await {
        Ok(content) => content,
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
    let start = query
        .tail_lines
        .map(|n| tail_offset(&content, n))
        .unwrap_or(0);
    let initial = Bytes::copy_from_slice(&content[start..]);
    if !query.follow || query.previous {
        return initial.into_response();
    }
    let offset = content.len() as u64;
    let stream = follow(state, (namespace, pod, container), path, offset, initial);
    Body::from_stream(stream).into_response()
}

/// Streams `initial`, then bytes appended to the file until the container stops or restarts.
fn follow(
    state: LogServerState,
    (namespace, pod, container): (String, String, String),
    path: PathBuf,
    mut offset: u64,
    initial: Bytes,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    async_stream::try_stream! {
        if !initial.is_empty() {
            yield initial;
        }
        loop {
            let still_running = state
                .index
                .get(&namespace, &pod, &container)
                .is_some_and(|(_, log)| log.running && log.current.as_ref() == Some(&path));
            let mut file = tokio::fs::File::open(&path).await?;
            file.seek(std::io::SeekFrom::Start(offset)).await?;
            let mut fresh = Vec::new();
            file.read_to_end(&mut fresh).await?;
            if !fresh.is_empty() {
                offset += fresh.len() as u64;
                yield Bytes::from(fresh);
            } else if !still_running {
                break;
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    }
}

/// Byte offset where the last `lines` lines of `content` start.
fn tail_offset(content: &[u8], lines: usize) -> usize {
    if lines == 0 {
        return content.len();
    }
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    body.iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(lines - 1)
        .map(|(i, _)| i + 1)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::log_index::ContainerLog;

    #[test]
    fn tails_lines() {
        let text = b"a\nb\nc\n";
        assert_eq!(&text[tail_offset(text, 2)..], b"b\nc\n");
        assert_eq!(&text[tail_offset(text, 5)..], b"a\nb\nc\n");
        assert_eq!(&text[tail_offset(text, 0)..], b"");
        assert_eq!(&b"x\ny"[tail_offset(b"x\ny", 1)..], b"y");
    }

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
        use futures::StreamExt;
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
}
