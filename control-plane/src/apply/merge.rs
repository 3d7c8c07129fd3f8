//! One server-side apply: an apply configuration merged into the live object, conflicts with
//! other managers found, and the fields this manager applied before and no longer names
//! removed.

use serde_json::Value;

use super::fieldset::{self, FieldSet, Path};
use super::managed::{self, Entry, ManagedFieldsError, Operation, Scope};
use crate::registry::strategic_merge::merge_keys::{self, Strategy};

/// Who applies, and how.
#[derive(Debug, Clone)]
pub struct Applier<'a> {
    /// The `fieldManager`.
    pub manager: &'a str,
    /// The API version of the configuration.
    pub api_version: &'a str,
    /// Which part of the object an apply may set.
    pub scope: Scope,
    /// The schema type of the object, for its lists' merge keys.
    pub schema: &'a str,
    /// The time to record (RFC 3339, seconds).
    pub now: &'a str,
    /// Take the fields other managers own instead of failing (`force=true`).
    pub force: bool,
}

/// A field the apply would change that another manager owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldConflict {
    /// The other manager, as Kubernetes names it (`"kubectl" with subresource "scale" ...`).
    pub manager: String,
    /// The field, as Kubernetes prints it (`.spec.replicas`).
    pub field: String,
}

/// Why an apply was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Fields other managers own that the apply would change (without `force`).
    #[error("{} conflicts", .0.len())]
    Conflicts(Vec<FieldConflict>),
    /// The live object's `managedFields` do not read.
    #[error(transparent)]
    ManagedFields(#[from] ManagedFieldsError),
}

/// The object after applying `config` (without `status` where the kind separates it) to
/// `live` (`None`: the object does not exist yet), with its `managedFields` updated.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    applier: &Applier<'_>,
) -> Result<Value, ApplyError> {
    let mut entries = match live {
        Some(live) => managed::read(live)?,
        None => Vec::new(),
    };
    let config = managed::tracked(config, applier.scope);
    let config_set = FieldSet::of(&config, applier.schema);
    let live_view = live.map_or_else(
        || serde_json::json!({}),
        |l| managed::tracked(l, applier.scope),
    );
    let mut merged = live.cloned().unwrap_or_else(|| serde_json::json!({}));
    merge(&mut merged, &config, applier.schema);
    let merged_view = managed::tracked(&merged, applier.scope);

    let mine = |e: &Entry| e.is(applier.manager, Operation::Apply, None);
    let mut conflicts = Vec::new();
    let mut taken: Vec<(usize, Path)> = Vec::new();
    for path in config_set.iter().filter(|p| managed::is_leaf_field(p)) {
        if fieldset::get(&live_view, path) == fieldset::get(&merged_view, path) {
            continue;
        }
        for (i, entry) in entries.iter().enumerate() {
            if !mine(entry) && entry.fields.contains(path) {
                conflicts.push(FieldConflict {
                    manager: entry.describe(),
                    field: fieldset::display(path),
                });
                taken.push((i, path.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !applier.force {
        return Err(ApplyError::Conflicts(conflicts));
    }
    for (i, path) in taken {
        let mut lost = FieldSet::default();
        lost.insert(path);
        entries[i].fields.remove_all(&lost);
    }

    let previous = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let owned_by_others = entries
        .iter()
        .filter(|e| !mine(e))
        .fold(FieldSet::default(), |all, e| all.union(&e.fields));
    let kept = config_set.union(&owned_by_others);
    for path in previous.difference(&config_set).iter() {
        if !kept.has_at_or_below(path) {
            fieldset::remove(&mut merged, path);
            remove_emptied_parents(&mut merged, path, &kept);
        }
    }

    let entry = Entry {
        manager: applier.manager.to_string(),
        operation: Operation::Apply,
        api_version: applier.api_version.to_string(),
        time: applier.now.to_string(),
        subresource: None,
        fields: config_set,
    };
    // An apply that changes nothing keeps its entry's time too, so that it writes nothing.
    let unchanged = |old: &Entry| {
        old.fields == entry.fields
            && old.api_version == entry.api_version
            && live.is_some_and(|l| without_managed(l) == without_managed(&merged))
    };
    match entries.iter().position(mine) {
        Some(i) if unchanged(&entries[i]) => {}
        Some(i) => entries[i] = entry,
        None => entries.push(entry),
    }
    managed::write(&mut merged, &entries);
    Ok(merged)
}

/// `obj` without its `metadata.managedFields`.
fn without_managed(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    obj
}

/// Removes the maps above a removed `path` that it left empty (`labels` after its last
/// label), unless a manager owns the empty map itself.
fn remove_emptied_parents(obj: &mut Value, path: &Path, kept: &FieldSet) {
    for end in (1..path.len()).rev() {
        let parent: Path = path[..end].to_vec();
        let emptied = matches!(parent.last(), Some(fieldset::Step::Field(_)))
            && fieldset::get(obj, &parent)
                .is_some_and(|v| v.as_object().is_some_and(|m| m.is_empty()))
            && !kept.contains(&parent);
        if !emptied {
            return;
        }
        fieldset::remove(obj, &parent);
    }
}

/// Merges `config` into `live`: maps field by field, keyed lists element by element, sets
/// as unions; everything else is replaced. Nulls in `config` change nothing.
pub fn merge(live: &mut Value, config: &Value, ty: &str) {
    let (Value::Object(live_map), Value::Object(config_map)) = (&mut *live, config) else {
        *live = config.clone();
        return;
    };
    for (name, value) in config_map {
        if value.is_null() {
            continue;
        }
        let strategy = merge_keys::field(ty, name);
        let Some(existing) = live_map.get_mut(name) else {
            live_map.insert(name.clone(), value.clone());
            continue;
        };
        match (strategy, &mut *existing, value) {
            (
                Some((Strategy::MergeByKey(key), child)),
                Value::Array(items),
                Value::Array(wanted),
            ) if wanted.iter().all(|w| w.get(key).is_some()) => {
                for want in wanted {
                    match items.iter_mut().find(|i| i.get(key) == want.get(key)) {
                        Some(item) => merge(item, want, child),
                        None => items.push(want.clone()),
                    }
                }
            }
            (Some((Strategy::MergePrimitives, _)), Value::Array(items), Value::Array(wanted)) => {
                for want in wanted {
                    if !items.contains(want) {
                        items.push(want.clone());
                    }
                }
            }
            (Some((Strategy::Nested, child)), Value::Object(_), Value::Object(_)) => {
                merge(existing, value, child)
            }
            (None, Value::Object(_), Value::Object(_)) => merge(existing, value, ""),
            _ => *existing = value.clone(),
        }
    }
}
