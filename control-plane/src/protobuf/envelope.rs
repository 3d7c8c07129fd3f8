//! The `k8s\0` + `runtime.Unknown` envelope around an object's message.

use prost_reflect::prost::Message;
use prost_reflect::{DynamicMessage, Value as Field};
use serde_json::Value;

use super::{descriptors, from_json, to_json, type_meta, ProtobufError};

/// The prefix of every Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

const UNKNOWN: &str = "apimachinery.pkg.runtime.Unknown";
const TYPE_META: &str = "apimachinery.pkg.runtime.TypeMeta";

/// The object in a protobuf body, as JSON with its `apiVersion` and `kind`.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let unknown = body.strip_prefix(MAGIC).ok_or(ProtobufError::NoEnvelope)?;
    let unknown = DynamicMessage::decode(descriptors::message(UNKNOWN), unknown).map_err(|e| {
        ProtobufError::Malformed {
            what: "the runtime.Unknown envelope",
            reason: e.to_string(),
        }
    })?;
    let text = |message: &DynamicMessage, name: &str| {
        message
            .get_field_by_name(name)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let encoding = text(&unknown, "contentEncoding");
    if !encoding.is_empty() {
        return Err(ProtobufError::Encoding(format!(
            "contentEncoding {encoding:?}"
        )));
    }
    let content_type = text(&unknown, "contentType");
    if !content_type.is_empty() && !super::is_media_type(&content_type) {
        return Err(ProtobufError::Encoding(format!(
            "contentType {content_type:?}"
        )));
    }
    let meta = unknown
        .get_field_by_name("typeMeta")
        .and_then(|v| v.as_message().cloned())
        .unwrap_or_else(|| DynamicMessage::new(descriptors::message(TYPE_META)));
    let (api_version, kind) = (text(&meta, "apiVersion"), text(&meta, "kind"));
    let descriptor =
        descriptors::kind(&api_version, &kind).ok_or_else(|| ProtobufError::UnknownKind {
            api_version: api_version.clone(),
            kind: kind.clone(),
        })?;
    let raw = unknown
        .get_field_by_name("raw")
        .and_then(|v| v.as_bytes().cloned())
        .unwrap_or_default();
    let message =
        DynamicMessage::decode(descriptor, raw).map_err(|e| ProtobufError::Malformed {
            what: "the object",
            reason: format!("{api_version} {kind}: {e}"),
        })?;
    let mut object = serde_json::Map::new();
    object.insert("apiVersion".into(), Value::String(api_version));
    object.insert("kind".into(), Value::String(kind));
    if let Value::Object(fields) = to_json::message(&message, "")? {
        object.extend(fields);
    }
    Ok(Value::Object(object))
}

/// A JSON object (with its `apiVersion` and `kind`) as a protobuf body.
pub fn encode(object: &Value) -> Result<Vec<u8>, ProtobufError> {
    let (api_version, kind) = type_meta(object);
    let descriptor =
        descriptors::kind(api_version, kind).ok_or_else(|| ProtobufError::UnknownKind {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        })?;
    let message = from_json::message(descriptor, object, "")?;
    let mut meta = DynamicMessage::new(descriptors::message(TYPE_META));
    meta.set_field_by_name("apiVersion", Field::String(api_version.to_string()));
    meta.set_field_by_name("kind", Field::String(kind.to_string()));
    let mut unknown = DynamicMessage::new(descriptors::message(UNKNOWN));
    unknown.set_field_by_name("typeMeta", Field::Message(meta));
    unknown.set_field_by_name("raw", Field::Bytes(message.encode_to_vec().into()));
    unknown.set_field_by_name("contentEncoding", Field::String(String::new()));
    unknown.set_field_by_name("contentType", Field::String(String::new()));
    Ok([MAGIC, &unknown.encode_to_vec()].concat())
}
