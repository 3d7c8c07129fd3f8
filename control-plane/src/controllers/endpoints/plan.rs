//! What `v1 Endpoints` subsets a Service should have, derived from the contents of its
//! EndpointSlices (`endpointslice::plan::desired`, the one reading of pods and Services):
//! ready endpoints go to `addresses`, the others to `notReadyAddresses`, terminating ones are
//! left out unless the Service publishes not-ready addresses, and endpoints with the same
//! resolved ports share one subset, as Kubernetes' endpoints controller repacks them; more than
//! [`MAX_CAPACITY`] addresses are truncated as Kubernetes does. Pure, for table tests.

use std::collections::BTreeMap;

use skiff_api::k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Service,
};
use skiff_api::k8s_openapi::api::discovery::v1::Endpoint;

use crate::controllers::endpointslice::plan::SliceContent;

/// Addresses an Endpoints lists at most, as Kubernetes' endpoints controller writes them.
pub const MAX_CAPACITY: usize = 1000;

/// Annotation (value `truncated`) of an Endpoints that lists only [`MAX_CAPACITY`] of its
/// Service's addresses.
pub const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";

/// Cuts `subsets` down to [`MAX_CAPACITY`] addresses as Kubernetes does, returning whether
/// it cut: not-ready addresses go first; when the ready ones alone are too many, every
/// not-ready one goes and the ready ones are cut. Each subset keeps its share of the
/// capacity left, rounded up, so the last subsets may keep fewer.
pub fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let count = |list: &Option<Vec<EndpointAddress>>| list.as_ref().map_or(0, Vec::len);
    let ready: usize = subsets.iter().map(|s| count(&s.addresses)).sum();
    let not_ready: usize = subsets.iter().map(|s| count(&s.not_ready_addresses)).sum();
    if ready + not_ready <= MAX_CAPACITY {
        return false;
    }
    let cut_ready = ready > MAX_CAPACITY;
    let (capacity, total) = if cut_ready {
        (MAX_CAPACITY, ready)
    } else {
        (MAX_CAPACITY - ready, not_ready)
    };
    let mut left = capacity;
    for subset in subsets.iter_mut() {
        let list = if cut_ready {
            subset.not_ready_addresses = None;
            &mut subset.addresses
        } else {
            &mut subset.not_ready_addresses
        };
        let share = (count(list) * capacity).div_ceil(total).min(left);
        if let Some(addresses) = list.as_mut() {
            addresses.truncate(share);
            left -= addresses.len();
        }
        if list.as_ref().is_some_and(Vec::is_empty) {
            *list = None;
        }
    }
    true
}

/// The subsets of `service` for the contents of its slices.
pub fn subsets(service: &Service, slices: &[SliceContent]) -> Vec<EndpointSubset> {
    let spec = service.spec.clone().unwrap_or_default();
    // A Service with ports leaves out the pods that resolve none of them.
    let has_ports = !spec.ports.unwrap_or_default().is_empty();
    let publish_unready = spec.publish_not_ready_addresses.unwrap_or(false);
    type Ports = Vec<(String, String, i32)>;
    let mut groups: BTreeMap<Ports, (Vec<EndpointAddress>, Vec<EndpointAddress>)> = BTreeMap::new();
    for slice in slices {
        let ports: Ports = slice
            .ports
            .iter()
            .map(|p| {
                let name = p.name.clone().unwrap_or_default();
                let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
                (name, protocol, p.port.unwrap_or_default())
            })
            .collect();
        if has_ports && ports.is_empty() {
            continue;
        }
        let (ready, not_ready) = groups.entry(ports).or_default();
        for endpoint in &slice.endpoints {
            let conditions = endpoint.conditions.clone().unwrap_or_default();
            // Terminating pods are kept only when the Service publishes not-ready
            // addresses (and then every pod is serving), as Kubernetes does.
            if conditions.terminating.unwrap_or(false) && !publish_unready {
                continue;
            }
            let serving = conditions.serving.unwrap_or(false);
            let target = if serving {
                &mut *ready
            } else {
                &mut *not_ready
            };
            target.extend(addresses(endpoint));
        }
    }
    groups
        .into_iter()
        .filter(|(_, (ready, not_ready))| !ready.is_empty() || !not_ready.is_empty())
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: Some(ready).filter(|a| !a.is_empty()),
                not_ready_addresses: Some(not_ready).filter(|a| !a.is_empty()),
                ports: Some(
                    ports
                        .into_iter()
                        .map(|(name, protocol, port)| EndpointPort {
                            name: Some(name).filter(|n| !n.is_empty()),
                            protocol: Some(protocol),
                            port,
                            ..Default::default()
                        })
                        .collect::<Vec<_>>(),
                )
                .filter(|p| !p.is_empty()),
            }
        })
        .collect()
}

fn addresses(endpoint: &Endpoint) -> impl Iterator<Item = EndpointAddress> + '_ {
    endpoint.addresses.iter().map(|ip| EndpointAddress {
        ip: ip.clone(),
        node_name: endpoint.node_name.clone(),
        target_ref: endpoint.target_ref.clone(),
        hostname: endpoint.hostname.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use skiff_api::k8s_openapi::api::discovery::v1::EndpointPort as SlicePort;

    fn endpoint(ip: &str, ready: bool, serving: bool, terminating: bool) -> Endpoint {
        serde_json::from_value(json!({"addresses": [ip], "nodeName": "n1",
            "targetRef": {"kind": "Pod", "name": format!("p-{ip}")},
            "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}))
        .unwrap()
    }

    fn slice(port: Option<i32>, endpoints: Vec<Endpoint>) -> SliceContent {
        SliceContent {
            ports: port
                .map(|p| SlicePort {
                    name: Some("http".into()),
                    protocol: Some("TCP".into()),
                    port: Some(p),
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            endpoints,
        }
    }

    fn service(ports: bool, publish_unready: bool) -> Service {
        let ports = if ports {
            json!([{"name": "http", "port": 80}])
        } else {
            json!([])
        };
        serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {
            "selector": {"app": "web"}, "ports": ports,
            "publishNotReadyAddresses": publish_unready}}))
        .unwrap()
    }

    fn ips(addresses: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        addresses.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    #[test]
    fn ready_and_not_ready_split_and_terminating_go() {
        let slices = [slice(
            Some(8080),
            vec![
                endpoint("10.42.0.3", true, true, false),
                endpoint("10.42.0.2", true, true, false),
                endpoint("10.42.0.4", false, false, false),
                endpoint("10.42.0.5", false, true, true),
            ],
        )];
        let subsets = subsets(&service(true, false), &slices);
        assert_eq!(subsets.len(), 1);
        assert_eq!(ips(&subsets[0].addresses), ["10.42.0.2", "10.42.0.3"]);
        assert_eq!(ips(&subsets[0].not_ready_addresses), ["10.42.0.4"]);
        let ports = subsets[0].ports.clone().unwrap();
        assert_eq!(
            (ports[0].name.as_deref(), ports[0].port),
            (Some("http"), 8080)
        );
        let address = &subsets[0].addresses.as_ref().unwrap()[0];
        assert_eq!(address.node_name.as_deref(), Some("n1"));
        assert_eq!(
            address.target_ref.as_ref().unwrap().name.as_deref(),
            Some("p-10.42.0.2")
        );
    }

    #[test]
    fn published_terminating_stay_and_same_ports_merge() {
        let slices = [
            slice(Some(80), vec![endpoint("10.42.0.2", false, true, true)]),
            slice(Some(80), vec![endpoint("10.42.0.1", true, true, false)]),
            slice(Some(81), vec![endpoint("10.42.0.9", true, true, false)]),
        ];
        let subsets = subsets(&service(true, true), &slices);
        assert_eq!(subsets.len(), 2);
        assert_eq!(ips(&subsets[0].addresses), ["10.42.0.1", "10.42.0.2"]);
        assert_eq!(ips(&subsets[1].addresses), ["10.42.0.9"]);
    }

    fn many(prefix: &str, n: usize) -> Option<Vec<EndpointAddress>> {
        let address = |i| EndpointAddress {
            ip: format!("{prefix}.{}.{}", i / 256, i % 256),
            ..Default::default()
        };
        Some((0..n).map(address).collect())
    }

    fn counts(subsets: &[EndpointSubset]) -> Vec<(usize, usize)> {
        let count = |l: &Option<Vec<EndpointAddress>>| l.as_ref().map_or(0, Vec::len);
        subsets
            .iter()
            .map(|s| (count(&s.addresses), count(&s.not_ready_addresses)))
            .collect()
    }

    #[test]
    fn over_capacity_cuts_not_ready_first_then_ready_by_share() {
        let subset = |ready, not_ready| EndpointSubset {
            addresses: many("10.1", ready),
            not_ready_addresses: many("10.2", not_ready),
            ports: None,
        };
        let mut fits = vec![subset(600, 100), subset(300, 0)];
        assert!(!truncate(&mut fits));
        assert_eq!(counts(&fits), [(600, 100), (300, 0)]);

        // 900 ready leave room for 100 of the 300 not ready, shared 200:100 rounded up.
        let mut not_ready_cut = vec![subset(600, 200), subset(300, 100)];
        assert!(truncate(&mut not_ready_cut));
        assert_eq!(counts(&not_ready_cut), [(600, 67), (300, 33)]);

        // 1500 ready: every not-ready address goes, the ready ones shared 1000:500.
        let mut ready_cut = vec![subset(1000, 5), subset(500, 5)];
        assert!(truncate(&mut ready_cut));
        assert_eq!(counts(&ready_cut), [(667, 0), (333, 0)]);
        assert!(ready_cut[0].not_ready_addresses.is_none());
    }

    #[test]
    fn unresolved_ports_are_left_out_unless_the_service_has_none() {
        let slices = [slice(None, vec![endpoint("10.42.0.2", true, true, false)])];
        assert!(subsets(&service(true, false), &slices).is_empty());
        let headless = subsets(&service(false, false), &slices);
        assert_eq!(ips(&headless[0].addresses), ["10.42.0.2"]);
        assert!(headless[0].ports.is_none());
    }
}
