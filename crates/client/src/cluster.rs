//! The control plane's own endpoints: the Raft group and its members (`/skiff/v1/cluster`),
//! backups, Secrets key rotation and the cluster CA (`/cacerts`).

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{api_error, Client, ClientError};

impl Client {
    /// The answering control-plane member's view of the Raft group (`/skiff/v1/cluster`);
    /// `consistent`: after the member has caught up with the leader.
    pub async fn cluster_status(&self, consistent: bool) -> Result<Value, ClientError> {
        let path = if consistent {
            "/skiff/v1/cluster?consistent=true"
        } else {
            "/skiff/v1/cluster"
        };
        self.json(Method::GET, path, None).await
    }

    /// The cluster CA (PEM) the server serves at `/cacerts`; `None` from a server without TLS.
    pub async fn cluster_ca(&self) -> Result<Option<String>, ClientError> {
        let response = self.send(Method::GET, "/cacerts", None).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let url = response.url().to_string();
        if !response.status().is_success() {
            let code = response.status();
            let text = response.text().await.unwrap_or_default();
            return Err(api_error(code.as_u16(), code, &text));
        }
        let text = response
            .text()
            .await
            .map_err(|source| ClientError::Transport { url, source })?;
        Ok(Some(text))
    }

    /// Adds a control-plane member (`skiff cluster add`).
    pub async fn add_member(&self, name: &str, peer_address: &str) -> Result<Value, ClientError> {
        let body = serde_json::json!({"name": name, "peerAddress": peer_address});
        self.json(Method::POST, "/skiff/v1/cluster/members", Self::body(&body))
            .await
    }

    /// Removes a control-plane member (`skiff cluster remove`).
    pub async fn remove_member(&self, name: &str) -> Result<Value, ClientError> {
        let path = format!("/skiff/v1/cluster/members/{name}");
        self.json(Method::DELETE, &path, None).await
    }

    /// A backup of the whole store (`/skiff/v1/backup`), for `skiff backup restore`.
    pub async fn backup(&self) -> Result<Vec<u8>, ClientError> {
        let response = self.checked(Method::GET, "/skiff/v1/backup", None).await?;
        let url = response.url().to_string();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ClientError::Transport { url, source })?;
        Ok(bytes.to_vec())
    }

    /// `skiff secrets rotate-key`: a new encryption key for Secrets (unless `rewrite_only`),
    /// then every Secret rewritten under the writing key; the server's account of it.
    pub async fn rotate_secrets_key(&self, rewrite_only: bool) -> Result<Value, ClientError> {
        let path = format!("/skiff/v1/secrets/rotate-key?rewriteOnly={rewrite_only}");
        self.json(Method::POST, &path, None).await
    }
}
