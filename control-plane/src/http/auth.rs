//! Join tokens: checking one against its stored Secret, node tunnels that only an agent with
//! a valid one opens, and the agent-only writes (registering a Node, node status, node
//! Leases) that need a bearer token at all.

use axum::http::{header, HeaderMap, Method};
use skiff_api::join_token::{self, JoinToken};
use skiff_api::k8s_openapi::api::core::v1::Secret;
use skiff_api::k8s_openapi::jiff::Timestamp;
use skiff_api::resources;

use super::path::ApiPath;
use crate::error::ApiError;
use crate::registry::{typed, Registry};

/// The namespace of node heartbeat Leases.
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Refuses a write only an agent makes (registering a Node, node status, node Leases) when it
/// carries no bearer token. Which token it is, and whether it is valid, the authentication
/// layer has already decided once for the request (over TLS; the loopback `--insecure-http`
/// listener acts as an admin anyway): it is not looked up again here.
pub fn authorize(method: &Method, target: &ApiPath, headers: &HeaderMap) -> Result<(), ApiError> {
    if needs_token(method, target) && !headers.contains_key(header::AUTHORIZATION) {
        return Err(ApiError::Unauthorized(
            "registering a node and renewing its lease need a join token: create one with \
             `skiff token create` and pass it to `skiff agent --token`"
                .into(),
        ));
    }
    Ok(())
}

/// Refuses a request that carries no valid join token (a node tunnel: only an agent opens one).
pub async fn require_join_token(registry: &Registry, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::Unauthorized(
            "a node tunnel needs the node's join token (`skiff agent --token`)".into(),
        ));
    };
    let text = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::Unauthorized("expected `Authorization: Bearer <join token>`".into())
        })?;
    let token = JoinToken::parse(text).map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    verify(registry, &token).await
}

/// Node registration, node status and node Leases: what only an agent writes.
fn needs_token(method: &Method, target: &ApiPath) -> bool {
    let writes = !matches!(*method, Method::GET | Method::HEAD);
    match target.kind.kind {
        "Node" => match target.subresource.as_deref() {
            None => *method == Method::POST,
            Some("status") => writes,
            // `proxy` reaches the agent; users will need their own credentials (issue 14).
            Some(_) => false,
        },
        "Lease" => writes && target.namespace.as_deref() == Some(NODE_LEASE_NAMESPACE),
        _ => false,
    }
}

/// Checks `token` against its stored Secret.
pub(super) async fn verify(registry: &Registry, token: &JoinToken) -> Result<(), ApiError> {
    let refused = |why: String| ApiError::Unauthorized(why);
    let stored = match registry
        .get(
            resources::of::<Secret>(),
            Some(join_token::NAMESPACE),
            &token.secret_name(),
        )
        .await
    {
        Ok(value) => typed::from_value::<Secret>(value)?,
        Err(ApiError::NotFound { .. }) => {
            return Err(refused(join_token::TokenError::Wrong.to_string()))
        }
        Err(err) => return Err(err),
    };
    token
        .verify(&stored, Timestamp::now())
        .map_err(|e| refused(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::path;

    #[test]
    fn only_agent_writes_need_a_token() {
        let cases = [
            (Method::POST, "/api/v1/nodes", true),
            (Method::PATCH, "/api/v1/nodes/n1/status", true),
            (Method::PATCH, "/api/v1/nodes/n1", false),
            (Method::GET, "/api/v1/nodes/n1/status", false),
            (Method::DELETE, "/api/v1/nodes/n1", false),
            (Method::POST, "/api/v1/nodes/n1/proxy", false),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
                true,
            ),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/default/leases/x",
                false,
            ),
            (Method::POST, "/api/v1/namespaces/default/pods", false),
        ];
        for (method, uri, expected) in cases {
            let target = path::parse(uri).expect("path");
            assert_eq!(needs_token(&method, &target), expected, "{method} {uri}");
        }
    }
}
