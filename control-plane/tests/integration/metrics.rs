//! `GET /metrics`: requests move kube-apiserver's series, the store, scheduler, work queues
//! and process export theirs, open watches are counted while open, and RBAC decides who may
//! scrape (`system:monitoring` may, a plain user may not).

use std::time::{Duration, Instant};

use serde_json::json;
use skiff_control_plane::{Server, ServerConfig};

use crate::common::TlsServer;

/// The value of the series written exactly as `series` (name and labels), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn scrape(client: &reqwest::Client, url: &str) -> String {
    let answer = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(answer.status().as_u16(), 200);
    let content_type = answer.headers()["content-type"].to_str().expect("text");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    answer.text().await.expect("body")
}

/// Scrapes until `check` holds on the text, for up to 10 s; returns the last text.
async fn scrape_until(client: &reqwest::Client, url: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(client, url).await;
        if check(&text) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn request_series(verb: &str, resource: &str, scope: &str, code: u16) -> String {
    format!(
        "apiserver_request_total{{verb=\"{verb}\",dry_run=\"\",group=\"\",version=\"v1\",resource=\"{resource}\",subresource=\"\",scope=\"{scope}\",component=\"apiserver\",code=\"{code}\"}}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_store_scheduler_and_queues_show_in_metrics_for_those_allowed() {
    let server = TlsServer::start().await;
    let url = server.url();
    let admin = server.admin();
    let configmaps = format!("{url}/api/v1/namespaces/default/configmaps");
    for name in ["a", "b"] {
        let created = admin
            .post(&configmaps)
            .json(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}))
            .send()
            .await
            .expect("POST");
        assert_eq!(created.status().as_u16(), 201);
    }
    let missing = admin
        .get(format!("{configmaps}/nope"))
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status().as_u16(), 404);
    let listed = admin.get(&configmaps).send().await.expect("LIST");
    assert_eq!(listed.status().as_u16(), 200);
    // A pod no node can take: one unschedulable attempt.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "example.com/app:1"}]}});
    let created = admin
        .post(format!("{url}/api/v1/namespaces/default/pods"))
        .json(&pod)
        .send()
        .await
        .expect("POST pod");
    assert_eq!(created.status().as_u16(), 201);
    let unschedulable =
        "scheduler_schedule_attempts_total{result=\"unschedulable\",profile=\"default-scheduler\"}";

    let text = scrape_until(&admin, &url, |t| value(t, unschedulable).is_some()).await;
    assert_eq!(
        value(
            &text,
            &request_series("POST", "configmaps", "resource", 201)
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, &request_series("GET", "configmaps", "resource", 404)),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            &request_series("LIST", "configmaps", "namespace", 200)
        ),
        Some(1.0)
    );
    assert!(
        value(&text, unschedulable).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(text.contains("scheduler_pending_pods{queue=\"unschedulable\"}"));
    let list_latency = "apiserver_request_duration_seconds_count{verb=\"LIST\",dry_run=\"\",group=\"\",version=\"v1\",resource=\"configmaps\",subresource=\"\",scope=\"namespace\",component=\"apiserver\"}";
    assert_eq!(value(&text, list_latency), Some(1.0));
    assert!(text.contains("apiserver_request_duration_seconds_bucket{verb=\"LIST\",dry_run=\"\",group=\"\",version=\"v1\",resource=\"configmaps\",subresource=\"\",scope=\"namespace\",component=\"apiserver\",le=\"0.005\"}"));
    assert_eq!(value(&text, "etcd_server_is_leader"), Some(1.0));
    assert_eq!(value(&text, "etcd_server_has_leader"), Some(1.0));
    assert!(value(&text, "etcd_server_leader_changes_seen_total").is_some_and(|n| n >= 1.0));
    let applied = value(&text, "etcd_server_proposals_applied_total").expect("applied");
    assert!(applied >= 3.0, "{applied}");
    assert!(value(&text, "skiff_store_proposal_duration_seconds_count").is_some_and(|n| n >= 3.0));
    assert!(value(&text, "etcd_disk_wal_fsync_duration_seconds_count").is_some_and(|n| n >= 1.0));
    assert!(value(&text, "process_resident_memory_bytes").is_some_and(|n| n > 0.0));
    assert!(value(&text, "process_open_fds").is_some_and(|n| n > 0.0));
    assert!(value(&text, "workqueue_depth{name=\"replicaset\"}").is_some());
    assert!(text.contains("workqueue_adds_total{name=\"deployment\"}"));

    // An open watch is counted until it ends.
    let watcher = "apiserver_registered_watchers{group=\"\",version=\"v1\",kind=\"ConfigMap\"}";
    let watch = admin
        .get(format!("{configmaps}?watch=true"))
        .send()
        .await
        .expect("watch");
    assert_eq!(watch.status().as_u16(), 200);
    let text = scrape_until(&admin, &url, |t| value(t, watcher) == Some(1.0)).await;
    assert_eq!(value(&text, watcher), Some(1.0), "{text}");
    let longrunning = "apiserver_longrunning_requests{verb=\"WATCH\",dry_run=\"\",group=\"\",version=\"v1\",resource=\"configmaps\",subresource=\"\",scope=\"namespace\",component=\"apiserver\"}";
    assert_eq!(value(&text, longrunning), Some(1.0));
    drop(watch);
    let text = scrape_until(&admin, &url, |t| value(t, watcher) == Some(0.0)).await;
    assert_eq!(value(&text, watcher), Some(0.0), "{text}");

    // RBAC: a plain user may not scrape; the system:monitoring group may.
    let carol = server.user("carol", &[]);
    let refused = carol
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("GET");
    assert_eq!(refused.status().as_u16(), 403);
    let monitor = server.user("prometheus", &["system:monitoring"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = monitor
            .get(format!("{url}/metrics"))
            .send()
            .await
            .expect("GET");
        let code = answer.status().as_u16();
        if code == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "system:monitoring got {code}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = scrape(&admin, &url).await;
    let forbidden = "apiserver_request_total{verb=\"GET\",dry_run=\"\",group=\"\",version=\"\",resource=\"\",subresource=\"\",scope=\"\",component=\"apiserver\",code=\"403\"}";
    assert!(value(&text, forbidden).is_some_and(|n| n >= 1.0), "{text}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_http_listener_serves_metrics_as_an_admin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ServerConfig::new(
        "plain",
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse().expect("addr"),
    );
    let server = Server::start(config).await.expect("server");
    let client = reqwest::Client::new();
    scrape(&client, &server.url()).await;
    // The first scrape is counted once it is answered: the second shows it.
    let text = scrape(&client, &server.url()).await;
    let scrapes = "apiserver_request_total{verb=\"GET\",dry_run=\"\",group=\"\",version=\"\",resource=\"\",subresource=\"\",scope=\"\",component=\"apiserver\",code=\"200\"}";
    assert!(value(&text, scrapes).is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(value(&text, "etcd_server_is_leader"), Some(1.0));
    server.shutdown().await;
}
