//! The ranges Services draw from: virtual IPs (`--service-cluster-ip-range`) and node ports
//! (`--service-node-port-range`).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use ipnet::Ipv4Net;
use skiff_api::pod_cidr;

/// Where Services get their ClusterIPs and NodePorts; cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceRanges {
    /// ClusterIPs (`--service-cluster-ip-range`).
    pub cluster_ips: Cidr,
    /// NodePorts (`--service-node-port-range`).
    pub node_ports: PortRange,
    /// The cluster DNS address (`--cluster-dns`), kept for the `kube-dns` Service: never
    /// drawn for another Service. None: no `kube-dns` Service.
    pub cluster_dns: Option<Ipv4Addr>,
}

/// The ClusterIP range when none is given (k3s's service CIDR).
pub const DEFAULT_SERVICE_CIDR: &str = "10.43.0.0/16";
/// The NodePort range when none is given (Kubernetes').
pub const DEFAULT_NODE_PORT_RANGE: &str = "30000-32767";

impl Default for ServiceRanges {
    fn default() -> Self {
        ServiceRanges {
            cluster_ips: DEFAULT_SERVICE_CIDR
                .parse()
                .expect("the default service CIDR"),
            node_ports: DEFAULT_NODE_PORT_RANGE
                .parse()
                .expect("the default node port range"),
            cluster_dns: Some(skiff_api::dns::DEFAULT_CLUSTER_DNS),
        }
    }
}

/// A range flag that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// Not an IPv4 CIDR of a usable size.
    #[error("{input:?} is not an IPv4 CIDR with a prefix of /8 to /30, such as 10.43.0.0/16")]
    Cidr { input: String },
    /// Not a range of ports.
    #[error("{input:?} is not a port range such as 30000-32767 (first <= last, both over 0)")]
    Ports { input: String },
}

/// An IPv4 network; its network and broadcast addresses are never handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(Ipv4Net);

impl Cidr {
    /// The first and last addresses a Service may get.
    pub fn usable(&self) -> (u32, u32) {
        (
            u32::from(self.0.network()) + 1,
            u32::from(self.0.broadcast()) - 1,
        )
    }

    /// Whether `ip` is one a Service may get.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.0.contains(&ip) && ip != self.0.network() && ip != self.0.broadcast()
    }

    /// The first usable address (the `kubernetes` Service's, as Kubernetes does).
    pub fn first(&self) -> Ipv4Addr {
        pod_cidr::gateway(self.0)
    }

    /// The network itself.
    pub fn net(&self) -> Ipv4Net {
        self.0
    }
}

impl FromStr for Cidr {
    type Err = RangeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let net: Ipv4Net = input.parse().map_err(|_| RangeError::Cidr {
            input: input.to_string(),
        })?;
        if !(8..=30).contains(&net.prefix_len()) {
            return Err(RangeError::Cidr {
                input: input.to_string(),
            });
        }
        Ok(Cidr(net.trunc()))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// The lowest port of the range.
    pub first: u16,
    /// The highest port of the range.
    pub last: u16,
}

impl PortRange {
    /// Whether `port` is in the range.
    pub fn contains(&self, port: i64) -> bool {
        (i64::from(self.first)..=i64::from(self.last)).contains(&port)
    }
}

impl FromStr for PortRange {
    type Err = RangeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let bad = || RangeError::Ports {
            input: input.to_string(),
        };
        let (first, last) = input.split_once('-').ok_or_else(bad)?;
        let first: u16 = first.trim().parse().map_err(|_| bad())?;
        let last: u16 = last.trim().parse().map_err(|_| bad())?;
        if first == 0 || first > last {
            return Err(bad());
        }
        Ok(PortRange { first, last })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_to_their_network_and_skip_network_and_broadcast() {
        let cidr: Cidr = "10.43.7.9/16".parse().unwrap();
        assert_eq!(cidr.to_string(), "10.43.0.0/16");
        assert_eq!(cidr.first(), Ipv4Addr::new(10, 43, 0, 1));
        assert!(cidr.contains(Ipv4Addr::new(10, 43, 255, 254)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 43, 255, 255)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 43, 0, 0)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 44, 0, 1)));
        for bad in ["10.43.0.0", "10.43.0.0/31", "fd00::/108", "x/16"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn port_ranges_parse_inclusive() {
        let ports: PortRange = "30000-32767".parse().unwrap();
        assert!(ports.contains(30000) && ports.contains(32767));
        assert!(!ports.contains(29999) && !ports.contains(32768));
        for bad in ["30000", "32767-30000", "0-10", "a-b"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
    }
}
