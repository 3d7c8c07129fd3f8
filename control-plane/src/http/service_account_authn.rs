//! ServiceAccount token authentication: a bearer JWT that the cluster's key signed, from its
//! issuer, for the API server's audience and valid now, whose ServiceAccount still exists with
//! the uid in the token (and, for a token bound to a pod, Secret or Node, whose object still
//! exists with its uid; a token that names the node its pod was bound to is checked against
//! that node too, as Kubernetes' ServiceAccountTokenNodeBindingValidation does), is
//! `system:serviceaccount:NS:NAME` in groups `system:serviceaccounts`,
//! `system:serviceaccounts:NS` and `system:authenticated`. Anything else is 401. A
//! TokenReview may ask for other audiences than the API server's.
//!
//! The account, pod and node are looked up in the authorizer's informer cache, as
//! Kubernetes' token getter does, so a request reads nothing from the store; a miss (an
//! object the informer has not seen yet, or one deleted or replaced) is checked against the
//! store, so a deleted account, pod or node fails its tokens as soon as the informer has its
//! delete event. A Secret is read from the store on each use (no informer keeps Secrets).

use std::collections::BTreeMap;

use serde_json::Value;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_api::resources::{self, ResourceKind};

use crate::authz::Authorizer;
use crate::error::ApiError;
use crate::identity::{UserInfo, SERVICE_ACCOUNTS_GROUP};
use crate::registry::{object, Registry};
use crate::serviceaccount::BoundRef;

/// The prefix of Kubernetes' extra user fields for ServiceAccount tokens.
const EXTRA_PREFIX: &str = "authentication.kubernetes.io/";

/// Whether a bearer token is a JWT (three dot-separated parts), not a join token.
pub fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// What a bearer token authenticates, as a TokenReview answers it.
#[derive(Debug)]
pub struct Authenticated {
    /// Its user.
    pub user: UserInfo,
    /// The token's audiences among those asked for.
    pub audiences: Vec<String>,
    /// Kubernetes' extra user fields: the token's id (`credential-id`) and, for a token bound
    /// to a pod, the pod's name and uid.
    pub extra: BTreeMap<String, Vec<String>>,
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
    let claims = tokens
        .verify_for(token, audiences)
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let k = &claims.kubernetes;
    let namespace = k.namespace.as_str();
    let accounts = resources::by_name("serviceaccounts").expect("serviceaccounts are served");
    let account = cache.cached_service_account(namespace, &k.serviceaccount.name);
    if !account.is_some_and(|a| alive(&a.metadata, &k.serviceaccount)) {
        still_there(registry, accounts, Some(namespace), &k.serviceaccount).await?;
    }
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
        if !cache
            .cached_node(&node.name)
            .is_some_and(|n| alive(&n.metadata, node))
        {
            let nodes = resources::by_name("nodes").expect("nodes are served");
            still_there(registry, nodes, None, node).await?;
        }
        extra.insert(format!("{EXTRA_PREFIX}node-name"), vec![node.name.clone()]);
        extra.insert(format!("{EXTRA_PREFIX}node-uid"), vec![node.uid.clone()]);
    }
    let mut user = UserInfo::authenticated(
        claims.sub.clone(),
        vec![
            SERVICE_ACCOUNTS_GROUP.to_string(),
            format!("{SERVICE_ACCOUNTS_GROUP}:{namespace}"),
        ],
    );
    user.uid = Some(k.serviceaccount.uid.clone());
    let audiences = claims
        .aud
        .iter()
        .filter(|a| audiences.contains(*a))
        .cloned()
        .collect();
    Ok(Authenticated {
        user,
        audiences,
        extra,
    })
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
