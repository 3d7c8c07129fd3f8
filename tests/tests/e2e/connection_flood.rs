//! A flood of idle connections (issue 11, finding 4): a dev server whose descriptor limit is
//! far below the flood keeps taking writes, closes the idle and slow-header connections, and
//! its store never fails for want of descriptors. The 20,000 connections against the
//! default limit are scaled down here to 600 against a limit of 512.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;
use skiff_e2e::DevServer;

/// The server's descriptor limit (soft and hard).
const NOFILE: u64 = 512;
/// Idle connections opened at once: more than the server has descriptors.
const FLOOD: usize = 600;
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long past the idle timeout a connection may stay open.
const MARGIN: Duration = Duration::from_secs(20);

/// Whether the server closed `stream` within `within` (end of stream or a reset, no data).
fn closed_within(stream: &mut TcpStream, within: Duration) -> anyhow::Result<bool> {
    stream.set_read_timeout(Some(within))?;
    let mut buf = [0u8; 1024];
    Ok(match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(err) => err.kind() == std::io::ErrorKind::ConnectionReset,
    })
}

#[test]
fn idle_connections_beyond_the_descriptor_limit_neither_stop_writes_nor_break_the_store(
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let idle = IDLE_TIMEOUT.as_secs().to_string();
    let server = DevServer::start_limited(
        &tmp.path().join("data"),
        true,
        &["--idle-timeout", &idle],
        Some(NOFILE),
    )?;
    let addr = server.url().trim_start_matches("https://").to_string();
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        flood.push(TcpStream::connect(&addr)?);
    }

    // Writes on new connections go on while the flood holds.
    let http = skiff_e2e::https_client_builder(&server.url())?
        .timeout(Duration::from_secs(15))
        .pool_max_idle_per_host(0)
        .build()?;
    let url = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    for i in 0..30 {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": format!("during-flood-{i}")}, "data": {"i": "x"}});
        let response = http.post(&url).json(&body).send();
        let status = response.as_ref().map(|r| r.status().as_u16());
        assert!(
            matches!(status, Ok(201)),
            "write {i} during the flood: {response:?}\n{}",
            server.log()
        );
    }

    // Every idle connection is closed: made room for the writes, or timed out.
    for (i, stream) in flood.iter_mut().enumerate() {
        assert!(
            closed_within(stream, IDLE_TIMEOUT + MARGIN)?,
            "idle connection {i} of {FLOOD} is still open"
        );
    }
    drop(flood);

    // A slow (slowloris) client, here one whose TLS handshake never completes (the start of
    // a ClientHello record), is closed after the idle timeout, unanswered.
    let mut slow = TcpStream::connect(&addr)?;
    let start = Instant::now();
    slow.write_all(b"\x16\x03\x01\x02")?;
    assert!(
        closed_within(&mut slow, IDLE_TIMEOUT + MARGIN)?,
        "a slow-handshake connection is still open after {:?}",
        start.elapsed()
    );
    assert!(start.elapsed() >= IDLE_TIMEOUT - Duration::from_secs(1));

    // The store never ran out of descriptors and the server says it is healthy.
    for path in ["/healthz", "/readyz"] {
        let response = http.get(format!("{}{path}", server.url())).send()?;
        assert_eq!(response.status().as_u16(), 200, "{path}: {}", server.log());
    }
    let log = server.log();
    assert!(
        !log.contains("raft storage failed") && !log.contains("stops serving"),
        "the store failed during the flood:\n{log}"
    );
    let list: serde_json::Value = http.get(&url).send()?.error_for_status()?.json()?;
    let written = list["items"].as_array().map_or(0, Vec::len);
    assert!(written >= 30, "{written} of the 30 writes are listed");
    Ok(())
}
