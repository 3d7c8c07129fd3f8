//! The audit log: one `audit.k8s.io/v1` Event line per request, with the user (and whom it
//! impersonated), the verb, the object and the response code, and never a request body.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use skiff_control_plane::{Server, ServerConfig};

/// The log's events once it holds at least `count`, within a deadline.
async fn events(path: &Path, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = tokio::fs::read_to_string(path).await.unwrap_or_default();
        let events: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        if events.len() >= count {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} events: {text}",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_and_failed_requests_are_logged_with_user_verb_object_and_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("audit.log");
    let server = Server::start(ServerConfig {
        audit_log: Some(log.clone()),
        ..ServerConfig::new(
            "test",
            dir.path().join("data"),
            "127.0.0.1:0".parse().expect("addr"),
        )
    })
    .await
    .expect("server");
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/namespaces/default/secrets", server.url());
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                        "stringData": {"password": "hunter2-never-logged"}});
    let created = http.post(&url).json(&secret).send().await.expect("create");
    assert_eq!(created.status(), 201);
    assert!(created.headers().contains_key("audit-id"));
    let again = http.post(&url).json(&secret).send().await.expect("create");
    assert_eq!(again.status(), 409);
    let missing = http.get(format!("{url}/nope")).send().await.expect("get");
    assert_eq!(missing.status(), 404);
    let as_bob = http
        .get(format!("{url}/db"))
        .header("Impersonate-User", "bob")
        .header("Impersonate-Extra-acme.com%2Fproject", "web")
        .send()
        .await
        .expect("get as bob");
    assert_eq!(as_bob.status(), 403, "bob has no binding");

    let events = events(&log, 4).await;
    let codes: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e["verb"].as_str().unwrap_or_default(),
                e["objectRef"]["name"].as_str().unwrap_or_default(),
                e["responseStatus"]["code"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            ("create", "", 201),
            ("create", "", 409),
            ("get", "nope", 404),
            ("get", "db", 403)
        ]
    );
    // Who asked, and whom they acted as.
    let impersonated = &events[3];
    assert_eq!(impersonated["user"]["username"], "system:unsecured");
    assert_eq!(impersonated["impersonatedUser"]["username"], "bob");
    assert_eq!(
        impersonated["impersonatedUser"]["extra"],
        json!({"acme.com/project": ["web"]})
    );

    let first = &events[0];
    assert!(first.get("impersonatedUser").is_none());
    assert_eq!(first["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(first["kind"], "Event");
    assert_eq!(first["level"], "Metadata");
    assert_eq!(first["stage"], "ResponseComplete");
    assert_eq!(first["user"]["username"], "system:unsecured");
    assert!(first["user"]["groups"]
        .as_array()
        .expect("groups")
        .contains(&json!("system:masters")));
    assert_eq!(first["sourceIPs"], json!(["127.0.0.1"]));
    assert_eq!(first["objectRef"]["resource"], "secrets");
    assert_eq!(first["objectRef"]["namespace"], "default");
    assert_eq!(first["objectRef"]["apiVersion"], "v1");
    assert!(first["auditID"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(first["requestReceivedTimestamp"].as_str().is_some());
    assert!(first["stageTimestamp"].as_str().is_some());
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(!text.contains("hunter2"), "a request body reached the log");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log).expect("log").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    server.shutdown().await;
}
