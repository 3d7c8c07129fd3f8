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
    media_type(headers) == protobuf::MEDIA_TYPE
}

/// The media type `Content-Type` names, without its parameters (`""` when there is none).
fn media_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map_or("", str::trim)
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

/// The kinds of PATCH body Kubernetes serves for built-in kinds, server-side apply aside
/// (see `is_apply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
}

/// Whether a PATCH body is a server-side apply configuration (`application/apply-patch+yaml`).
pub(super) fn is_apply(headers: &HeaderMap) -> bool {
    media_type(headers) == super::apply::APPLY_PATCH
}

/// The patch type of a PATCH body; other types are refused with 415, as Kubernetes does.
pub(super) fn patch_type(headers: &HeaderMap) -> Result<PatchType, ApiError> {
    match media_type(headers) {
        "application/json-patch+json" => Ok(PatchType::Json),
        "application/merge-patch+json" | "application/json" | "" => Ok(PatchType::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, \
             application/strategic-merge-patch+json, application/apply-patch+yaml (got \
             {other:?})"
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A length-delimited protobuf field.
    fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3) | 2, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [field(1, api_version.as_bytes()), field(2, kind.as_bytes())].concat();
        [b"k8s\0".as_slice(), &field(1, &type_meta), &field(2, raw)].concat()
    }

    #[test]
    fn protobuf_bodies_are_read_or_refused_with_the_right_status() {
        let metadata = field(1, &field(1, b"app"));
        let data = field(2, &[field(1, b"a"), field(2, b"1")].concat());
        let config_map = from_protobuf(&envelope("v1", "ConfigMap", &[metadata, data].concat()))
            .expect("a ConfigMap");
        assert_eq!(
            config_map,
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "app"}, "data": {"a": "1"}})
        );

        let custom = from_protobuf(&envelope("example.com/v1", "Widget", &[])).expect_err("a CR");
        assert!(
            matches!(custom, ApiError::UnsupportedMediaType(_)),
            "{custom:?}"
        );
        assert!(custom
            .to_string()
            .contains("application/vnd.kubernetes.protobuf"));

        let truncated =
            from_protobuf(&envelope("v1", "ConfigMap", &[0x0a, 0x05, b'a'])).expect_err("bad");
        assert!(
            matches!(truncated, ApiError::BadRequest(_)),
            "{truncated:?}"
        );
        assert!(
            truncated.to_string().contains("v1 ConfigMap"),
            "{truncated}"
        );

        let json = from_protobuf(br#"{"kind": "ConfigMap"}"#).expect_err("JSON");
        assert!(json.to_string().contains("envelope"), "{json}");
    }
}
