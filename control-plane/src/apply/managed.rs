//! `metadata.managedFields`: which manager owns which fields, read from and written to
//! objects, and the bookkeeping of the writes that are not applies (`Update` entries).

use serde_json::{json, Map, Value};

use super::fieldset::{self, FieldSet, Path, Step};

/// How a manager came to own its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A server-side apply: the set is exactly what its last configuration named.
    Apply,
    /// A create, update or patch: the set grows by what the writes changed.
    Update,
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Who wrote the fields (`kubectl`, a `fieldManager`).
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: Operation,
    /// The API version the fields were written in.
    pub api_version: String,
    /// When the entry last changed (RFC 3339, seconds).
    pub time: String,
    /// `status`, `scale`; `None` for the object itself.
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

/// A `managedFields` value that does not read, naming the field.
#[derive(Debug, thiserror::Error)]
#[error("metadata.managedFields[{index}].{field}: Invalid value: {message}")]
pub struct ManagedFieldsError {
    index: usize,
    field: &'static str,
    message: String,
}

/// Which part of an object a write's fields are tracked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The object; `status` too unless the kind writes it through `/status`.
    Main { status_separate: bool },
    /// `status` only (the `/status` subresource).
    Status,
}

/// The metadata fields the server owns, never tracked (Kubernetes' stripped fields).
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "generation",
    "managedFields",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

impl Entry {
    /// Whether this entry is the one of `manager` writing with `operation` through
    /// `subresource`.
    pub fn is(&self, manager: &str, operation: Operation, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }

    /// The manager as Kubernetes names it in a conflict: `"kubectl" with subresource "scale"
    /// using apps/v1 at 2026-12-01T02:00:00Z`.
    pub fn describe(&self) -> String {
        let mut out = Value::String(self.manager.clone()).to_string();
        if let Some(sub) = &self.subresource {
            out.push_str(&format!(" with subresource {}", Value::String(sub.clone())));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
            if !self.time.is_empty() {
                out.push_str(&format!(" at {}", self.time));
            }
        }
        out
    }

    fn to_json(&self) -> Value {
        let mut entry = json!({
            "manager": self.manager,
            "operation": match self.operation {
                Operation::Apply => "Apply",
                Operation::Update => "Update",
            },
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.fields.to_fields_v1(),
        });
        if let Some(sub) = &self.subresource {
            entry["subresource"] = json!(sub);
        }
        entry
    }

    fn from_json(index: usize, value: &Value) -> Result<Entry, ManagedFieldsError> {
        let error = |field, message: String| ManagedFieldsError {
            index,
            field,
            message,
        };
        let text = |field: &'static str| value.get(field).and_then(Value::as_str);
        let operation = match text("operation") {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            other => {
                return Err(error(
                    "operation",
                    format!("{other:?}: must be Apply or Update"),
                ))
            }
        };
        match text("fieldsType") {
            Some("FieldsV1") => {}
            other => return Err(error("fieldsType", format!("{other:?}: must be FieldsV1"))),
        }
        let fields = match value.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::default(),
            Some(v) => FieldSet::from_fields_v1(v).map_err(|e| error("fieldsV1", e.to_string()))?,
        };
        Ok(Entry {
            manager: text("manager").unwrap_or_default().to_string(),
            operation,
            api_version: text("apiVersion").unwrap_or_default().to_string(),
            time: text("time").unwrap_or_default().to_string(),
            subresource: text("subresource")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            fields,
        })
    }
}

/// The entries of `obj`'s `metadata.managedFields` (none when absent).
pub fn read(obj: &Value) -> Result<Vec<Entry>, ManagedFieldsError> {
    match obj.pointer("/metadata/managedFields") {
        Some(Value::Array(entries)) => entries
            .iter()
            .enumerate()
            .map(|(i, e)| Entry::from_json(i, e))
            .collect(),
        _ => Ok(Vec::new()),
    }
}

/// Writes `entries` into `obj`, dropping those that own nothing; no entries remove the field.
pub fn write(obj: &mut Value, entries: &[Entry]) {
    let kept: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(Entry::to_json)
        .collect();
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if kept.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(kept));
    }
}

/// The entries a write starts from: the stored ones unless the write sets others. A write
/// without `managedFields` (or with `[]`) keeps the stored entries; `[{}]` clears them all
/// (`None`: nothing is tracked for this write), as Kubernetes allows.
pub fn incoming(
    old: Option<&Value>,
    new: &Value,
) -> Result<Option<Vec<Entry>>, ManagedFieldsError> {
    let stored = || old.map(read).transpose().map(Option::unwrap_or_default);
    match new.pointer("/metadata/managedFields") {
        None | Some(Value::Null) => stored().map(Some),
        Some(Value::Array(list)) if list.is_empty() => stored().map(Some),
        Some(Value::Array(list)) if list.iter().all(|e| e == &json!({})) => Ok(None),
        Some(given) if old.and_then(|o| o.pointer("/metadata/managedFields")) == Some(given) => {
            stored().map(Some)
        }
        Some(_) => read(new).map(Some),
    }
}

/// Settles `new`'s `managedFields` for a write no manager is recorded for: the stored
/// entries unless the write sets others or clears them (see `incoming`).
pub fn settle(old: &Value, new: &mut Value) -> Result<(), ManagedFieldsError> {
    let field = "/metadata/managedFields";
    if old.pointer(field) == new.pointer(field) {
        return Ok(());
    }
    let entries = incoming(Some(old), new)?.unwrap_or_default();
    write(new, &entries);
    Ok(())
}

/// The part of `obj` whose fields managers own in `scope`: without `apiVersion`, `kind`
/// and the metadata the server sets.
pub fn tracked(obj: &Value, scope: Scope) -> Value {
    let Some(map) = obj.as_object() else {
        return json!({});
    };
    let mut view = Map::new();
    for (key, value) in map {
        let keep = match scope {
            Scope::Status => key == "status",
            Scope::Main { status_separate } => {
                !(key == "apiVersion" || key == "kind" || (status_separate && key == "status"))
            }
        };
        if !keep {
            continue;
        }
        if key == "metadata" {
            let mut meta = value.as_object().cloned().unwrap_or_default();
            meta.retain(|k, _| !SERVER_METADATA.contains(&k.as_str()));
            if !meta.is_empty() {
                view.insert(key.clone(), Value::Object(meta));
            }
        } else {
            view.insert(key.clone(), value.clone());
        }
    }
    Value::Object(view)
}

/// A non-apply write by one manager.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    /// The `fieldManager`, or the user agent's first word.
    pub manager: &'a str,
    /// The API version written in.
    pub api_version: &'a str,
    /// `status`, `scale`; `None` for the object itself.
    pub subresource: Option<&'a str>,
    /// Which part of the object the write may change.
    pub scope: Scope,
    /// The schema type of the object, for its lists' merge keys.
    pub schema: &'a str,
    /// The time to record (RFC 3339, seconds).
    pub now: &'a str,
}

/// Records a create (`old` is `None`) or an update from `old` to `new` in `new`'s
/// `managedFields`: the writer's `Update` entry takes the fields the write added or changed
/// (other managers lose them), and fields the write removed leave every entry.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    writer: &Writer<'_>,
) -> Result<(), ManagedFieldsError> {
    let Some(mut entries) = incoming(old, new)? else {
        write(new, &[]);
        return Ok(());
    };
    let old_view = old.map_or_else(|| json!({}), |o| tracked(o, writer.scope));
    let new_view = tracked(new, writer.scope);
    let old_set = FieldSet::of(&old_view, writer.schema);
    let new_set = FieldSet::of(&new_view, writer.schema);
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| {
            !old_set.contains(p)
                || (is_leaf_field(p) && fieldset::get(&old_view, p) != fieldset::get(&new_view, p))
        })
        .cloned()
        .collect();
    let removed = old_set.difference(&new_set);
    let lost = changed.union(&removed);
    for entry in &mut entries {
        entry.fields.remove_all(&lost);
    }
    if !changed.is_empty() {
        let index = entries
            .iter()
            .position(|e| e.is(writer.manager, Operation::Update, writer.subresource));
        let entry = match index {
            Some(i) => &mut entries[i],
            None => {
                entries.push(Entry {
                    manager: writer.manager.to_string(),
                    operation: Operation::Update,
                    api_version: String::new(),
                    time: String::new(),
                    subresource: writer.subresource.map(str::to_string),
                    fields: FieldSet::default(),
                });
                entries.last_mut().expect("just pushed")
            }
        };
        entry.fields = entry.fields.union(&changed);
        entry.api_version = writer.api_version.to_string();
        entry.time = writer.now.to_string();
    }
    write(new, &entries);
    Ok(())
}

/// Whether `path` ends in a field (a value compared for changes), not a list element.
pub fn is_leaf_field(path: &Path) -> bool {
    matches!(path.last(), Some(Step::Field(_)))
}
