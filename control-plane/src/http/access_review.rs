//! `authorization.k8s.io/v1` SelfSubjectAccessReview, SubjectAccessReview and
//! LocalSubjectAccessReview (a SubjectAccessReview confined to one namespace, which a
//! namespace's `admin` may ask): create-only questions ("may I / may they do this?")
//! answered in `status` and never stored; `kubectl auth can-i` and `skiff auth can-i` ask
//! the first.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};
use skiff_api::k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes as ReviewedResource, SubjectAccessReviewStatus,
};

use super::request_body::{from_protobuf, is_protobuf};
use super::AppState;
use crate::authz::{Attributes, ResourceAttributes, Target};
use crate::error::ApiError;
use crate::identity::UserInfo;

/// The group and version both reviews are served under.
pub const GROUP_VERSION: &str = "authorization.k8s.io/v1";

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`: about the caller.
pub async fn self_review(
    State(state): State<AppState>,
    Extension(user): Extension<UserInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&state, "SelfSubjectAccessReview", &headers, &body, |_| {
        Ok(user)
    })
}

/// `POST /apis/authorization.k8s.io/v1/subjectaccessreviews`: about the user in `spec`.
pub async fn subject_review(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&state, "SubjectAccessReview", &headers, &body, subject)
}

/// `POST /apis/authorization.k8s.io/v1/namespaces/{namespace}/localsubjectaccessreviews`:
/// about the user in `spec`, and only about resources of `namespace`.
pub async fn local_review(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(
        &state,
        "LocalSubjectAccessReview",
        &headers,
        &body,
        |spec| {
            confine(spec, &namespace)?;
            subject(spec)
        },
    )
}

/// Checks that a LocalSubjectAccessReview's `spec` asks about `namespace` only.
fn confine(spec: &Value, namespace: &str) -> Result<(), ApiError> {
    if spec
        .get("nonResourceAttributes")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApiError::BadRequest(
            "spec.nonResourceAttributes: disallowed on this kind of request".into(),
        ));
    }
    let asked = spec
        .pointer("/resourceAttributes/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if asked != namespace {
        return Err(ApiError::BadRequest(format!(
            "spec.resourceAttributes.namespace must match namespace: {namespace:?} (got {asked:?})"
        )));
    }
    Ok(())
}

/// The user a (Local)SubjectAccessReview's `spec` asks about.
fn subject(spec: &Value) -> Result<UserInfo, ApiError> {
    {
        let user = spec.get("user").and_then(Value::as_str).unwrap_or_default();
        let groups = spec.get("groups").cloned().unwrap_or(Value::Null);
        let groups: Vec<String> = serde_json::from_value(groups).unwrap_or_default();
        if user.is_empty() && groups.is_empty() {
            return Err(ApiError::BadRequest(
                "spec.user or spec.groups is required".into(),
            ));
        }
        let extra = spec.get("extra").cloned().unwrap_or(Value::Null);
        Ok(UserInfo {
            name: user.to_string(),
            uid: spec.get("uid").and_then(Value::as_str).map(str::to_string),
            groups,
            extra: serde_json::from_value(extra).unwrap_or_default(),
        })
    }
}

fn answer(
    state: &AppState,
    kind: &str,
    headers: &HeaderMap,
    body: &Bytes,
    subject: impl FnOnce(&Value) -> Result<UserInfo, ApiError>,
) -> Response {
    let result = (|| {
        let review = read_review(headers, body, kind)?;
        let spec = review.get("spec").cloned().unwrap_or(Value::Null);
        let attrs = attributes(&spec)?;
        let user = subject(&spec)?;
        let status = SubjectAccessReviewStatus {
            allowed: state.authorizer.allows(&user, &attrs),
            ..Default::default()
        };
        answered(review, kind, status)
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

/// A review's body as JSON; typed client-go clients (`kubectl auth can-i`) send protobuf.
pub(super) fn read_review(headers: &HeaderMap, body: &[u8], kind: &str) -> Result<Value, ApiError> {
    if is_protobuf(headers) {
        return from_protobuf(body);
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not a {kind}: {e}")))
}

/// The review with its `status` filled in, answered 201 as Kubernetes does (never stored).
pub(super) fn answered(
    mut review: Value,
    kind: &str,
    status: impl serde::Serialize,
) -> Result<Response, ApiError> {
    review["apiVersion"] = json!(GROUP_VERSION);
    review["kind"] = json!(kind);
    review["status"] =
        serde_json::to_value(status).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((StatusCode::CREATED, Json(review)).into_response())
}

/// The request a review's `spec` asks about.
fn attributes(spec: &Value) -> Result<Attributes, ApiError> {
    let field = |name: &str| spec.get(name).cloned().filter(|v| !v.is_null());
    let bad = |e: serde_json::Error| ApiError::BadRequest(format!("spec: {e}"));
    if let Some(resource) = field("resourceAttributes") {
        let r: ReviewedResource = serde_json::from_value(resource).map_err(bad)?;
        let text = |v: Option<String>| v.unwrap_or_default();
        return Ok(Attributes {
            verb: text(r.verb),
            target: Target::Resource(ResourceAttributes {
                api_group: text(r.group),
                resource: text(r.resource),
                subresource: text(r.subresource),
                namespace: text(r.namespace),
                name: text(r.name),
            }),
        });
    }
    if let Some(url) = field("nonResourceAttributes") {
        let n: NonResourceAttributes = serde_json::from_value(url).map_err(bad)?;
        return Ok(Attributes {
            verb: n.verb.unwrap_or_default(),
            target: Target::NonResource {
                path: n.path.unwrap_or_default(),
            },
        });
    }
    Err(ApiError::BadRequest(
        "spec.resourceAttributes or spec.nonResourceAttributes is required".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_review_spec_becomes_request_attributes() {
        let spec = json!({"resourceAttributes": {"verb": "get", "group": "apps",
            "resource": "deployments", "subresource": "scale", "namespace": "a", "name": "web"}});
        let attrs = attributes(&spec).expect("attributes");
        assert_eq!(attrs.verb, "get");
        assert_eq!(
            attrs.resource().map(ResourceAttributes::combined_resource),
            Some("deployments/scale".to_string())
        );
        let url =
            attributes(&json!({"nonResourceAttributes": {"verb": "get", "path": "/healthz"}}))
                .expect("attributes");
        assert_eq!(
            url.target,
            Target::NonResource {
                path: "/healthz".into()
            }
        );
        assert!(matches!(
            attributes(&json!({})),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn a_local_review_asks_about_its_own_namespace_only() {
        let spec = |ns: &str| json!({"user": "bob", "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": ns}});
        assert!(confine(&spec("team"), "team").is_ok());
        let elsewhere = confine(&spec("other"), "team").expect_err("another namespace");
        assert!(
            elsewhere.to_string().contains("must match namespace"),
            "{elsewhere}"
        );
        assert!(confine(&spec(""), "team").is_err());
        let url =
            json!({"user": "bob", "nonResourceAttributes": {"verb": "get", "path": "/healthz"}});
        assert!(confine(&url, "team").is_err());
    }
}
