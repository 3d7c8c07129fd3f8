//! API errors and their one mapping to Kubernetes `Status` objects.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    Status, StatusCause, StatusDetails,
};
use skiff_api::resources::ResourceKind;
use skiff_api::validation::FieldError;
use skiff_raft_store::StoreError;

/// Everything an API call can fail with; each variant maps to one HTTP code and `reason`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{resource} \"{name}\" not found")]
    NotFound { resource: String, name: String },
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists { resource: String, name: String },
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {message}")]
    Conflict {
        resource: String,
        name: String,
        message: String,
    },
    /// A server-side apply that would change fields other managers own (409 `Conflict`
    /// with a `FieldManagerConflict` cause per field).
    #[error("{}", apply_conflict_message(.0))]
    ApplyConflict(Vec<crate::apply::FieldConflict>),
    #[error("{kind} \"{name}\" is invalid: {}", join_causes(.causes))]
    Invalid {
        kind: String,
        name: String,
        causes: Vec<FieldError>,
    },
    /// Refused by admission (Kubernetes' 403 `Forbidden`), e.g. a pod naming no RuntimeClass.
    #[error("{resource} \"{name}\" is forbidden: {message}")]
    Forbidden {
        resource: String,
        name: String,
        message: String,
    },
    /// Refused by authorization (403 `Forbidden`); `message` names the user, verb and
    /// resource, as Kubernetes' RBAC denial does.
    #[error("{message}")]
    AccessDenied {
        /// `pods`, `deployments.apps`; empty for a non-resource URL.
        resource: String,
        /// The object's name, if the request named one.
        name: String,
        message: String,
    },
    #[error("{0}")]
    BadRequest(String),
    /// Refused for now, to be retried (Kubernetes' 429): an eviction a disruption budget
    /// forbids; `cause` says which budget and why.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        cause_reason: String,
        cause: String,
    },
    /// The request body is over the server's limit (Kubernetes' 413 `RequestEntityTooLarge`).
    #[error("Request entity too large: limit is {limit} bytes")]
    TooLarge { limit: usize },
    /// An object whose stored form is over the store's limit (413, as etcd's "request is too
    /// large" reaches Kubernetes' clients).
    #[error("{kind} \"{name}\" is too large to store: {bytes} bytes, limit is {limit} bytes")]
    ObjectTooLarge {
        kind: String,
        name: String,
        bytes: usize,
        limit: usize,
    },
    #[error("the server could not find the requested resource: {0}")]
    UnknownResource(String),
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// A request body (a patch type) the resource does not accept (Kubernetes' 415), such as
    /// a strategic merge patch of a kind with no patch strategies.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// No form of the response the client accepts (Kubernetes' 406), such as protobuf of a
    /// custom resource.
    #[error("{0}")]
    NotAcceptable(String),
    #[error("too old resource version: {requested} ({oldest})")]
    Gone { requested: u64, oldest: u64 },
    /// A list's `continue` token whose revision is no longer in the store's history.
    #[error("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")]
    ContinueExpired,
    #[error("{0}")]
    Unavailable(String),
    /// A JSON Patch could not be applied (a `test` operation failed, a path is missing).
    #[error("the patch cannot be applied: {0}")]
    PatchFailed(String),
    /// The store did not confirm in time; a write's outcome is unknown (as Kubernetes' 504).
    #[error("Timeout: {0}")]
    Timeout(String),
    #[error("Unauthorized: {0}")]
    Unauthorized(String),
    #[error("internal error: {0}")]
    Internal(String),
}

fn join_causes(causes: &[FieldError]) -> String {
    causes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Kubernetes' message for apply conflicts: one line for one conflict, else the fields
/// grouped by manager.
fn apply_conflict_message(conflicts: &[crate::apply::FieldConflict]) -> String {
    if let [one] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.manager, one.field
        );
    }
    let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
    managers.sort_unstable();
    managers.dedup();
    let mut lines = Vec::new();
    for manager in managers {
        lines.push(format!("conflicts with {manager}:"));
        for c in conflicts.iter().filter(|c| c.manager == manager) {
            lines.push(format!("- {}", c.field));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

impl ApiError {
    pub fn not_found(kind: &ResourceKind, name: &str) -> Self {
        ApiError::NotFound {
            resource: qualified(kind),
            name: name.to_string(),
        }
    }

    pub fn already_exists(kind: &ResourceKind, name: &str) -> Self {
        ApiError::AlreadyExists {
            resource: qualified(kind),
            name: name.to_string(),
        }
    }

    /// The optimistic-concurrency failure of an update with a stale `resourceVersion`.
    pub fn stale(kind: &ResourceKind, name: &str) -> Self {
        ApiError::Conflict {
            resource: qualified(kind),
            name: name.to_string(),
            message: "the object has been modified; please apply your changes to the latest version and try again".into(),
        }
    }

    /// A `preconditions.uid` that is not the object's: the name now holds another object.
    pub fn uid_mismatch(kind: &ResourceKind, name: &str, wanted: &str, actual: &str) -> Self {
        ApiError::Conflict {
            resource: qualified(kind),
            name: name.to_string(),
            message: format!(
                "Precondition failed: UID in precondition: {wanted}, UID in object meta: {actual}"
            ),
        }
    }

    pub fn invalid(kind: &ResourceKind, name: &str, causes: Vec<FieldError>) -> Self {
        ApiError::Invalid {
            kind: kind.kind.to_string(),
            name: name.to_string(),
            causes,
        }
    }

    pub fn code(&self) -> StatusCode {
        match self {
            ApiError::NotFound { .. } | ApiError::UnknownResource(_) => StatusCode::NOT_FOUND,
            ApiError::AlreadyExists { .. }
            | ApiError::Conflict { .. }
            | ApiError::ApplyConflict(_) => StatusCode::CONFLICT,
            ApiError::Invalid { .. } | ApiError::PatchFailed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Forbidden { .. } | ApiError::AccessDenied { .. } => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TooLarge { .. } | ApiError::ObjectTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::Gone { .. } | ApiError::ContinueExpired => StatusCode::GONE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::UnknownResource(_) => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } | ApiError::ApplyConflict(_) => "Conflict",
            ApiError::Invalid { .. } | ApiError::PatchFailed(_) => "Invalid",
            ApiError::Forbidden { .. } | ApiError::AccessDenied { .. } => "Forbidden",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::TooManyRequests { .. } => "TooManyRequests",
            ApiError::TooLarge { .. } | ApiError::ObjectTooLarge { .. } => "RequestEntityTooLarge",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::Gone { .. } | ApiError::ContinueExpired => "Expired",
            ApiError::Unavailable(_) => "ServiceUnavailable",
            ApiError::Timeout(_) => "Timeout",
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::Internal(_) => "InternalError",
        }
    }

    /// The Kubernetes `Status` object for this error.
    pub fn to_status(&self) -> Status {
        let details = match self {
            ApiError::NotFound { resource, name }
            | ApiError::AlreadyExists { resource, name }
            | ApiError::Conflict { resource, name, .. }
            | ApiError::Forbidden { resource, name, .. }
            | ApiError::ObjectTooLarge {
                kind: resource,
                name,
                ..
            } => Some(StatusDetails {
                name: Some(name.clone()),
                kind: Some(resource.clone()),
                ..Default::default()
            }),
            ApiError::AccessDenied { resource, name, .. } if !resource.is_empty() => {
                Some(StatusDetails {
                    name: (!name.is_empty()).then(|| name.clone()),
                    kind: Some(resource.clone()),
                    ..Default::default()
                })
            }
            ApiError::Invalid { kind, name, causes } => Some(StatusDetails {
                name: Some(name.clone()),
                kind: Some(kind.clone()),
                causes: Some(
                    causes
                        .iter()
                        .map(|c| StatusCause {
                            field: Some(c.field.clone()),
                            reason: Some(format!("FieldValue{:?}", c.reason)),
                            message: Some(c.to_string()),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ApiError::ApplyConflict(conflicts) => Some(StatusDetails {
                causes: Some(
                    conflicts
                        .iter()
                        .map(|c| StatusCause {
                            reason: Some("FieldManagerConflict".into()),
                            message: Some(format!("conflict with {}", c.manager)),
                            field: Some(c.field.clone()),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ApiError::TooManyRequests {
                cause_reason,
                cause,
                ..
            } => Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some(cause_reason.clone()),
                    message: Some(cause.clone()),
                    field: None,
                }]),
                ..Default::default()
            }),
            _ => None,
        };
        Status {
            status: Some("Failure".into()),
            message: Some(self.to_string()),
            reason: Some(self.reason().into()),
            code: Some(i32::from(self.code().as_u16())),
            details,
            metadata: Default::default(),
        }
    }
}

/// `deployments.apps` / `pods`: how Kubernetes names a resource in messages.
pub fn qualified(kind: &ResourceKind) -> String {
    if kind.group.is_empty() {
        kind.plural.to_string()
    } else {
        format!("{}.{}", kind.plural, kind.group)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Compacted { requested, oldest } => ApiError::Gone { requested, oldest },
            StoreError::NoLeader | StoreError::Stopped | StoreError::Fenced { .. } => {
                ApiError::Unavailable(err.to_string())
            }
            StoreError::Timeout => ApiError::Timeout(err.to_string()),
            StoreError::NoSuchMember(name) => ApiError::NotFound {
                resource: "members".into(),
                name,
            },
            StoreError::MemberConflict(message) => ApiError::Conflict {
                resource: "members".into(),
                name: String::new(),
                message,
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// A value that does not seal or open is the server's failure (a 500 naming the key); a
/// member that has not loaded the cluster's shared keys yet is unavailable (503).
impl From<crate::encryption::EncryptionError> for ApiError {
    fn from(err: crate::encryption::EncryptionError) -> Self {
        match err {
            crate::encryption::EncryptionError::NotLoaded { .. } => {
                ApiError::Unavailable(err.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.code(), axum::Json(self.to_status())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use skiff_api::validation::FieldErrorReason;

    #[test]
    fn statuses_keep_the_kubernetes_wire_shape() {
        let kind = skiff_api::resources::by_name("deployments").expect("kind");
        assert_eq!(
            serde_json::to_value(ApiError::not_found(kind, "web").to_status()).expect("json"),
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "deployments.apps \"web\" not found", "reason": "NotFound", "code": 404,
                "details": {"name": "web", "kind": "deployments.apps"}
            })
        );
        let invalid = ApiError::invalid(
            kind,
            "web",
            vec![FieldError {
                field: "spec.replicas".into(),
                reason: FieldErrorReason::Invalid,
                message: "-1: must be greater than or equal to 0".into(),
            }],
        );
        assert_eq!(
            serde_json::to_value(invalid.to_status()).expect("json"),
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Deployment \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "reason": "Invalid", "code": 422,
                "details": {"name": "web", "kind": "Deployment", "causes": [{
                    "field": "spec.replicas", "reason": "FieldValueInvalid",
                    "message": "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
                }]}
            })
        );
        assert_eq!(
            serde_json::to_value(ApiError::MethodNotAllowed.to_status()).expect("json"),
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the server does not allow this method on the requested resource",
                "reason": "MethodNotAllowed", "code": 405
            })
        );
    }
}
