//! What stock kubectl asks of the API server beyond plain REST: Table responses, paged lists,
//! deletecollection and the `/scale` subresource.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use skiff_control_plane::{Server, ServerConfig, ServerHandle};

/// The `Accept` header `kubectl get` sends.
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

async fn start() -> (tempfile::TempDir, ServerHandle, reqwest::Client) {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:0".parse().expect("addr");
    let server = Server::start(ServerConfig::new("test", dir.path().to_path_buf(), listen))
        .await
        .expect("server");
    (dir, server, reqwest::Client::new())
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "t"}},
        "spec": {"containers": [{"name": "c", "image": "file:/x.wasm"}]}})
}

/// `(name, priority)` of each column definition.
fn columns(table: &Value) -> Vec<(String, i64)> {
    table["columnDefinitions"]
        .as_array()
        .expect("columnDefinitions")
        .iter()
        .map(|c| {
            let name = c["name"].as_str().expect("name").to_uppercase();
            (name, c["priority"].as_i64().expect("priority"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_carry_kubectls_columns_for_lists_gets_and_watches() {
    let (_dir, server, http) = start().await;
    let pods = format!("{}/api/v1/namespaces/default/pods", server.url());
    for name in ["a", "b"] {
        let (code, _) = send(http.post(&pods).json(&pod(name))).await;
        assert_eq!(code, 201);
    }

    let (code, table) = send(http.get(&pods).header("Accept", TABLE)).await;
    assert_eq!(code, 200, "{table}");
    assert_eq!(
        (table["kind"].as_str(), table["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    assert!(table["metadata"]["resourceVersion"].is_string(), "{table}");
    let expected = [
        ("NAME", 0),
        ("READY", 0),
        ("STATUS", 0),
        ("RESTARTS", 0),
        ("AGE", 0),
        ("IP", 1),
        ("NODE", 1),
        ("NOMINATED NODE", 1),
        ("READINESS GATES", 1),
    ];
    assert_eq!(
        columns(&table),
        expected.map(|(n, p)| (n.to_string(), p)).to_vec()
    );
    let rows = table["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["cells"][0], "a");
    assert_eq!(
        &rows[0]["cells"].as_array().expect("cells")[1..3],
        &[json!("0/1"), json!("Pending")]
    );
    assert_eq!(rows[0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(rows[0]["object"]["metadata"]["name"], "a");
    assert!(rows[0]["object"]["spec"].is_null());

    // v1beta1 alone, a single object, and the whole object in the row.
    let (code, one) = send(http.get(format!("{pods}/b?includeObject=Object")).header(
        "Accept",
        "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
    ))
    .await;
    assert_eq!(code, 200, "{one}");
    assert_eq!(one["apiVersion"], "meta.k8s.io/v1beta1");
    assert_eq!(one["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["rows"][0]["object"]["kind"], "Pod");
    assert_eq!(
        one["rows"][0]["object"]["spec"]["containers"][0]["name"],
        "c"
    );
    let (_, bare) = send(
        http.get(format!("{pods}?includeObject=None"))
            .header("Accept", TABLE),
    )
    .await;
    assert!(bare["rows"][0]["object"].is_null(), "{bare}");
    let (code, _) = send(
        http.get(format!("{pods}?includeObject=Everything"))
            .header("Accept", TABLE),
    )
    .await;
    assert_eq!(code, 400);

    // Without the Table media type the list is a plain PodList.
    let (_, list) = send(http.get(&pods)).await;
    assert_eq!(list["kind"], "PodList");

    // A cluster-scoped kind has its own columns too.
    let (_, namespaces) = send(
        http.get(format!("{}/api/v1/namespaces/default", server.url()))
            .header("Accept", TABLE),
    )
    .await;
    assert_eq!(
        namespaces["rows"][0]["cells"].as_array().expect("cells")[..2],
        [json!("default"), json!("Active")]
    );

    // A watch event carries a Table of one row. Events of the older pods (the scheduler's
    // status writes) may come first: the one that matters is c's.
    let version = table["metadata"]["resourceVersion"].as_str().expect("rv");
    let response = http
        .get(format!("{pods}?watch=true&resourceVersion={version}"))
        .header("Accept", TABLE)
        .send()
        .await
        .expect("watch");
    send(http.post(&pods).json(&pod("c"))).await;
    let event = event_of(response, "c").await;
    assert_eq!(event["type"], "ADDED");
    assert_eq!(event["object"]["kind"], "Table");
    assert_eq!(event["object"]["rows"][0]["cells"][0], "c");
    assert_eq!(columns(&event["object"]).len(), expected.len());
    server.shutdown().await;
}

/// The first event of a newline-delimited Table watch response whose row is `name`'s.
async fn event_of(response: reqwest::Response, name: &str) -> Value {
    let mut body = response.bytes_stream();
    let mut buffer = Vec::new();
    loop {
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let event: Value = serde_json::from_slice(&line).expect("event");
            if event["object"]["rows"][0]["cells"][0] == name {
                return event;
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("an event in time")
            .expect("stream open")
            .expect("chunk");
        buffer.extend_from_slice(&chunk);
    }
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"page": "yes"}}})
}

/// Names of a list's items.
fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().expect("name").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_follow_one_snapshot_and_expire_with_its_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(ServerConfig {
        watch_history: 10,
        ..ServerConfig::new(
            "test",
            dir.path().to_path_buf(),
            "127.0.0.1:0".parse().expect("addr"),
        )
    })
    .await
    .expect("server");
    let http = reqwest::Client::new();
    let base = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    for name in ["a", "b", "c", "d", "e"] {
        let (code, _) = send(http.post(&base).json(&configmap(name))).await;
        assert_eq!(code, 201);
    }
    let (code, first) = send(http.get(format!("{base}?limit=2"))).await;
    assert_eq!(code, 200, "{first}");
    assert_eq!(names(&first), ["a", "b"]);
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    let version = first["metadata"]["resourceVersion"].clone();
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("continue")
        .to_string();

    // Changes after the first page do not show in the pages that follow it.
    send(http.delete(format!("{base}/c"))).await;
    send(http.post(&base).json(&configmap("bb"))).await;
    let (_, second) = send(http.get(format!("{base}?limit=2&continue={token}"))).await;
    assert_eq!(names(&second), ["c", "d"], "{second}");
    assert_eq!(second["metadata"]["resourceVersion"], version);
    let token = second["metadata"]["continue"].as_str().expect("continue");
    let (_, last) = send(http.get(format!("{base}?limit=2&continue={token}"))).await;
    assert_eq!(names(&last), ["e"]);
    assert!(last["metadata"]["continue"].is_null(), "{last}");
    assert!(last["metadata"]["remainingItemCount"].is_null());

    // With a selector the rest is not counted; Tables page too.
    let (_, selected) = send(
        http.get(format!("{base}?limit=1&labelSelector=page%3Dyes"))
            .header("Accept", TABLE),
    )
    .await;
    assert_eq!(selected["kind"], "Table");
    assert_eq!(selected["rows"].as_array().map(Vec::len), Some(1));
    assert!(selected["metadata"]["continue"].is_string(), "{selected}");
    assert!(selected["metadata"]["remainingItemCount"].is_null());

    let (code, status) = send(http.get(format!("{base}?limit=2&continue=not-a-token"))).await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));

    // Once the first page's revision is compacted away, its token is 410 Expired.
    let token = first["metadata"]["continue"].as_str().expect("continue");
    for i in 0..1_010 {
        let (code, _) = send(http.post(&base).json(&configmap(&format!("x{i}")))).await;
        assert_eq!(code, 201);
    }
    let (code, status) = send(http.get(format!("{base}?limit=2&continue={token}"))).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (410, Some("Expired")),
        "{status}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_on_a_collection_removes_what_its_selector_matches() {
    let (_dir, server, http) = start().await;
    let base = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    for name in ["a", "b"] {
        send(http.post(&base).json(&configmap(name))).await;
    }
    let (code, _) = send(
        http.post(&base)
            .json(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"}})),
    )
    .await;
    assert_eq!(code, 201);

    let (code, dry) =
        send(http.delete(format!("{base}?labelSelector=page%3Dyes&dryRun=All"))).await;
    assert_eq!((code, names(&dry).len()), (200, 2), "{dry}");
    let (_, all) = send(http.get(&base)).await;
    assert_eq!(names(&all), ["a", "b", "keep"], "a dry run deletes nothing");

    let (code, deleted) = send(http.delete(format!("{base}?labelSelector=page%3Dyes"))).await;
    assert_eq!(code, 200, "{deleted}");
    assert_eq!(deleted["kind"], "ConfigMapList");
    assert_eq!(names(&deleted), ["a", "b"]);
    let (_, left) = send(http.get(&base)).await;
    assert_eq!(names(&left), ["keep"]);

    let (_, discovery) = send(http.get(format!("{}/api/v1", server.url()))).await;
    let configmaps = discovery["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "configmaps")
        .expect("configmaps");
    assert!(configmaps["verbs"]
        .as_array()
        .expect("verbs")
        .contains(&json!("deletecollection")));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_scale_through_their_scale_subresource() {
    let (_dir, server, http) = start().await;
    let base = format!("{}/apis/apps/v1/namespaces/default", server.url());
    let template = json!({"metadata": {"labels": {"app": "s"}},
        "spec": {"containers": [{"name": "c", "image": "file:/x.wasm"}]}});
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "s"}}, "template": template}});
    let (code, _) = send(http.post(format!("{base}/deployments")).json(&deployment)).await;
    assert_eq!(code, 201);
    let scale_path = format!("{base}/deployments/d/scale");

    let (code, scale) = send(http.get(&scale_path)).await;
    assert_eq!(code, 200, "{scale}");
    assert_eq!(
        (scale["kind"].as_str(), scale["apiVersion"].as_str()),
        (Some("Scale"), Some("autoscaling/v1"))
    );
    assert_eq!(scale["spec"]["replicas"], 1);
    assert_eq!(scale["status"]["selector"], "app=s");

    // `kubectl scale` sends a merge patch.
    let (code, scaled) = send(
        http.patch(&scale_path)
            .header("Content-Type", "application/merge-patch+json")
            .body(r#"{"spec":{"replicas":3}}"#),
    )
    .await;
    assert_eq!(
        (code, scaled["spec"]["replicas"].as_i64()),
        (200, Some(3)),
        "{scaled}"
    );
    let (_, stored) = send(http.get(format!("{base}/deployments/d"))).await;
    assert_eq!(stored["spec"]["replicas"], 3);

    let (code, scaled) = send(
        http.patch(&scale_path)
            .header("Content-Type", "application/json-patch+json")
            .body(r#"[{"op":"replace","path":"/spec/replicas","value":2}]"#),
    )
    .await;
    assert_eq!(
        (code, scaled["spec"]["replicas"].as_i64()),
        (200, Some(2)),
        "{scaled}"
    );

    // A PUT carries a version: a stale one is a conflict; a negative count is invalid.
    let mut stale = scale.clone();
    stale["spec"]["replicas"] = json!(5);
    let (code, status) = send(http.put(&scale_path).json(&stale)).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (409, Some("Conflict")),
        "{status}"
    );
    let (_, mut fresh) = send(http.get(&scale_path)).await;
    fresh["spec"]["replicas"] = json!(-1);
    let (code, status) = send(http.put(&scale_path).json(&fresh)).await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["details"]["causes"][0]["field"], "spec.replicas");
    // Without a version the PUT applies whatever the controller wrote since the read.
    fresh["spec"]["replicas"] = json!(0);
    fresh["metadata"]
        .as_object_mut()
        .expect("a Scale has metadata")
        .remove("resourceVersion");
    let (code, scaled) = send(http.put(&scale_path).json(&fresh)).await;
    assert_eq!(
        (code, scaled["spec"]["replicas"].as_i64()),
        (200, Some(0)),
        "{scaled}"
    );

    let statefulset = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "s"}}, "template": template}});
    let (code, created) = send(http.post(format!("{base}/statefulsets")).json(&statefulset)).await;
    assert_eq!(code, 201, "{created}");
    let (code, scale) = send(http.get(format!("{base}/statefulsets/db/scale"))).await;
    assert_eq!((code, scale["spec"]["replicas"].as_i64()), (200, Some(2)));

    let (code, _) = send(http.get(format!(
        "{}/api/v1/namespaces/default/configmaps/x/scale",
        server.url()
    )))
    .await;
    assert_eq!(code, 404);
    let (_, discovery) = send(http.get(format!("{}/apis/apps/v1", server.url()))).await;
    let scale = discovery["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "deployments/scale")
        .expect("deployments/scale is listed");
    assert_eq!(
        (scale["kind"].as_str(), scale["group"].as_str()),
        (Some("Scale"), Some("autoscaling"))
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_read_at_the_resource_version_their_match_rule_asks() {
    let (_dir, server, http) = start().await;
    let base = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    let configmap =
        |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    let (code, first) = send(http.post(&base).json(&configmap("a"))).await;
    assert_eq!(code, 201, "{first}");
    let at = first["metadata"]["resourceVersion"]
        .as_str()
        .expect("resourceVersion")
        .to_string();
    send(http.post(&base).json(&configmap("b"))).await;
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| {
                i["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };

    let (code, exact) = send(http.get(format!(
        "{base}?resourceVersion={at}&resourceVersionMatch=Exact"
    )))
    .await;
    assert_eq!(code, 200, "{exact}");
    assert_eq!(names(&exact), ["a"], "the list as it was at {at}");
    assert_eq!(exact["metadata"]["resourceVersion"], at.as_str());
    let (code, newer) = send(http.get(format!(
        "{base}?resourceVersion={at}&resourceVersionMatch=NotOlderThan"
    )))
    .await;
    assert_eq!(code, 200, "{newer}");
    assert_eq!(names(&newer), ["a", "b"]);

    let future = "99999999";
    for rule in ["Exact", "NotOlderThan"] {
        let (code, status) = send(http.get(format!(
            "{base}?resourceVersion={future}&resourceVersionMatch={rule}"
        )))
        .await;
        assert_eq!(code, 504, "{rule}: {status}");
        assert!(status["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Too large resource version"));
    }
    for bad in [
        "resourceVersionMatch=Exact",
        "resourceVersion=0&resourceVersionMatch=Exact",
        "resourceVersion=1&resourceVersionMatch=Sometime",
    ] {
        let (code, status) = send(http.get(format!("{base}?{bad}"))).await;
        assert_eq!(code, 400, "{bad}: {status}");
        assert!(
            status["message"]
                .as_str()
                .unwrap_or_default()
                .contains("resourceVersionMatch"),
            "{status}"
        );
    }
}
