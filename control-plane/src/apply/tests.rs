use serde_json::{json, Value};

use super::fieldset::{self, FieldSet};
use super::managed::{self, Operation};
use super::*;

const MAIN: Scope = Scope::Main {
    status_separate: true,
};

fn applier(manager: &str, force: bool) -> Applier<'_> {
    Applier {
        manager,
        api_version: "apps/v1",
        scope: MAIN,
        schema: "Deployment",
        now: "2026-12-01T00:00:00Z",
        force,
    }
}

fn writer(manager: &str) -> Writer<'_> {
    Writer {
        manager,
        api_version: "apps/v1",
        subresource: None,
        scope: MAIN,
        schema: "Deployment",
        now: "2026-12-01T00:00:00Z",
    }
}

fn deployment(replicas: i64, env: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "web", "image": "w:1", "env": env}]}}
        }
    })
}

fn entry(obj: &Value, manager: &str, operation: Operation) -> Option<managed::Entry> {
    managed::read(obj)
        .expect("managedFields read")
        .into_iter()
        .find(|e| e.manager == manager && e.operation == operation)
}

#[test]
fn fields_v1_uses_kubernetes_keys() {
    let obj = json!({
        "metadata": {"labels": {"app": "web"}, "finalizers": ["a/b"]},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "web", "image": "w:1", "args": ["x"]}
        ]}}}
    });
    let set = FieldSet::of(&obj, "Deployment");
    assert_eq!(
        set.to_fields_v1(),
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}, "f:finalizers": {"v:\"a/b\"": {}}},
            "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:name": {}, "f:image": {}, "f:args": {}}
            }}}}
        })
    );
    let decoded = FieldSet::from_fields_v1(&set.to_fields_v1()).expect("decodes");
    assert_eq!(decoded, set);
    let path = set
        .iter()
        .find(|p| fieldset::display(p).ends_with(".image"))
        .expect("an image path");
    assert_eq!(
        fieldset::display(path),
        ".spec.template.spec.containers[name=\"web\"].image"
    );
}

#[test]
fn a_bad_fields_v1_is_refused_naming_the_key() {
    let err = FieldSet::from_fields_v1(&json!({"x:y": {}})).expect_err("refused");
    assert!(err.to_string().contains("x:y"), "{err}");
}

#[test]
fn apply_creates_with_an_apply_entry() {
    let config = deployment(2, json!([{"name": "A", "value": "1"}]));
    let created = apply(None, &config, &applier("kubectl", false)).expect("applies");
    assert_eq!(created["spec"]["replicas"], 2);
    let mine = entry(&created, "kubectl", Operation::Apply).expect("an Apply entry");
    let fields = mine.fields.to_fields_v1();
    assert_eq!(fields["f:spec"]["f:replicas"], json!({}));
    // Server-owned metadata is never tracked.
    assert!(fields["f:metadata"].get("f:name").is_none(), "{fields}");
    let stored = created["metadata"]["managedFields"][0].clone();
    assert_eq!(stored["operation"], "Apply");
    assert_eq!(stored["fieldsType"], "FieldsV1");
    assert_eq!(stored["apiVersion"], "apps/v1");
}

#[test]
fn reapply_removes_fields_no_longer_named() {
    let first = deployment(
        2,
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]),
    );
    let live = apply(None, &first, &applier("kubectl", false)).expect("applies");
    let mut second = deployment(2, json!([{"name": "A", "value": "1"}]));
    second["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("labels");
    let after = apply(Some(&live), &second, &applier("kubectl", false)).expect("re-applies");
    let env = &after["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env, &json!([{"name": "A", "value": "1"}]));
    assert!(
        after["metadata"].get("labels").is_none(),
        "emptied maps go: {after}"
    );
}

#[test]
fn an_unchanged_reapply_keeps_the_object_and_its_entry_time() {
    let config = deployment(2, json!([{"name": "A", "value": "1"}]));
    let live = apply(None, &config, &applier("kubectl", false)).expect("applies");
    let later = Applier {
        now: "2026-12-01T01:00:00Z",
        ..applier("kubectl", false)
    };
    let again = apply(Some(&live), &config, &later).expect("re-applies");
    assert_eq!(again, live, "nothing to write");
    let mut changed = config.clone();
    changed["spec"]["replicas"] = json!(3);
    let after = apply(Some(&live), &changed, &later).expect("applies a change");
    assert_eq!(
        after["metadata"]["managedFields"][0]["time"],
        "2026-12-01T01:00:00Z"
    );
}

#[test]
fn a_field_another_manager_owns_is_not_removed() {
    let live = apply(None, &deployment(2, json!([])), &applier("kubectl", false)).expect("ok");
    // Another manager applies the same label: shared ownership.
    let label = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}}});
    let shared = apply(Some(&live), &label, &applier("other", false)).expect("no conflict");
    let mut without = deployment(2, json!([]));
    without["metadata"]
        .as_object_mut()
        .expect("meta")
        .remove("labels");
    let after = apply(Some(&shared), &without, &applier("kubectl", false)).expect("ok");
    assert_eq!(after["metadata"]["labels"]["app"], "web");
}

#[test]
fn changing_a_field_another_manager_owns_conflicts() {
    let live = apply(None, &deployment(2, json!([])), &applier("kubectl", false)).expect("ok");
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(5);
    let mut w = writer("kubectl");
    w.subresource = Some("scale");
    managed::record_update(Some(&live), &mut scaled, &w).expect("recorded");
    assert!(
        entry(&scaled, "kubectl", Operation::Apply)
            .is_some_and(|e| !e.fields.to_fields_v1()["f:spec"]
                .as_object()
                .is_some_and(|m| m.contains_key("f:replicas"))),
        "the update took replicas from the applier: {scaled}"
    );
    let err = apply(
        Some(&scaled),
        &deployment(3, json!([])),
        &applier("kubectl", false),
    )
    .expect_err("conflicts");
    let ApplyError::Conflicts(conflicts) = err else {
        panic!("not a conflict: {err}");
    };
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].field, ".spec.replicas");
    assert_eq!(
        conflicts[0].manager,
        "\"kubectl\" with subresource \"scale\" using apps/v1 at 2026-12-01T00:00:00Z"
    );
    let message = crate::error::ApiError::ApplyConflict(conflicts).to_status();
    assert_eq!(
        message.message.as_deref(),
        Some(
            "Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" \
             using apps/v1 at 2026-12-01T00:00:00Z: .spec.replicas"
        )
    );
    assert_eq!(message.code, Some(409));
    let cause = &message.details.expect("details").causes.expect("causes")[0];
    assert_eq!(cause.reason.as_deref(), Some("FieldManagerConflict"));
    assert_eq!(cause.field.as_deref(), Some(".spec.replicas"));

    // The same value is no conflict: both own it.
    let same = apply(
        Some(&scaled),
        &deployment(5, json!([])),
        &applier("kubectl", false),
    )
    .expect("equal values are shared");
    let owners = managed::read(&same)
        .expect("read")
        .into_iter()
        .filter(|e| {
            e.fields.to_fields_v1()["f:spec"]
                .get("f:replicas")
                .is_some()
        })
        .count();
    assert_eq!(owners, 2, "{same}");
}

#[test]
fn force_takes_ownership() {
    let live = apply(None, &deployment(2, json!([])), &applier("a", false)).expect("ok");
    let err = apply(Some(&live), &deployment(4, json!([])), &applier("b", false));
    assert!(matches!(err, Err(ApplyError::Conflicts(_))));
    let forced = apply(Some(&live), &deployment(4, json!([])), &applier("b", true)).expect("ok");
    assert_eq!(forced["spec"]["replicas"], 4);
    let a = entry(&forced, "a", Operation::Apply).expect("a keeps other fields");
    assert!(a.fields.to_fields_v1()["f:spec"]
        .get("f:replicas")
        .is_none());
    let b = entry(&forced, "b", Operation::Apply).expect("b");
    assert!(b.fields.to_fields_v1()["f:spec"]
        .get("f:replicas")
        .is_some());
}

#[test]
fn updates_own_what_they_change_and_lose_what_they_remove() {
    let mut created = deployment(1, json!([{"name": "A", "value": "1"}]));
    managed::record_update(None, &mut created, &writer("kubectl-create")).expect("ok");
    let creator = entry(&created, "kubectl-create", Operation::Update).expect("creator");
    assert!(creator.fields.to_fields_v1()["f:spec"]
        .get("f:replicas")
        .is_some());

    let mut edited = created.clone();
    edited["spec"]["replicas"] = json!(3);
    edited["metadata"]["labels"] = json!({});
    managed::record_update(Some(&created), &mut edited, &writer("kubectl-edit")).expect("ok");
    let creator = entry(&edited, "kubectl-create", Operation::Update).expect("creator");
    let creator = creator.fields.to_fields_v1();
    assert!(creator["f:spec"].get("f:replicas").is_none(), "{creator}");
    assert!(creator["f:metadata"].get("f:labels").is_none(), "{creator}");
    let editor = entry(&edited, "kubectl-edit", Operation::Update).expect("editor");
    // The emptied map is the editor's value now.
    assert_eq!(
        editor.fields.to_fields_v1(),
        json!({"f:metadata": {"f:labels": {}}, "f:spec": {"f:replicas": {}}})
    );
}

#[test]
fn managed_fields_clear_with_one_empty_entry() {
    let mut created = deployment(1, json!([]));
    managed::record_update(None, &mut created, &writer("a")).expect("ok");
    assert!(created["metadata"].get("managedFields").is_some());
    let mut cleared = created.clone();
    cleared["metadata"]["managedFields"] = json!([{}]);
    cleared["spec"]["replicas"] = json!(2);
    managed::record_update(Some(&created), &mut cleared, &writer("b")).expect("ok");
    assert!(
        cleared["metadata"].get("managedFields").is_none(),
        "{cleared}"
    );
    // An empty list keeps the stored entries.
    let mut kept = created.clone();
    kept["metadata"]["managedFields"] = json!([]);
    managed::record_update(Some(&created), &mut kept, &writer("b")).expect("ok");
    assert!(entry(&kept, "a", Operation::Update).is_some(), "{kept}");
}

#[test]
fn status_is_not_applied_through_the_object() {
    let mut config = deployment(1, json!([]));
    config["status"] = json!({"replicas": 9});
    let created = apply(None, &config, &applier("kubectl", false)).expect("ok");
    assert!(created.get("status").is_none(), "{created}");
}

#[test]
fn a_write_without_a_manager_keeps_or_clears_the_entries() {
    let old = json!({"metadata": {"name": "a", "managedFields": [{"manager": "x",
        "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}]}});
    let mut rewritten = json!({"metadata": {"name": "a"}});
    managed::settle(&old, &mut rewritten).expect("ok");
    assert_eq!(rewritten["metadata"]["managedFields"][0]["manager"], "x");
    let mut cleared = json!({"metadata": {"name": "a", "managedFields": [{}]}});
    managed::settle(&old, &mut cleared).expect("ok");
    assert_eq!(cleared, json!({"metadata": {"name": "a"}}));
}

#[test]
fn status_writes_are_tracked_under_the_status_subresource() {
    let mut old = deployment(1, json!([]));
    old["status"] = json!({"replicas": 0});
    let mut new = old.clone();
    new["status"] = json!({"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]});
    let status_writer = Writer {
        subresource: Some("status"),
        scope: Scope::Status,
        ..writer("controller")
    };
    managed::record_update(Some(&old), &mut new, &status_writer).expect("ok");
    let entry = managed::read(&new).expect("read").remove(0);
    assert_eq!(entry.subresource.as_deref(), Some("status"));
    assert_eq!(
        entry.fields.to_fields_v1(),
        json!({"f:status": {"f:replicas": {}, "f:conditions": {
            "k:{\"type\":\"Available\"}": {".": {}, "f:type": {}, "f:status": {}}
        }}})
    );
    assert_eq!(new["metadata"]["managedFields"][0]["subresource"], "status");
}
