//! ServiceAccount token authentication: a bearer JWT that the cluster's key signed, from its
//! issuer, for the API server's audience and valid now, whose ServiceAccount still exists with
//! the uid in the token (and, for a token bound to a pod, Secret or Node, whose object still
//! exists with its uid, as Kubernetes' validator checks them; the node a pod-bound token
//! names is only reported, not checked), is
//! `system:serviceaccount:NS:NAME` in groups `system:serviceaccounts`,
//! `system:serviceaccounts:NS` and `system:authenticated`. Anything else is 401. A
//! TokenReview may ask for other audiences than the API server's. A legacy token (from a
//! `kubernetes.io/service-account-token` Secret) is that account too, for the API server's
//! audience only, while its Secret still holds it and its account exists.
//!
//! The account, pod and node are looked up in the authorizer's informer cache, as
//! Kubernetes' token getter does, so a request reads nothing from the store; a miss (an
//! object the informer has not seen yet, or one deleted or replaced) is checked against the
//! store, so a deleted account, pod or node fails its tokens as soon as the informer has its
//! delete event. A Secret (a bound token's, a legacy token's) is read from the store on each
//! use (no informer of the API server keeps Secrets). A legacy token whose Secret carries the
//! `kubernetes.io/legacy-token-invalid-since` label is refused, as Kubernetes refuses it.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::Value;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_api::resources::{self, ResourceKind};

use crate::authz::Authorizer;
use crate::error::ApiError;
use crate::identity::{UserInfo, SERVICE_ACCOUNTS_GROUP};
use crate::registry::{object, Registry};
use crate::serviceaccount::{BoundRef, LegacyClaims};

/// The prefix of Kubernetes' extra user fields for ServiceAccount tokens.
const EXTRA_PREFIX: &str = "authentication.kubernetes.io/";

/// A legacy token Secret with this label holds a token Kubernetes no longer accepts.
const INVALID_SINCE_LABEL: &str = "kubernetes.io/legacy-token-invalid-since";

/// Whether a bearer token is a JWT (three dot-separated parts), not a join token.
pub fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// What a bearer token authenticates, as a TokenReview answers it.
#[derive(Debug)]
pub struct Authenticated {
    /// Its user; for a ServiceAccount token, with Kubernetes' extra fields: the token's id
    /// (`credential-id`) and, for a token bound to a pod, the pod's name and uid (and its
    /// node's).
    pub user: UserInfo,
    /// The token's audiences among those asked for.
    pub audiences: Vec<String>,
}

/// The user a ServiceAccount `token` for one of `audiences` (`None`: the API server's)
/// authenticates, or 401.
pub async fn authenticate(
    registry: &Registry,
    cache: &Authorizer,
    token: &str,
    audiences: Option<&[String]>,
) -> Result<Authenticated, ApiError> {
    let Some(tokens) = registry.tokens() else {
        return Err(ApiError::Unauthorized(
            "this server accepts no ServiceAccount tokens".into(),
        ));
    };
    let audiences = audiences
        .filter(|a| !a.is_empty())
        .unwrap_or(tokens.audiences());
    let claims = match tokens.verify_for(token, audiences) {
        Ok(claims) => claims,
        Err(err) => {
            return match tokens.verify_legacy(token) {
                Ok(legacy) => {
                    let own = tokens.audiences();
                    authenticate_legacy(registry, cache, token, legacy, audiences, own).await
                }
                Err(_) => Err(ApiError::Unauthorized(err.to_string())),
            }
        }
    };
    let k = &claims.kubernetes;
    let namespace = k.namespace.as_str();
    account_exists(registry, cache, namespace, &k.serviceaccount).await?;
    let mut extra = BTreeMap::new();
    extra.insert(
        format!("{EXTRA_PREFIX}credential-id"),
        vec![format!("JTI={}", claims.jti)],
    );
    if let Some(pod) = &k.pod {
        let cached = cache.cached_pod(namespace, &pod.name);
        if !cached.is_some_and(|p| alive(&p.metadata, pod)) {
            let pods = resources::by_name("pods").expect("pods are served");
            still_there(registry, pods, Some(namespace), pod).await?;
        }
        extra.insert(format!("{EXTRA_PREFIX}pod-name"), vec![pod.name.clone()]);
        extra.insert(format!("{EXTRA_PREFIX}pod-uid"), vec![pod.uid.clone()]);
    }
    if let Some(secret) = &k.secret {
        // Read from the store on each use: the authorizer keeps no informer of Secrets.
        let secrets = resources::by_name("secrets").expect("secrets are served");
        still_there(registry, secrets, Some(namespace), secret).await?;
    }
    if let Some(node) = &k.node {
        // A pod-bound token only names its pod's node; one bound to the Node itself needs it
        // (as Kubernetes' validator does).
        let bound_to_node = k.pod.is_none();
        if bound_to_node
            && !cache
                .cached_node(&node.name)
                .is_some_and(|n| alive(&n.metadata, node))
        {
            let nodes = resources::by_name("nodes").expect("nodes are served");
            still_there(registry, nodes, None, node).await?;
        }
        extra.insert(format!("{EXTRA_PREFIX}node-name"), vec![node.name.clone()]);
        extra.insert(format!("{EXTRA_PREFIX}node-uid"), vec![node.uid.clone()]);
    }
    let mut user = account_user(namespace, &k.serviceaccount);
    user.extra = extra;
    let audiences = claims
        .aud
        .iter()
        .filter(|a| audiences.contains(*a))
        .cloned()
        .collect();
    Ok(Authenticated { user, audiences })
}

/// The user a legacy token (`claims`, verified) authenticates: only for the API server's own
/// audiences (`own`) among those asked for, while its Secret still holds it and its account
/// exists with the uid it names, as Kubernetes' legacy token validator checks.
async fn authenticate_legacy(
    registry: &Registry,
    cache: &Authorizer,
    token: &str,
    claims: LegacyClaims,
    asked: &[String],
    own: &[String],
) -> Result<Authenticated, ApiError> {
    let audiences: Vec<String> = own.iter().filter(|a| asked.contains(a)).cloned().collect();
    if audiences.is_empty() {
        return Err(ApiError::Unauthorized(
            "a legacy ServiceAccount token is for the API server's audience only".into(),
        ));
    }
    let namespace = claims.namespace.as_str();
    let account = BoundRef {
        name: claims.account_name,
        uid: claims.account_uid,
    };
    account_exists(registry, cache, namespace, &account).await?;
    let secrets = resources::by_name("secrets").expect("secrets are served");
    let held = match registry
        .get(secrets, Some(namespace), &claims.secret_name)
        .await
    {
        Ok(secret) => {
            let usable = secret.pointer("/metadata/deletionTimestamp").is_none()
                && secret
                    .pointer("/metadata/labels")
                    .and_then(|labels| labels.get(INVALID_SINCE_LABEL))
                    .is_none();
            usable
                .then(|| {
                    secret
                        .pointer("/data/token")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .flatten()
        }
        Err(ApiError::NotFound { .. }) => None,
        Err(err) => return Err(err),
    };
    let holds = held
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .is_some_and(|held| held == token.as_bytes());
    if !holds {
        return Err(ApiError::Unauthorized(format!(
            "the token's secret {namespace}/{} no longer holds it (or marks it invalid)",
            claims.secret_name
        )));
    }
    Ok(Authenticated {
        user: account_user(namespace, &account),
        audiences,
    })
}

/// 401 unless ServiceAccount `account` of `namespace` exists with the token's uid.
async fn account_exists(
    registry: &Registry,
    cache: &Authorizer,
    namespace: &str,
    account: &BoundRef,
) -> Result<(), ApiError> {
    let cached = cache.cached_service_account(namespace, &account.name);
    if !cached.is_some_and(|a| alive(&a.metadata, account)) {
        let accounts = resources::by_name("serviceaccounts").expect("serviceaccounts are served");
        still_there(registry, accounts, Some(namespace), account).await?;
    }
    Ok(())
}

/// ServiceAccount `account` of `namespace` as a user.
fn account_user(namespace: &str, account: &BoundRef) -> UserInfo {
    let mut user = UserInfo::authenticated(
        crate::authz::rules::service_account_user(namespace, &account.name),
        vec![
            SERVICE_ACCOUNTS_GROUP.to_string(),
            format!("{SERVICE_ACCOUNTS_GROUP}:{namespace}"),
        ],
    );
    user.uid = Some(account.uid.clone());
    user
}

/// Whether an object with `meta` is the one `bound` names and not past its grace period.
fn alive(meta: &ObjectMeta, bound: &BoundRef) -> bool {
    let expired = meta
        .deletion_timestamp
        .as_ref()
        .is_some_and(|t| t.0 < jiff::Timestamp::now());
    meta.uid.as_deref() == Some(bound.uid.as_str()) && !expired
}

/// 401 unless the object the token names (in `namespace`, `None` for a Node) exists with the
/// token's uid (and its grace period, if it is being deleted, has not run out).
async fn still_there(
    registry: &Registry,
    kind: &ResourceKind,
    namespace: Option<&str>,
    bound: &BoundRef,
) -> Result<(), ApiError> {
    let gone = || {
        let name = match namespace {
            Some(ns) => format!("{ns}/{}", bound.name),
            None => bound.name.clone(),
        };
        ApiError::Unauthorized(format!(
            "the token's {} {name} no longer exists",
            kind.singular
        ))
    };
    let obj: Value = match registry.get(kind, namespace, &bound.name).await {
        Ok(obj) => obj,
        Err(ApiError::NotFound { .. }) => return Err(gone()),
        Err(err) => return Err(err),
    };
    // A terminating pod keeps its tokens through its grace period (as in Kubernetes).
    let deleted = obj
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .is_some_and(|t| t < jiff::Timestamp::now());
    if object::uid(&obj) != Some(bound.uid.as_str()) || deleted {
        return Err(gone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    #[test]
    fn a_cached_object_vouches_only_for_its_own_uid_within_its_grace() {
        let bound = BoundRef {
            name: "web".into(),
            uid: "u1".into(),
        };
        let meta = |uid: &str, deleted_secs_ago: Option<i64>| ObjectMeta {
            uid: Some(uid.into()),
            deletion_timestamp: deleted_secs_ago
                .map(|s| Time(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(s))),
            ..ObjectMeta::default()
        };
        assert!(alive(&meta("u1", None), &bound));
        assert!(
            !alive(&meta("u2", None), &bound),
            "made again: another object"
        );
        assert!(
            alive(&meta("u1", Some(-30)), &bound),
            "terminating, in its grace"
        );
        assert!(
            !alive(&meta("u1", Some(1)), &bound),
            "its grace has run out"
        );
    }
}
