//! Reading a CertificateSigningRequest sent to `/approval` as Kubernetes protobuf, as stock
//! `kubectl certificate approve|deny` (a typed client-go client) sends it: the `k8s\0`
//! envelope around the request, of which only what an approval reads is kept (the name, the
//! resourceVersion and the status conditions), in the JSON shape the JSON path reads.

use serde_json::{json, Map, Value};

use super::review_protobuf::{fields, text};
use crate::error::ApiError;

const MAGIC: &[u8] = b"k8s\0";

/// The request in `body`, as JSON (`metadata.name`, `metadata.resourceVersion`,
/// `status.conditions`).
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let bad = |what: &str| ApiError::BadRequest(format!("protobuf approval: {what}"));
    let unknown = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("no k8s envelope"))?;
    // runtime.Unknown: raw = 2.
    let raw = fields(unknown)?
        .into_iter()
        .find_map(|(n, v)| (n == 2).then_some(v))
        .ok_or_else(|| bad("no object in the envelope"))?;
    let mut metadata = Map::new();
    let mut conditions = Vec::new();
    for (number, value) in fields(raw)? {
        match number {
            // ObjectMeta: name = 1, resourceVersion = 6.
            1 => {
                for (field, bytes) in fields(value)? {
                    match field {
                        1 => metadata.insert("name".into(), json!(text(bytes)?)),
                        6 => metadata.insert("resourceVersion".into(), json!(text(bytes)?)),
                        _ => None,
                    };
                }
            }
            // Status: conditions = 1 (type 1, reason 2, message 3, status 6).
            3 => {
                for (field, bytes) in fields(value)? {
                    if field != 1 {
                        continue;
                    }
                    let mut condition = Map::new();
                    for (n, v) in fields(bytes)? {
                        let key = match n {
                            1 => "type",
                            2 => "reason",
                            3 => "message",
                            6 => "status",
                            _ => continue,
                        };
                        condition.insert(key.into(), json!(text(v)?));
                    }
                    conditions.push(Value::Object(condition));
                }
            }
            _ => {}
        }
    }
    Ok(json!({"metadata": metadata, "status": {"conditions": conditions}}))
}
