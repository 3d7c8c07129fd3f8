//! One request and its reply over a plain TCP connection, for tests of guests that serve.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends `request` on `stream` and reads the reply until the peer closes or `len` bytes came,
/// waiting at most `timeout` for each read.
pub fn exchange(
    mut stream: TcpStream,
    request: &[u8],
    len: Option<usize>,
    timeout: Duration,
) -> std::io::Result<String> {
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(request)?;
    let mut reply = Vec::new();
    match len {
        Some(len) => {
            reply.resize(len, 0);
            stream.read_exact(&mut reply)?;
        }
        None => {
            stream.read_to_end(&mut reply)?;
        }
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}
