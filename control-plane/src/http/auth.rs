//! Join tokens. Over TLS, `authn` reads a bearer join token as `system:bootstrap:<id>` and
//! checks it with `verify`. On the plain-HTTP `--insecure-http` listener (whose requests act
//! as a cluster admin) a token that is sent is still checked, on every route (a node tunnel's
//! too), and registering a Node, writing node status and renewing a node Lease still require
//! one, so that an agent pointed at it with a wrong token is refused as over TLS.

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

/// On the plain-HTTP listener, for every route: refuses a request that carries a bad token.
pub async fn check_insecure_token(
    registry: &Registry,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    match bearer(headers)? {
        Some(token) => verify(registry, &token).await,
        None => Ok(()),
    }
}

/// On the plain-HTTP listener, for API resources: refuses a request that needs a token (what
/// only an agent writes) and carries none. `check_insecure_token` checked any it carries.
pub fn require_insecure_token(
    method: &Method,
    target: &ApiPath,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if headers.contains_key(header::AUTHORIZATION) || !needs_token(method, target) {
        return Ok(());
    }
    Err(ApiError::Unauthorized(
        "registering a node and renewing its lease need a join token: create one with \
         `skiff token create` and pass it to `skiff agent --token`"
            .into(),
    ))
}

fn bearer(headers: &HeaderMap) -> Result<Option<JoinToken>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::Unauthorized("expected `Authorization: Bearer <join token>`".into())
        })?;
    JoinToken::parse(text)
        .map(Some)
        .map_err(|e| ApiError::Unauthorized(e.to_string()))
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
