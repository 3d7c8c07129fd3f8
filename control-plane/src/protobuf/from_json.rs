//! A message from Kubernetes JSON: fields by name, `bytes` from base64, the special forms
//! of [`special`]; `null` is an unset field. Fields the message does not have are left out
//! (`apiVersion` and `kind` travel in the envelope).

use base64::Engine as _;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value as Field,
};
use serde_json::Value;

use super::inline;
use super::special::{self, Special};
use super::ProtobufError;

/// The message `descriptor` from a JSON object; `path` names it in errors.
pub(super) fn message(
    descriptor: MessageDescriptor,
    value: &Value,
    path: &str,
) -> Result<DynamicMessage, ProtobufError> {
    let object = value
        .as_object()
        .ok_or_else(|| ProtobufError::field(path, format!("{value} is not an object")))?;
    let mut out = DynamicMessage::new(descriptor.clone());
    for field in descriptor.fields() {
        if let (true, Kind::Message(embedded)) =
            (inline::is_inline(&descriptor, &field), field.kind())
        {
            let inner = message(embedded, value, path)?;
            if inner.fields().next().is_some() {
                out.set_field(&field, Field::Message(inner));
            }
            continue;
        }
        let Some(json) = object.get(field.name()).filter(|v| !v.is_null()) else {
            continue;
        };
        let path = if path.is_empty() {
            field.name().to_string()
        } else {
            format!("{path}.{}", field.name())
        };
        out.set_field(&field, field_value(&field, json, &path)?);
    }
    Ok(out)
}

fn field_value(field: &FieldDescriptor, json: &Value, path: &str) -> Result<Field, ProtobufError> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            unreachable!("a map field's kind is its entry message");
        };
        let kind = entry.map_entry_value_field().kind();
        let object = json
            .as_object()
            .ok_or_else(|| ProtobufError::field(path, format!("{json} is not an object")))?;
        let mut map = std::collections::HashMap::with_capacity(object.len());
        for (key, item) in object {
            let path = format!("{path}[{key}]");
            map.insert(MapKey::String(key.clone()), single(&kind, item, &path)?);
        }
        return Ok(Field::Map(map));
    }
    if field.is_list() {
        let items = json
            .as_array()
            .ok_or_else(|| ProtobufError::field(path, format!("{json} is not an array")))?;
        let mut list = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            list.push(single(&field.kind(), item, &format!("{path}[{i}]"))?);
        }
        return Ok(Field::List(list));
    }
    single(&field.kind(), json, path)
}

/// One value of `kind` from JSON.
fn single(kind: &Kind, json: &Value, path: &str) -> Result<Field, ProtobufError> {
    let wrong = |what: &str| ProtobufError::field(path, format!("{json} is not {what}"));
    let int = || json.as_i64().ok_or_else(|| wrong("an integer"));
    Ok(match kind {
        Kind::Bool => Field::Bool(json.as_bool().ok_or_else(|| wrong("a boolean"))?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Field::I32(i32::try_from(int()?).map_err(|_| wrong("an int32"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Field::I64(int()?),
        Kind::Uint32 | Kind::Fixed32 => {
            Field::U32(u32::try_from(int()?).map_err(|_| wrong("a uint32"))?)
        }
        Kind::Uint64 | Kind::Fixed64 => Field::U64(json.as_u64().ok_or_else(|| wrong("a uint64"))?),
        Kind::Float => Field::F32(json.as_f64().ok_or_else(|| wrong("a number"))? as f32),
        Kind::Double => Field::F64(json.as_f64().ok_or_else(|| wrong("a number"))?),
        Kind::Enum(_) => Field::EnumNumber(i32::try_from(int()?).map_err(|_| wrong("an enum"))?),
        Kind::String => Field::String(json.as_str().ok_or_else(|| wrong("a string"))?.to_string()),
        Kind::Bytes => {
            let text = json.as_str().ok_or_else(|| wrong("a base64 string"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| ProtobufError::field(path, format!("not base64: {e}")))?;
            Field::Bytes(bytes.into())
        }
        Kind::Message(descriptor) => Field::Message(match special::of(descriptor) {
            Some(Special::Items) => {
                let items = descriptor.fields().next().expect("an items field");
                let mut wrapper = DynamicMessage::new(descriptor.clone());
                wrapper.set_field(&items, field_value(&items, json, path)?);
                wrapper
            }
            Some(special) => special::from_json(special, descriptor.clone(), json, path)?,
            None => message(descriptor.clone(), json, path)?,
        }),
    })
}
