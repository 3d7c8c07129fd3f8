//! What a Service takes from the allocation records and gives back: its ClusterIP and the
//! NodePorts of its ports, on create, update and delete. Pure: the records are read and
//! written by the caller, in one transaction with the Service.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use serde_json::{json, Value};
use skiff_api::validation::{FieldError, FieldErrorReason};

use super::ranges::ServiceRanges;
use super::record::Allocated;

/// `spec.clusterIP` of a headless Service.
pub const HEADLESS: &str = "None";

/// The two records a Service draws from, as read for one write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    pub cluster_ips: Allocated,
    pub node_ports: Allocated,
}

/// Fills and takes the ClusterIP and NodePorts of a new Service.
pub fn on_create(
    ranges: &ServiceRanges,
    records: &mut Records,
    service: &mut Value,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    assign_cluster_ip(ranges, &mut records.cluster_ips, service, &mut errors);
    assign_node_ports(ranges, &mut records.node_ports, service, &[], &mut errors);
    done(errors)
}

/// Moves the allocations of `old` to `new`: what `new` still holds stays taken, what it gave
/// up (a type change, a changed nodePort) is freed, what it adds is taken. A port that leaves
/// `nodePort` unset keeps the nodePort it had (same port and protocol), as Kubernetes does.
pub fn on_update(
    ranges: &ServiceRanges,
    records: &mut Records,
    old: &Value,
    new: &mut Value,
) -> Result<(), Vec<FieldError>> {
    release(records, old);
    let mut errors = Vec::new();
    assign_cluster_ip(ranges, &mut records.cluster_ips, new, &mut errors);
    let previous: Vec<PortKey> = ports(old)
        .iter()
        .filter_map(|p| {
            node_port(p).map(|node_port| PortKey {
                node_port,
                ..port_key(p)
            })
        })
        .collect();
    assign_node_ports(ranges, &mut records.node_ports, new, &previous, &mut errors);
    done(errors)
}

/// Frees what a deleted Service held.
pub fn release(records: &mut Records, service: &Value) {
    if let Some(ip) = cluster_ip(service).and_then(|ip| ip.parse::<Ipv4Addr>().ok()) {
        records.cluster_ips.release(u32::from(ip));
    }
    for port in ports(service) {
        if let Some(node_port) = node_port(port) {
            records.node_ports.release(node_port);
        }
    }
}

/// The Service's type, `ClusterIP` when unset.
pub fn service_type(service: &Value) -> &str {
    service
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

/// `spec.clusterIP` if set and not empty.
pub fn cluster_ip(service: &Value) -> Option<&str> {
    service
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())
}

fn done(errors: Vec<FieldError>) -> Result<(), Vec<FieldError>> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn invalid(field: impl Into<String>, value: impl std::fmt::Debug, message: &str) -> FieldError {
    FieldError {
        field: field.into(),
        reason: FieldErrorReason::Invalid,
        message: format!("{value:?}: {message}"),
    }
}

fn assign_cluster_ip(
    ranges: &ServiceRanges,
    record: &mut Allocated,
    service: &mut Value,
    errors: &mut Vec<FieldError>,
) {
    const FIELD: &str = "spec.clusterIP";
    if service_type(service) == "ExternalName" {
        if let Some(spec) = service.get_mut("spec").and_then(Value::as_object_mut) {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        return;
    }
    let cidr = ranges.cluster_ips;
    let ip = match cluster_ip(service) {
        Some(HEADLESS) if matches!(service_type(service), "NodePort" | "LoadBalancer") => {
            let message = format!(
                "may not be set to 'None' for {} services",
                service_type(service)
            );
            errors.push(invalid(FIELD, HEADLESS, &message));
            return;
        }
        Some(HEADLESS) => HEADLESS.to_string(),
        Some(given) => {
            let Ok(ip) = given.parse::<Ipv4Addr>() else {
                errors.push(invalid(FIELD, given, "must be a valid IPv4 address"));
                return;
            };
            if !cidr.contains(ip) {
                let message = format!(
                    "provided IP is not in the valid range. The range of valid IPs is {cidr}"
                );
                errors.push(invalid(FIELD, given, &message));
                return;
            }
            if !record.take(u32::from(ip)) {
                errors.push(invalid(FIELD, given, "provided IP is already allocated"));
                return;
            }
            given.to_string()
        }
        None => {
            let (first, last) = cidr.usable();
            // Held while drawing, so only the kube-dns Service gets it (by naming it).
            let reserved = ranges
                .cluster_dns
                .map(u32::from)
                .filter(|ip| record.take(*ip));
            let drawn = record.take_any(first, last);
            if let Some(ip) = reserved {
                record.release(ip);
            }
            let Some(ip) = drawn else {
                let message = format!("range is full: no free IP left in {cidr}");
                errors.push(invalid(FIELD, "", &message));
                return;
            };
            Ipv4Addr::from(ip).to_string()
        }
    };
    service["spec"]["clusterIP"] = json!(ip);
    service["spec"]["clusterIPs"] = json!([ip]);
}

/// A port of a Service as its nodePort is carried over by: port number and protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PortKey {
    port: i64,
    protocol_tcp: bool,
    node_port: u32,
}

fn port_key(port: &Value) -> PortKey {
    PortKey {
        port: port.get("port").and_then(Value::as_i64).unwrap_or(0),
        protocol_tcp: port
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP")
            == "TCP",
        node_port: 0,
    }
}

fn ports(service: &Value) -> &[Value] {
    service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn node_port(port: &Value) -> Option<u32> {
    port.get("nodePort")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0)
        .and_then(|p| u32::try_from(p).ok())
}

/// Takes the nodePorts of a NodePort or LoadBalancer Service: first the ones given, then the
/// ones kept from `previous`, then free ones for the rest, so a drawn port never takes one
/// the Service names itself.
fn assign_node_ports(
    ranges: &ServiceRanges,
    record: &mut Allocated,
    service: &mut Value,
    previous: &[PortKey],
    errors: &mut Vec<FieldError>,
) {
    let wanted = matches!(service_type(service), "NodePort" | "LoadBalancer");
    let kind = service_type(service).to_string();
    let range = ranges.node_ports;
    let Some(list) = service
        .pointer_mut("/spec/ports")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let field = |i: usize| format!("spec.ports[{i}].nodePort");
    let given: Vec<i64> = list
        .iter()
        .map(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0))
        .collect();
    if !wanted {
        for (i, _) in given.iter().enumerate().filter(|(_, g)| **g != 0) {
            errors.push(FieldError {
                field: field(i),
                reason: FieldErrorReason::Forbidden,
                message: format!("may not be used when `type` is '{kind}'"),
            });
        }
        return;
    }
    let mut chosen: Vec<Option<u32>> = vec![None; list.len()];
    let mut seen = HashSet::new();
    for (i, &port) in given.iter().enumerate().filter(|(_, g)| **g != 0) {
        if !range.contains(port) {
            let message = format!(
                "provided port is not in the valid range. The range of valid ports is {range}"
            );
            errors.push(invalid(field(i), port, &message));
        } else if !seen.insert(port as u32) {
            errors.push(FieldError {
                field: field(i),
                reason: FieldErrorReason::Duplicate,
                message: port.to_string(),
            });
        } else if !record.take(port as u32) {
            errors.push(invalid(
                field(i),
                port,
                "provided port is already allocated",
            ));
        } else {
            chosen[i] = Some(port as u32);
        }
    }
    let unset: Vec<usize> = (0..list.len()).filter(|i| given[*i] == 0).collect();
    for &i in &unset {
        let key = port_key(&list[i]);
        chosen[i] = previous
            .iter()
            .filter(|p| p.port == key.port && p.protocol_tcp == key.protocol_tcp)
            .map(|p| p.node_port)
            .find(|p| !seen.contains(p) && record.take(*p));
        seen.extend(chosen[i]);
    }
    for &i in &unset {
        if chosen[i].is_none() {
            chosen[i] = record.take_any(range.first.into(), range.last.into());
            if chosen[i].is_none() {
                let message = format!("range is full: no free port left in {range}");
                errors.push(invalid(field(i), 0, &message));
            }
        }
    }
    for (port, chosen) in list.iter_mut().zip(chosen) {
        if let Some(chosen) = chosen {
            port["nodePort"] = json!(chosen);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges() -> ServiceRanges {
        ServiceRanges {
            cluster_ips: "10.43.0.0/29".parse().unwrap(),
            node_ports: "30000-30002".parse().unwrap(),
            cluster_dns: None,
        }
    }

    fn service(kind: &str, cluster_ip: Option<&str>, node_ports: &[i64]) -> Value {
        let ports: Vec<Value> = node_ports
            .iter()
            .enumerate()
            .map(|(i, np)| json!({"port": 80 + i, "nodePort": np}))
            .collect();
        let mut svc = json!({"spec": {"type": kind, "ports": ports}});
        if let Some(ip) = cluster_ip {
            svc["spec"]["clusterIP"] = json!(ip);
        }
        svc
    }

    fn fields(result: Result<(), Vec<FieldError>>) -> Vec<String> {
        result
            .unwrap_err()
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect()
    }

    #[test]
    fn create_fills_cluster_ip_and_node_ports_from_the_ranges() {
        let mut records = Records::default();
        let mut svc = service("NodePort", None, &[0, 30001]);
        on_create(&ranges(), &mut records, &mut svc).unwrap();
        let ip: Ipv4Addr = svc["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
        assert!(ranges().cluster_ips.contains(ip));
        assert_eq!(svc["spec"]["clusterIPs"], json!([ip.to_string()]));
        assert_eq!(svc["spec"]["ports"][1]["nodePort"], 30001);
        let first = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!(first == 30000 || first == 30002);
        assert!(records.cluster_ips.is_taken(u32::from(ip)));
        assert!(records.node_ports.is_taken(30001));
    }

    #[test]
    fn drawn_node_ports_never_take_one_the_service_names() {
        let ranges = ServiceRanges {
            node_ports: "30000-30001".parse().unwrap(),
            ..ranges()
        };
        for _ in 0..20 {
            let mut svc = service("NodePort", None, &[0, 30000]);
            on_create(&ranges, &mut Records::default(), &mut svc).unwrap();
            assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30001);
        }
    }

    #[test]
    fn the_cluster_dns_address_is_never_drawn_but_may_be_named() {
        // 10.43.0.0/29: six usable addresses, .1 to .6; .3 is the cluster DNS's.
        let ranges = ServiceRanges {
            cluster_dns: Some(Ipv4Addr::new(10, 43, 0, 3)),
            ..ranges()
        };
        let mut records = Records::default();
        let mut drawn = Vec::new();
        for _ in 0..5 {
            let mut svc = service("ClusterIP", None, &[]);
            on_create(&ranges, &mut records, &mut svc).unwrap();
            drawn.push(svc["spec"]["clusterIP"].as_str().unwrap().to_string());
        }
        drawn.sort();
        assert_eq!(
            drawn,
            [
                "10.43.0.1",
                "10.43.0.2",
                "10.43.0.4",
                "10.43.0.5",
                "10.43.0.6"
            ]
        );
        let mut full = service("ClusterIP", None, &[]);
        assert!(on_create(&ranges, &mut records, &mut full).is_err());
        let mut dns = service("ClusterIP", Some("10.43.0.3"), &[]);
        on_create(&ranges, &mut records, &mut dns).unwrap();
    }

    #[test]
    fn headless_and_external_name_take_no_address() {
        let mut records = Records::default();
        let mut headless = service("ClusterIP", Some("None"), &[]);
        on_create(&ranges(), &mut records, &mut headless).unwrap();
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        let mut external = service("ExternalName", Some("10.43.0.2"), &[]);
        on_create(&ranges(), &mut records, &mut external).unwrap();
        assert!(external["spec"].get("clusterIP").is_none());
        assert_eq!(records, Records::default());
    }

    #[test]
    fn given_values_must_be_in_range_and_free() {
        let mut records = Records::default();
        let mut first = service("NodePort", Some("10.43.0.2"), &[30000]);
        on_create(&ranges(), &mut records, &mut first).unwrap();
        let mut taken = service("NodePort", Some("10.43.0.2"), &[30000]);
        assert_eq!(
            fields(on_create(&ranges(), &mut records.clone(), &mut taken)),
            [
                "spec.clusterIP: \"10.43.0.2\": provided IP is already allocated",
                "spec.ports[0].nodePort: 30000: provided port is already allocated",
            ]
        );
        let mut outside = service("NodePort", Some("10.43.0.9"), &[8080]);
        let errors = fields(on_create(&ranges(), &mut records.clone(), &mut outside));
        assert!(errors[0].contains("not in the valid range"), "{errors:?}");
        assert!(errors[1]
            .starts_with("spec.ports[0].nodePort: 8080: provided port is not in the valid range"));
        let mut headless = service("NodePort", Some("None"), &[]);
        assert_eq!(
            fields(on_create(&ranges(), &mut records.clone(), &mut headless)),
            ["spec.clusterIP: \"None\": may not be set to 'None' for NodePort services"]
        );
        let mut cluster_ip = service("ClusterIP", None, &[30001]);
        assert_eq!(
            fields(on_create(&ranges(), &mut records, &mut cluster_ip)),
            ["spec.ports[0].nodePort: may not be used when `type` is 'ClusterIP'"]
        );
    }

    #[test]
    fn a_full_range_is_refused() {
        let mut records = Records::default();
        for _ in 0..6 {
            on_create(
                &ranges(),
                &mut records,
                &mut service("ClusterIP", None, &[]),
            )
            .unwrap();
        }
        let errors = fields(on_create(
            &ranges(),
            &mut records,
            &mut service("ClusterIP", None, &[]),
        ));
        assert!(errors[0].contains("range is full"), "{errors:?}");
    }

    #[test]
    fn update_keeps_unset_node_ports_and_frees_what_a_type_change_drops() {
        let mut records = Records::default();
        let mut old = service("NodePort", None, &[30002]);
        on_create(&ranges(), &mut records, &mut old).unwrap();
        let mut new = old.clone();
        new["spec"]["ports"][0]["nodePort"] = json!(0);
        on_update(&ranges(), &mut records, &old, &mut new).unwrap();
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30002);
        assert!(records.node_ports.is_taken(30002));

        let mut moved = new.clone();
        moved["spec"]["ports"][0]["nodePort"] = json!(30000);
        on_update(&ranges(), &mut records, &new, &mut moved).unwrap();
        assert!(!records.node_ports.is_taken(30002));
        assert!(records.node_ports.is_taken(30000));

        let mut plain = moved.clone();
        plain["spec"]["type"] = json!("ClusterIP");
        plain["spec"]["ports"][0]
            .as_object_mut()
            .unwrap()
            .remove("nodePort");
        on_update(&ranges(), &mut records, &moved, &mut plain).unwrap();
        assert!(!records.node_ports.is_taken(30000));
        let ip: Ipv4Addr = plain["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            records.cluster_ips.is_taken(u32::from(ip)),
            "the address stays"
        );

        release(&mut records, &plain);
        assert_eq!(records, Records::default());
    }
}
