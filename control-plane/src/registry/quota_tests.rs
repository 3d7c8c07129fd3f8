//! Quotas and LimitRanges on updates, through a real store: an update is charged what it
//! adds to a quota, in the same transaction, and refused when that does not fit.

use serde_json::{json, Value};

use super::*;

fn kind(name: &str) -> &'static ResourceKind {
    resources::by_name(name).expect("served kind")
}

async fn quota(registry: &Registry, name: &str, spec: Value) {
    let q = json!({"metadata": {"name": name}, "spec": spec});
    registry
        .create(kind("resourcequotas"), Some("default"), q)
        .await
        .expect("quota");
}

async fn used(registry: &Registry, name: &str) -> Value {
    let q = registry
        .get(kind("resourcequotas"), Some("default"), name)
        .await
        .expect("quota");
    q["status"]["used"].clone()
}

/// Replaces `obj` with `change` applied to its stored value.
async fn update(
    registry: &Registry,
    plural: &str,
    name: &str,
    change: impl FnOnce(&mut Value),
) -> Result<Value, ApiError> {
    let mut obj = registry.get(kind(plural), Some("default"), name).await?;
    change(&mut obj);
    registry
        .update(kind(plural), Some("default"), name, obj, Subresource::Main)
        .await
}

fn forbidden(err: ApiError) -> String {
    match err {
        ApiError::Forbidden { message, .. } => message,
        other => panic!("expected a 403, got {other:?}"),
    }
}

#[tokio::test]
async fn a_service_changed_to_node_port_or_load_balancer_is_charged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = crate::test_registry::registry(dir.path()).await;
    quota(
        &registry,
        "q",
        json!({"hard": {"services.nodeports": "2", "services.loadbalancers": "0"}}),
    )
    .await;
    let svc = |name: &str| {
        json!({"metadata": {"name": name},
            "spec": {"ports": [{"port": 80}], "selector": {"app": name}}})
    };
    for name in ["a", "b", "c"] {
        registry
            .create(kind("services"), Some("default"), svc(name))
            .await
            .expect("ClusterIP service");
    }
    let to_node_port = |s: &mut Value| s["spec"]["type"] = json!("NodePort");
    update(&registry, "services", "a", to_node_port)
        .await
        .expect("first NodePort fits");
    update(&registry, "services", "b", to_node_port)
        .await
        .expect("second NodePort fits");
    assert_eq!(
        used(&registry, "q").await,
        json!({"services.loadbalancers": "0", "services.nodeports": "2"}),
        "charged in the updates' transactions"
    );
    let err = update(&registry, "services", "c", to_node_port)
        .await
        .expect_err("a third NodePort is over");
    assert_eq!(
        forbidden(err),
        "exceeded quota: q, requested: services.nodeports=1, used: services.nodeports=2, limited: services.nodeports=2"
    );
    let err = update(&registry, "services", "a", |s| {
        s["spec"]["type"] = json!("LoadBalancer")
    })
    .await
    .expect_err("no LoadBalancers");
    assert_eq!(
        forbidden(err),
        "exceeded quota: q, requested: services.loadbalancers=1, used: services.loadbalancers=0, limited: services.loadbalancers=0"
    );
    let stored = registry
        .get(kind("services"), Some("default"), "c")
        .await
        .expect("c");
    assert!(stored["spec"].get("type").is_none_or(|t| t == "ClusterIP"));
    // An update that adds nothing is not charged, even with the quota full.
    update(&registry, "services", "a", |s| {
        s["metadata"]["labels"] = json!({"tier": "web"})
    })
    .await
    .expect("a label");
}

/// Makes the StorageClasses `names`, which claims must name.
async fn classes(registry: &Registry, names: &[&str]) {
    for name in names {
        let class = json!({"metadata": {"name": name},
            "provisioner": skiff_api::storage::LOCAL_PATH_PROVISIONER,
            "allowVolumeExpansion": true});
        registry
            .create(kind("storageclasses"), None, class)
            .await
            .expect("storage class");
    }
}

async fn claim(registry: &Registry, name: &str, class: &str, storage: &str) {
    let c = json!({"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
        "storageClassName": class, "resources": {"requests": {"storage": storage}}}});
    registry
        .create(kind("persistentvolumeclaims"), Some("default"), c)
        .await
        .expect("claim");
}

fn expand(storage: &'static str) -> impl FnOnce(&mut Value) {
    move |c: &mut Value| c["spec"]["resources"]["requests"]["storage"] = json!(storage)
}

#[tokio::test]
async fn a_claim_expansion_is_charged_overall_and_per_class() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = crate::test_registry::registry(dir.path()).await;
    quota(
        &registry,
        "all",
        json!({"hard": {"requests.storage": "10Gi"}}),
    )
    .await;
    quota(
        &registry,
        "gold",
        json!({"hard": {"gold.storageclass.storage.k8s.io/requests.storage": "3Gi"}}),
    )
    .await;
    classes(&registry, &["gold", "silver"]).await;
    claim(&registry, "g", "gold", "1Gi").await;
    claim(&registry, "s", "silver", "2Gi").await;
    update(&registry, "persistentvolumeclaims", "g", expand("3Gi"))
        .await
        .expect("within both");
    assert_eq!(
        used(&registry, "gold").await,
        json!({"gold.storageclass.storage.k8s.io/requests.storage": "3Gi"})
    );
    assert_eq!(
        used(&registry, "all").await,
        json!({"requests.storage": "5Gi"})
    );
    let err = update(&registry, "persistentvolumeclaims", "g", expand("4Gi"))
        .await
        .expect_err("over the class");
    assert_eq!(
        forbidden(err),
        "exceeded quota: gold, requested: gold.storageclass.storage.k8s.io/requests.storage=1Gi, used: gold.storageclass.storage.k8s.io/requests.storage=3Gi, limited: gold.storageclass.storage.k8s.io/requests.storage=3Gi"
    );
    let err = update(&registry, "persistentvolumeclaims", "s", expand("8Gi"))
        .await
        .expect_err("over the namespace's storage");
    assert_eq!(
        forbidden(err),
        "exceeded quota: all, requested: requests.storage=6Gi, used: requests.storage=5Gi, limited: requests.storage=10Gi"
    );
    update(&registry, "persistentvolumeclaims", "s", expand("7Gi"))
        .await
        .expect("exactly the rest");
}

#[tokio::test]
async fn a_claim_expansion_is_held_to_a_limit_range_max() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = crate::test_registry::registry(dir.path()).await;
    classes(&registry, &["gold"]).await;
    claim(&registry, "big", "gold", "5Gi").await;
    claim(&registry, "small", "gold", "1Gi").await;
    let range = json!({"metadata": {"name": "storage"}, "spec": {"limits": [
        {"type": "PersistentVolumeClaim", "max": {"storage": "2Gi"}}]}});
    registry
        .create(kind("limitranges"), Some("default"), range)
        .await
        .expect("limit range");
    update(&registry, "persistentvolumeclaims", "small", expand("2Gi"))
        .await
        .expect("up to the max");
    let err = update(&registry, "persistentvolumeclaims", "small", expand("3Gi"))
        .await
        .expect_err("over the max");
    assert_eq!(
        forbidden(err),
        "maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 3Gi"
    );
    // A claim made before the range is not refused an update that does not expand it.
    update(&registry, "persistentvolumeclaims", "big", |c| {
        c["metadata"]["labels"] = json!({"app": "db"})
    })
    .await
    .expect("a label on a claim over the max");
}

#[tokio::test]
async fn a_pod_moved_into_a_scope_is_charged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = crate::test_registry::registry(dir.path()).await;
    quota(
        &registry,
        "terminating",
        json!({"hard": {"pods": "1"}, "scopes": ["Terminating"]}),
    )
    .await;
    for name in ["a", "b"] {
        let pod = json!({"metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]}});
        registry
            .create(kind("pods"), Some("default"), pod)
            .await
            .expect("pod outside the scope");
    }
    assert_eq!(used(&registry, "terminating").await, json!({"pods": "0"}));
    let deadline = |p: &mut Value| p["spec"]["activeDeadlineSeconds"] = json!(60);
    update(&registry, "pods", "a", deadline)
        .await
        .expect("the first Terminating pod fits");
    assert_eq!(used(&registry, "terminating").await, json!({"pods": "1"}));
    let err = update(&registry, "pods", "b", deadline)
        .await
        .expect_err("the quota is full");
    assert_eq!(
        forbidden(err),
        "exceeded quota: terminating, requested: pods=1, used: pods=1, limited: pods=1"
    );
    // Already in the scope: a shorter deadline adds nothing.
    update(&registry, "pods", "a", |p| {
        p["spec"]["activeDeadlineSeconds"] = json!(30)
    })
    .await
    .expect("a pod already counted");
}

#[tokio::test]
async fn a_quota_update_may_not_change_its_scopes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = crate::test_registry::registry(dir.path()).await;
    quota(
        &registry,
        "q",
        json!({"hard": {"pods": "1"}, "scopes": ["Terminating"]}),
    )
    .await;
    let err = update(&registry, "resourcequotas", "q", |q| {
        q["spec"]["scopes"] = json!(["NotTerminating"])
    })
    .await
    .expect_err("scopes are fixed");
    match err {
        ApiError::Invalid { causes, .. } => {
            assert_eq!(causes.len(), 1, "{causes:?}");
            assert_eq!(causes[0].field, "spec.scopes");
            assert_eq!(causes[0].message, "field is immutable");
        }
        other => panic!("expected a 422, got {other:?}"),
    }
    update(&registry, "resourcequotas", "q", |q| {
        q["spec"]["hard"]["pods"] = json!("3")
    })
    .await
    .expect("hard may change");
}

/// Creates a one-container pod in `namespace` and returns its container's resources.
async fn pod_resources(
    registry: &Registry,
    namespace: &str,
    name: &str,
) -> Result<Value, ApiError> {
    let pod = json!({"metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]}});
    let created = registry.create(kind("pods"), Some(namespace), pod).await?;
    Ok(created["spec"]["containers"][0]["resources"].clone())
}

// Creates skip the quota and LimitRange lists in a namespace that has none: the policies
// apply from the first create after them, only in their namespace, and stop once deleted.
#[tokio::test]
async fn namespace_policies_apply_once_created_and_stop_once_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = crate::test_registry::registry(dir.path()).await;
    let bare = pod_resources(&registry, "default", "a")
        .await
        .expect("no policy");
    assert!(bare.get("requests").is_none(), "{bare}");

    let range = json!({"metadata": {"name": "lr"}, "spec": {"limits": [
        {"type": "Container", "default": {"memory": "256Mi"}}]}});
    registry
        .create(kind("limitranges"), Some("default"), range)
        .await
        .expect("limit range");
    quota(&registry, "q", json!({"hard": {"pods": "2"}})).await;
    let defaulted = pod_resources(&registry, "default", "b")
        .await
        .expect("fits");
    assert_eq!(defaulted["requests"]["memory"], "256Mi", "{defaulted}");
    assert_eq!(used(&registry, "q").await, json!({"pods": "2"}));
    let err = pod_resources(&registry, "default", "c")
        .await
        .expect_err("the quota is full");
    assert_eq!(
        forbidden(err),
        "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
    );

    // A namespace whose name starts with this one's has its own (no) policies.
    registry
        .create(
            kind("namespaces"),
            None,
            json!({"metadata": {"name": "default-b"}}),
        )
        .await
        .expect("namespace");
    let elsewhere = pod_resources(&registry, "default-b", "c")
        .await
        .expect("no policy in default-b");
    assert!(elsewhere.get("requests").is_none(), "{elsewhere}");

    for (plural, name) in [("limitranges", "lr"), ("resourcequotas", "q")] {
        registry
            .delete(
                kind(plural),
                Some("default"),
                name,
                &DeleteOptions::default(),
            )
            .await
            .expect("delete");
    }
    let bare = pod_resources(&registry, "default", "c")
        .await
        .expect("no policy left");
    assert!(bare.get("requests").is_none(), "{bare}");
}
