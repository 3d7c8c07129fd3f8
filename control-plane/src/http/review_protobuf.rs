//! Reading access reviews sent as Kubernetes protobuf (`application/vnd.kubernetes.protobuf`),
//! as typed client-go clients such as `kubectl auth can-i` send them: the `k8s\0` envelope
//! (`runtime.Unknown`) around a SelfSubjectAccessReview or SubjectAccessReview, turned into
//! the JSON shape the JSON path reads. Only the fields a review's `spec` uses are read.

use serde_json::{json, Map, Value};

use crate::error::ApiError;

/// The prefix of every Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

/// The `spec` message of the review in `body`, if it has one.
fn spec(body: &[u8]) -> Result<Option<&[u8]>, ApiError> {
    let bad = |what: &str| ApiError::BadRequest(format!("protobuf review: {what}"));
    let unknown = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("no k8s envelope"))?;
    // runtime.Unknown: raw = 2.
    let raw = fields(unknown)?
        .into_iter()
        .find_map(|(n, v)| (n == 2).then_some(v))
        .ok_or_else(|| bad("no object in the envelope"))?;
    // The review: spec = 2.
    Ok(fields(raw)?
        .into_iter()
        .find_map(|(n, v)| (n == 2).then_some(v)))
}

/// The SelfSubjectRulesReview in `body`, as JSON (`{"spec": {"namespace": ...}}`).
pub fn decode_rules_review(body: &[u8]) -> Result<Value, ApiError> {
    let Some(spec) = spec(body)? else {
        return Ok(json!({"spec": {}}));
    };
    Ok(json!({"spec": strings(spec, &["namespace"])?}))
}

/// The access review in `body`, as JSON (`{"spec": {...}}`).
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let Some(spec) = spec(body)? else {
        return Ok(json!({"spec": {}}));
    };
    let mut out = Map::new();
    let mut groups = Vec::new();
    for (number, value) in fields(spec)? {
        match number {
            1 => {
                let names = [
                    "namespace",
                    "verb",
                    "group",
                    "version",
                    "resource",
                    "subresource",
                    "name",
                ];
                out.insert("resourceAttributes".into(), strings(value, &names)?);
            }
            2 => {
                out.insert(
                    "nonResourceAttributes".into(),
                    strings(value, &["path", "verb"])?,
                );
            }
            3 => {
                out.insert("user".into(), json!(text(value)?));
            }
            4 => groups.push(json!(text(value)?)),
            6 => {
                out.insert("uid".into(), json!(text(value)?));
            }
            _ => {}
        }
    }
    if !groups.is_empty() {
        out.insert("groups".into(), Value::Array(groups));
    }
    Ok(json!({ "spec": out }))
}

/// A message whose string fields 1..=names.len() are named `names`.
fn strings(message: &[u8], names: &[&str]) -> Result<Value, ApiError> {
    let mut out = Map::new();
    for (number, value) in fields(message)? {
        if let Some(name) = names.get((number as usize).wrapping_sub(1)) {
            out.insert((*name).to_string(), json!(text(value)?));
        }
    }
    Ok(Value::Object(out))
}

pub(super) fn text(bytes: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(bytes)
        .map_err(|_| ApiError::BadRequest("protobuf review: a string is not UTF-8".into()))
}

/// The length-delimited fields of a message, by field number (other wire types skipped).
pub(super) fn fields(mut message: &[u8]) -> Result<Vec<(u64, &[u8])>, ApiError> {
    let truncated = || ApiError::BadRequest("protobuf review: truncated message".into());
    let mut out = Vec::new();
    while !message.is_empty() {
        let key = varint(&mut message).ok_or_else(truncated)?;
        let skip = match key & 7 {
            0 => {
                varint(&mut message).ok_or_else(truncated)?;
                0
            }
            1 => 8,
            5 => 4,
            2 => {
                let len = varint(&mut message).ok_or_else(truncated)? as usize;
                let value = message.get(..len).ok_or_else(truncated)?;
                out.push((key >> 3, value));
                len
            }
            _ => {
                return Err(ApiError::BadRequest(
                    "protobuf review: bad wire type".into(),
                ))
            }
        };
        message = message.get(skip..).ok_or_else(truncated)?;
    }
    Ok(out)
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3) | 2, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn reads_a_self_subject_access_review() {
        let attributes = [field(1, b"team"), field(2, b"list"), field(5, b"pods")].concat();
        let spec = field(1, &attributes);
        let review = [field(1, &[]), field(2, &spec)].concat();
        let type_meta = [
            field(1, b"authorization.k8s.io/v1"),
            field(2, b"SelfSubjectAccessReview"),
        ]
        .concat();
        let unknown = [field(1, &type_meta), field(2, &review)].concat();
        let body = [MAGIC, &unknown].concat();
        assert_eq!(
            decode(&body).expect("decodes"),
            json!({"spec": {"resourceAttributes": {"namespace": "team", "verb": "list", "resource": "pods"}}})
        );
        assert!(decode(&unknown).is_err());
        assert!(decode(&body[..body.len() - 2]).is_err());
    }

    #[test]
    fn reads_a_self_subject_rules_review() {
        let review = [field(1, &[]), field(2, &field(1, b"team"))].concat();
        let unknown = [field(1, b"ignored"), field(2, &review)].concat();
        let body = [MAGIC, &unknown].concat();
        assert_eq!(
            decode_rules_review(&body).expect("decodes"),
            json!({"spec": {"namespace": "team"}})
        );
    }
}
