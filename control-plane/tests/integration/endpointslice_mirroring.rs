//! The EndpointSlice mirroring controller over HTTP: a selector-less Service's hand-written
//! Endpoints is mirrored into an EndpointSlice owned by the Endpoints, which follows its
//! addresses and goes when the Endpoints is labelled skip-mirror, is deleted, or loses its
//! Service.

use std::time::Duration;

use serde_json::{json, Value};
use skiff_control_plane::{Server, ServerConfig};

const MANAGED_BY: &str = "endpointslicemirroring-controller.k8s.io";

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

/// GET `url` until `done` holds for the body (20 s at most).
async fn until(
    http: &reqwest::Client,
    url: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = send(http.get(url)).await;
        if code == 200 && done(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} never showed {what}: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The (address, ready) pairs of a slice.
fn endpoints_of(slice: &Value) -> Vec<(String, bool)> {
    slice["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let ip = e["addresses"][0].as_str().unwrap_or_default().to_string();
            (ip, e["conditions"]["ready"].as_bool().unwrap_or_default())
        })
        .collect()
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn merge_patch(http: &reqwest::Client, url: &str, body: Value) -> reqwest::RequestBuilder {
    http.patch(url)
        .header("content-type", "application/merge-patch+json")
        .body(body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_written_endpoints_of_a_selector_less_service_are_mirrored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:0".parse().expect("addr");
    let server = Server::start(ServerConfig::new("test", dir.path().to_path_buf(), listen))
        .await
        .expect("server");
    let http = reqwest::Client::new();
    let base = format!("{}/api/v1/namespaces/default", server.url());
    let all_slices = format!(
        "{}/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
        server.url()
    );
    let slices = format!("{all_slices}?labelSelector=kubernetes.io/service-name=ext");

    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
        "spec": {"ports": [{"name": "https", "port": 443}]}});
    let (code, body) = send(http.post(format!("{base}/services")).json(&service)).await;
    assert_eq!(code, 201, "{body}");
    let written = json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "ext", "labels": {"team": "db"}, "annotations": {
            "note": "outside",
            "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}],
            "notReadyAddresses": [{"ip": "192.0.2.11"}],
            "ports": [{"name": "https", "port": 443}]}]});
    let (code, written) = send(http.post(format!("{base}/endpoints")).json(&written)).await;
    assert_eq!(code, 201, "{written}");

    let list = until(&http, &slices, "a mirrored slice", |l| items(l).len() == 1).await;
    let slice = &items(&list)[0];
    assert_eq!(
        endpoints_of(slice),
        [("192.0.2.10".into(), true), ("192.0.2.11".into(), false)]
    );
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["ports"],
        json!([{"name": "https", "port": 443, "protocol": "TCP"}])
    );
    let labels = &slice["metadata"]["labels"];
    assert_eq!(labels["endpointslice.kubernetes.io/managed-by"], MANAGED_BY);
    assert_eq!(labels["team"], "db");
    let annotations = &slice["metadata"]["annotations"];
    assert_eq!(annotations["note"], "outside");
    assert!(annotations
        .get("kubectl.kubernetes.io/last-applied-configuration")
        .is_none());
    let owner = &slice["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Endpoints");
    assert_eq!(owner["name"], "ext");
    assert_eq!(owner["uid"], written["metadata"]["uid"]);
    assert_eq!(owner["controller"], true);
    let slice_name = slice["metadata"]["name"].clone();

    // The same slice follows the addresses.
    let endpoints_url = format!("{base}/endpoints/ext");
    let moved = json!({"subsets": [{"addresses": [{"ip": "192.0.2.10"}, {"ip": "192.0.2.12"}],
        "ports": [{"name": "https", "port": 443}]}]});
    let (code, body) = send(merge_patch(&http, &endpoints_url, moved)).await;
    assert_eq!(code, 200, "{body}");
    let list = until(&http, &slices, "the new address", |l| {
        items(l).len() == 1
            && endpoints_of(&items(l)[0])
                == [("192.0.2.10".into(), true), ("192.0.2.12".into(), true)]
    })
    .await;
    assert_eq!(items(&list)[0]["metadata"]["name"], slice_name);

    // skip-mirror takes the slice away, and dropping it brings one back.
    let skip = json!({"metadata": {"labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}}});
    let (code, body) = send(merge_patch(&http, &endpoints_url, skip)).await;
    assert_eq!(code, 200, "{body}");
    until(&http, &slices, "no slice", |l| items(l).is_empty()).await;
    let unskip = json!({"metadata": {"labels": {"endpointslice.kubernetes.io/skip-mirror": null}}});
    let (code, body) = send(merge_patch(&http, &endpoints_url, unskip)).await;
    assert_eq!(code, 200, "{body}");
    until(&http, &slices, "a slice again", |l| items(l).len() == 1).await;

    // The slice goes with the Endpoints, and a new Endpoints gets a new slice.
    let (code, _) = send(http.delete(&endpoints_url)).await;
    assert_eq!(code, 200);
    until(&http, &slices, "no slice", |l| items(l).is_empty()).await;
    let again = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext"},
        "subsets": [{"addresses": [{"ip": "192.0.2.20"}], "ports": [{"name": "https", "port": 443}]}]});
    let (code, again) = send(http.post(format!("{base}/endpoints")).json(&again)).await;
    assert_eq!(code, 201, "{again}");
    let list = until(&http, &slices, "the new Endpoints' slice", |l| {
        items(l).len() == 1 && endpoints_of(&items(l)[0]) == [("192.0.2.20".into(), true)]
    })
    .await;
    assert_eq!(
        items(&list)[0]["metadata"]["ownerReferences"][0]["uid"],
        again["metadata"]["uid"]
    );

    // The slice goes with the Service, though the Endpoints stays.
    let (code, _) = send(http.delete(format!("{base}/services/ext"))).await;
    assert_eq!(code, 200);
    until(&http, &slices, "no slice", |l| items(l).is_empty()).await;
    let (code, _) = send(http.get(&endpoints_url)).await;
    assert_eq!(code, 200);

    // The `kubernetes` Endpoints (skip-mirror) was never mirrored.
    let mirrored =
        format!("{all_slices}?labelSelector=endpointslice.kubernetes.io/managed-by={MANAGED_BY}");
    let (code, list) = send(http.get(&mirrored)).await;
    assert_eq!(code, 200, "{list}");
    assert!(items(&list).is_empty(), "{list}");
    server.shutdown().await;
}
