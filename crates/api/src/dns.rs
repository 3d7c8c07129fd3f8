//! Cluster DNS names and addresses every component agrees on: the `kube-dns` Service the
//! servers keep, its address in the service range and the cluster domain.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The cluster domain when none is given (`--cluster-domain`).
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";
/// The cluster DNS address when none is given: the tenth of the default service range (k3s).
pub const DEFAULT_CLUSTER_DNS: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 10);
/// The Service whose ClusterIP is the cluster DNS address.
pub const DNS_SERVICE: &str = "kube-dns";
/// ... and its namespace.
pub const DNS_NAMESPACE: &str = "kube-system";
/// Annotation on a Service whose ports the node agents serve themselves (the node-local DNS
/// server) rather than through the node proxy.
pub const NODE_LOCAL_ANNOTATION: &str = "skiff.dev/node-local";

/// The default cluster DNS address of a service range: its tenth address (10.43.0.10 for
/// 10.43.0.0/16, as k3s).
pub fn default_address(service_range: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(service_range.network()) + 10)
}

/// The `dnsPolicy` values a pod may have.
pub const DNS_POLICIES: &[&str] = &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_address_is_the_tenth_of_the_range() {
        assert_eq!(
            default_address("10.43.0.0/16".parse().unwrap()),
            DEFAULT_CLUSTER_DNS
        );
        assert_eq!(
            default_address("192.168.8.0/24".parse().unwrap()),
            Ipv4Addr::new(192, 168, 8, 10)
        );
    }
}
