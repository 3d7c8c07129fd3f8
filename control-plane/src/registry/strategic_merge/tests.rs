use serde_json::json;

use super::*;

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"},
                     "finalizers": ["a", "b"]},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {"spec": {
                "containers": [
                    {"name": "app", "image": "app:1",
                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                     "ports": [{"containerPort": 80}],
                     "args": ["x", "y"]},
                    {"name": "side", "image": "side:1"}
                ],
                "volumes": [{"name": "data", "emptyDir": {}}],
                "tolerations": [{"key": "k1"}, {"key": "k2"}]
            }}
        }
    })
}

fn patched(patch: Value) -> Value {
    apply(&deployment(), &patch, "Deployment").expect("patch applies")
}

fn containers(obj: &Value) -> &Vec<Value> {
    obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
}

#[test]
fn containers_merge_by_name_and_env_by_name() {
    let out = patched(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}
    ]}}}}));
    let c = containers(&out);
    assert_eq!(c.len(), 2, "the sidecar stays: {out}");
    assert_eq!(c[0]["image"], "app:2");
    assert_eq!(c[0]["ports"], json!([{"containerPort": 80}]));
    assert_eq!(
        c[0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}])
    );
    assert_eq!(c[1]["image"], "side:1");
}

#[test]
fn lists_without_a_strategy_are_replaced_and_maps_merge() {
    let out = patched(json!({
        "metadata": {"labels": {"tier": null, "new": "yes"}},
        "spec": {"template": {"spec": {
            "tolerations": [{"key": "k3"}],
            "containers": [{"name": "app", "args": ["z"]}]
        }}}
    }));
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "web", "new": "yes"})
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "k3"}])
    );
    assert_eq!(containers(&out)[0]["args"], json!(["z"]));
    assert_eq!(out["spec"]["replicas"], 2);
}

#[test]
fn patch_delete_removes_an_element_and_replace_replaces_the_list() {
    let out = patched(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "side", "$patch": "delete"}
    ]}}}}));
    assert_eq!(containers(&out).len(), 1);
    assert_eq!(containers(&out)[0]["name"], "app");

    let out = patched(json!({"spec": {"template": {"spec": {"containers": [
        {"$patch": "replace"}, {"name": "only", "image": "o:1"}
    ]}}}}));
    assert_eq!(
        containers(&out),
        &vec![json!({"name": "only", "image": "o:1"})]
    );
}

#[test]
fn patch_replace_and_delete_on_maps() {
    let out = patched(json!({"metadata": {"labels": {"$patch": "replace", "only": "this"}}}));
    assert_eq!(out["metadata"]["labels"], json!({"only": "this"}));
    let out = patched(json!({"metadata": {"labels": {"$patch": "delete"}}}));
    assert_eq!(out["metadata"]["labels"], json!({}));
    let out = patched(json!({"metadata": {"$patch": "merge", "labels": {"x": "y"}}}));
    assert_eq!(out["metadata"]["labels"]["x"], "y");
    assert_eq!(out["metadata"]["name"], "web");
}

#[test]
fn finalizers_merge_as_a_set_and_delete_from_primitive_list() {
    let out = patched(json!({"metadata": {"finalizers": ["b", "c"]}}));
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
    let out = patched(json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}));
    assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
}

#[test]
fn retain_keys_clears_the_fields_not_named() {
    let out = patched(json!({"spec": {"strategy": {
        "$retainKeys": ["type"], "type": "Recreate"
    }}}));
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn set_element_order_orders_the_merged_list() {
    let out = patched(json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "side"}, {"name": "new"}, {"name": "app"}],
        "containers": [{"name": "new", "image": "n:1"}]
    }}}}));
    let names: Vec<_> = containers(&out).iter().map(|c| c["name"].clone()).collect();
    assert_eq!(names, [json!("side"), json!("new"), json!("app")]);
}

#[test]
fn set_element_order_keeps_unnamed_elements_in_place() {
    let list = vec![json!({"k": 1}), json!({"k": 2}), json!({"k": 3})];
    let out = reorder(list, &[json!({"k": 3}), json!({"k": 1})], Some("k"));
    // 2 stood before 3 (the first named element after it), so it still does.
    assert_eq!(out, [json!({"k": 2}), json!({"k": 3}), json!({"k": 1})]);
}

#[test]
fn directives_are_stripped_from_new_elements() {
    let out = patched(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "new", "$patch": "merge", "env": [{"name": "X", "value": "1"}]}
    ]}}}}));
    assert_eq!(
        containers(&out)[2],
        json!({"name": "new", "env": [{"name": "X", "value": "1"}]})
    );
}

#[test]
fn bad_patches_name_the_field() {
    let missing_key = apply(
        &deployment(),
        &json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
        "Deployment",
    );
    assert_eq!(
        missing_key,
        Err(SmpError::MissingMergeKey {
            path: "spec.template.spec.containers".into(),
            key: "name"
        })
    );
    let unknown = apply(
        &deployment(),
        &json!({"spec": {"$patch": "frobnicate"}}),
        "Deployment",
    );
    assert!(matches!(unknown, Err(SmpError::UnknownPatchDirective { path, .. }) if path == "spec"));
    let unknown = apply(&deployment(), &json!({"$weird": 1}), "Deployment");
    assert!(matches!(unknown, Err(SmpError::UnknownDirective { .. })));
    assert_eq!(
        apply(&deployment(), &json!([]), "Deployment"),
        Err(SmpError::NotAnObject)
    );
}

#[test]
fn service_ports_merge_by_port() {
    let svc =
        json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}});
    let out = apply(
        &svc,
        &json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}),
        "Service",
    )
    .expect("patch applies");
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 80, "name": "http"}, {"port": 443, "name": "https", "targetPort": 8443}])
    );
}
