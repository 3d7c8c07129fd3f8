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
//! `kubernetes.io/legacy-token-invalid-since` label, or whose account is being deleted, is
//! refused, as Kubernetes refuses it; one that authenticates marks its Secret with the day's
//! date in `kubernetes.io/legacy-token-last-used` (a write at most once a day per Secret, as
//! Kubernetes' legacy token tracking does).

use std::collections::BTreeMap;

use base64::Engine;
use prometheus_client::metrics::counter::Counter;
use serde_json::Value;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_api::resources::{self, ResourceKind};
use skiff_api::token_secret::{INVALID_SINCE_LABEL, LAST_USED_LABEL};

use crate::authz::Authorizer;
use crate::error::ApiError;
use crate::identity::{UserInfo, SERVICE_ACCOUNTS_GROUP};
use crate::registry::{object, Registry};
use crate::serviceaccount::{BoundRef, LegacyClaims};

/// The prefix of Kubernetes' extra user fields for ServiceAccount tokens.
const EXTRA_PREFIX: &str = "authentication.kubernetes.io/";

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
    /// Set when an extended token is used past its `warnafter`.
    pub stale: Option<StaleToken>,
}

/// A use of an extended token past its `warnafter`, which Kubernetes notes in the request's
/// audit event as [`StaleToken::ANNOTATION`]: "subject: USER, seconds after warning
/// threshold: N".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleToken(pub String);

impl StaleToken {
    /// The audit annotation's key.
    pub const ANNOTATION: &'static str = "authentication.k8s.io/stale-token";
}

/// The user a ServiceAccount `token` for one of `audiences` (`None`: the API server's)
/// authenticates, or 401. Each use of an extended token past its `warnafter` counts in
/// `stale_tokens`, is logged and is returned for the audit log.
pub async fn authenticate(
    registry: &Registry,
    cache: &Authorizer,
    token: &str,
    audiences: Option<&[String]>,
    stale_tokens: &Counter,
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
    let grace = WhileDeleting::Grace;
    account_exists(registry, cache, namespace, &k.serviceaccount, grace).await?;
    let mut extra = BTreeMap::new();
    extra.insert(
        format!("{EXTRA_PREFIX}credential-id"),
        vec![format!("JTI={}", claims.jti)],
    );
    if let Some(pod) = &k.pod {
        let cached = cache.cached_pod(namespace, &pod.name);
        if !cached.is_some_and(|p| alive(&p.metadata, pod, grace)) {
            let pods = resources::by_name("pods").expect("pods are served");
            still_there(registry, pods, Some(namespace), pod, grace).await?;
        }
        extra.insert(format!("{EXTRA_PREFIX}pod-name"), vec![pod.name.clone()]);
        extra.insert(format!("{EXTRA_PREFIX}pod-uid"), vec![pod.uid.clone()]);
    }
    if let Some(secret) = &k.secret {
        // Read from the store on each use: the authorizer keeps no informer of Secrets.
        let secrets = resources::by_name("secrets").expect("secrets are served");
        still_there(registry, secrets, Some(namespace), secret, grace).await?;
    }
    if let Some(node) = &k.node {
        // A pod-bound token only names its pod's node; one bound to the Node itself needs it
        // (as Kubernetes' validator does).
        let bound_to_node = k.pod.is_none();
        if bound_to_node
            && !cache
                .cached_node(&node.name)
                .is_some_and(|n| alive(&n.metadata, node, grace))
        {
            let nodes = resources::by_name("nodes").expect("nodes are served");
            still_there(registry, nodes, None, node, grace).await?;
        }
        extra.insert(format!("{EXTRA_PREFIX}node-name"), vec![node.name.clone()]);
        extra.insert(format!("{EXTRA_PREFIX}node-uid"), vec![node.uid.clone()]);
    }
    let mut user = account_user(namespace, &k.serviceaccount);
    user.extra = extra;
    let now = jiff::Timestamp::now().as_second();
    let late = k.warnafter.map(|warn| now - warn).filter(|late| *late > 0);
    let stale = late.map(|late| {
        stale_tokens.inc();
        tracing::debug!(
            user = %user.name,
            seconds_after_warning_threshold = late,
            "a stale ServiceAccount token was used: its holder should have refreshed it"
        );
        StaleToken(format!(
            "subject: {}, seconds after warning threshold: {late}",
            user.name
        ))
    });
    let audiences = claims
        .aud
        .iter()
        .filter(|a| audiences.contains(*a))
        .cloned()
        .collect();
    Ok(Authenticated {
        user,
        audiences,
        stale,
    })
}

/// The user a legacy token (`claims`, verified) authenticates: only for the API server's own
/// audiences (`own`) among those asked for, while its Secret still holds it and its account
/// exists with the uid it names and is not being deleted, as Kubernetes' legacy token
/// validator checks; its Secret is marked as used today.
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
    account_exists(registry, cache, namespace, &account, WhileDeleting::Never).await?;
    let secrets = resources::by_name("secrets").expect("secrets are served");
    let mut last_used = None;
    let held = match registry
        .get(secrets, Some(namespace), &claims.secret_name)
        .await
    {
        Ok(secret) => {
            last_used = secret
                .pointer("/metadata/labels")
                .and_then(|labels| labels.get(LAST_USED_LABEL))
                .and_then(Value::as_str)
                .map(str::to_string);
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
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    if last_used.as_deref() != Some(today.as_str()) {
        mark_used(registry, namespace, &claims.secret_name, today);
    }
    Ok(Authenticated {
        user: account_user(namespace, &account),
        audiences,
        stale: None,
    })
}

/// Labels Secret `name` of `namespace` as holding a legacy token used on `today`, in the
/// background (the request does not wait for the write; a failed one is tried again at the
/// token's next use).
fn mark_used(registry: &Registry, namespace: &str, name: &str, today: String) {
    let registry = registry.clone();
    let (namespace, name) = (namespace.to_string(), name.to_string());
    tokio::spawn(async move {
        let secrets = resources::by_name("secrets").expect("secrets are served");
        let patch = serde_json::json!({"metadata": {"labels": {LAST_USED_LABEL: today}}});
        let main = crate::registry::Subresource::Main;
        if let Err(err) = registry
            .patch(secrets, Some(&namespace), &name, &patch, main)
            .await
        {
            tracing::debug!(%err, secret = %name, %namespace, "could not mark a legacy token used");
        }
    });
}

/// How long an object being deleted still vouches for the tokens bound to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WhileDeleting {
    /// Until its grace period runs out (a terminating pod keeps its tokens, as in Kubernetes).
    Grace,
    /// Not at all (a legacy token's account).
    Never,
}

/// 401 unless ServiceAccount `account` of `namespace` exists with the token's uid.
async fn account_exists(
    registry: &Registry,
    cache: &Authorizer,
    namespace: &str,
    account: &BoundRef,
    deleting: WhileDeleting,
) -> Result<(), ApiError> {
    let cached = cache.cached_service_account(namespace, &account.name);
    if !cached.is_some_and(|a| alive(&a.metadata, account, deleting)) {
        let accounts = resources::by_name("serviceaccounts").expect("serviceaccounts are served");
        still_there(registry, accounts, Some(namespace), account, deleting).await?;
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

/// Whether an object with `meta` is the one `bound` names and still vouches for its tokens.
fn alive(meta: &ObjectMeta, bound: &BoundRef, deleting: WhileDeleting) -> bool {
    let deleted = meta.deletion_timestamp.as_ref().map(|t| t.0);
    meta.uid.as_deref() == Some(bound.uid.as_str()) && !gone(deleted, deleting)
}

/// Whether an object deleted at `deleted` (if it is being deleted) no longer vouches.
fn gone(deleted: Option<jiff::Timestamp>, deleting: WhileDeleting) -> bool {
    match (deleted, deleting) {
        (None, _) => false,
        (Some(_), WhileDeleting::Never) => true,
        (Some(at), WhileDeleting::Grace) => at < jiff::Timestamp::now(),
    }
}

/// 401 unless the object the token names (in `namespace`, `None` for a Node) exists with the
/// token's uid (and, if it is being deleted, still vouches as `deleting` says).
async fn still_there(
    registry: &Registry,
    kind: &ResourceKind,
    namespace: Option<&str>,
    bound: &BoundRef,
    deleting: WhileDeleting,
) -> Result<(), ApiError> {
    let missing = || {
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
        Err(ApiError::NotFound { .. }) => return Err(missing()),
        Err(err) => return Err(err),
    };
    let deleted = obj
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    if object::uid(&obj) != Some(bound.uid.as_str()) || gone(deleted, deleting) {
        return Err(missing());
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
        let grace = WhileDeleting::Grace;
        assert!(alive(&meta("u1", None), &bound, grace));
        assert!(
            !alive(&meta("u2", None), &bound, grace),
            "made again: another object"
        );
        assert!(
            alive(&meta("u1", Some(-30)), &bound, grace),
            "terminating, in its grace"
        );
        assert!(
            !alive(&meta("u1", Some(1)), &bound, grace),
            "its grace has run out"
        );
        let never = WhileDeleting::Never;
        assert!(alive(&meta("u1", None), &bound, never));
        assert!(
            !alive(&meta("u1", Some(-30)), &bound, never),
            "a legacy token's account being deleted vouches no more"
        );
    }
}
