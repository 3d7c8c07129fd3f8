//! Strategic merge patches (`application/strategic-merge-patch+json`), applied as Kubernetes
//! applies them to its built-in kinds: maps merge, `null` deletes a field, lists with a merge
//! key (see [`merge_keys`]) merge element by element, lists of primitives with the merge
//! strategy merge as sets, and every other list is replaced whole.
//!
//! Directives: `$patch: replace|delete|merge` in a map or as a list element,
//! `$retainKeys`, `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>` (honoured:
//! the named elements take the given order; elements the patch does not name keep their place
//! relative to them, as Kubernetes places server-only elements).

pub mod merge_keys;

use serde_json::{Map, Value};

use merge_keys::Strategy;

/// A strategic merge patch that cannot be applied; each names the field.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SmpError {
    #[error("a strategic merge patch must be a JSON object")]
    NotAnObject,
    #[error("{path}: unknown $patch directive {value}")]
    UnknownPatchDirective { path: String, value: String },
    #[error("{path}: unknown patch directive {directive:?}")]
    UnknownDirective { path: String, directive: String },
    #[error("{path}: {directive} must be a list")]
    DirectiveNotAList { path: String, directive: String },
    #[error("{path}: the elements of a list merged by {key:?} must be objects")]
    ElementNotAnObject { path: String, key: &'static str },
    #[error("{path}: an element has no merge key {key:?}")]
    MissingMergeKey { path: String, key: &'static str },
}

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";

/// Applies `patch` to `original`, an object whose schema type is `root` (see
/// [`merge_keys::root`]).
pub fn apply(original: &Value, patch: &Value, root: &str) -> Result<Value, SmpError> {
    let (Value::Object(original), Value::Object(patch)) = (original, patch) else {
        return Err(SmpError::NotAnObject);
    };
    merge_map(original.clone(), patch, root, "").map(Value::Object)
}

fn child_path(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// What a map's `$patch` directive asks.
enum MapDirective {
    Merge,
    Replace,
    Delete,
}

fn map_directive(patch: &Map<String, Value>, path: &str) -> Result<MapDirective, SmpError> {
    match patch.get(PATCH) {
        None => Ok(MapDirective::Merge),
        Some(Value::String(s)) if s == "merge" => Ok(MapDirective::Merge),
        Some(Value::String(s)) if s == "replace" => Ok(MapDirective::Replace),
        Some(Value::String(s)) if s == "delete" => Ok(MapDirective::Delete),
        Some(other) => Err(SmpError::UnknownPatchDirective {
            path: path.to_string(),
            value: other.to_string(),
        }),
    }
}

fn directive_list<'a>(
    value: &'a Value,
    path: &str,
    directive: &str,
) -> Result<&'a Vec<Value>, SmpError> {
    value.as_array().ok_or_else(|| SmpError::DirectiveNotAList {
        path: path.to_string(),
        directive: directive.to_string(),
    })
}

fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    ty: &str,
    path: &str,
) -> Result<Map<String, Value>, SmpError> {
    match map_directive(patch, path)? {
        MapDirective::Replace => {
            // The patch is the whole new map; nested directives are cleared the same way.
            return merge_map(Map::new(), &without(patch, PATCH), ty, path);
        }
        MapDirective::Delete => return Ok(Map::new()),
        MapDirective::Merge => {}
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let retain = directive_list(retain, path, RETAIN_KEYS)?;
        original.retain(|k, _| retain.iter().any(|r| r.as_str() == Some(k)));
    }
    let mut orders = Vec::new();
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let gone = directive_list(value, path, key)?;
            if let Some(Value::Array(list)) = original.get_mut(field) {
                list.retain(|v| !gone.contains(v));
            }
        } else if let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) {
            orders.push((field, directive_list(value, path, key)?));
        } else if key.starts_with('$') && key != PATCH && key != RETAIN_KEYS {
            return Err(SmpError::UnknownDirective {
                path: path.to_string(),
                directive: key.clone(),
            });
        }
    }
    for (key, value) in patch.iter().filter(|(k, _)| !k.starts_with('$')) {
        if value.is_null() {
            original.remove(key);
            continue;
        }
        let field_path = child_path(path, key);
        let (strategy, child) = merge_keys::field(ty, key).unwrap_or((Strategy::Nested, ""));
        let merged = match (original.remove(key), value) {
            (Some(Value::Object(o)), Value::Object(p)) => {
                Value::Object(merge_map(o, p, child, &field_path)?)
            }
            (_, Value::Object(p)) => Value::Object(merge_map(Map::new(), p, child, &field_path)?),
            (o, Value::Array(p)) => {
                let o = match o {
                    Some(Value::Array(o)) => o,
                    _ => Vec::new(),
                };
                Value::Array(merge_list(o, p, strategy, child, &field_path)?)
            }
            (_, v) => v.clone(),
        };
        original.insert(key.clone(), merged);
    }
    for (field, order) in orders {
        let key = match merge_keys::field(ty, field) {
            Some((Strategy::MergeByKey(key), _)) => Some(key),
            Some((Strategy::MergePrimitives, _)) => None,
            // A replaced list already has the patch's order.
            _ => continue,
        };
        if let Some(Value::Array(list)) = original.get_mut(field) {
            *list = reorder(std::mem::take(list), order, key);
        }
    }
    Ok(original)
}

fn without(map: &Map<String, Value>, key: &str) -> Map<String, Value> {
    let mut map = map.clone();
    map.remove(key);
    map
}

fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    strategy: Strategy,
    child: &str,
    path: &str,
) -> Result<Vec<Value>, SmpError> {
    match strategy {
        Strategy::MergeByKey(key) => merge_by_key(original, patch, key, child, path),
        Strategy::MergePrimitives => {
            let mut merged = original;
            for value in patch {
                if !merged.contains(value) {
                    merged.push(value.clone());
                }
            }
            Ok(merged)
        }
        Strategy::Nested => Ok(patch.to_vec()),
    }
}

fn merge_by_key(
    original: Vec<Value>,
    patch: &[Value],
    key: &'static str,
    child: &str,
    path: &str,
) -> Result<Vec<Value>, SmpError> {
    let mut elements = Vec::with_capacity(patch.len());
    for element in patch {
        let Value::Object(element) = element else {
            return Err(SmpError::ElementNotAnObject {
                path: path.to_string(),
                key,
            });
        };
        elements.push(element);
    }
    let mut replace = false;
    for element in &elements {
        if let MapDirective::Replace = map_directive(element, path)? {
            replace = true;
        }
    }
    let mut merged = if replace { Vec::new() } else { original };
    for element in elements {
        let directive = map_directive(element, path)?;
        if replace && matches!(directive, MapDirective::Replace) {
            // The `{"$patch": "replace"}` marker itself is no element.
            continue;
        }
        let id = element.get(key).ok_or_else(|| SmpError::MissingMergeKey {
            path: path.to_string(),
            key,
        })?;
        let position = merged.iter().position(|e| e.get(key) == Some(id));
        if let MapDirective::Delete = directive {
            merged.retain(|e| e.get(key) != Some(id));
            continue;
        }
        match position {
            Some(i) => {
                let Value::Object(current) = std::mem::take(&mut merged[i]) else {
                    merged[i] = Value::Object(merge_map(Map::new(), element, child, path)?);
                    continue;
                };
                merged[i] = Value::Object(merge_map(current, element, child, path)?);
            }
            None => merged.push(Value::Object(merge_map(Map::new(), element, child, path)?)),
        }
    }
    Ok(merged)
}

/// Puts the elements `order` names into that order; the others keep their place relative
/// to them (each goes before the first named element that followed it).
fn reorder(list: Vec<Value>, order: &[Value], key: Option<&str>) -> Vec<Value> {
    let id = |v: &Value| match key {
        Some(key) => v.get(key).cloned(),
        None => Some(v.clone()),
    };
    let rank = |v: &Value| id(v).and_then(|id| order.iter().position(|o| id_of(o, key) == id));
    let (mut named, rest): (Vec<_>, Vec<_>) = list
        .into_iter()
        .enumerate()
        .partition(|(_, v)| rank(v).is_some());
    named.sort_by_key(|(_, v)| rank(v));
    let mut out = Vec::with_capacity(named.len() + rest.len());
    let mut rest = rest.into_iter().peekable();
    for (position, value) in named {
        while let Some((_, v)) = rest.next_if(|(p, _)| *p < position) {
            out.push(v);
        }
        out.push(value);
    }
    out.extend(rest.map(|(_, v)| v));
    out
}

fn id_of(order_entry: &Value, key: Option<&str>) -> Value {
    match key {
        Some(key) => order_entry.get(key).cloned().unwrap_or(Value::Null),
        None => order_entry.clone(),
    }
}

#[cfg(test)]
mod tests;
