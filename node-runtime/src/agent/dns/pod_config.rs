//! A pod's resolver settings from its `dnsPolicy` and `dnsConfig`, as the kubelet makes them:
//! `ClusterFirst` (the default) points at the cluster DNS with the namespace's search list
//! and `ndots:5`; `Default` copies the node's resolv.conf; `None` takes only `dnsConfig`;
//! `ClusterFirstWithHostNet` is `ClusterFirst` for host-network pods too (which otherwise get
//! `Default`). `dnsConfig` is merged in last.

use std::net::IpAddr;

use skiff_api::k8s_openapi::api::core::v1::PodSpec;

use super::{ClusterDns, DnsMode};
use crate::runtime::DnsConfig;

/// The most nameservers a resolver uses (glibc's MAXNS), as the kubelet caps them.
const MAX_NAMESERVERS: usize = 3;
/// The most search domains the kubelet passes on.
const MAX_SEARCHES: usize = 32;

/// The resolver settings of a pod in `namespace` with `spec`, given the cluster's DNS and
/// the node's own resolver settings (`host`).
pub fn pod_dns(
    namespace: &str,
    spec: Option<&PodSpec>,
    cluster: &ClusterDns,
    host: &DnsConfig,
) -> DnsConfig {
    let policy = spec.and_then(|s| s.dns_policy.as_deref());
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let cluster_first = match policy {
        None | Some("ClusterFirst") => !host_network,
        Some("ClusterFirstWithHostNet") => true,
        _ => false,
    } && cluster.mode == DnsMode::NodeLocal;
    let mut config = match policy {
        Some("None") => DnsConfig::default(),
        _ if cluster_first => {
            let domain = &cluster.domain;
            let mut searches = vec![
                format!("{namespace}.svc.{domain}"),
                format!("svc.{domain}"),
                domain.clone(),
            ];
            searches.extend(host.searches.iter().cloned());
            DnsConfig {
                nameservers: vec![IpAddr::V4(cluster.address)],
                searches,
                options: vec!["ndots:5".into()],
            }
        }
        _ => host.clone(),
    };
    if let Some(extra) = spec.and_then(|s| s.dns_config.as_ref()) {
        for ip in extra.nameservers.iter().flatten() {
            if let Ok(ip) = ip.parse::<IpAddr>() {
                config.nameservers.push(ip);
            }
        }
        config
            .searches
            .extend(extra.searches.iter().flatten().cloned());
        for option in extra.options.iter().flatten() {
            let Some(name) = option.name.as_deref() else {
                continue;
            };
            // A named option replaces one of the same name.
            config.options.retain(|o| o.split(':').next() != Some(name));
            config.options.push(match &option.value {
                Some(value) => format!("{name}:{value}"),
                None => name.to_string(),
            });
        }
    }
    dedup(&mut config.nameservers);
    dedup(&mut config.searches);
    config.nameservers.truncate(MAX_NAMESERVERS);
    config.searches.truncate(MAX_SEARCHES);
    config
}

/// Drops later repeats, keeping the order.
fn dedup<T: PartialEq + Clone>(items: &mut Vec<T>) {
    let mut seen = Vec::with_capacity(items.len());
    items.retain(|item| {
        if seen.contains(item) {
            false
        } else {
            seen.push(item.clone());
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use serde_json::json;

    use super::*;

    fn cluster(mode: DnsMode) -> ClusterDns {
        ClusterDns {
            mode,
            address: Ipv4Addr::new(10, 43, 0, 10),
            domain: "cluster.local".into(),
        }
    }

    fn host() -> DnsConfig {
        DnsConfig {
            nameservers: vec!["192.0.2.53".parse().unwrap()],
            searches: vec!["corp.example".into()],
            options: vec!["edns0".into()],
        }
    }

    fn spec(value: serde_json::Value) -> PodSpec {
        serde_json::from_value(value).expect("pod spec")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn cluster_first_points_at_the_cluster_dns_with_the_namespace_first() {
        let config = pod_dns("shop", None, &cluster(DnsMode::NodeLocal), &host());
        assert_eq!(config.nameservers, vec![ip("10.43.0.10")]);
        assert_eq!(
            config.searches,
            vec![
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example"
            ]
        );
        assert_eq!(config.options, vec!["ndots:5"]);
    }

    #[test]
    fn host_network_pods_and_nodes_without_cluster_dns_get_the_nodes_resolvers() {
        let host_net = spec(json!({"containers": [], "hostNetwork": true}));
        assert_eq!(
            pod_dns("a", Some(&host_net), &cluster(DnsMode::NodeLocal), &host()),
            host()
        );
        assert_eq!(pod_dns("a", None, &cluster(DnsMode::None), &host()), host());
        let with_host_net = spec(json!({"containers": [], "hostNetwork": true,
            "dnsPolicy": "ClusterFirstWithHostNet"}));
        assert_eq!(
            pod_dns(
                "a",
                Some(&with_host_net),
                &cluster(DnsMode::NodeLocal),
                &host()
            )
            .nameservers,
            vec![ip("10.43.0.10")]
        );
        let default = spec(json!({"containers": [], "dnsPolicy": "Default"}));
        assert_eq!(
            pod_dns("a", Some(&default), &cluster(DnsMode::NodeLocal), &host()),
            host()
        );
    }

    #[test]
    fn dns_config_is_merged_and_none_takes_only_it() {
        let none = spec(json!({"containers": [], "dnsPolicy": "None", "dnsConfig": {
            "nameservers": ["1.1.1.1", "1.1.1.1", "8.8.8.8", "9.9.9.9", "8.8.4.4"],
            "searches": ["a.example"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}));
        let config = pod_dns("a", Some(&none), &cluster(DnsMode::NodeLocal), &host());
        assert_eq!(
            config.nameservers,
            vec![ip("1.1.1.1"), ip("8.8.8.8"), ip("9.9.9.9")]
        );
        assert_eq!(config.searches, vec!["a.example"]);
        assert_eq!(config.options, vec!["ndots:2", "edns0"]);
        let merged = spec(json!({"containers": [], "dnsConfig": {
            "options": [{"name": "ndots", "value": "1"}]}}));
        let config = pod_dns("a", Some(&merged), &cluster(DnsMode::NodeLocal), &host());
        assert_eq!(config.options, vec!["ndots:1"]);
    }
}
