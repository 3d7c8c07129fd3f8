//! The stored form of objects: JSON without `resourceVersion`, which the store's revision
//! supplies when an object is read.

use serde_json::Value;
use skiff_raft_store::KeyValue;

use super::object;
use crate::error::ApiError;

/// Stored form: the object without `metadata.resourceVersion` (the store's revision is the
/// truth); an object over [`skiff_api::MAX_OBJECT_BYTES`] is refused, naming it.
pub fn encode(obj: &Value) -> Result<Vec<u8>, ApiError> {
    let bytes =
        serde_json::to_vec(&strip_version(obj)).map_err(|e| ApiError::Internal(e.to_string()))?;
    if bytes.len() > skiff_api::MAX_OBJECT_BYTES {
        return Err(ApiError::ObjectTooLarge {
            kind: obj["kind"].as_str().unwrap_or_default().to_string(),
            name: object::name(obj).unwrap_or_default().to_string(),
            bytes: bytes.len(),
            limit: skiff_api::MAX_OBJECT_BYTES,
        });
    }
    Ok(bytes)
}

/// Served form: the stored object with `resourceVersion` = its `mod_revision`.
pub fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut obj: Value = serde_json::from_slice(&kv.value).map_err(|e| {
        ApiError::Internal(format!(
            "stored object {} is corrupt: {e}",
            String::from_utf8_lossy(&kv.key)
        ))
    })?;
    object::set_meta(&mut obj, "resourceVersion", kv.mod_revision.to_string());
    Ok(obj)
}

pub fn strip_version(obj: &Value) -> Value {
    let mut obj = obj.clone();
    object::remove_meta(&mut obj, "resourceVersion");
    obj
}
