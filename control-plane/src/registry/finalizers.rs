//! Finalizers and deletion propagation, as Kubernetes keeps them: an object with finalizers
//! is not removed by a delete but marked (`deletionTimestamp`), and goes once its last
//! finalizer is removed; no finalizer may be added once it is being deleted. `Orphan` and
//! `Foreground` propagation are the `orphan` and `foregroundDeletion` finalizers, which the
//! garbage collector resolves.

use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_api::validation::{FieldError, FieldErrorReason};

use super::object;
use crate::error::ApiError;

/// The finalizer of an `Orphan` delete: the collector removes the owner's references from
/// its dependents, then this finalizer.
pub const ORPHAN: &str = "orphan";
/// The finalizer of a `Foreground` delete: the collector deletes the dependents, and removes
/// this finalizer once none is left.
pub const FOREGROUND: &str = "foregroundDeletion";

/// `DeleteOptions.propagationPolicy`: what happens to an object's dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Dependents stay, without their reference to the deleted owner.
    Orphan,
    /// The owner goes now; the collector deletes the dependents after (the default).
    #[default]
    Background,
    /// The dependents go first; the owner stays (marked) until none is left.
    Foreground,
}

impl Propagation {
    /// Parses `Orphan`, `Background` or `Foreground`; anything else is a 400 naming the field.
    pub fn parse(value: &str) -> Result<Self, ApiError> {
        match value {
            "Orphan" => Ok(Propagation::Orphan),
            "Background" => Ok(Propagation::Background),
            "Foreground" => Ok(Propagation::Foreground),
            other => Err(ApiError::BadRequest(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \
                 \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    }

    /// The finalizer this policy adds to the deleted object, if any.
    fn finalizer(self) -> Option<&'static str> {
        match self {
            Propagation::Orphan => Some(ORPHAN),
            Propagation::Foreground => Some(FOREGROUND),
            Propagation::Background => None,
        }
    }
}

/// The object's finalizers.
pub fn of(obj: &Value) -> Vec<&str> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether the object is marked for deletion.
pub fn is_deleting(obj: &Value) -> bool {
    object::meta_str(obj, "deletionTimestamp").is_some()
}

/// The object a delete with `propagation` turns `obj` into when it must stay (it has
/// finalizers, or the policy adds one): marked for deletion with the policy's finalizer. `None`
/// when it can be removed now. A delete of an already marked object changes nothing but the
/// finalizer a new policy adds.
pub fn mark_for_deletion(obj: &Value, propagation: Propagation) -> Option<Value> {
    let mut finalizers: Vec<String> = of(obj).into_iter().map(str::to_string).collect();
    if let Some(added) = propagation.finalizer() {
        if !finalizers.iter().any(|f| f == added) {
            finalizers.push(added.to_string());
        }
    }
    if finalizers.is_empty() {
        return None;
    }
    let mut marked = obj.clone();
    if !is_deleting(obj) {
        object::set_meta(&mut marked, "deletionTimestamp", object::now_rfc3339());
        object::set_meta(&mut marked, "deletionGracePeriodSeconds", 0);
    }
    object::set_meta(&mut marked, "finalizers", finalizers);
    Some(marked)
}

/// Whether an object marked for deletion is done: its finalizers are all removed and no
/// grace period (a pod's, which its node ends) is left.
pub fn ready_to_remove(obj: &Value) -> bool {
    let grace = obj
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    is_deleting(obj) && of(obj).is_empty() && grace == 0
}

/// Refuses an update that adds a finalizer to an object being deleted (422, as Kubernetes).
pub fn check_update(kind: &ResourceKind, old: &Value, new: &Value) -> Result<(), ApiError> {
    if !is_deleting(old) {
        return Ok(());
    }
    let before = of(old);
    let added: Vec<&str> = of(new)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        kind,
        object::name(old).unwrap_or_default(),
        vec![FieldError {
            field: "metadata.finalizers".into(),
            reason: FieldErrorReason::Forbidden,
            message: format!(
                "no new finalizers can be added if the object is being deleted, found new \
                 finalizers {added:?}"
            ),
        }],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind() -> &'static ResourceKind {
        skiff_api::resources::by_name("configmaps").expect("served")
    }

    #[test]
    fn an_object_without_finalizers_goes_at_once_unless_the_policy_adds_one() {
        let plain = json!({"metadata": {"name": "a"}});
        assert_eq!(mark_for_deletion(&plain, Propagation::Background), None);
        let orphaned = mark_for_deletion(&plain, Propagation::Orphan).expect("stays");
        assert_eq!(of(&orphaned), [ORPHAN]);
        assert!(is_deleting(&orphaned));
        assert!(!ready_to_remove(&orphaned));
        let foreground = mark_for_deletion(&plain, Propagation::Foreground).expect("stays");
        assert_eq!(of(&foreground), [FOREGROUND]);
    }

    #[test]
    fn finalizers_keep_a_deleted_object_until_removed() {
        let kept = json!({"metadata": {"name": "a", "finalizers": ["example.com/x"]}});
        let marked = mark_for_deletion(&kept, Propagation::Background).expect("stays");
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 0);
        let stamp = marked["metadata"]["deletionTimestamp"].clone();
        let again = mark_for_deletion(&marked, Propagation::Background).expect("stays");
        assert_eq!(
            again["metadata"]["deletionTimestamp"], stamp,
            "the mark is kept"
        );
        let mut done = marked.clone();
        done["metadata"]["finalizers"] = json!([]);
        assert!(ready_to_remove(&done));
        let mut terminating_pod = done.clone();
        terminating_pod["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        assert!(!ready_to_remove(&terminating_pod));
    }

    #[test]
    fn no_finalizer_is_added_while_deleting() {
        let deleting = json!({"metadata": {"name": "a", "finalizers": ["x"],
                                            "deletionTimestamp": "2026-01-01T00:00:00Z"}});
        let mut added = deleting.clone();
        added["metadata"]["finalizers"] = json!(["x", "y"]);
        let err = check_update(kind(), &deleting, &added).expect_err("refused");
        assert!(err.to_string().contains("metadata.finalizers"), "{err}");
        let mut removed = deleting.clone();
        removed["metadata"]["finalizers"] = json!([]);
        check_update(kind(), &deleting, &removed).expect("removing is allowed");
        let live = json!({"metadata": {"name": "a"}});
        check_update(kind(), &live, &added).expect("a live object takes finalizers");
    }

    #[test]
    fn propagation_policies_parse_and_name_the_field_when_wrong() {
        assert_eq!(Propagation::parse("Orphan").ok(), Some(Propagation::Orphan));
        let err = Propagation::parse("Sideways").expect_err("refused");
        assert!(err.to_string().contains("propagationPolicy"), "{err}");
    }
}
