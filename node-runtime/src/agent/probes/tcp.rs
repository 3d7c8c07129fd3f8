//! tcpSocket probes: a connection opened within the timeout is a success.

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;

use super::Outcome;

/// Connects to `host:port` and closes the connection at once.
pub async fn attempt(host: &str, port: u16, timeout: Duration) -> Outcome {
    match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Outcome::Success,
        Ok(Err(err)) => Outcome::Failure(dial_error(host, port, &err)),
        Err(_) => Outcome::Failure(format!("dial tcp {}: i/o timeout", address(host, port))),
    }
}

/// A failed connection as the kubelet words it: `dial tcp 127.0.0.1:9: connect: connection
/// refused`.
pub fn dial_error(host: &str, port: u16, err: &io::Error) -> String {
    format!(
        "dial tcp {}: connect: {}",
        address(host, port),
        os_text(err)
    )
}

/// `host:port`, an IPv6 host in brackets.
fn address(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An OS error in the C library's words, without Rust's ` (os error N)`:
/// `connection refused`.
fn os_text(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error") {
        Some(at) => &text[..at],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test(start_paused = true)]
    async fn open_ports_succeed_and_closed_ones_are_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let timeout = Duration::from_secs(1);
        assert_eq!(attempt("127.0.0.1", port, timeout).await, Outcome::Success);
        drop(listener);
        assert_eq!(
            attempt("127.0.0.1", port, timeout).await,
            Outcome::Failure(format!(
                "dial tcp 127.0.0.1:{port}: connect: connection refused"
            ))
        );
    }
}
