//! WebSockets to the API server (`exec`, `portforward`): the client's credentials and
//! impersonation as headers, over TCP or TLS, and a refusal before the upgrade as the
//! server's `Status`.

use std::sync::atomic::Ordering;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::WebSocketStream;

use crate::{Client, ClientError};

/// What a WebSocket runs over: TCP, or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open WebSocket to the API server.
pub(crate) type Socket = WebSocketStream<Box<dyn Io>>;

impl Client {
    /// A WebSocket speaking `protocol` to `path` (with its query), and its URL. Only the
    /// preferred server is tried: what the socket starts must not start twice.
    pub(crate) async fn websocket(
        &self,
        path: &str,
        protocol: &'static str,
    ) -> Result<(Socket, String), ClientError> {
        let server = (self.servers)
            .get(self.preferred.load(Ordering::Relaxed))
            .ok_or(ClientError::NoServers)?;
        let base = match server.split_once("://") {
            Some(("https", rest)) => format!("wss://{rest}"),
            Some((_, rest)) => format!("ws://{rest}"),
            None => server.clone(),
        };
        let url = format!("{base}{path}");
        let failed = |source| websocket_error(&url, source);
        let mut request = url.as_str().into_client_request().map_err(failed)?;
        let headers = request.headers_mut();
        headers.insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
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
            Ok((socket, _)) => Ok((socket, url)),
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
            .ok_or_else(|| invalid("an https:// WebSocket needs the cluster CA (a kubeconfig)"))?;
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|_| invalid("bad server name"))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?;
        Ok(Box::new(tls))
    }
}

/// The error of the WebSocket at `url`.
pub(crate) fn websocket_error(url: &str, source: tungstenite::Error) -> ClientError {
    ClientError::WebSocket {
        url: url.to_string(),
        source: Box::new(source),
    }
}
