//! Kubernetes' remotecommand stream protocol `v5.channel.k8s.io` (what `kubectl exec` speaks
//! over a WebSocket): each binary message is one channel byte and its data. The error
//! channel carries a `metav1.Status` once, at the end: `Success`, or `Failure` with reason
//! `NonZeroExitCode` and the code as its `ExitCode` cause. `v4.channel.k8s.io` (the client
//! libraries' WebSocket, and every SPDY client) is the same without the close signal; over
//! SPDY each channel is a stream of its own, named by its [`STREAM_TYPE_HEADER`].

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The WebSocket subprotocol (`Sec-WebSocket-Protocol`).
pub const PROTOCOL: &str = "v5.channel.k8s.io";

/// The protocol before the close signal: the client libraries' WebSocket subprotocol, and
/// the stream protocol (`X-Stream-Protocol-Version`) of SPDY clients.
pub const PROTOCOL_V4: &str = "v4.channel.k8s.io";

/// The SPDY header naming what a stream carries: `stdin`, `stdout`, `stderr`, `error` or
/// `resize`.
pub use crate::portforward::STREAM_TYPE_HEADER;

/// A message's channel, its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Stdin,
    Stdout,
    Stderr,
    /// The final `metav1.Status`.
    Error,
    /// A terminal size, as JSON `{"Width":..,"Height":..}`.
    Resize,
    /// v5: the sender closes the channel named by the data's one byte (stdin's end of file).
    Close,
}

impl Channel {
    /// The channel's byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            Self::Stdin => 0,
            Self::Stdout => 1,
            Self::Stderr => 2,
            Self::Error => 3,
            Self::Resize => 4,
            Self::Close => 255,
        }
    }

    /// The channel a SPDY stream of `stream_type` carries (the close signal has none).
    pub fn of_stream_type(stream_type: &str) -> Option<Self> {
        Some(match stream_type {
            "stdin" => Self::Stdin,
            "stdout" => Self::Stdout,
            "stderr" => Self::Stderr,
            "error" => Self::Error,
            "resize" => Self::Resize,
            _ => return None,
        })
    }

    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => Self::Stdin,
            1 => Self::Stdout,
            2 => Self::Stderr,
            3 => Self::Error,
            4 => Self::Resize,
            255 => Self::Close,
            _ => return None,
        })
    }
}

/// A message that is not of the protocol.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("an empty remotecommand message has no channel")]
    Empty,
    #[error("remotecommand channel {0} does not exist")]
    UnknownChannel(u8),
}

/// The message carrying `data` on `channel`.
pub fn frame(channel: Channel, data: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(data.len() + 1);
    message.push(channel.byte());
    message.extend_from_slice(data);
    message
}

/// A message's channel and data.
pub fn split(message: &[u8]) -> Result<(Channel, &[u8]), FrameError> {
    let (&byte, data) = message.split_first().ok_or(FrameError::Empty)?;
    let channel = Channel::from_byte(byte).ok_or(FrameError::UnknownChannel(byte))?;
    Ok((channel, data))
}

/// A terminal size on the resize channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TerminalSize {
    pub width: u16,
    pub height: u16,
}

/// The error channel's status for a command that exited with `code`.
pub fn exit_status(code: i32) -> Value {
    if code == 0 {
        return json!({"kind": "Status", "apiVersion": "v1", "status": "Success"});
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// The error channel's status for a command that could not run (no exit code): `message`
/// says why, as `kubectl exec` prints it.
pub fn failure(message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
    })
}

/// The exit code an error-channel status reports, or the failure's message when the command
/// did not run (`Failure` without an exit code).
pub fn exit_code(status: &Value) -> Result<i32, String> {
    if status.get("status").and_then(Value::as_str) == Some("Success") {
        return Ok(0);
    }
    let code = status
        .pointer("/details/causes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|cause| cause.get("reason").and_then(Value::as_str) == Some("ExitCode"))
        .find_map(|cause| cause.get("message")?.as_str()?.parse().ok());
    code.ok_or_else(|| {
        status
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("the command failed")
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let message = frame(Channel::Stdout, b"hi\n");
        assert_eq!(message, b"\x01hi\n");
        assert_eq!(split(&message), Ok((Channel::Stdout, &b"hi\n"[..])));
        assert_eq!(split(&[255, 0]), Ok((Channel::Close, &[0u8][..])));
        assert_eq!(split(&[]), Err(FrameError::Empty));
        assert_eq!(split(&[7, 1]), Err(FrameError::UnknownChannel(7)));
        assert_eq!(Channel::of_stream_type("stderr"), Some(Channel::Stderr));
        assert_eq!(Channel::of_stream_type("data"), None);
    }

    #[test]
    fn exit_codes_travel_in_the_status() {
        for code in [0, 3, 137] {
            assert_eq!(exit_code(&exit_status(code)), Ok(code));
        }
        let failed = failure("exec is not supported by the wasm runtime");
        assert_eq!(
            exit_code(&failed),
            Err("exec is not supported by the wasm runtime".into())
        );
    }

    #[test]
    fn resize_is_kubernetes_json() {
        let size: TerminalSize = serde_json::from_str(r#"{"Width":100,"Height":40}"#).unwrap();
        assert_eq!(
            size,
            TerminalSize {
                width: 100,
                height: 40
            }
        );
    }
}
