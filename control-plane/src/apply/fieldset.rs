//! Sets of field paths, as Kubernetes' structured-merge-diff keeps them in `managedFields`,
//! and their `FieldsV1` encoding: `f:name` for a field, `k:{"name":"c"}` for the element of a
//! list merged by key, `v:"x"` for the element of a set, `.` for a node that is itself a
//! member when it also has members below it.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

use crate::registry::strategic_merge::merge_keys::{self, Strategy};

/// One step of a path into an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// A field of a map or struct.
    Field(String),
    /// The element of a keyed list whose merge keys have these values (a JSON object).
    Key(String),
    /// The element of a set of primitives with this value (JSON).
    Value(String),
}

/// A path from the object's root.
pub type Path = Vec<Step>;

/// A set of paths: the fields one manager owns, or the fields an object (or apply
/// configuration) sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(BTreeSet<Path>);

/// A `fieldsV1` that does not decode, naming the offending key.
#[derive(Debug, thiserror::Error)]
#[error("fieldsV1: invalid entry {0:?}")]
pub struct DecodeError(String);

impl FieldSet {
    /// Whether the set holds no path.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `path` is a member.
    pub fn contains(&self, path: &Path) -> bool {
        self.0.contains(path)
    }

    /// Adds `path`.
    pub fn insert(&mut self, path: Path) {
        self.0.insert(path);
    }

    /// The members, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Path> {
        self.0.iter()
    }

    /// The members of `self` that are not members of `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.difference(&other.0).cloned().collect())
    }

    /// Every member of `self` or `other`.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.union(&other.0).cloned().collect())
    }

    /// Removes every member of `other`.
    pub fn remove_all(&mut self, other: &FieldSet) {
        self.0.retain(|p| !other.0.contains(p));
    }

    /// Whether a member is `path` or lies below it.
    pub fn has_at_or_below(&self, path: &Path) -> bool {
        self.0
            .range(path.clone()..)
            .next()
            .is_some_and(|p| p.starts_with(path))
    }

    /// The paths `obj` sets, read with the patch strategies of schema type `ty`: every leaf
    /// value and every element of a keyed list or a set. Nulls set nothing.
    pub fn of(obj: &Value, ty: &str) -> FieldSet {
        let mut set = FieldSet::default();
        walk(obj, ty, &mut Vec::new(), &mut set);
        set
    }

    /// The `fieldsV1` encoding of the set.
    pub fn to_fields_v1(&self) -> Value {
        let mut root = Map::new();
        for path in &self.0 {
            let mut node = &mut root;
            for step in path {
                node = node
                    .entry(step.to_string())
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                    .expect("fieldsV1 nodes are objects");
            }
        }
        // A member with members below it carries `.`.
        mark_members(&mut root, &self.0, &mut Vec::new());
        Value::Object(root)
    }

    /// Decodes a `fieldsV1` value.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, DecodeError> {
        let mut set = FieldSet::default();
        decode(value, &mut Vec::new(), &mut set)?;
        Ok(set)
    }
}

impl FromIterator<Path> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Path>>(iter: I) -> Self {
        FieldSet(iter.into_iter().collect())
    }
}

impl fmt::Display for Step {
    /// The `fieldsV1` key of the step.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Field(name) => write!(f, "f:{name}"),
            Step::Key(key) => write!(f, "k:{key}"),
            Step::Value(value) => write!(f, "v:{value}"),
        }
    }
}

/// A path as Kubernetes prints it in conflicts: `.spec.containers[name="web"].image`.
pub fn display(path: &Path) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Field(name) => {
                out.push('.');
                out.push_str(name);
            }
            Step::Key(key) => {
                let fields: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
                let pairs: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!("[{}]", pairs.join(",")));
            }
            Step::Value(value) => out.push_str(&format!("[={value}]")),
        }
    }
    out
}

/// The value at `path` in `obj`, if there is one.
pub fn get<'a>(obj: &'a Value, path: &Path) -> Option<&'a Value> {
    let mut node = obj;
    for step in path {
        node = match step {
            Step::Field(name) => node.get(name)?,
            Step::Key(key) => {
                let key: Map<String, Value> = serde_json::from_str(key).ok()?;
                node.as_array()?.iter().find(|e| matches_key(e, &key))?
            }
            Step::Value(value) => {
                let value: Value = serde_json::from_str(value).ok()?;
                node.as_array()?.iter().find(|e| **e == value)?
            }
        };
    }
    Some(node)
}

/// Removes the value at `path` from `obj` (a field, a keyed element or a set element).
pub fn remove(obj: &mut Value, path: &Path) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut node = obj;
    for step in parent {
        let next = match step {
            Step::Field(name) => node.get_mut(name),
            Step::Key(key) => {
                let key: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
                node.as_array_mut()
                    .and_then(|a| a.iter_mut().find(|e| matches_key(e, &key)))
            }
            Step::Value(value) => {
                let value: Value = serde_json::from_str(value).unwrap_or_default();
                node.as_array_mut()
                    .and_then(|a| a.iter_mut().find(|e| **e == value))
            }
        };
        match next {
            Some(next) => node = next,
            None => return,
        }
    }
    match last {
        Step::Field(name) => {
            if let Some(map) = node.as_object_mut() {
                map.remove(name);
            }
        }
        Step::Key(key) => {
            let key: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
            if let Some(list) = node.as_array_mut() {
                list.retain(|e| !matches_key(e, &key));
            }
        }
        Step::Value(value) => {
            let value: Value = serde_json::from_str(value).unwrap_or_default();
            if let Some(list) = node.as_array_mut() {
                list.retain(|e| *e != value);
            }
        }
    }
}

/// The `k:` step of a keyed list's element: its merge key's value, or `None` without one.
pub fn key_step(element: &Value, key: &str) -> Option<Step> {
    let value = element.get(key)?;
    let mut fields = Map::new();
    fields.insert(key.to_string(), value.clone());
    Some(Step::Key(Value::Object(fields).to_string()))
}

/// The `v:` step of a set's element.
pub fn value_step(element: &Value) -> Step {
    Step::Value(element.to_string())
}

fn matches_key(element: &Value, key: &Map<String, Value>) -> bool {
    key.iter().all(|(k, v)| element.get(k) == Some(v))
}

fn walk(value: &Value, ty: &str, path: &mut Path, set: &mut FieldSet) {
    match value {
        Value::Null => {}
        Value::Object(map) if !map.is_empty() => {
            for (name, child) in map {
                path.push(Step::Field(name.clone()));
                match (merge_keys::field(ty, name), child) {
                    (Some((Strategy::MergeByKey(key), child_ty)), Value::Array(items)) => {
                        for item in items {
                            // An element without its key cannot be told apart: the whole
                            // list is then one value.
                            let Some(step) = key_step(item, key) else {
                                set.insert(path.clone());
                                break;
                            };
                            path.push(step);
                            set.insert(path.clone());
                            walk_children(item, child_ty, path, set);
                            path.pop();
                        }
                        if items.is_empty() {
                            set.insert(path.clone());
                        }
                    }
                    (Some((Strategy::MergePrimitives, _)), Value::Array(items)) => {
                        for item in items {
                            path.push(value_step(item));
                            set.insert(path.clone());
                            path.pop();
                        }
                        if items.is_empty() {
                            set.insert(path.clone());
                        }
                    }
                    (Some((_, child_ty)), _) => walk(child, child_ty, path, set),
                    (None, _) => walk(child, "", path, set),
                }
                path.pop();
            }
        }
        // Scalars, atomic lists and empty maps are leaves.
        _ => set.insert(path.clone()),
    }
}

/// The fields of a keyed list's element (the element itself is already a member).
fn walk_children(item: &Value, ty: &str, path: &mut Path, set: &mut FieldSet) {
    if let Value::Object(map) = item {
        if !map.is_empty() {
            walk(item, ty, path, set);
        }
    }
}

fn mark_members(node: &mut Map<String, Value>, members: &BTreeSet<Path>, path: &mut Path) {
    let keys: Vec<String> = node.keys().filter(|k| *k != ".").cloned().collect();
    for key in keys {
        let Some(step) = parse_step(&key) else {
            continue;
        };
        path.push(step);
        if let Some(Value::Object(child)) = node.get_mut(&key) {
            if !child.is_empty() && members.contains(path) {
                child.insert(".".into(), Value::Object(Map::new()));
            }
            mark_members(child, members, path);
        }
        path.pop();
    }
}

fn parse_step(key: &str) -> Option<Step> {
    let (kind, rest) = key.split_once(':')?;
    match kind {
        "f" => Some(Step::Field(rest.to_string())),
        "k" => {
            let key: Value = serde_json::from_str(rest).ok()?;
            key.is_object().then(|| Step::Key(key.to_string()))
        }
        "v" => {
            let value: Value = serde_json::from_str(rest).ok()?;
            Some(Step::Value(value.to_string()))
        }
        _ => None,
    }
}

fn decode(value: &Value, path: &mut Path, set: &mut FieldSet) -> Result<(), DecodeError> {
    let map = value
        .as_object()
        .ok_or_else(|| DecodeError(value.to_string()))?;
    for (key, child) in map {
        if key == "." {
            set.insert(path.clone());
            continue;
        }
        let step = parse_step(key).ok_or_else(|| DecodeError(key.clone()))?;
        path.push(step);
        match child.as_object() {
            Some(inner) if inner.is_empty() => set.insert(path.clone()),
            Some(_) => decode(child, path, set)?,
            None => return Err(DecodeError(key.clone())),
        }
        path.pop();
    }
    Ok(())
}
