//! Reading a request's body: an object or patch as JSON (duplicate keys as `fieldValidation`
//! asks, YAML refused) or, for the built-in kinds, as Kubernetes protobuf (what typed client-go
//! clients such as `kubectl create` and helm send), the patch type from `Content-Type`, and a
//! delete's options from the query and a `DeleteOptions` body.

use axum::body::Bytes;
use axum::http::{header, HeaderMap};
use serde_json::Value;
use skiff_api::strict::StrictValue;

use super::field_validation::{FieldValidation, Findings};
use super::query::Query;
use crate::error::ApiError;
use crate::protobuf::{self, ProtobufError};
use crate::registry::finalizers::Propagation;
use crate::registry::DeleteOptions;

/// An object (or patch) body, decoded as `validation` asks: duplicate fields refused under
/// `Strict`, else the last kept and noted in the findings.
pub(super) fn parse_object(
    body: &Bytes,
    headers: &HeaderMap,
    validation: FieldValidation,
) -> Result<(Value, Findings), ApiError> {
    if is_protobuf(headers) {
        return Ok((from_protobuf(body)?, Findings::default()));
    }
    if validation == FieldValidation::Strict {
        return Ok((parse_body(body, headers)?, Findings::default()));
    }
    check_json(headers)?;
    skiff_api::strict::from_slice_noting_duplicates(body)
        .map(|(value, duplicates)| (value, Findings::with_duplicates(duplicates)))
        .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))
}

/// Refuses YAML bodies (the skiff CLI and kubectl send JSON).
fn check_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if content_type.contains("yaml") {
        return Err(ApiError::BadRequest(
            "only JSON request bodies are accepted; the skiff CLI converts YAML".into(),
        ));
    }
    Ok(())
}

/// Whether the body is Kubernetes protobuf (`application/vnd.kubernetes.protobuf`).
pub(super) fn is_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(protobuf::is_media_type)
}

/// A protobuf body as the JSON object it carries: 415 for a kind without a protobuf form
/// (custom resources), 400 naming what is wrong for a malformed body.
pub(super) fn from_protobuf(body: &[u8]) -> Result<Value, ApiError> {
    protobuf::decode(body).map_err(|e| match e {
        ProtobufError::UnknownKind { .. } | ProtobufError::Encoding(_) => {
            ApiError::UnsupportedMediaType(e.to_string())
        }
        e => ApiError::BadRequest(e.to_string()),
    })
}

/// A body decoded strictly: duplicate fields are refused, naming the field.
pub(super) fn parse_body(body: &Bytes, headers: &HeaderMap) -> Result<Value, ApiError> {
    if is_protobuf(headers) {
        return from_protobuf(body);
    }
    check_json(headers)?;
    // Duplicate keys are refused (Kubernetes' strict decoding), naming the field.
    serde_json::from_slice::<StrictValue>(body)
        .map(|v| v.0)
        .map_err(|e| {
            if e.is_data() {
                ApiError::BadRequest(format!("strict decoding error: {e}"))
            } else {
                ApiError::BadRequest(format!("the request body is not valid JSON: {e}"))
            }
        })
}

/// The kinds of PATCH body Kubernetes serves for built-in kinds (server-side apply aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
}

/// The patch type of a PATCH body; other types are refused with 415, as Kubernetes does.
pub(super) fn patch_type(headers: &HeaderMap) -> Result<PatchType, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    match media_type {
        "application/json-patch+json" => Ok(PatchType::Json),
        "application/merge-patch+json" | "application/json" | "" => Ok(PatchType::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, \
             application/strategic-merge-patch+json (got {other:?})"
        ))),
    }
}

pub(super) fn parse_json_patch(body: &Bytes) -> Result<json_patch::Patch, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not a JSON Patch: {e}")))
}

/// `gracePeriodSeconds` and `propagationPolicy` from the query, else from a `DeleteOptions`
/// body, and the body's `preconditions` (uid, resourceVersion).
pub(super) fn delete_options(
    query: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<DeleteOptions, ApiError> {
    let options: Value = if body.is_empty() {
        Value::Null
    } else if is_protobuf(headers) {
        from_protobuf(body)?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("DeleteOptions is not valid JSON: {e}")))?
    };
    let policy = query
        .get("propagationPolicy")
        .or(options.get("propagationPolicy").and_then(Value::as_str));
    let propagation = match policy {
        Some(policy) => Propagation::parse(policy)?,
        // The deprecated `orphanDependents: true` is `Orphan`.
        None if options.get("orphanDependents") == Some(&Value::Bool(true)) => Propagation::Orphan,
        None => Propagation::default(),
    };
    let resource_version = match options.pointer("/preconditions/resourceVersion") {
        None | Some(Value::Null) => None,
        Some(rv) => Some(rv.as_str().and_then(|v| v.parse().ok()).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "preconditions.resourceVersion: Invalid value: {rv}: must be a resource version"
            ))
        })?),
    };
    Ok(DeleteOptions {
        grace_period_seconds: query
            .int("gracePeriodSeconds")?
            .or(options.get("gracePeriodSeconds").and_then(Value::as_i64)),
        uid: options
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        resource_version,
        propagation,
    })
}
