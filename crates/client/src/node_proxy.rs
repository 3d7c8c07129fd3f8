//! Requests to a node's agent through the API server's node proxy
//! (`/api/v1/nodes/{node}/proxy/...`), as `kubectl get --raw` reaches a kubelet.

use std::sync::atomic::Ordering;

use reqwest::Method;
use serde_json::Value;

use crate::{Client, ClientError};

impl Client {
    /// A request to `node`'s agent through the API server's node proxy
    /// (`/api/v1/nodes/{node}/proxy{path_and_query}`), answered as JSON.
    pub async fn node_proxy(
        &self,
        method: Method,
        node: &str,
        path_and_query: &str,
    ) -> Result<Value, ClientError> {
        let path = format!("/api/v1/nodes/{node}/proxy{path_and_query}");
        self.json(method, &path, None).await
    }

    /// POSTs a streamed body (of any size: `skiff image import` sends a tarball) to `node`'s
    /// agent through the API server's node proxy, and decodes the JSON answer. A stream cannot
    /// be sent twice, so only the preferred server is tried.
    pub async fn node_proxy_upload(
        &self,
        node: &str,
        path_and_query: &str,
        content_type: &str,
        body: reqwest::Body,
    ) -> Result<Value, ClientError> {
        let server = (self.servers)
            .get(self.preferred.load(Ordering::Relaxed))
            .ok_or(ClientError::NoServers)?;
        let url = format!("{server}/api/v1/nodes/{node}/proxy{path_and_query}");
        let mut request = self
            .http
            .current()
            .post(&url)
            .header("Content-Type", content_type)
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in self.impersonation.iter().flat_map(|i| i.headers()) {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        Self::decode(Self::check(response).await?).await
    }
}
