//! From the members' leases to the `default/kubernetes` EndpointSlices: a pure function of the
//! leases and the time, so that expiry is tested without waiting.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use jiff::{SignedDuration, Timestamp};
use skiff_api::k8s_openapi::api::coordination::v1::Lease;
use skiff_api::k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort as CorePort, EndpointSubset, Endpoints,
};
use skiff_api::k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort, EndpointSlice,
};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{
    ADDRESS_ANNOTATION, IDENTITY_LABEL, IDENTITY_VALUE, PORT_NAME, SERVICE, SERVICE_NAMESPACE,
};
use crate::controllers::endpoints::SKIP_MIRROR_LABEL;
use crate::controllers::endpointslice::SERVICE_NAME_LABEL;

/// When `lease` expires, if it is a member lease with a renewal and a positive duration.
fn expiry(lease: &Lease) -> Option<Timestamp> {
    let labels = lease.metadata.labels.as_ref()?;
    if labels.get(IDENTITY_LABEL).map(String::as_str) != Some(IDENTITY_VALUE) {
        return None;
    }
    let spec = lease.spec.as_ref()?;
    let renewed = spec.renew_time.as_ref()?.0;
    let seconds = spec.lease_duration_seconds.filter(|s| *s > 0)?;
    renewed
        .checked_add(SignedDuration::from_secs(i64::from(seconds)))
        .ok()
}

/// The advertised address of `lease` if it is a member lease that has not expired at `now`.
pub fn live_address(lease: &Lease, now: Timestamp) -> Option<SocketAddr> {
    if expiry(lease)? <= now {
        return None;
    }
    lease
        .metadata
        .annotations
        .as_ref()?
        .get(ADDRESS_ANNOTATION)?
        .parse()
        .ok()
}

/// The earliest expiry after `now` among the live member leases: when the set can next shrink.
pub fn next_expiry<'a>(
    leases: impl IntoIterator<Item = &'a Lease>,
    now: Timestamp,
) -> Option<Timestamp> {
    leases
        .into_iter()
        .filter_map(expiry)
        .filter(|at| *at > now)
        .min()
}

/// The slices of `default/kubernetes` listing `members`: one per address family and port,
/// since a slice has one address type and one set of ports (members on one IP with different
/// ports, as on a test machine, get a slice each). A lone slice is named `kubernetes`, as
/// Kubernetes names it; several are `kubernetes-PORT` (`kubernetes-PORT-ipv6`). Sorted by name.
pub fn slices(members: impl IntoIterator<Item = SocketAddr>) -> Vec<EndpointSlice> {
    let mut groups: BTreeMap<(bool, u16), BTreeSet<IpAddr>> = BTreeMap::new();
    for member in members {
        groups
            .entry((member.is_ipv6(), member.port()))
            .or_default()
            .insert(member.ip());
    }
    let lone = groups.len() == 1;
    let mut slices: Vec<EndpointSlice> = groups
        .into_iter()
        .map(|((ipv6, port), ips)| {
            let name = match (lone, ipv6) {
                (true, _) => SERVICE.to_string(),
                (false, false) => format!("{SERVICE}-{port}"),
                (false, true) => format!("{SERVICE}-{port}-ipv6"),
            };
            slice(name, ipv6, port, ips)
        })
        .collect();
    slices.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    slices
}

fn slice(name: String, ipv6: bool, port: u16, ips: BTreeSet<IpAddr>) -> EndpointSlice {
    EndpointSlice {
        address_type: if ipv6 { "IPv6" } else { "IPv4" }.into(),
        endpoints: ips
            .into_iter()
            .map(|ip| Endpoint {
                addresses: vec![ip.to_string()],
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    serving: Some(true),
                    terminating: Some(false),
                }),
                ..Endpoint::default()
            })
            .collect(),
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(SERVICE_NAMESPACE.into()),
            labels: Some(BTreeMap::from([(
                SERVICE_NAME_LABEL.to_string(),
                SERVICE.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        ports: Some(vec![EndpointPort {
            name: Some(PORT_NAME.into()),
            port: Some(i32::from(port)),
            protocol: Some("TCP".into()),
            app_protocol: None,
        }]),
    }
}

/// The core v1 `default/kubernetes` Endpoints listing `members`, as kube-apiserver's lease
/// reconciler writes it beside the slices: one subset per port (the `https` port), its
/// addresses sorted, and the skip-mirror label so that no slice is mirrored from it.
pub fn endpoints(members: impl IntoIterator<Item = SocketAddr>) -> Endpoints {
    let mut by_port: BTreeMap<u16, BTreeSet<IpAddr>> = BTreeMap::new();
    for member in members {
        by_port
            .entry(member.port())
            .or_default()
            .insert(member.ip());
    }
    let subsets: Vec<EndpointSubset> = by_port
        .into_iter()
        .map(|(port, ips)| EndpointSubset {
            addresses: Some(
                ips.into_iter()
                    .map(|ip| EndpointAddress {
                        ip: ip.to_string(),
                        ..EndpointAddress::default()
                    })
                    .collect(),
            ),
            not_ready_addresses: None,
            ports: Some(vec![CorePort {
                name: Some(PORT_NAME.into()),
                port: i32::from(port),
                protocol: Some("TCP".into()),
                app_protocol: None,
            }]),
        })
        .collect();
    Endpoints {
        metadata: ObjectMeta {
            name: Some(SERVICE.into()),
            namespace: Some(SERVICE_NAMESPACE.into()),
            labels: Some(BTreeMap::from([(
                SKIP_MIRROR_LABEL.to_string(),
                "true".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        subsets: Some(subsets).filter(|s| !s.is_empty()),
    }
}

/// Whether the `current` Endpoints already has the labels and subsets of `desired`.
pub fn same_endpoints(current: &Endpoints, desired: &Endpoints) -> bool {
    current.metadata.labels == desired.metadata.labels && current.subsets == desired.subsets
}

/// Whether `current` already lists what `desired` does (labels, address type, endpoints,
/// ports), so that no write is needed.
pub fn same_content(current: &EndpointSlice, desired: &EndpointSlice) -> bool {
    let labelled = desired
        .metadata
        .labels
        .iter()
        .flatten()
        .all(|(k, v)| current.metadata.labels.as_ref().and_then(|l| l.get(k)) == Some(v));
    labelled
        && current.address_type == desired.address_type
        && current.endpoints == desired.endpoints
        && current.ports == desired.ports
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::k8s_openapi::api::coordination::v1::LeaseSpec;
    use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    fn lease(member: &str, address: &str, renewed: i64, seconds: i32) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(super::super::lease_name(member)),
                namespace: Some("kube-system".into()),
                labels: Some(BTreeMap::from([(
                    IDENTITY_LABEL.into(),
                    IDENTITY_VALUE.into(),
                )])),
                annotations: Some(BTreeMap::from([(
                    ADDRESS_ANNOTATION.into(),
                    address.into(),
                )])),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(member.into()),
                lease_duration_seconds: Some(seconds),
                renew_time: Some(MicroTime(at(renewed))),
                ..LeaseSpec::default()
            }),
        }
    }

    fn live(leases: &[Lease], now: Timestamp) -> Vec<SocketAddr> {
        leases.iter().filter_map(|l| live_address(l, now)).collect()
    }

    fn listed(slice: &EndpointSlice) -> (String, Vec<String>, i32) {
        (
            slice.metadata.name.clone().unwrap(),
            slice
                .endpoints
                .iter()
                .flat_map(|e| e.addresses.clone())
                .collect(),
            slice.ports.as_ref().unwrap()[0].port.unwrap(),
        )
    }

    #[test]
    fn expired_leases_drop_out() {
        let leases = [
            lease("s1", "127.0.0.1:7001", 0, 15),
            lease("s2", "127.0.0.1:7002", 10, 15),
        ];
        assert_eq!(live(&leases, at(5)).len(), 2);
        // s1's lease ran out at 15 s; the expiry instant itself no longer counts.
        assert_eq!(live(&leases, at(15)), ["127.0.0.1:7002".parse().unwrap()]);
        assert!(live(&leases, at(30)).is_empty());
        assert_eq!(next_expiry(&leases, at(5)), Some(at(15)));
        assert_eq!(next_expiry(&leases, at(15)), Some(at(25)));
        assert_eq!(next_expiry(&leases, at(25)), None);
    }

    #[test]
    fn other_leases_and_bad_addresses_are_ignored() {
        let mut node = lease("n1", "127.0.0.1:7001", 0, 15);
        node.metadata.labels = None;
        let unparsable = lease("s1", "not-an-address", 0, 15);
        let mut no_duration = lease("s2", "127.0.0.1:7002", 0, 15);
        no_duration.spec.as_mut().unwrap().lease_duration_seconds = Some(0);
        assert!(live(&[node, unparsable, no_duration], at(1)).is_empty());
    }

    #[test]
    fn one_slice_per_port_and_family() {
        let members = live(
            &[
                lease("s1", "127.0.0.1:7001", 0, 15),
                lease("s2", "127.0.0.1:7002", 0, 15),
                lease("s3", "[::1]:7001", 0, 15),
            ],
            at(1),
        );
        let names: Vec<_> = slices(members).iter().map(listed).collect();
        assert_eq!(
            names,
            [
                ("kubernetes-7001".into(), vec!["127.0.0.1".into()], 7001),
                ("kubernetes-7001-ipv6".into(), vec!["::1".into()], 7001),
                ("kubernetes-7002".into(), vec!["127.0.0.1".into()], 7002),
            ]
        );
    }

    #[test]
    fn members_on_one_port_share_the_kubernetes_slice() {
        let members: Vec<SocketAddr> = ["10.0.0.2:6443", "10.0.0.1:6443"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let built = slices(members);
        assert_eq!(built.len(), 1);
        let (name, ips, port) = listed(&built[0]);
        assert_eq!((name.as_str(), port), ("kubernetes", 6443));
        assert_eq!(ips, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(built[0].address_type, "IPv4");
        assert_eq!(
            built[0].metadata.labels.as_ref().unwrap()[SERVICE_NAME_LABEL],
            "kubernetes"
        );
        assert!(same_content(&built[0], &built[0]));
        let mut moved = built[0].clone();
        moved.ports.as_mut().unwrap()[0].port = Some(6444);
        assert!(!same_content(&moved, &built[0]));
    }

    #[test]
    fn the_endpoints_list_members_by_port() {
        let members: Vec<SocketAddr> = ["10.0.0.2:6443", "10.0.0.1:6443", "10.0.0.1:7002"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let built = endpoints(members);
        let subsets = built.subsets.unwrap();
        let listed: Vec<(Vec<String>, i32)> = subsets
            .iter()
            .map(|s| {
                let ips = s.addresses.iter().flatten().map(|a| a.ip.clone()).collect();
                (ips, s.ports.as_ref().unwrap()[0].port)
            })
            .collect();
        assert_eq!(
            listed,
            [
                (vec!["10.0.0.1".into(), "10.0.0.2".into()], 6443),
                (vec!["10.0.0.1".into()], 7002),
            ]
        );
        assert_eq!(built.metadata.name.as_deref(), Some("kubernetes"));
        assert!(endpoints([]).subsets.is_none());
    }
}
