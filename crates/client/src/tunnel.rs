//! The agent's end of a node tunnel: `GET /skiff/v1/nodes/{node}/tunnel` upgraded to
//! `skiff-tunnel` on one server, with the client's own transport and credentials, so that the
//! tunnel goes wherever and however the client's other calls go.

use reqwest::header::{CONNECTION, UPGRADE};
use reqwest::StatusCode;

use crate::{Client, ClientError};

/// The `Upgrade` token of a node tunnel (the server's `skiff_net::tunnel::PROTOCOL`).
const PROTOCOL: &str = "skiff-tunnel";

/// An open tunnel connection: bytes both ways, for the caller to serve HTTP/2 on.
pub type TunnelIo = reqwest::Upgraded;

impl Client {
    /// Opens `node`'s tunnel to `server` (one of [`Client::servers`]); a server refuses a
    /// caller without the node's credential.
    pub async fn open_tunnel(&self, server: &str, node: &str) -> Result<TunnelIo, ClientError> {
        let url = format!("{server}/skiff/v1/nodes/{node}/tunnel");
        let mut request = self
            .http
            .current()
            .get(&url)
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, PROTOCOL);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let failed = |source| ClientError::Transport {
            url: url.clone(),
            source,
        };
        let response = request.send().await.map_err(failed)?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            let code = response.status();
            let text = response.text().await.map_err(failed)?;
            return Err(crate::api_error(code.as_u16(), code, &text));
        }
        response.upgrade().await.map_err(failed)
    }
}
