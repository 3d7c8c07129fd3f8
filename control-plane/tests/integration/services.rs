//! Service allocations over HTTP: ClusterIPs and NodePorts drawn from the server's ranges,
//! given values checked (422 naming the field), the address fixed for the Service's life,
//! freed on delete and on a type change, nothing taken by a dry run, and concurrent creates
//! never handed the same address.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use serde_json::{json, Value};
use skiff_control_plane::{Server, ServerConfig, ServerHandle, ServiceRanges};

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

/// A server whose Services draw from 10.96.0.0/28 (14 addresses, the first the `kubernetes`
/// Service's) and ports 30000-30009.
async fn server(dir: &std::path::Path) -> ServerHandle {
    let mut config = ServerConfig::new("test", dir.to_path_buf(), "127.0.0.1:0".parse().unwrap());
    config.service_ranges = ServiceRanges {
        cluster_ips: "10.96.0.0/28".parse().unwrap(),
        node_ports: "30000-30009".parse().unwrap(),
        cluster_dns: None,
    };
    Server::start(config).await.expect("server")
}

fn service(name: &str, kind: &str, cluster_ip: Option<&str>, node_port: Option<i64>) -> Value {
    let mut port = json!({"name": "http", "port": 80, "targetPort": 8080});
    if let Some(node_port) = node_port {
        port["nodePort"] = json!(node_port);
    }
    let mut svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"type": kind, "selector": {"app": name}, "ports": [port]}});
    if let Some(ip) = cluster_ip {
        svc["spec"]["clusterIP"] = json!(ip);
    }
    svc
}

fn causes(status: &Value) -> Vec<(String, String)> {
    status["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["field"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn in_range(ip: &Value) -> bool {
    let ip: Ipv4Addr = ip.as_str().expect("clusterIP").parse().expect("an address");
    let octets = ip.octets();
    octets[..3] == [10, 96, 0] && (1..=14).contains(&octets[3])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_addresses_and_ports_from_the_ranges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path()).await;
    let http = reqwest::Client::new();
    let services = format!("{}/api/v1/namespaces/default/services", server.url());

    let (code, kubernetes) = send(http.get(format!("{services}/kubernetes"))).await;
    assert_eq!(code, 200, "{kubernetes}");
    assert_eq!(kubernetes["spec"]["clusterIP"], "10.96.0.1");

    let (code, web) = send(
        http.post(&services)
            .json(&service("web", "NodePort", None, None)),
    )
    .await;
    assert_eq!(code, 201, "{web}");
    assert!(in_range(&web["spec"]["clusterIP"]), "{web}");
    assert_ne!(web["spec"]["clusterIP"], "10.96.0.1");
    assert_eq!(web["spec"]["clusterIPs"], json!([web["spec"]["clusterIP"]]));
    let node_port = web["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .expect("nodePort");
    assert!((30000..=30009).contains(&node_port), "{web}");

    let (code, headless) =
        send(
            http.post(&services)
                .json(&service("db", "ClusterIP", Some("None"), None)),
        )
        .await;
    assert_eq!(code, 201, "{headless}");
    assert_eq!(headless["spec"]["clusterIP"], "None");

    // Given values: taken, out of range, or not for this type.
    let taken_ip = web["spec"]["clusterIP"].as_str().unwrap();
    let (code, status) =
        send(
            http.post(&services)
                .json(&service("b", "NodePort", Some(taken_ip), Some(node_port))),
        )
        .await;
    assert_eq!(code, 422, "{status}");
    let found = causes(&status);
    assert_eq!(found[0].0, "spec.clusterIP", "{status}");
    assert!(
        found[0].1.contains("provided IP is already allocated"),
        "{status}"
    );
    assert_eq!(found[1].0, "spec.ports[0].nodePort", "{status}");
    assert!(
        found[1].1.contains("provided port is already allocated"),
        "{status}"
    );
    let (code, status) =
        send(
            http.post(&services)
                .json(&service("c", "NodePort", Some("10.43.0.5"), Some(80))),
        )
        .await;
    assert_eq!(code, 422, "{status}");
    let found = causes(&status);
    assert!(found[0].1.contains("not in the valid range"), "{status}");
    assert!(
        found[1]
            .1
            .contains("The range of valid ports is 30000-30009"),
        "{status}"
    );

    // A dry run answers an allocation but takes nothing: the same address is free after it.
    // (Free values, not the ones `web` drew at random.)
    let fixed_ip = if web["spec"]["clusterIP"] == "10.96.0.9" {
        "10.96.0.8"
    } else {
        "10.96.0.9"
    };
    let fixed_port = if node_port == 30009 { 30008 } else { 30009 };
    let (code, dry) = send(http.post(format!("{services}?dryRun=All")).json(&service(
        "d",
        "NodePort",
        Some(fixed_ip),
        Some(fixed_port),
    )))
    .await;
    assert_eq!(code, 201, "{dry}");
    let (code, real) = send(http.post(&services).json(&service(
        "d",
        "NodePort",
        Some(fixed_ip),
        Some(fixed_port),
    )))
    .await;
    assert_eq!(code, 201, "the dry run took nothing: {real}");

    // The address is fixed; an update without it keeps it, and keeps the nodePort too.
    let mut moved = web.clone();
    let other = if web["spec"]["clusterIP"] == "10.96.0.10" {
        "10.96.0.11"
    } else {
        "10.96.0.10"
    };
    moved["spec"]["clusterIP"] = json!(other);
    let (code, status) = send(http.put(format!("{services}/web")).json(&moved)).await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(causes(&status)[0].0, "spec.clusterIP", "{status}");
    let mut reapplied = service("web", "NodePort", None, None);
    reapplied["metadata"]["labels"] = json!({"tier": "front"});
    let (code, updated) = send(http.put(format!("{services}/web")).json(&reapplied)).await;
    assert_eq!(code, 200, "{updated}");
    assert_eq!(updated["spec"]["clusterIP"], web["spec"]["clusterIP"]);
    assert_eq!(updated["spec"]["ports"][0]["nodePort"], node_port);

    // A type change frees the nodePort; a delete frees the address.
    let (code, plain) =
        send(
            http.put(format!("{services}/web"))
                .json(&service("web", "ClusterIP", None, None)),
        )
        .await;
    assert_eq!(code, 200, "{plain}");
    assert!(
        plain["spec"]["ports"][0].get("nodePort").is_none(),
        "{plain}"
    );
    let (code, other) =
        send(
            http.post(&services)
                .json(&service("e", "NodePort", None, Some(node_port))),
        )
        .await;
    assert_eq!(code, 201, "the freed nodePort is taken again: {other}");
    let (code, _) = send(http.delete(format!("{services}/web"))).await;
    assert_eq!(code, 200);
    let (code, again) =
        send(
            http.post(&services)
                .json(&service("f", "ClusterIP", Some(taken_ip), None)),
        )
        .await;
    assert_eq!(code, 201, "the freed address is taken again: {again}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_get_distinct_addresses_until_the_range_is_full() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path()).await;
    let http = reqwest::Client::new();
    let services = format!("{}/api/v1/namespaces/default/services", server.url());
    // 13 addresses are left after the `kubernetes` Service's; 16 creates race for them.
    let creates = (0..16).map(|i| {
        let request = http
            .post(&services)
            .json(&service(&format!("s{i}"), "NodePort", None, None));
        tokio::spawn(send(request))
    });
    let mut addresses = HashSet::new();
    let mut ports = HashSet::new();
    let mut refused = 0;
    for create in creates {
        let (code, body) = create.await.expect("task");
        match code {
            201 => {
                assert!(in_range(&body["spec"]["clusterIP"]), "{body}");
                assert!(
                    addresses.insert(body["spec"]["clusterIP"].clone()),
                    "{body}"
                );
                assert!(
                    ports.insert(body["spec"]["ports"][0]["nodePort"].clone()),
                    "{body}"
                );
            }
            422 => {
                assert!(
                    body["message"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("range is full"),
                    "{body}"
                );
                refused += 1;
            }
            other => panic!("create answered {other}: {body}"),
        }
    }
    assert_eq!(addresses.len(), 10, "ports run out first (10 in the range)");
    assert_eq!(refused, 6);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kube_dns_service_holds_the_cluster_dns_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(
        "test",
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
    );
    config.service_ranges = ServiceRanges {
        cluster_ips: "10.96.0.0/28".parse().unwrap(),
        node_ports: "30000-30009".parse().unwrap(),
        cluster_dns: Some(Ipv4Addr::new(10, 96, 0, 10)),
    };
    let server = Server::start(config).await.expect("server");
    let http = reqwest::Client::new();
    let url = format!(
        "{}/api/v1/namespaces/kube-system/services/kube-dns",
        server.url()
    );
    let (code, dns) = send(http.get(url)).await;
    assert_eq!(code, 200, "{dns}");
    assert_eq!(dns["spec"]["clusterIP"], "10.96.0.10");
    assert_eq!(
        dns["metadata"]["annotations"]["skiff.dev/node-local"],
        "true"
    );
    let ports: Vec<(String, String)> = dns["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["protocol"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            ("dns".into(), "UDP".into()),
            ("dns-tcp".into(), "TCP".into())
        ]
    );
    // Named elsewhere, the address is taken.
    let services = format!("{}/api/v1/namespaces/default/services", server.url());
    let (code, status) =
        send(
            http.post(&services)
                .json(&service("thief", "ClusterIP", Some("10.96.0.10"), None)),
        )
        .await;
    assert_eq!(code, 422, "{status}");
    server.shutdown().await;
}
