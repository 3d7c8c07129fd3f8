//! Client errors; API failures keep the server's `Status`.

use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a `Status` (404, 409, 422, ...).
    #[error("{}", status_message(.status))]
    Api { status: Box<Status> },
    #[error("cannot reach {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// A streamed answer (a watch) broke off or was not text.
    #[error("reading the stream from {url}: {source}")]
    Stream {
        url: String,
        #[source]
        source: tokio_util::codec::LinesCodecError,
    },
    #[error("unexpected response from {url}: {source}")]
    Decode {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    /// A request body over the server's limit, refused before it is sent.
    #[error("the server refuses a request of {bytes} bytes: its limit is {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    /// A WebSocket (`exec`, `portforward`) could not be opened or broke off.
    #[error("WebSocket {url}: {source}")]
    WebSocket {
        url: String,
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// A kubeconfig that cannot be read or used.
    #[error("kubeconfig {}: {reason}", path.display())]
    Kubeconfig {
        path: std::path::PathBuf,
        reason: String,
    },
    /// A CA or client certificate that rustls cannot use.
    #[error("TLS {what}: {reason}")]
    Tls { what: &'static str, reason: String },
    #[error("no server URL given")]
    NoServers,
    #[error("invalid server URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
}

fn status_message(status: &Status) -> String {
    let mut message = status
        .message
        .clone()
        .unwrap_or_else(|| "request failed".into());
    let causes = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .filter(|c| !c.is_empty());
    if let Some(causes) = causes {
        // The message usually lists the causes already; add them only when it does not.
        let listed = causes.iter().all(|c| {
            c.field
                .as_ref()
                .is_none_or(|f| message.contains(f.as_str()))
        });
        if !listed {
            for cause in causes {
                message.push_str(&format!(
                    "\n  {}: {}",
                    cause.field.as_deref().unwrap_or("<object>"),
                    cause.message.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    message
}

impl ClientError {
    /// The HTTP code of an API error.
    pub fn code(&self) -> Option<u16> {
        match self {
            ClientError::Api { status } => status.code.map(|c| c as u16),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409)
    }

    pub fn is_already_exists(&self) -> bool {
        matches!(self, ClientError::Api { status } if status.reason.as_deref() == Some("AlreadyExists"))
    }

    /// 429: refused for now (an eviction its disruption budget forbids); try again later.
    pub fn is_too_many_requests(&self) -> bool {
        self.code() == Some(429)
    }

    /// The messages of the `Status` causes (why a 429 eviction was refused).
    pub fn cause_messages(&self) -> Vec<String> {
        match self {
            ClientError::Api { status } => status
                .details
                .iter()
                .flat_map(|d| d.causes.iter().flatten())
                .filter_map(|c| c.message.clone())
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn is_gone(&self) -> bool {
        self.code() == Some(410)
    }

    /// 401: the credentials (an agent's join token) were refused.
    pub fn is_unauthorized(&self) -> bool {
        self.code() == Some(401)
    }
}
