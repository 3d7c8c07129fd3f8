use serde_json::json;

use super::*;

fn service(value: serde_json::Value) -> Service {
    serde_json::from_value(value).expect("service")
}

fn slice(
    namespace: &str,
    service: &str,
    ports: serde_json::Value,
    endpoints: serde_json::Value,
) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": format!("{service}-x"), "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "ports": ports, "endpoints": endpoints,
    }))
    .expect("slice")
}

fn ip(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

/// `echo` (ClusterIP), `db` (headless, a StatefulSet's pods with hostnames) and `web`
/// (headless, pods without hostnames, one unready), in two namespaces.
fn zone() -> Zone {
    let services = [
        service(json!({"metadata": {"name": "echo", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.20", "ports": [
                {"name": "http", "port": 8080},
                {"name": "dns", "port": 53, "protocol": "UDP"}]}})),
        service(json!({"metadata": {"name": "db", "namespace": "data"},
            "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})),
        service(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}})),
        service(
            json!({"metadata": {"name": "empty", "namespace": "default"},
            "spec": {"clusterIP": "None"}}),
        ),
        service(json!({"metadata": {"name": "out", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "example.com"}})),
    ];
    let slices = [
        slice(
            "data",
            "db",
            json!([{"name": "pg", "port": 5433}]),
            json!([{"addresses": ["10.42.1.5"], "hostname": "db-0"},
                   {"addresses": ["10.42.2.6"], "hostname": "db-1",
                    "conditions": {"ready": true}}]),
        ),
        slice(
            "default",
            "web",
            json!([{"name": "http", "port": 8000}]),
            json!([{"addresses": ["10.42.1.7"]},
                   {"addresses": ["10.42.1.8"], "conditions": {"ready": false}}]),
        ),
        // Same name, other namespace: not web's.
        slice(
            "data",
            "web",
            json!([{"name": "http", "port": 1}]),
            json!([{"addresses": ["10.42.9.9"]}]),
        ),
    ];
    Zone::build("cluster.local", &services, &slices)
}

#[test]
fn a_service_name_is_its_cluster_ip() {
    let zone = zone();
    for name in [
        "echo.default.svc.cluster.local",
        "echo.default.svc.cluster.local.",
        "Echo.Default.SVC.cluster.local",
    ] {
        assert_eq!(
            zone.lookup(name, Wanted::A),
            Answer::Addresses(vec![ip("10.43.0.20")]),
            "{name}"
        );
    }
    assert_eq!(
        zone.lookup("echo.default.svc.cluster.local", Wanted::Other),
        Answer::NoData
    );
}

#[test]
fn a_headless_service_is_its_ready_endpoints() {
    let zone = zone();
    assert_eq!(
        zone.lookup("db.data.svc.cluster.local", Wanted::A),
        Answer::Addresses(vec![ip("10.42.1.5"), ip("10.42.2.6")])
    );
    assert_eq!(
        zone.lookup("web.default.svc.cluster.local", Wanted::A),
        Answer::Addresses(vec![ip("10.42.1.7")])
    );
    assert_eq!(
        zone.lookup("empty.default.svc.cluster.local", Wanted::A),
        Answer::NoData
    );
}

#[test]
fn endpoints_are_named_by_hostname_or_dashed_ip() {
    let zone = zone();
    assert_eq!(
        zone.lookup("db-1.db.data.svc.cluster.local", Wanted::A),
        Answer::Addresses(vec![ip("10.42.2.6")])
    );
    assert_eq!(
        zone.lookup("10-42-1-7.web.default.svc.cluster.local", Wanted::A),
        Answer::Addresses(vec![ip("10.42.1.7")])
    );
    // Unready endpoints have no name.
    assert_eq!(
        zone.lookup("10-42-1-8.web.default.svc.cluster.local", Wanted::A),
        Answer::NoName
    );
    assert_eq!(
        zone.lookup("db-2.db.data.svc.cluster.local", Wanted::A),
        Answer::NoName
    );
}

#[test]
fn srv_records_name_the_port_where_it_is_served() {
    let zone = zone();
    assert_eq!(
        zone.lookup("_http._tcp.echo.default.svc.cluster.local", Wanted::Srv),
        Answer::Locations(vec![Location {
            target: "echo.default.svc.cluster.local".into(),
            port: 8080,
            address: Some(ip("10.43.0.20")),
        }])
    );
    assert_eq!(
        zone.lookup("_dns._udp.echo.default.svc.cluster.local", Wanted::Srv),
        Answer::Locations(vec![Location {
            target: "echo.default.svc.cluster.local".into(),
            port: 53,
            address: Some(ip("10.43.0.20")),
        }])
    );
    // Headless: each endpoint, at the port its slice gives.
    assert_eq!(
        zone.lookup("_pg._tcp.db.data.svc.cluster.local", Wanted::Srv),
        Answer::Locations(vec![
            Location {
                target: "db-0.db.data.svc.cluster.local".into(),
                port: 5433,
                address: Some(ip("10.42.1.5")),
            },
            Location {
                target: "db-1.db.data.svc.cluster.local".into(),
                port: 5433,
                address: Some(ip("10.42.2.6")),
            },
        ])
    );
    assert_eq!(
        zone.lookup("_http._udp.echo.default.svc.cluster.local", Wanted::Srv),
        Answer::NoName
    );
}

#[test]
fn unknown_cluster_names_do_not_exist_and_others_are_foreign() {
    let zone = zone();
    for name in [
        "nope.default.svc.cluster.local",
        "echo.nowhere.svc.cluster.local",
        "out.default.svc.cluster.local",
        "a.b.c.d.e.svc.cluster.local",
        "nope.cluster.local",
    ] {
        assert_eq!(zone.lookup(name, Wanted::A), Answer::NoName, "{name}");
    }
    for name in [
        "cluster.local",
        "svc.cluster.local",
        "default.svc.cluster.local",
    ] {
        assert_eq!(zone.lookup(name, Wanted::A), Answer::NoData, "{name}");
    }
    for name in ["example.com", "echo.default", "notcluster.local", "local"] {
        assert_eq!(zone.lookup(name, Wanted::A), Answer::Foreign, "{name}");
    }
}

#[test]
fn pod_names_are_their_dashed_addresses() {
    let zone = zone();
    assert_eq!(
        zone.lookup("10-42-0-5.default.pod.cluster.local", Wanted::A),
        Answer::Addresses(vec![ip("10.42.0.5")])
    );
    assert_eq!(
        zone.lookup("web.default.pod.cluster.local", Wanted::A),
        Answer::NoName
    );
}
