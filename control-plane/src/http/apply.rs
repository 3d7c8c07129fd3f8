//! Server-side apply requests (`PATCH` with `application/apply-patch+yaml`) and the field
//! manager every write is recorded under.

use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_api::validation::{FieldError, FieldErrorReason};

use super::field_validation::{FieldValidation, Findings};
use super::query::Query;
use crate::error::ApiError;
use crate::registry::{FieldManager, Guard, Registry};

/// The media type of an apply configuration.
pub(super) const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// The longest manager name Kubernetes accepts.
const MAX_MANAGER_LENGTH: usize = 128;

/// The manager of a write: `fieldManager`, else the client's user agent up to its first
/// `/` (`kubectl/v1.32.0 (linux/amd64)` writes as `kubectl`), as Kubernetes names it; `None`
/// when neither gives a name.
pub(super) fn field_manager(
    query: &Query,
    headers: &HeaderMap,
) -> Result<Option<FieldManager>, ApiError> {
    let name = match query.get("fieldManager") {
        Some(name) => {
            if name.chars().count() > MAX_MANAGER_LENGTH {
                return Err(options_invalid(
                    "fieldManager",
                    FieldErrorReason::TooLong,
                    format!("may not be longer than {MAX_MANAGER_LENGTH}"),
                ));
            }
            name.to_string()
        }
        None => {
            let agent = headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let prefix = agent.split('/').next().unwrap_or_default();
            prefix
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_MANAGER_LENGTH)
                .collect()
        }
    };
    Ok((!name.is_empty()).then_some(FieldManager {
        name,
        subresource: None,
    }))
}

/// Refuses `force` on a patch that is not an apply, as Kubernetes does.
pub(super) fn refuse_force(query: &Query) -> Result<(), ApiError> {
    if query.get("force").is_some() {
        return Err(options_invalid(
            "force",
            FieldErrorReason::Forbidden,
            "may not be specified for non-apply patch".into(),
        ));
    }
    Ok(())
}

/// Serves one apply: 201 with the object when the apply created it, else 200.
pub(super) async fn serve(
    registry: &Registry,
    kind: &ResourceKind,
    namespace: Option<&str>,
    name: &str,
    query: &Query,
    body: &Bytes,
    guard: Guard<'_>,
) -> Result<Response, ApiError> {
    let manager = query.get("fieldManager").unwrap_or_default();
    if manager.is_empty() {
        return Err(options_invalid(
            "fieldManager",
            FieldErrorReason::Required,
            "is required for apply patch".into(),
        ));
    }
    let force = match query.get("force") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "force: Invalid value: {other:?}: must be true or false"
            )))
        }
    };
    let validation = FieldValidation::from_query(query)?;
    let mut config = parse_config(body)?;
    let mut findings = Findings::default();
    findings.remove_unknown(kind, &mut config, false);
    findings.check(validation, Some(kind))?;
    let (mut object, created) = registry
        .apply(kind, namespace, name, config, manager, force, guard)
        .await?;
    if created && query.dry_run()? {
        // Nothing was stored, so the object has no version yet (as a dry-run POST answers).
        crate::registry::object::remove_meta(&mut object, "resourceVersion");
    }
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(findings.warn(validation, (code, Json(object)).into_response()))
}

/// An apply configuration: YAML or JSON (JSON is YAML).
fn parse_config(body: &Bytes) -> Result<Value, ApiError> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return Ok(value);
    }
    serde_yaml_ng::from_slice::<Value>(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the apply configuration is neither valid YAML nor JSON: {e}"
        ))
    })
}

/// Kubernetes' 422 for bad `PatchOptions` / `CreateOptions` query parameters.
fn options_invalid(field: &str, reason: FieldErrorReason, message: String) -> ApiError {
    ApiError::Invalid {
        kind: "PatchOptions.meta.k8s.io".into(),
        name: String::new(),
        causes: vec![FieldError {
            field: field.into(),
            reason,
            message,
        }],
    }
}
