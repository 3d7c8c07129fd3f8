//! Kubernetes' protobuf wire format (`application/vnd.kubernetes.protobuf`) for the built-in
//! kinds, read and written through the descriptor set of Kubernetes' own `.proto` files
//! (`kubernetes.fds`, made by `scripts/kubernetes-descriptors.sh`) rather than per-kind code.
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` whose `typeMeta` names the
//! kind and whose `raw` is the object's message. Objects are converted to and from the JSON
//! form the rest of the server works on, with Kubernetes' own JSON shapes for the types that
//! have one (see [`special`]).

mod descriptors;
mod envelope;
mod from_json;
mod inline;
mod special;
mod to_json;

use serde_json::Value;

pub use envelope::{decode, encode};

/// Whether objects of `kind` have a protobuf form (built-in kinds do, custom resources not).
pub fn has_form(kind: &skiff_api::resources::ResourceKind) -> bool {
    descriptors::kind(&kind.api_version(), kind.kind).is_some()
}

/// The media type of Kubernetes protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Why a protobuf body could not be read or an object could not be written as protobuf.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    /// The body lacks the `k8s\0` prefix.
    #[error("the protobuf body does not start with the Kubernetes envelope (k8s\\0)")]
    NoEnvelope,
    /// The envelope or the object's message is not valid protobuf.
    #[error("the protobuf body is malformed: {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    /// The envelope names a kind Skiff has no protobuf form for (custom resources).
    #[error(
        "{api_version} {kind} has no protobuf form here; send it as application/json \
         (got {MEDIA_TYPE})"
    )]
    UnknownKind { api_version: String, kind: String },
    /// The envelope's content is compressed or in another encoding.
    #[error("unsupported protobuf envelope content: {0}")]
    Encoding(String),
    /// A field's value does not fit its protobuf or JSON form.
    #[error("{path}: {reason}")]
    Field { path: String, reason: String },
}

impl ProtobufError {
    fn field(path: &str, reason: impl Into<String>) -> Self {
        ProtobufError::Field {
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}

/// Whether a `Content-Type` (or one `Accept` entry) is Kubernetes protobuf.
pub fn is_media_type(value: &str) -> bool {
    value.split(';').next().unwrap_or_default().trim() == MEDIA_TYPE
}

/// The `apiVersion` and `kind` of a JSON object.
fn type_meta(object: &Value) -> (&str, &str) {
    let field = |name: &str| object.get(name).and_then(Value::as_str).unwrap_or_default();
    (field("apiVersion"), field("kind"))
}

#[cfg(test)]
mod tests;
