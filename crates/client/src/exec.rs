//! `pods/{name}/exec`: a command in a pod's container over a WebSocket speaking
//! `v5.channel.k8s.io`, as `kubectl exec` runs it. Output and the exit code arrive as
//! [`ExecEvent`]s; stdin, its end and terminal sizes are sent on the [`ExecStream`].

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use skiff_api::remotecommand::{self, Channel, TerminalSize};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::websocket::{websocket_error, Socket};
use crate::{Client, ClientError};

/// What to run and which streams to attach.
#[derive(Debug, Clone, Default)]
pub struct ExecParams {
    /// The container; `None`: the pod's default (its only one, or the annotated one).
    pub container: Option<String>,
    pub command: Vec<String>,
    /// Send standard input (else the command reads end of file).
    pub stdin: bool,
    /// Run on a terminal: stdout carries all output, and sizes may be sent.
    pub tty: bool,
}

/// What a running exec sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    Stdout(Bytes),
    Stderr(Bytes),
    /// The command exited with this code (the last event).
    Exited(i32),
    /// The command could not run or its status was lost: the server's message (the last event).
    Failed(String),
}

/// A running exec.
pub struct ExecStream {
    socket: Socket,
    url: String,
}

impl Client {
    /// Starts `params.command` in a container of pod `namespace/pod`. Only the preferred
    /// server is tried: a command must not run twice.
    pub async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        params: &ExecParams,
    ) -> Result<ExecStream, ClientError> {
        let path = format!(
            "/api/v1/namespaces/{namespace}/pods/{pod}/exec?{}",
            params.query()
        );
        let (socket, url) = self.websocket(&path, remotecommand::PROTOCOL).await?;
        Ok(ExecStream { socket, url })
    }
}

impl ExecParams {
    fn query(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(container) = &self.container {
            query.append_pair("container", container);
        }
        for part in &self.command {
            query.append_pair("command", part);
        }
        query.append_pair("stdin", &self.stdin.to_string());
        query.append_pair("stdout", "true");
        query.append_pair("stderr", &(!self.tty).to_string());
        query.append_pair("tty", &self.tty.to_string());
        query.finish()
    }
}

impl ExecStream {
    /// The next output or the end; `None` once the stream is over.
    pub async fn next(&mut self) -> Option<Result<ExecEvent, ClientError>> {
        loop {
            let message = match self.socket.next().await? {
                Ok(message) => message,
                Err(source) => return Some(Err(self.error(source))),
            };
            let data = match message {
                Message::Binary(data) => data,
                Message::Close(_) => return None,
                _ => continue,
            };
            let event = match remotecommand::split(&data) {
                Ok((Channel::Stdout, out)) => ExecEvent::Stdout(Bytes::copy_from_slice(out)),
                Ok((Channel::Stderr, out)) => ExecEvent::Stderr(Bytes::copy_from_slice(out)),
                Ok((Channel::Error, status)) => {
                    match serde_json::from_slice::<Value>(status)
                        .map_err(|e| e.to_string())
                        .and_then(|status| remotecommand::exit_code(&status))
                    {
                        Ok(code) => ExecEvent::Exited(code),
                        Err(message) => ExecEvent::Failed(message),
                    }
                }
                _ => continue,
            };
            return Some(Ok(event));
        }
    }

    /// Sends `data` to the command's standard input.
    pub async fn send_stdin(&mut self, data: &[u8]) -> Result<(), ClientError> {
        self.send(remotecommand::frame(Channel::Stdin, data)).await
    }

    /// Closes the command's standard input (it reads end of file).
    pub async fn close_stdin(&mut self) -> Result<(), ClientError> {
        self.send(remotecommand::frame(
            Channel::Close,
            &[Channel::Stdin.byte()],
        ))
        .await
    }

    /// Sets the terminal's size (with `tty`).
    pub async fn resize(&mut self, size: TerminalSize) -> Result<(), ClientError> {
        let json = serde_json::to_vec(&size).unwrap_or_default();
        self.send(remotecommand::frame(Channel::Resize, &json))
            .await
    }

    async fn send(&mut self, message: Vec<u8>) -> Result<(), ClientError> {
        let sent = self.socket.send(Message::Binary(message.into())).await;
        sent.map_err(|source| self.error(source))
    }

    fn error(&self, source: tungstenite::Error) -> ClientError {
        websocket_error(&self.url, source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_for_the_streams_kubectl_asks_for() {
        let params = ExecParams {
            container: Some("app".into()),
            command: vec!["sh".into(), "-c".into(), "echo hi".into()],
            stdin: true,
            tty: true,
        };
        assert_eq!(
            params.query(),
            "container=app&command=sh&command=-c&command=echo+hi&stdin=true&stdout=true&stderr=false&tty=true"
        );
    }
}
