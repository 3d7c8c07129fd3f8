//! ResourceQuota and LimitRange at admission, on a real in-process server: refusals name the
//! quota and write nothing, concurrent creates (40 against 3 slots) never overshoot, deletes give slots back, and
//! LimitRange defaults land in the pod's spec; scoped quotas count only matching pods, scopes are
//! validated, and claims are bounded by LimitRange and charged for storage.

use serde_json::{json, Value};
use skiff_control_plane::{Server, ServerConfig, ServerHandle};

async fn start() -> (tempfile::TempDir, ServerHandle, reqwest::Client) {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:0".parse().expect("addr");
    let server = Server::start(ServerConfig::new("test", dir.path().to_path_buf(), listen))
        .await
        .expect("server");
    (dir, server, reqwest::Client::new())
}

fn url(server: &ServerHandle, plural: &str) -> String {
    format!("{}/api/v1/namespaces/default/{plural}", server.url())
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let response = http.post(url).json(body).send().await.expect("request");
    let code = response.status().as_u16();
    (code, response.json().await.expect("json"))
}

fn pod(name: &str, resources: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "main", "image": "registry.local/app:1",
                                     "resources": resources}]}})
}

async fn pod_names(http: &reqwest::Client, server: &ServerHandle) -> Vec<String> {
    let list: Value = http
        .get(url(server, "pods"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| {
            p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

async fn get_quota(http: &reqwest::Client, server: &ServerHandle) -> Value {
    http.get(format!("{}/q", url(server, "resourcequotas")))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

async fn make_quota(http: &reqwest::Client, server: &ServerHandle, hard: Value) {
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota",
                       "metadata": {"name": "q"}, "spec": {"hard": hard}});
    let (code, body) = post(http, &url(server, "resourcequotas"), &quota).await;
    assert_eq!(code, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pod_over_the_quota_is_refused_and_a_delete_frees_its_slot() {
    let (_dir, server, http) = start().await;
    make_quota(&http, &server, json!({"pods": "2"})).await;
    for name in ["a", "b"] {
        let (code, body) = post(&http, &url(&server, "pods"), &pod(name, json!({}))).await;
        assert_eq!(code, 201, "{body}");
    }
    let (code, status) = post(&http, &url(&server, "pods"), &pod("c", json!({}))).await;
    assert_eq!(code, 403, "{status}");
    assert_eq!(
        status["message"],
        "pods \"c\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
    );
    assert_eq!(pod_names(&http, &server).await, vec!["a", "b"]);
    let quota = get_quota(&http, &server).await;
    assert_eq!(quota["status"]["used"]["pods"], "2", "{quota}");

    let deleted = http
        .delete(format!("{}/a", url(&server, "pods")))
        .send()
        .await
        .expect("delete");
    assert!(deleted.status().is_success());
    // The quota controller gives the slot back in the quota's status (waiting at most 10 s)...
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let quota = get_quota(&http, &server).await;
        if quota["status"]["used"]["pods"] == "1" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still charged: {quota}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // ...and the next create may take it.
    let (code, body) = post(&http, &url(&server, "pods"), &pod("c", json!({}))).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        get_quota(&http, &server).await["status"]["used"]["pods"],
        "2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_concurrent_creates_against_three_slots_leave_three() {
    let (_dir, server, http) = start().await;
    make_quota(&http, &server, json!({"pods": "3"})).await;
    let creates = (0..40).map(|i| {
        let http = http.clone();
        let url = url(&server, "pods");
        async move { post(&http, &url, &pod(&format!("p{i}"), json!({}))).await }
    });
    let results = futures::future::join_all(creates).await;
    let created = results.iter().filter(|(code, _)| *code == 201).count();
    assert_eq!(created, 3, "{results:?}");
    for (code, body) in results.iter().filter(|(code, _)| *code != 201) {
        assert_eq!(*code, 403, "{body}");
    }
    assert_eq!(pod_names(&http, &server).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_quota_needs_limits_and_limit_range_defaults_land_in_the_spec() {
    let (_dir, server, http) = start().await;
    make_quota(&http, &server, json!({"limits.memory": "1Gi"})).await;
    let (code, status) = post(&http, &url(&server, "pods"), &pod("bare", json!({}))).await;
    assert_eq!(code, 403, "{status}");
    assert_eq!(
        status["message"],
        "pods \"bare\" is forbidden: failed quota: q: must specify limits.memory for: main"
    );

    let range = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr"},
                       "spec": {"limits": [{"type": "Container",
                                            "default": {"memory": "256Mi"},
                                            "max": {"memory": "512Mi"}}]}});
    let (code, body) = post(&http, &url(&server, "limitranges"), &range).await;
    assert_eq!(code, 201, "{body}");
    let (code, created) = post(&http, &url(&server, "pods"), &pod("bare", json!({}))).await;
    assert_eq!(code, 201, "{created}");
    let resources = &created["spec"]["containers"][0]["resources"];
    assert_eq!(resources["limits"]["memory"], "256Mi", "{created}");
    assert_eq!(resources["requests"]["memory"], "256Mi", "{created}");

    let big = pod("big", json!({"limits": {"memory": "1Gi"}}));
    let (code, status) = post(&http, &url(&server, "pods"), &big).await;
    assert_eq!(code, 403, "{status}");
    assert_eq!(
        status["message"],
        "pods \"big\" is forbidden: maximum memory usage per Container is 512Mi, but limit is 1Gi"
    );
    assert_eq!(pod_names(&http, &server).await, vec!["bare"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_services_are_charged_with_their_allocations() {
    let (_dir, server, http) = start().await;
    // `default` already holds the `kubernetes` Service: two more fit.
    make_quota(&http, &server, json!({"services": "3"})).await;
    let creates = (0..20).map(|i| {
        let http = http.clone();
        let url = url(&server, "services");
        let service = json!({"apiVersion": "v1", "kind": "Service",
                             "metadata": {"name": format!("s{i}")},
                             "spec": {"selector": {"app": "a"}, "ports": [{"port": 80}]}});
        async move { post(&http, &url, &service).await }
    });
    let results = futures::future::join_all(creates).await;
    let created = results.iter().filter(|(code, _)| *code == 201).count();
    assert_eq!(created, 2, "{results:?}");
    let (code, status) = results
        .iter()
        .find(|(code, _)| *code != 201)
        .expect("a refusal");
    assert_eq!(*code, 403, "{status}");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.ends_with(
            "exceeded quota: q, requested: services=1, used: services=3, limited: services=3"
        ),
        "{message}"
    );
    assert_eq!(
        get_quota(&http, &server).await["status"]["used"]["services"],
        "3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_quota_counts_only_matching_pods_on_create_and_in_the_recount() {
    let (_dir, server, http) = start().await;
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                       "spec": {"hard": {"pods": "1"}, "scopes": ["Terminating"]}});
    let (code, body) = post(&http, &url(&server, "resourcequotas"), &quota).await;
    assert_eq!(code, 201, "{body}");
    let job = |name: &str| {
        let mut p = pod(name, json!({}));
        p["spec"]["activeDeadlineSeconds"] = json!(60);
        p
    };
    for name in ["server-a", "server-b"] {
        let (code, body) = post(&http, &url(&server, "pods"), &pod(name, json!({}))).await;
        assert_eq!(code, 201, "not in scope, not charged: {body}");
    }
    let (code, body) = post(&http, &url(&server, "pods"), &job("job-a")).await;
    assert_eq!(code, 201, "{body}");
    let (code, status) = post(&http, &url(&server, "pods"), &job("job-b")).await;
    assert_eq!(code, 403, "{status}");
    assert_eq!(
        status["message"],
        "pods \"job-b\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"
    );
    assert_eq!(
        get_quota(&http, &server).await["status"]["used"]["pods"],
        "1"
    );
    // The recount after a delete counts matching pods only: 0, not the two servers.
    let deleted = http
        .delete(format!("{}/job-a", url(&server, "pods")))
        .send()
        .await
        .expect("delete");
    assert!(deleted.status().is_success());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let quota = get_quota(&http, &server).await;
        if quota["status"]["used"]["pods"] == "0" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "recount: {quota}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_scopes_are_refused_naming_the_field() {
    let (_dir, server, http) = start().await;
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                       "spec": {"hard": {"requests.cpu": "1"}, "scopes": ["BestEffort"]}});
    let (code, status) = post(&http, &url(&server, "resourcequotas"), &quota).await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "spec.scopes");
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                       "spec": {"hard": {"pods": "1"}, "scopeSelector": {"matchExpressions": [
                           {"scopeName": "PriorityClass", "operator": "Near"}]}}});
    let (code, status) = post(&http, &url(&server, "resourcequotas"), &quota).await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["details"]["causes"][0]["field"],
        "spec.scopeSelector.matchExpressions.operator"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_over_the_limit_range_max_is_refused_and_storage_is_charged() {
    let (_dir, server, http) = start().await;
    let range = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr"},
                       "spec": {"limits": [{"type": "PersistentVolumeClaim",
                                            "max": {"storage": "2Gi"}}]}});
    let (code, body) = post(&http, &url(&server, "limitranges"), &range).await;
    assert_eq!(code, 201, "{body}");
    make_quota(
        &http,
        &server,
        json!({"requests.storage": "3Gi",
               "local-path.storageclass.storage.k8s.io/persistentvolumeclaims": "5"}),
    )
    .await;
    let claim = |name: &str, size: &str| {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
               "spec": {"accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": size}}}})
    };
    let claims = url(&server, "persistentvolumeclaims");
    let (code, status) = post(&http, &claims, &claim("big", "5Gi")).await;
    assert_eq!(code, 403, "{status}");
    assert_eq!(
        status["message"],
        "persistentvolumeclaims \"big\" is forbidden: maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 5Gi"
    );
    let (code, body) = post(&http, &claims, &claim("a", "2Gi")).await;
    assert_eq!(code, 201, "{body}");
    let (code, status) = post(&http, &claims, &claim("b", "2Gi")).await;
    assert_eq!(code, 403, "{status}");
    assert_eq!(
        status["message"],
        "persistentvolumeclaims \"b\" is forbidden: exceeded quota: q, requested: requests.storage=2Gi, used: requests.storage=2Gi, limited: requests.storage=3Gi"
    );
    let used = &get_quota(&http, &server).await["status"]["used"];
    assert_eq!(used["requests.storage"], "2Gi", "{used}");
    assert_eq!(
        used["local-path.storageclass.storage.k8s.io/persistentvolumeclaims"], "1",
        "{used}"
    );
}
