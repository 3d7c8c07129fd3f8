//! Decoding into JSON values that refuses duplicate keys, as Kubernetes' strict field
//! validation does (`serde_json` and YAML would keep the last one silently).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

/// A value whose objects have no duplicate keys; decoding fails with
/// `duplicate field "spec.replicas"` naming the field's path.
pub struct StrictValue(pub Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        AtPath(String::new())
            .deserialize(deserializer)
            .map(StrictValue)
    }
}

/// Decodes the value at a field path (empty at the root).
struct AtPath(String);

impl<'de> DeserializeSeed<'de> for AtPath {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AtPath {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) =
            seq.next_element_seed(AtPath(format!("{}[{}]", self.0, items.len())))?
        {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.0.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.0)
            };
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate field {path:?}")));
            }
            let value = map.next_value_seed(AtPath(path))?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_named_by_path_and_values_are_kept() {
        let err = serde_json::from_str::<StrictValue>(
            r#"{"spec": {"template": {"x": [{"a": 1, "a": 2}]}}}"#,
        )
        .err()
        .expect("duplicate");
        assert!(
            err.to_string()
                .starts_with(r#"duplicate field "spec.template.x[0].a""#),
            "{err}"
        );
        let text = r#"{"a": [1, -2, 3.5, null, true, "s"], "b": {}}"#;
        let value = serde_json::from_str::<StrictValue>(text).expect("valid").0;
        assert_eq!(value, serde_json::from_str::<Value>(text).expect("json"));
    }
}
