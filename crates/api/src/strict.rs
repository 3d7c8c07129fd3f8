//! Decoding into JSON values that refuses duplicate keys, as Kubernetes' strict field
//! validation does (`serde_json` and YAML would keep the last one silently), or that notes
//! them and keeps the last, as its `Warn` and `Ignore` field validation do.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

/// A value whose objects have no duplicate keys; decoding fails with
/// `duplicate field "spec.replicas"` naming the field's path.
pub struct StrictValue(pub Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        AtPath::root(None)
            .deserialize(deserializer)
            .map(StrictValue)
    }
}

/// Decodes JSON keeping the last of duplicate keys; the value and the paths of the duplicates
/// (`spec.replicas`), in the order met.
pub fn from_slice_noting_duplicates(bytes: &[u8]) -> serde_json::Result<(Value, Vec<String>)> {
    let duplicates = RefCell::new(Vec::new());
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = AtPath::root(Some(&duplicates)).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok((value, duplicates.into_inner()))
}

/// Decodes the value at a field path (empty at the root); duplicate keys fail the decoding,
/// or are noted in `duplicates` when given.
struct AtPath<'a> {
    path: String,
    duplicates: Option<&'a RefCell<Vec<String>>>,
}

impl<'a> AtPath<'a> {
    fn root(duplicates: Option<&'a RefCell<Vec<String>>>) -> Self {
        AtPath {
            path: String::new(),
            duplicates,
        }
    }

    fn child(&self, path: String) -> Self {
        AtPath {
            path,
            duplicates: self.duplicates,
        }
    }
}

impl<'de> DeserializeSeed<'de> for AtPath<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AtPath<'_> {
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
            seq.next_element_seed(self.child(format!("{}[{}]", self.path, items.len())))?
        {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if object.contains_key(&key) {
                match self.duplicates {
                    Some(duplicates) => duplicates.borrow_mut().push(path.clone()),
                    None => return Err(de::Error::custom(format!("duplicate field {path:?}"))),
                }
            }
            let value = map.next_value_seed(self.child(path))?;
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

    #[test]
    fn duplicates_can_be_noted_keeping_the_last() {
        let (value, duplicates) = from_slice_noting_duplicates(
            br#"{"spec": {"replicas": 1, "replicas": 2}, "a": [{"b": 1, "b": 3}]}"#,
        )
        .expect("decodes");
        assert_eq!(value["spec"]["replicas"], 2);
        assert_eq!(value["a"][0]["b"], 3);
        assert_eq!(duplicates, ["spec.replicas", "a[0].b"]);
        assert!(from_slice_noting_duplicates(b"{} x").is_err());
    }
}
