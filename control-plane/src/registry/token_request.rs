//! TokenRequest (`POST .../serviceaccounts/{name}/token`): a signed, expiring token for a
//! ServiceAccount, optionally bound to one of its namespace's pods. Nothing is stored.

use serde_json::{json, Value};
use skiff_api::k8s_openapi::api::authentication::v1::TokenRequest;
use skiff_api::resources;

use super::service_account::service_accounts;
use super::{object, Registry};
use crate::error::ApiError;
use crate::serviceaccount::{BoundRef, TokenRequestSpec};

/// The group and version TokenRequests are served in.
const AUTHENTICATION_V1: &str = "authentication.k8s.io/v1";

impl Registry {
    /// Answers a TokenRequest for ServiceAccount `name` of `namespace`: the request with
    /// `status.token` and `status.expirationTimestamp`. A request from `node` must bind the
    /// token to a pod bound to that node which runs as that ServiceAccount (Kubernetes'
    /// NodeRestriction admission).
    pub async fn create_token(
        &self,
        namespace: &str,
        name: &str,
        request: Value,
        node: Option<&str>,
    ) -> Result<Value, ApiError> {
        let Some(tokens) = self.tokens() else {
            return Err(ApiError::Unavailable(
                "this server signs no ServiceAccount tokens (it serves no TLS)".into(),
            ));
        };
        let typed: TokenRequest = serde_json::from_value(request.clone())
            .map_err(|e| ApiError::BadRequest(format!("the body is not a TokenRequest: {e}")))?;
        let spec = TokenRequestSpec::parse(&typed, tokens.audiences()).map_err(|causes| {
            ApiError::Invalid {
                kind: "TokenRequest".into(),
                name: name.into(),
                causes,
            }
        })?;
        let account = self.get(service_accounts(), Some(namespace), name).await?;
        let account = BoundRef {
            name: name.to_string(),
            uid: uid(&account),
        };
        let forbidden = |message: String| ApiError::Forbidden {
            resource: "serviceaccounts/token".into(),
            name: name.to_string(),
            message,
        };
        let pod = match &spec.bound_pod {
            None if node.is_some() => {
                return Err(forbidden(
                    "a node may only request tokens bound to its pods".into(),
                ))
            }
            None => None,
            Some((pod_name, wanted_uid)) => {
                let pods = resources::by_name("pods").expect("pods are served");
                let pod = self.get(pods, Some(namespace), pod_name).await?;
                let actual = uid(&pod);
                if let Some(wanted) = wanted_uid.as_deref().filter(|u| *u != actual) {
                    return Err(ApiError::uid_mismatch(pods, pod_name, wanted, &actual));
                }
                let runs_as = pod
                    .pointer("/spec/serviceAccountName")
                    .and_then(Value::as_str);
                if runs_as != Some(name) {
                    return Err(forbidden(format!(
                        "pod {pod_name} does not run as ServiceAccount {name}"
                    )));
                }
                let bound_to = pod.pointer("/spec/nodeName").and_then(Value::as_str);
                if let Some(node) = node.filter(|n| bound_to != Some(*n)) {
                    return Err(forbidden(format!(
                        "node {node} may only request tokens for pods bound to it"
                    )));
                }
                Some(BoundRef {
                    name: pod_name.clone(),
                    uid: actual,
                })
            }
        };
        let now = jiff::Timestamp::now().as_second();
        let claims = spec.claims(tokens.issuer(), namespace, account, pod, now);
        let token = tokens
            .sign(&claims)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let expires = jiff::Timestamp::from_second(claims.exp)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut answer = request;
        answer["apiVersion"] = json!(AUTHENTICATION_V1);
        answer["kind"] = json!("TokenRequest");
        object::set_meta(&mut answer, "name", name);
        object::set_meta(&mut answer, "namespace", namespace);
        object::set_meta(&mut answer, "creationTimestamp", object::now_rfc3339());
        answer["spec"]["audiences"] = json!(spec.audiences);
        answer["spec"]["expirationSeconds"] = json!(spec.expiration_seconds);
        answer["status"] = json!({
            "token": token,
            "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        });
        Ok(answer)
    }
}

fn uid(obj: &Value) -> String {
    object::meta_str(obj, "uid").unwrap_or_default().to_string()
}
