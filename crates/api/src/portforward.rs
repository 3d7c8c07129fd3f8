//! Kubernetes' port-forward stream protocols (`pods/{name}/portforward`).
//!
//! Over a WebSocket speaking [`WEBSOCKET_PROTOCOL`] (what the official client libraries speak)
//! with the ports in `?ports=P[,Q]`: port `i` of the query gets
//! channels `2i` (data, both ways) and `2i+1` (errors, server to client, text); each binary
//! message is one channel byte and its data, and the server's first message on each channel
//! is the port, two bytes little-endian. The socket carries one connection per port; it ends
//! when the server closes it. [`WEBSOCKET_PROTOCOL_V5`] adds remotecommand v5's close
//! signal: the message `[255, c]` says its sender writes no more on channel `c` (a half
//! close, as a TCP FIN); `skiff port-forward` and the server's WebSocket to a node agent
//! speak it.
//!
//! kubectl speaks SPDY/3.1 instead: over an HTTP upgrade to `SPDY/3.1` with
//! `X-Stream-Protocol-Version: portforward.k8s.io` (kubectl before 1.31), or tunnelled in the
//! binary messages of a WebSocket speaking [`SPDY_OVER_WEBSOCKET`] (1.31 and later). Each
//! local connection opens two SPDY streams that carry [`PORT_HEADER`], a
//! [`REQUEST_ID_HEADER`] shared by the pair and a [`STREAM_TYPE_HEADER`] of
//! [`STREAM_TYPE_DATA`] or [`STREAM_TYPE_ERROR`].

/// The channel WebSocket subprotocol.
pub const WEBSOCKET_PROTOCOL: &str = "v4.channel.k8s.io";

/// The channel WebSocket subprotocol with the close signal.
pub const WEBSOCKET_PROTOCOL_V5: &str = "v5.channel.k8s.io";

/// The channel of the close signal (v5).
pub const CLOSE_CHANNEL: u8 = 255;

/// The close signal of `channel`: its sender writes no more on it.
pub fn close_message(channel: u8) -> Vec<u8> {
    vec![CLOSE_CHANNEL, channel]
}

/// The SPDY upgrade's `X-Stream-Protocol-Version`.
pub const SPDY_PROTOCOL: &str = "portforward.k8s.io";

/// The WebSocket subprotocol that tunnels SPDY (kubectl 1.31 and later).
pub const SPDY_OVER_WEBSOCKET: &str = "SPDY/3.1+portforward.k8s.io";

/// The stream header naming the remote port.
pub const PORT_HEADER: &str = "port";
/// The stream header pairing a connection's data and error streams.
pub const REQUEST_ID_HEADER: &str = "requestid";
/// The stream header saying which of the pair a stream is.
pub const STREAM_TYPE_HEADER: &str = "streamtype";
/// [`STREAM_TYPE_HEADER`] of the stream carrying the connection's bytes.
pub const STREAM_TYPE_DATA: &str = "data";
/// [`STREAM_TYPE_HEADER`] of the stream carrying the server's error message, if any.
pub const STREAM_TYPE_ERROR: &str = "error";

/// The data channel of the `index`th port of a channel WebSocket.
pub fn data_channel(index: usize) -> u8 {
    u8::try_from(2 * index).expect("at most 127 ports")
}

/// The error channel of the `index`th port of a channel WebSocket.
pub fn error_channel(index: usize) -> u8 {
    data_channel(index) + 1
}

/// The most ports one channel WebSocket carries (two channels each, in one byte).
pub const MAX_WEBSOCKET_PORTS: usize = 127;

/// The server's first message on a channel: the channel byte and the port, little-endian.
pub fn port_message(channel: u8, port: u16) -> Vec<u8> {
    let [low, high] = port.to_le_bytes();
    vec![channel, low, high]
}

/// A message carrying `data` on `channel`.
pub fn data_message(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(data.len() + 1);
    message.push(channel);
    message.extend_from_slice(data);
    message
}

/// The ports of the `key` parameters of a query string (see [`parse_ports`]).
pub fn ports_in_query(query: &str, key: &str) -> Result<Vec<u16>, String> {
    let values: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, value)| value.into_owned())
        .collect();
    parse_ports(values.iter().map(String::as_str))
}

/// Parses `ports` parameters (each one port or a comma-separated list) into ports, naming a
/// bad one.
pub fn parse_ports<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for value in values {
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse::<u16>() {
                Ok(port) if port > 0 => ports.push(port),
                _ => {
                    return Err(format!(
                        "ports: invalid port {part:?}: a port is a number from 1 to 65535"
                    ))
                }
            }
        }
    }
    if ports.is_empty() {
        return Err("ports: required value: name at least one port to forward".into());
    }
    if ports.len() > MAX_WEBSOCKET_PORTS {
        return Err(format!(
            "ports: too many ports ({}): at most {MAX_WEBSOCKET_PORTS} in one request",
            ports.len()
        ));
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_read_from_lists_and_repeats_and_bad_ones_named() {
        assert_eq!(parse_ports(["80,443", "7000"]), Ok(vec![80, 443, 7000]));
        assert!(parse_ports(["80,http"]).unwrap_err().contains("\"http\""));
        assert!(parse_ports(["0"]).unwrap_err().contains("\"0\""));
        assert!(parse_ports(Vec::<&str>::new())
            .unwrap_err()
            .contains("required"));
    }

    #[test]
    fn channels_pair_up_and_the_first_message_is_the_port() {
        assert_eq!((data_channel(0), error_channel(0)), (0, 1));
        assert_eq!((data_channel(2), error_channel(2)), (4, 5));
        assert_eq!(port_message(1, 7000), vec![1, 0x58, 0x1b]);
        assert_eq!(data_message(4, b"hi"), b"\x04hi");
        assert_eq!(
            ports_in_query("ports=80&port=1&ports=90,91", "ports"),
            Ok(vec![80, 90, 91])
        );
    }
}
