//! `pods/{name}/exec`: a command in a pod's container over a WebSocket speaking
//! `v5.channel.k8s.io`, as `kubectl exec` runs it. Output and the exit code arrive as
//! [`ExecEvent`]s; stdin, its end and terminal sizes are sent on the [`ExecStream`].

use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use skiff_api::remotecommand::{self, Channel, TerminalSize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

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

/// What an exec's WebSocket runs over: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A running exec.
pub struct ExecStream {
    socket: WebSocketStream<Box<dyn Io>>,
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
        let server = (self.servers)
            .get(self.preferred.load(Ordering::Relaxed))
            .ok_or(ClientError::NoServers)?;
        let base = match server.split_once("://") {
            Some(("https", rest)) => format!("wss://{rest}"),
            Some((_, rest)) => format!("ws://{rest}"),
            None => server.clone(),
        };
        let url = format!(
            "{base}/api/v1/namespaces/{namespace}/pods/{pod}/exec?{}",
            params.query()
        );
        let failed = |source| ClientError::WebSocket {
            url: url.clone(),
            source: Box::new(source),
        };
        let mut request = url.as_str().into_client_request().map_err(failed)?;
        let headers = request.headers_mut();
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(remotecommand::PROTOCOL),
        );
        if let Some(token) = &self.token {
            let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|e| failed(tungstenite::Error::HttpFormat(e.into())))?;
            headers.insert("Authorization", bearer);
        }
        for (name, value) in self.impersonation.iter().flat_map(|i| i.headers()) {
            let value = HeaderValue::from_str(value)
                .map_err(|e| failed(tungstenite::Error::HttpFormat(e.into())))?;
            headers.append(name, value);
        }
        let stream = self
            .connect(server)
            .await
            .map_err(|e| failed(tungstenite::Error::Io(e)))?;
        match tokio_tungstenite::client_async(request, stream).await {
            Ok((socket, _)) => Ok(ExecStream { socket, url }),
            Err(tungstenite::Error::Http(response)) => {
                let code = response.status();
                let text = response
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default()
                    .to_string();
                Err(crate::api_error(code.as_u16(), code, &text))
            }
            Err(source) => Err(failed(source)),
        }
    }
}

impl Client {
    /// A connection to `server` (`http://` or `https://` URL), over TLS for `https://`.
    async fn connect(&self, server: &str) -> std::io::Result<Box<dyn Io>> {
        let invalid =
            |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, why.to_string());
        let url = reqwest::Url::parse(server).map_err(|e| invalid(&e.to_string()))?;
        let host = url.host_str().ok_or_else(|| invalid("no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = url
            .port_or_known_default()
            .ok_or_else(|| invalid("no port"))?;
        let tcp = TcpStream::connect((host, port)).await?;
        if url.scheme() != "https" {
            return Ok(Box::new(tcp));
        }
        let config = self
            .tls
            .clone()
            .ok_or_else(|| invalid("https:// exec needs the cluster CA (a kubeconfig)"))?;
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|_| invalid("bad server name"))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?;
        Ok(Box::new(tls))
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
        ClientError::WebSocket {
            url: self.url.clone(),
            source: Box::new(source),
        }
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
