//! Accessors for the metadata of objects held as JSON values.

use serde_json::{Map, Value};

/// Read access to `metadata.*` of a JSON object.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub fn name(obj: &Value) -> Option<&str> {
    meta_str(obj, "name").filter(|s| !s.is_empty())
}

pub fn namespace(obj: &Value) -> Option<&str> {
    meta_str(obj, "namespace").filter(|s| !s.is_empty())
}

pub fn uid(obj: &Value) -> Option<&str> {
    meta_str(obj, "uid")
}

/// `metadata.resourceVersion` parsed; `None` if absent or empty.
pub fn resource_version(obj: &Value) -> Result<Option<u64>, String> {
    match meta_str(obj, "resourceVersion") {
        None | Some("") => Ok(None),
        Some(rv) => rv.parse().map(Some).map_err(|_| {
            format!("metadata.resourceVersion: invalid value {rv:?}: must be an integer")
        }),
    }
}

/// The revision a served object carries (0 when it has none), e.g. to wait for caches to see it.
pub fn revision(obj: &Value) -> u64 {
    resource_version(obj).ok().flatten().unwrap_or(0)
}

/// Mutable `metadata`, created if missing (the object must be a JSON object).
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let map = obj.as_object_mut().expect("object ensured above");
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("object ensured above")
}

pub fn set_meta(obj: &mut Value, field: &str, value: impl Into<Value>) {
    meta_mut(obj).insert(field.to_string(), value.into());
}

pub fn remove_meta(obj: &mut Value, field: &str) {
    meta_mut(obj).remove(field);
}

/// Labels as a map (empty when absent).
pub fn labels(obj: &Value) -> std::collections::BTreeMap<String, String> {
    obj.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub use skiff_api::time::now_rfc3339;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_writes_metadata() {
        let mut obj =
            json!({"metadata": {"name": "a", "resourceVersion": "12", "labels": {"app": "x"}}});
        assert_eq!(name(&obj), Some("a"));
        assert_eq!(resource_version(&obj), Ok(Some(12)));
        assert_eq!(labels(&obj).get("app").map(String::as_str), Some("x"));
        set_meta(&mut obj, "namespace", "default");
        assert_eq!(namespace(&obj), Some("default"));
        remove_meta(&mut obj, "resourceVersion");
        assert_eq!(resource_version(&obj), Ok(None));
        assert!(resource_version(&json!({"metadata": {"resourceVersion": "x"}})).is_err());
    }
}
