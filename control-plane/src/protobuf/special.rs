//! The messages whose JSON form is not an object of their fields: Quantity ("500m"),
//! Time and MicroTime (RFC 3339), IntOrString (a number or a string), raw JSON
//! (RawExtension, FieldsV1, apiextensions' JSON) and the `items` wrappers that stand for a
//! named list type (authorization's ExtraValue, meta's Verbs).

use prost_reflect::{DynamicMessage, MessageDescriptor, Value as Field};
use serde_json::Value;

use super::ProtobufError;

/// A message with a JSON form of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Special {
    /// `resource.Quantity`: its `string`.
    Quantity,
    /// `meta/v1.Time`: RFC 3339 in seconds; the zero time is omitted.
    Time,
    /// `meta/v1.MicroTime`: RFC 3339 in microseconds; the zero time is omitted.
    MicroTime,
    /// `intstr.IntOrString`: `intVal` or `strVal` by `type`.
    IntOrString,
    /// A message whose `raw` bytes are JSON, written as that JSON.
    RawJson,
    /// A message whose only field is `repeated items`: a JSON array.
    Items,
}

/// The special JSON form of messages of this type, if they have one.
pub(super) fn of(descriptor: &MessageDescriptor) -> Option<Special> {
    match descriptor.full_name() {
        "apimachinery.pkg.api.resource.Quantity" => Some(Special::Quantity),
        "apimachinery.pkg.apis.meta.v1.Time" => Some(Special::Time),
        "apimachinery.pkg.apis.meta.v1.MicroTime" => Some(Special::MicroTime),
        "apimachinery.pkg.util.intstr.IntOrString" => Some(Special::IntOrString),
        "apimachinery.pkg.runtime.RawExtension"
        | "apimachinery.pkg.apis.meta.v1.FieldsV1"
        | "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON" => Some(Special::RawJson),
        _ => {
            let mut fields = descriptor.fields();
            let only = fields.next().filter(|_| fields.len() == 0)?;
            (only.name() == "items" && only.is_list()).then_some(Special::Items)
        }
    }
}

/// The JSON of a leaf special message (not [`Special::Items`]); `None` for a zero time,
/// which Kubernetes leaves out.
pub(super) fn to_json(
    special: Special,
    message: &DynamicMessage,
    path: &str,
) -> Result<Option<Value>, ProtobufError> {
    let int = |name: &str| {
        message
            .get_field_by_name(name)
            .and_then(|v| v.as_i64().or_else(|| v.as_i32().map(i64::from)))
            .unwrap_or_default()
    };
    let text = |name: &str| {
        message
            .get_field_by_name(name)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    Ok(match special {
        Special::Quantity => Some(Value::String(text("string"))),
        Special::Time | Special::MicroTime => {
            let (seconds, nanos) = (int("seconds"), int("nanos"));
            if seconds == 0 && nanos == 0 {
                return Ok(None);
            }
            let nanos = i32::try_from(nanos)
                .map_err(|_| ProtobufError::field(path, "nanos out of range"))?;
            let time = jiff::Timestamp::new(seconds, nanos)
                .map_err(|e| ProtobufError::field(path, format!("not a time: {e}")))?;
            let whole = time.strftime("%Y-%m-%dT%H:%M:%S");
            Some(Value::String(if special == Special::Time {
                format!("{whole}Z")
            } else {
                format!("{whole}.{:06}Z", time.subsec_microsecond())
            }))
        }
        Special::IntOrString => Some(if int("type") == 1 {
            Value::String(text("strVal"))
        } else {
            Value::from(int("intVal"))
        }),
        Special::RawJson => {
            // `raw`, or `Raw` in FieldsV1.
            let raw = message
                .get_field_by_number(1)
                .and_then(|v| v.as_bytes().cloned())
                .unwrap_or_default();
            if raw.is_empty() {
                return Ok(None);
            }
            Some(
                serde_json::from_slice(&raw)
                    .map_err(|e| ProtobufError::field(path, format!("raw is not JSON: {e}")))?,
            )
        }
        Special::Items => unreachable!("items wrappers are lists, converted by the caller"),
    })
}

/// The message of a leaf special type from its JSON form.
pub(super) fn from_json(
    special: Special,
    descriptor: MessageDescriptor,
    value: &Value,
    path: &str,
) -> Result<DynamicMessage, ProtobufError> {
    let mut message = DynamicMessage::new(descriptor);
    if special == Special::RawJson {
        let raw =
            serde_json::to_vec(value).map_err(|e| ProtobufError::field(path, e.to_string()))?;
        // `raw`, or `Raw` in FieldsV1.
        message.set_field_by_number(1, Field::Bytes(raw.into()));
        return Ok(message);
    }
    let mut set = |name: &str, field: Field| message.set_field_by_name(name, field);
    match (special, value) {
        (Special::Quantity, Value::String(text)) => set("string", Field::String(text.clone())),
        (Special::Quantity, Value::Number(number)) => {
            set("string", Field::String(number.to_string()))
        }
        (Special::Time | Special::MicroTime, Value::String(text)) => {
            let time: jiff::Timestamp = text.parse().map_err(|e| {
                ProtobufError::field(path, format!("{text:?} is not an RFC 3339 time: {e}"))
            })?;
            set("seconds", Field::I64(time.as_second()));
            set("nanos", Field::I32(time.subsec_nanosecond()));
        }
        (Special::IntOrString, Value::String(text)) => {
            set("type", Field::I64(1));
            set("strVal", Field::String(text.clone()));
        }
        (Special::IntOrString, Value::Number(number)) => {
            let int = number
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| ProtobufError::field(path, format!("{number} is not an int32")))?;
            set("type", Field::I64(0));
            set("intVal", Field::I32(int));
        }
        (special, value) => {
            return Err(ProtobufError::field(
                path,
                format!("{value} is not a valid {special:?}"),
            ))
        }
    }
    Ok(message)
}
