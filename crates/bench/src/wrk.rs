//! Loading an HTTP server with Debian's `wrk --latency` and reading its figures, and waiting
//! until a server listens or answers.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Longest wait for a server to listen or answer.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(60);

/// How wrk loads a server.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub threads: u32,
    pub connections: u32,
    pub seconds: u32,
}

/// What one wrk run measured.
#[derive(Debug, PartialEq)]
pub struct Load {
    pub requests_per_sec: f64,
    pub p50: String,
    pub p99: String,
    /// Answers with a status outside 2xx and 3xx.
    pub non_2xx: u64,
    /// Connect, read, write and timeout errors.
    pub socket_errors: u64,
}

impl Load {
    /// One line: `what: N req/s, p50 X, p99 Y`.
    pub fn print(&self, what: &str) {
        println!(
            "{what:<40} {:>8.0} req/s   p50 {:>9}   p99 {:>9}",
            self.requests_per_sec, self.p50, self.p99
        );
    }
}

/// The `wrk` executable, or how to install it.
pub fn executable() -> anyhow::Result<PathBuf> {
    crate::which("wrk").context("no wrk on PATH: install Debian's wrk (apt-get install wrk)")
}

/// Runs wrk against `http://ADDR/bench` and reads its figures.
pub async fn run(settings: Settings, addr: SocketAddr) -> anyhow::Result<Load> {
    run_url(settings, &format!("http://{addr}/bench"), None).await
}

/// Runs wrk against `url` (http or https), with the Lua `script` making its requests if one
/// is given, and reads its figures.
pub async fn run_url(settings: Settings, url: &str, script: Option<&Path>) -> anyhow::Result<Load> {
    let mut command = tokio::process::Command::new(executable()?);
    command
        .arg(format!("-t{}", settings.threads))
        .arg(format!("-c{}", settings.connections))
        .arg(format!("-d{}s", settings.seconds))
        .arg("--latency");
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let out = command.arg(url).output().await.context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    parse(&text).with_context(|| format!("unexpected wrk output:\n{text}"))
}

/// Requests per second, the 50th and 99th percentile latencies and the failures from wrk's
/// `--latency` output (wrk prints the failure lines only when there are failures).
fn parse(out: &str) -> Option<Load> {
    let field = |prefix: &str| {
        out.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(prefix))
            .map(|rest| rest.trim().to_string())
    };
    let non_2xx = match field("Non-2xx or 3xx responses:") {
        Some(count) => count.parse().ok()?,
        None => 0,
    };
    // "Socket errors: connect 0, read 3, write 0, timeout 12"
    let socket_errors = match field("Socket errors:") {
        Some(list) => list
            .split(',')
            .map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
            .sum::<Option<u64>>()?,
        None => 0,
    };
    Some(Load {
        requests_per_sec: field("Requests/sec:")?.parse().ok()?,
        p50: field("50%")?,
        p99: field("99%")?,
        non_2xx,
        socket_errors,
    })
}

/// A loopback TCP port nothing listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Waits until `addr` accepts connections.
pub async fn wait_listening(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on {addr} after {LISTEN_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Waits until `addr` answers `GET /bench` with 200 (a proxy routes once the pod is a ready
/// endpoint of its Service).
pub async fn wait_answering(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    while !answers_ok(addr).await {
        if Instant::now() > deadline {
            bail!("{addr} does not answer GET /bench with 200 after {LISTEN_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn answers_ok(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let request = b"GET /bench HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    let mut head = [0u8; 12];
    stream.write_all(request).await.is_ok()
        && stream.read_exact(&mut head).await.is_ok()
        && head.ends_with(b" 200")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_figures() {
        let out = "Running 10s test @ http://127.0.0.1:18080/\n  Latency Distribution\n     50%   14.37ms\n     75%   18.62ms\n     90%   23.99ms\n     99%   51.36ms\n  21156 requests in 10.02s, 2.91MB read\nRequests/sec:   2111.85\nTransfer/sec:    296.98KB\n";
        assert_eq!(
            parse(out),
            Some(Load {
                requests_per_sec: 2111.85,
                p50: "14.37ms".into(),
                p99: "51.36ms".into(),
                non_2xx: 0,
                socket_errors: 0,
            })
        );
        let failing = format!("{out}  Socket errors: connect 0, read 3, write 0, timeout 12\n  Non-2xx or 3xx responses: 41\n");
        let load = parse(&failing).expect("figures");
        assert_eq!((load.non_2xx, load.socket_errors), (41, 15));
        assert_eq!(parse("wrk: connection refused"), None);
    }
}
