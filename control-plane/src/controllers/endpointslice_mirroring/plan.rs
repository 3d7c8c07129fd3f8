//! What EndpointSlices a hand-written `v1 Endpoints` mirrors to, as Kubernetes'
//! EndpointSlice mirroring controller computes them: the subsets repacked (one per port set,
//! an address listed ready anywhere counts as ready), at most [`MAX_ENDPOINTS_PER_SUBSET`]
//! addresses of each (ready ones first), one slice per address type and port set. Pure, for
//! table tests.

use std::collections::BTreeMap;
use std::net::IpAddr;

use skiff_api::k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, Endpoints, Service};
use skiff_api::k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort as SlicePort,
};

use crate::controllers::endpoints::SKIP_MIRROR_LABEL;
use crate::controllers::endpointslice::plan as slice_plan;

/// Addresses mirrored of one subset, as Kubernetes' `--mirroring-max-endpoints-per-subset`
/// default; with one slice per subset this is also the most endpoints in a mirrored slice.
pub const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;

/// Annotation of the Endpoints that leader election used to keep (never mirrored).
pub const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

/// Annotations of the Endpoints that are not copied to its slices.
pub const NOT_COPIED_ANNOTATIONS: [&str; 2] = [
    "endpoints.kubernetes.io/last-change-trigger-time",
    "kubectl.kubernetes.io/last-applied-configuration",
];

/// The content of one mirrored slice.
#[derive(Debug, Clone, PartialEq)]
pub struct MirroredSlice {
    /// `IPv4` or `IPv6`.
    pub address_type: String,
    pub ports: Vec<SlicePort>,
    pub endpoints: Vec<Endpoint>,
}

/// The slices an Endpoints mirrors to, and how many of its addresses were left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mirror {
    pub slices: Vec<MirroredSlice>,
    /// Addresses beyond [`MAX_ENDPOINTS_PER_SUBSET`] of their subset.
    pub skipped: usize,
    /// Addresses that are not an IP address.
    pub invalid: usize,
}

/// Whether `endpoints` is mirrored at all: not labelled `skip-mirror: "true"` (the
/// endpoints controller's and the API servers' own), not a leader-election record, and its
/// Service exists without a selector.
pub fn should_mirror(endpoints: &Endpoints, service: Option<&Service>) -> bool {
    let meta = &endpoints.metadata;
    let skip = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(SKIP_MIRROR_LABEL))
        .is_some_and(|v| v == "true");
    let leader = meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(LEADER_ANNOTATION));
    let selector_less = service.is_some_and(|s| slice_plan::selector(s).is_none());
    !skip && !leader && selector_less
}

/// A port set, ordered so that equal sets group together.
type PortKey = Vec<(String, String, i32, Option<String>)>;

/// The slices `endpoints` mirrors to, in a stable order (address type, then ports).
pub fn desired(endpoints: &Endpoints) -> Mirror {
    let mut mirror = Mirror::default();
    let mut slices: BTreeMap<(String, PortKey), Vec<Endpoint>> = BTreeMap::new();
    for (ports, addresses) in repack(endpoints) {
        let mut added = 0;
        for (address, ready) in addresses {
            let Some(address_type) = address_type(&address.ip) else {
                mirror.invalid += 1;
                continue;
            };
            if added == MAX_ENDPOINTS_PER_SUBSET {
                mirror.skipped += 1;
                continue;
            }
            added += 1;
            slices
                .entry((address_type.to_string(), ports.clone()))
                .or_default()
                .push(endpoint(address, ready));
        }
    }
    mirror.slices = slices
        .into_iter()
        .map(|((address_type, ports), endpoints)| MirroredSlice {
            address_type,
            ports: ports
                .into_iter()
                .map(|(name, protocol, port, app_protocol)| SlicePort {
                    name: Some(name),
                    protocol: Some(protocol),
                    port: Some(port),
                    app_protocol,
                })
                .collect(),
            endpoints,
        })
        .collect();
    mirror
}

/// The subsets merged by port set, each address once (ready if any subset of that port set
/// lists it ready), ready addresses first, each group sorted by IP.
fn repack(endpoints: &Endpoints) -> BTreeMap<PortKey, Vec<(&EndpointAddress, bool)>> {
    let mut groups: BTreeMap<PortKey, BTreeMap<&str, (&EndpointAddress, bool)>> = BTreeMap::new();
    for subset in endpoints.subsets.iter().flatten() {
        let mut ports: PortKey = subset
            .ports
            .iter()
            .flatten()
            .map(port_key)
            .collect::<Vec<_>>();
        ports.sort();
        ports.dedup();
        let group = groups.entry(ports).or_default();
        for address in subset.addresses.iter().flatten() {
            group.insert(address.ip.as_str(), (address, true));
        }
        for address in subset.not_ready_addresses.iter().flatten() {
            group.entry(address.ip.as_str()).or_insert((address, false));
        }
    }
    groups
        .into_iter()
        .map(|(ports, addresses)| {
            let (mut ready, not_ready): (Vec<_>, Vec<_>) =
                addresses.into_values().partition(|(_, ready)| *ready);
            ready.extend(not_ready);
            (ports, ready)
        })
        .collect()
}

fn port_key(port: &EndpointPort) -> (String, String, i32, Option<String>) {
    (
        port.name.clone().unwrap_or_default(),
        port.protocol.clone().unwrap_or_else(|| "TCP".into()),
        port.port,
        port.app_protocol.clone(),
    )
}

fn address_type(ip: &str) -> Option<&'static str> {
    match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(_) => Some("IPv4"),
        IpAddr::V6(_) => Some("IPv6"),
    }
}

/// The endpoint of one address: only its readiness is known, as Kubernetes mirrors it.
fn endpoint(address: &EndpointAddress, ready: bool) -> Endpoint {
    Endpoint {
        addresses: vec![address.ip.clone()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            ..Default::default()
        }),
        hostname: address.hostname.clone().filter(|h| !h.is_empty()),
        node_name: address.node_name.clone(),
        target_ref: address.target_ref.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn endpoints(subsets: Value) -> Endpoints {
        serde_json::from_value(json!({"metadata": {"name": "ext", "namespace": "default"},
            "subsets": subsets}))
        .unwrap()
    }

    fn service(selector: Option<Value>) -> Service {
        let mut spec = json!({"ports": [{"name": "http", "port": 80}]});
        if let Some(selector) = selector {
            spec["selector"] = selector;
        }
        serde_json::from_value(json!({"metadata": {"name": "ext", "namespace": "default"},
            "spec": spec}))
        .unwrap()
    }

    /// A slice as (address type, ports, (address, ready) of each endpoint).
    type Summary = (String, Vec<i32>, Vec<(String, bool)>);

    fn summary(mirror: &Mirror) -> Vec<Summary> {
        mirror
            .slices
            .iter()
            .map(|s| {
                (
                    s.address_type.clone(),
                    s.ports.iter().map(|p| p.port.unwrap()).collect(),
                    s.endpoints
                        .iter()
                        .map(|e| {
                            let ready = e.conditions.as_ref().unwrap().ready.unwrap();
                            (e.addresses[0].clone(), ready)
                        })
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn only_selector_less_services_without_skip_mirror_or_leader_are_mirrored() {
        let plain = endpoints(json!([]));
        let selector_less = service(None);
        assert!(should_mirror(&plain, Some(&selector_less)));
        assert!(!should_mirror(&plain, None), "no Service");
        let selected = service(Some(json!({"app": "web"})));
        assert!(!should_mirror(&plain, Some(&selected)));
        assert!(
            should_mirror(&plain, Some(&service(Some(json!({}))))),
            "an empty selector selects no pods here, so the Endpoints is hand-written"
        );
        let mut skipped = plain.clone();
        skipped.metadata.labels = Some([(SKIP_MIRROR_LABEL.into(), "true".into())].into());
        assert!(!should_mirror(&skipped, Some(&selector_less)));
        skipped.metadata.labels = Some([(SKIP_MIRROR_LABEL.into(), "yes".into())].into());
        assert!(should_mirror(&skipped, Some(&selector_less)));
        let mut leader = plain;
        leader.metadata.annotations = Some([(LEADER_ANNOTATION.into(), "{}".into())].into());
        assert!(!should_mirror(&leader, Some(&selector_less)));
    }

    #[test]
    fn subsets_repack_by_ports_and_split_by_address_type() {
        let mirror = desired(&endpoints(json!([
            {"addresses": [{"ip": "10.0.0.2", "nodeName": "n1", "hostname": "two",
                    "targetRef": {"kind": "Pod", "name": "p2"}}],
                "notReadyAddresses": [{"ip": "10.0.0.1"}],
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
                "notReadyAddresses": [{"ip": "10.0.0.3"}],
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
            {"addresses": [{"ip": "10.0.0.9"}],
                "ports": [{"name": "http", "port": 81, "protocol": "TCP", "appProtocol": "h2c"}]},
        ])));
        assert_eq!(
            summary(&mirror),
            [
                (
                    "IPv4".to_string(),
                    vec![80],
                    vec![
                        ("10.0.0.1".to_string(), true),
                        ("10.0.0.2".to_string(), true),
                        ("10.0.0.3".to_string(), false),
                    ]
                ),
                (
                    "IPv4".to_string(),
                    vec![81],
                    vec![("10.0.0.9".to_string(), true)]
                ),
                (
                    "IPv6".to_string(),
                    vec![80],
                    vec![("fd00::1".to_string(), true)]
                ),
            ]
        );
        let two = &mirror.slices[0].endpoints[1];
        assert_eq!(two.node_name.as_deref(), Some("n1"));
        assert_eq!(two.hostname.as_deref(), Some("two"));
        assert_eq!(two.target_ref.as_ref().unwrap().name.as_deref(), Some("p2"));
        let port = &mirror.slices[1].ports[0];
        assert_eq!(
            (
                port.name.as_deref(),
                port.protocol.as_deref(),
                port.app_protocol.as_deref()
            ),
            (Some("http"), Some("TCP"), Some("h2c"))
        );
        assert_eq!((mirror.skipped, mirror.invalid), (0, 0));
    }

    #[test]
    fn at_most_a_thousand_addresses_of_a_subset_ready_ones_first() {
        let ip =
            |i: usize| json!({"ip": format!("10.{}.{}.{}", i / 65536, i / 256 % 256, i % 256)});
        let ready: Vec<Value> = (0..900).map(ip).collect();
        let not_ready: Vec<Value> = (900..1150).map(ip).collect();
        let mirror = desired(&endpoints(json!([
            {"addresses": ready, "notReadyAddresses": not_ready, "ports": [{"port": 80}]},
            {"addresses": [{"ip": "not-an-ip"}, {"ip": "192.0.2.1"}], "ports": [{"port": 81}]},
        ])));
        let sizes: Vec<(usize, usize)> = mirror
            .slices
            .iter()
            .map(|s| {
                let ready = s
                    .endpoints
                    .iter()
                    .filter(|e| e.conditions.as_ref().unwrap().ready == Some(true))
                    .count();
                (s.endpoints.len(), ready)
            })
            .collect();
        assert_eq!(sizes, [(1000, 900), (1, 1)]);
        assert_eq!((mirror.skipped, mirror.invalid), (150, 1));
        let unnamed = &mirror.slices[0].ports[0];
        assert_eq!(
            (unnamed.name.as_deref(), unnamed.protocol.as_deref()),
            (Some(""), Some("TCP"))
        );
    }

    #[test]
    fn no_subsets_mirror_to_no_slices() {
        assert_eq!(desired(&endpoints(json!(null))), Mirror::default());
    }
}
