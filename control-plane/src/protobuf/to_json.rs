//! A message as Kubernetes writes it in JSON: fields by their names, empty strings and
//! empty lists and maps left out (what Go's `omitempty` does for such fields), `bytes` in
//! base64, and the special forms of [`special`].

use base64::Engine as _;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, ReflectMessage, Value as Field,
};
use serde_json::{Map, Value};

use super::inline;
use super::special::{self, Special};
use super::ProtobufError;

/// A message's JSON; `path` names it in errors (`spec.template`).
pub(super) fn message(message: &DynamicMessage, path: &str) -> Result<Value, ProtobufError> {
    let mut out = Map::new();
    for (field, value) in message.fields() {
        let inline = inline::is_inline(&message.descriptor(), &field);
        let path = if inline {
            path.to_string()
        } else {
            join(path, field.name())
        };
        match field_value(&field, value, &path)? {
            Some(Value::Object(fields)) if inline => out.extend(fields),
            Some(json) => {
                out.insert(field.name().to_string(), json);
            }
            None => {}
        }
    }
    Ok(Value::Object(out))
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// A field's JSON, `None` when it is left out.
fn field_value(
    field: &FieldDescriptor,
    value: &Field,
    path: &str,
) -> Result<Option<Value>, ProtobufError> {
    match value {
        Field::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let path = format!("{path}[{i}]");
                out.push(single(&field.kind(), item, &path)?.unwrap_or_else(|| empty(item)));
            }
            Ok((!out.is_empty()).then_some(Value::Array(out)))
        }
        Field::Map(entries) => {
            let value_kind = match field.kind() {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other,
            };
            let mut out = Map::new();
            for (key, item) in entries {
                let key = match key {
                    MapKey::String(s) => s.clone(),
                    MapKey::Bool(b) => b.to_string(),
                    MapKey::I32(n) => n.to_string(),
                    MapKey::I64(n) => n.to_string(),
                    MapKey::U32(n) => n.to_string(),
                    MapKey::U64(n) => n.to_string(),
                };
                let path = format!("{path}[{key}]");
                let json = single(&value_kind, item, &path)?.unwrap_or_else(|| empty(item));
                out.insert(key, json);
            }
            // Go's maps print in key order.
            let mut sorted: Vec<_> = out.into_iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            Ok((!sorted.is_empty()).then(|| Value::Object(sorted.into_iter().collect())))
        }
        value => single(&field.kind(), value, path),
    }
}

/// A list item or map value [`single`] leaves out as a field: an empty string stays one.
fn empty(value: &Field) -> Value {
    match value {
        Field::String(_) => Value::String(String::new()),
        _ => Value::Null,
    }
}

/// One value of `kind` (a list's item, a map's value or a singular field).
fn single(kind: &Kind, value: &Field, path: &str) -> Result<Option<Value>, ProtobufError> {
    Ok(match value {
        Field::Bool(b) => Some(Value::Bool(*b)),
        Field::I32(n) => Some(Value::from(*n)),
        Field::I64(n) => Some(Value::from(*n)),
        Field::U32(n) => Some(Value::from(*n)),
        Field::U64(n) => Some(Value::from(*n)),
        Field::F32(n) => Some(Value::from(f64::from(*n))),
        Field::F64(n) => Some(Value::from(*n)),
        Field::EnumNumber(n) => Some(Value::from(*n)),
        Field::String(s) => (!s.is_empty()).then(|| Value::String(s.clone())),
        Field::Bytes(bytes) => Some(Value::String(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        )),
        Field::Message(inner) => {
            let descriptor = match kind {
                Kind::Message(d) => d.clone(),
                _ => return Err(ProtobufError::field(path, "a message in a scalar field")),
            };
            match special::of(&descriptor) {
                Some(Special::Items) => {
                    let items = descriptor.fields().next().expect("an items field");
                    let list = inner.get_field(&items);
                    Some(field_value(&items, &list, path)?.unwrap_or(Value::Array(Vec::new())))
                }
                Some(special) => special::to_json(special, inner, path)?,
                None => Some(message(inner, path)?),
            }
        }
        Field::List(_) | Field::Map(_) => {
            return Err(ProtobufError::field(path, "a nested list or map"));
        }
    })
}
