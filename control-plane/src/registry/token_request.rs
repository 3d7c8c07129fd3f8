//! TokenRequest (`POST .../serviceaccounts/{name}/token`): a signed, expiring token for a
//! ServiceAccount, optionally bound to a pod or Secret of its namespace or to a Node. Nothing
//! is stored.

use serde_json::{json, Value};
use skiff_api::k8s_openapi::api::authentication::v1::TokenRequest;
use skiff_api::resources::{self, ResourceKind};

use super::service_account::service_accounts;
use super::{object, Registry};
use crate::error::ApiError;
use crate::serviceaccount::{
    Bindings, BoundKind, BoundObject, BoundRef, SpecError, TokenRequestSpec,
};

/// Who asks for a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requester<'a> {
    /// Anyone RBAC lets create `serviceaccounts/token`.
    User,
    /// A node identity (`system:nodes`): its node's name, if the identity names one.
    Node(Option<&'a str>),
}

/// The group and version TokenRequests are served in.
const AUTHENTICATION_V1: &str = "authentication.k8s.io/v1";

impl Registry {
    /// Answers a TokenRequest for ServiceAccount `name` of `namespace`: the request with
    /// `status.token` and `status.expirationTimestamp`. A node's request must bind the token
    /// to a pod that runs as that ServiceAccount and is bound to that node (to some node, for
    /// a join-token identity that names none), as Kubernetes' NodeRestriction admission says.
    pub async fn create_token(
        &self,
        namespace: &str,
        name: &str,
        request: Value,
        requester: Requester<'_>,
    ) -> Result<Value, ApiError> {
        let Some(tokens) = self.tokens() else {
            return Err(ApiError::Unavailable(
                "this server signs no ServiceAccount tokens (it serves no TLS)".into(),
            ));
        };
        // `status` is the answer's: client-go sends an empty one (a zero expirationTimestamp).
        let mut asked = request.clone();
        if let Some(fields) = asked.as_object_mut() {
            fields.remove("status");
        }
        let typed: TokenRequest = serde_json::from_value(asked)
            .map_err(|e| ApiError::BadRequest(format!("the body is not a TokenRequest: {e}")))?;
        let spec =
            TokenRequestSpec::parse(&typed, tokens.audiences()).map_err(|err| match err {
                SpecError::Invalid(causes) => ApiError::Invalid {
                    kind: "TokenRequest".into(),
                    name: name.into(),
                    causes,
                },
                unsupported @ SpecError::UnsupportedKind(_) => {
                    ApiError::BadRequest(unsupported.to_string())
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
        let bindings = match &spec.bound {
            Some(bound) if bound.kind == BoundKind::Pod => {
                self.bind_to_pod(namespace, name, bound, requester).await?
            }
            _ if requester != Requester::User => {
                return Err(forbidden(
                    "a node may only request tokens bound to its pods".into(),
                ))
            }
            None => Bindings::default(),
            Some(bound) => {
                let kind = match bound.kind {
                    BoundKind::Secret => resources::by_name("secrets"),
                    _ => resources::by_name("nodes"),
                }
                .expect("secrets and nodes are served");
                let object = self.get(kind, Some(namespace), &bound.name).await?;
                let found = bound_ref(kind, &bound.name, bound.uid.as_deref(), &object)?;
                if bound.kind == BoundKind::Secret {
                    Bindings {
                        secret: Some(found),
                        ..Bindings::default()
                    }
                } else {
                    Bindings {
                        node: Some(found),
                        ..Bindings::default()
                    }
                }
            }
        };
        let now = jiff::Timestamp::now().as_second();
        let claims = spec.claims(tokens.issuer(), namespace, account, bindings, now);
        let token = tokens
            .sign(&claims)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        // An extended token's answer says when to refresh it, as Kubernetes' does.
        let expires = jiff::Timestamp::from_second(now + spec.expiration_seconds)
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

    /// Binds a token of ServiceAccount `account` to the pod `bound` names, which must run as
    /// that account (and, for a node's request, be bound to that node), and to the node the
    /// pod is scheduled to.
    async fn bind_to_pod(
        &self,
        namespace: &str,
        account: &str,
        bound: &BoundObject,
        requester: Requester<'_>,
    ) -> Result<Bindings, ApiError> {
        let forbidden = |message: String| ApiError::Forbidden {
            resource: "serviceaccounts/token".into(),
            name: account.to_string(),
            message,
        };
        let pods = resources::by_name("pods").expect("pods are served");
        let pod = self.get(pods, Some(namespace), &bound.name).await?;
        let found = bound_ref(pods, &bound.name, bound.uid.as_deref(), &pod)?;
        let runs_as = pod
            .pointer("/spec/serviceAccountName")
            .and_then(Value::as_str);
        if runs_as != Some(account) {
            return Err(forbidden(format!(
                "pod {} does not run as ServiceAccount {account}",
                bound.name
            )));
        }
        let bound_to = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty());
        let allowed = match requester {
            Requester::User => true,
            Requester::Node(Some(node)) => bound_to == Some(node),
            Requester::Node(None) => bound_to.is_some(),
        };
        if !allowed {
            return Err(forbidden(format!(
                "a node may only request tokens for pods bound to it, and pod {} is bound to \
                 {}",
                bound.name,
                bound_to.unwrap_or("no node")
            )));
        }
        let node = match bound_to {
            Some(node) => self.node_claim(node).await?,
            None => None,
        };
        Ok(Bindings {
            pod: Some(found),
            node,
            ..Bindings::default()
        })
    }

    /// Node `name` as a pod-bound token's node claim, as Kubernetes'
    /// `ServiceAccountTokenPodNodeInfo` names it: none if the node is gone.
    async fn node_claim(&self, name: &str) -> Result<Option<BoundRef>, ApiError> {
        let nodes = resources::by_name("nodes").expect("nodes are served");
        match self.get(nodes, None, name).await {
            Ok(node) => Ok(Some(BoundRef {
                name: name.to_string(),
                uid: uid(&node),
            })),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

fn uid(obj: &Value) -> String {
    object::uid(obj).unwrap_or_default().to_string()
}

/// `object` (of `kind`, named `name`) as a token's binding; 409 if the request expected
/// another uid.
fn bound_ref(
    kind: &ResourceKind,
    name: &str,
    wanted: Option<&str>,
    object: &Value,
) -> Result<BoundRef, ApiError> {
    let actual = uid(object);
    if let Some(wanted) = wanted.filter(|u| *u != actual) {
        return Err(ApiError::uid_mismatch(kind, name, wanted, &actual));
    }
    Ok(BoundRef {
        name: name.to_string(),
        uid: actual,
    })
}
