//! What a TokenRequest (`authentication.k8s.io/v1`) asks for, checked as Kubernetes checks
//! it: audiences (default: the API server's), a lifetime of at least 10 minutes (default one
//! hour, capped at 48 hours), and optionally a Pod, Secret or Node the token is bound to.
//! A pod-bound token for the API server asked for 3607 s (what the kubelet asks for) lasts a
//! year and says when it should have been refreshed (`warnafter`), as Kubernetes'
//! `--service-account-extend-token-expiration` (on by default) makes it, so clients that never
//! re-read their token keep working.

use skiff_api::k8s_openapi::api::authentication::v1::TokenRequest;
use skiff_api::validation::{FieldError, FieldErrorReason};

use super::token::{BoundRef, Claims, KubernetesClaims};
use crate::authz::rules::service_account_user;

/// The lifetime a request that names none gets.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// The shortest lifetime a request may ask for (Kubernetes' 10 minutes).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// Longer requests are cut to this (Kubernetes' `--service-account-max-token-expiration`).
pub const MAX_EXPIRATION_SECONDS: i64 = 48 * 3600;
/// The lifetime whose pod-bound tokens are extended (Kubernetes'
/// `WarnOnlyBoundTokenExpirationSeconds`, the kubelet's request).
pub const WARN_ONLY_EXPIRATION_SECONDS: i64 = 3607;
/// How long an extended token lasts (Kubernetes' `ExpirationExtensionSeconds`, a year).
pub const EXTENDED_EXPIRATION_SECONDS: i64 = 365 * 24 * 3600;

/// A checked TokenRequest spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequestSpec {
    pub audiences: Vec<String>,
    pub expiration_seconds: i64,
    /// The object the token is bound to (`spec.boundObjectRef`).
    pub bound: Option<BoundObject>,
    /// The token lasts [`EXTENDED_EXPIRATION_SECONDS`], `expiration_seconds` being only when
    /// its holder should have replaced it (`warnafter`).
    pub extended: bool,
}

/// A TokenRequest that cannot be answered.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Fields that do not validate (a 422).
    #[error("the TokenRequest is invalid: {0:?}")]
    Invalid(Vec<FieldError>),
    /// `boundObjectRef` names a kind no token binds to (a 400, as Kubernetes answers), as
    /// `GROUP/VERSION, Kind=KIND`.
    #[error("cannot bind token to object of type {0}")]
    UnsupportedKind(String),
}

/// The kinds a token may be bound to, as Kubernetes allows them (all `v1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundKind {
    /// A pod of the account's namespace: the token dies with it.
    Pod,
    /// A Secret of the account's namespace: the token dies with it.
    Secret,
    /// A Node: the token dies with it.
    Node,
}

/// What a token is bound to: its kind, name, and the uid the request expects, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundObject {
    pub kind: BoundKind,
    pub name: String,
    /// The uid the object must have (a 409 if it has another).
    pub uid: Option<String>,
}

fn error(field: &str, reason: FieldErrorReason, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        reason,
        message: message.into(),
    }
}

impl TokenRequestSpec {
    /// Checks `request`; empty audiences become `default_audiences`.
    pub fn parse(
        request: &TokenRequest,
        default_audiences: &[String],
    ) -> Result<TokenRequestSpec, SpecError> {
        let spec = &request.spec;
        let mut errors = Vec::new();
        let expiration_seconds = spec
            .expiration_seconds
            .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
        if expiration_seconds < MIN_EXPIRATION_SECONDS {
            errors.push(error(
                "spec.expirationSeconds",
                FieldErrorReason::Invalid,
                format!("may not specify a duration less than {MIN_EXPIRATION_SECONDS} seconds"),
            ));
        }
        let mut unsupported = None;
        let bound = spec.bound_object_ref.as_ref().and_then(|bound| {
            let api_version = bound.api_version.as_deref().unwrap_or_default();
            let core = !api_version.contains('/');
            let kind = match bound.kind.as_deref().unwrap_or_default() {
                "Pod" if core => BoundKind::Pod,
                "Secret" if core => BoundKind::Secret,
                "Node" if core => BoundKind::Node,
                other => {
                    let group_version = if core {
                        format!("/{api_version}")
                    } else {
                        api_version.to_string()
                    };
                    unsupported = Some(format!("{group_version}, Kind={other}"));
                    return None;
                }
            };
            let Some(name) = bound.name.as_deref().filter(|n| !n.is_empty()) else {
                errors.push(error(
                    "spec.boundObjectRef.name",
                    FieldErrorReason::Required,
                    "Required value",
                ));
                return None;
            };
            Some(BoundObject {
                kind,
                name: name.to_string(),
                uid: bound.uid.clone().filter(|u| !u.is_empty()),
            })
        });
        if !errors.is_empty() {
            return Err(SpecError::Invalid(errors));
        }
        if let Some(kind) = unsupported {
            return Err(SpecError::UnsupportedKind(kind));
        }
        let audiences = if spec.audiences.is_empty() {
            default_audiences.to_vec()
        } else {
            spec.audiences.clone()
        };
        let extended = expiration_seconds == WARN_ONLY_EXPIRATION_SECONDS
            && bound.as_ref().is_some_and(|b| b.kind == BoundKind::Pod)
            && audiences.iter().all(|a| default_audiences.contains(a));
        Ok(TokenRequestSpec {
            audiences,
            expiration_seconds: expiration_seconds.min(MAX_EXPIRATION_SECONDS),
            bound,
            extended,
        })
    }

    /// The claims of a token for ServiceAccount `account` of `namespace`, issued at `now`
    /// (unix seconds), bound as `bound` says (the caller finds the objects and their uids).
    pub fn claims(
        &self,
        issuer: &str,
        namespace: &str,
        account: BoundRef,
        bound: Bindings,
        now: i64,
    ) -> Claims {
        let refresh = now + self.expiration_seconds;
        let (exp, warnafter) = if self.extended {
            (now + EXTENDED_EXPIRATION_SECONDS, Some(refresh))
        } else {
            (refresh, None)
        };
        Claims {
            iss: issuer.to_string(),
            sub: service_account_user(namespace, &account.name),
            aud: self.audiences.clone(),
            exp,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes: KubernetesClaims {
                namespace: namespace.to_string(),
                serviceaccount: account,
                pod: bound.pod,
                secret: bound.secret,
                node: bound.node,
                warnafter,
            },
        }
    }
}

/// The objects a token is bound to, each named with its uid.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bindings {
    pub pod: Option<BoundRef>,
    pub secret: Option<BoundRef>,
    /// The Node the token is bound to, or the one its pod was scheduled to when the token
    /// was made (Kubernetes' `ServiceAccountTokenPodNodeInfo`).
    pub node: Option<BoundRef>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(spec: serde_json::Value) -> Result<TokenRequestSpec, SpecError> {
        let request: TokenRequest =
            serde_json::from_value(json!({"spec": spec})).expect("a TokenRequest");
        TokenRequestSpec::parse(&request, &["https://kubernetes.default.svc".into()])
    }

    #[test]
    fn defaults_caps_and_minimum() {
        let spec = parse(json!({})).expect("valid");
        assert_eq!(spec.expiration_seconds, DEFAULT_EXPIRATION_SECONDS);
        assert_eq!(spec.audiences, ["https://kubernetes.default.svc"]);
        assert_eq!(spec.bound, None);
        let long = parse(json!({"expirationSeconds": 10_000_000})).expect("valid");
        assert_eq!(long.expiration_seconds, MAX_EXPIRATION_SECONDS);
        let Err(SpecError::Invalid(short)) = parse(json!({"expirationSeconds": 599})) else {
            panic!("too short");
        };
        assert_eq!(short[0].field, "spec.expirationSeconds");
        let custom = parse(json!({"audiences": ["vault"]})).expect("valid");
        assert_eq!(custom.audiences, ["vault"]);
    }

    #[test]
    fn pods_secrets_and_nodes_bind() {
        let pod = parse(json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
            "name": "web", "uid": "u1"}}))
        .expect("valid");
        assert_eq!(
            pod.bound,
            Some(BoundObject {
                kind: BoundKind::Pod,
                name: "web".into(),
                uid: Some("u1".into())
            })
        );
        for (kind, expected) in [("Secret", BoundKind::Secret), ("Node", BoundKind::Node)] {
            let spec =
                parse(json!({"boundObjectRef": {"kind": kind, "name": "x"}})).expect("valid");
            let bound = spec.bound.expect("bound");
            assert_eq!((bound.kind, bound.uid), (expected, None));
        }
        for (bound, kind) in [
            (
                json!({"kind": "ConfigMap", "name": "c"}),
                "/, Kind=ConfigMap",
            ),
            (
                json!({"kind": "Pod", "apiVersion": "apps/v1", "name": "p"}),
                "apps/v1, Kind=Pod",
            ),
        ] {
            let refused = parse(json!({"boundObjectRef": bound}));
            assert_eq!(refused, Err(SpecError::UnsupportedKind(kind.into())));
        }
        let Err(SpecError::Invalid(errors)) = parse(json!({"boundObjectRef": {"kind": "Secret"}}))
        else {
            panic!("a binding without a name is invalid");
        };
        assert_eq!(errors[0].field, "spec.boundObjectRef.name");
    }

    #[test]
    fn claims_name_the_account_and_pod() {
        let spec = parse(json!({"expirationSeconds": 3607})).expect("valid");
        let account = BoundRef {
            name: "default".into(),
            uid: "sa-uid".into(),
        };
        let pod = BoundRef {
            name: "web".into(),
            uid: "pod-uid".into(),
        };
        let bound = Bindings {
            pod: Some(pod),
            ..Bindings::default()
        };
        let claims = spec.claims("iss", "ns1", account, bound, 1000);
        assert_eq!(claims.sub, "system:serviceaccount:ns1:default");
        assert_eq!((claims.iat, claims.nbf, claims.exp), (1000, 1000, 4607));
        assert_eq!(claims.kubernetes.warnafter, None);
        let json = serde_json::to_value(&claims).expect("json");
        assert_eq!(json["kubernetes.io"]["pod"]["uid"], "pod-uid");
        assert_eq!(json["kubernetes.io"]["serviceaccount"]["name"], "default");
        assert_eq!(json["kubernetes.io"]["namespace"], "ns1");
    }

    #[test]
    fn the_kubelets_pod_tokens_for_the_api_server_last_a_year_and_warn_after_3607_seconds() {
        let pod = json!({"kind": "Pod", "apiVersion": "v1", "name": "web"});
        let spec = parse(json!({"expirationSeconds": 3607, "boundObjectRef": pod})).expect("valid");
        assert!(spec.extended);
        let account = BoundRef {
            name: "default".into(),
            uid: "sa-uid".into(),
        };
        let claims = spec.claims("iss", "ns1", account, Bindings::default(), 1000);
        assert_eq!(claims.exp, 1000 + EXTENDED_EXPIRATION_SECONDS);
        assert_eq!(claims.kubernetes.warnafter, Some(4607));
        let json = serde_json::to_value(&claims).expect("json");
        assert_eq!(json["kubernetes.io"]["warnafter"], 4607);
        // Another lifetime, another audience or no pod: the token lasts what it asked for.
        for other in [
            json!({"expirationSeconds": 3600, "boundObjectRef": pod}),
            json!({"expirationSeconds": 3607, "boundObjectRef": pod, "audiences": ["vault"]}),
            json!({"expirationSeconds": 3607}),
        ] {
            assert!(!parse(other.clone()).expect("valid").extended, "{other}");
        }
    }
}
