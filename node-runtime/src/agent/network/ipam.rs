//! Pod addresses from the node's pod CIDR (host-local IPAM): the lowest free address, never
//! the network, gateway or broadcast address; released when the pod's sandbox goes.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use skiff_api::pod_cidr::gateway;

/// No address is left for a pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no IP address left in the node's pod CIDR {cidr} ({used} pods hold one)")]
pub struct Exhausted {
    pub cidr: Ipv4Net,
    pub used: usize,
}

/// The addresses of one pod CIDR and which pod holds each.
#[derive(Debug)]
pub struct Ipam {
    cidr: Ipv4Net,
    /// Address → the uid of the pod holding it.
    held: BTreeMap<Ipv4Addr, String>,
}

impl Ipam {
    pub fn new(cidr: Ipv4Net) -> Self {
        Ipam {
            cidr: cidr.trunc(),
            held: BTreeMap::new(),
        }
    }

    /// The address of pod `uid`: the one it holds, else the lowest free one.
    pub fn allocate(&mut self, uid: &str) -> Result<Ipv4Addr, Exhausted> {
        if let Some((ip, _)) = self.held.iter().find(|(_, owner)| *owner == uid) {
            return Ok(*ip);
        }
        let gateway = gateway(self.cidr);
        let ip = self
            .cidr
            .hosts()
            .find(|ip| *ip != gateway && !self.held.contains_key(ip))
            .ok_or(Exhausted {
                cidr: self.cidr,
                used: self.held.len(),
            })?;
        self.held.insert(ip, uid.to_string());
        Ok(ip)
    }

    /// Frees the address of pod `uid`, if it holds one.
    pub fn release(&mut self, uid: &str) {
        self.held.retain(|_, owner| owner != uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_get_the_lowest_free_address_and_give_it_back() {
        let mut ipam = Ipam::new("10.42.3.0/24".parse().unwrap());
        assert_eq!(ipam.allocate("a"), Ok(Ipv4Addr::new(10, 42, 3, 2)));
        assert_eq!(ipam.allocate("b"), Ok(Ipv4Addr::new(10, 42, 3, 3)));
        // Asking again gives the same address.
        assert_eq!(ipam.allocate("a"), Ok(Ipv4Addr::new(10, 42, 3, 2)));
        ipam.release("a");
        assert_eq!(ipam.allocate("c"), Ok(Ipv4Addr::new(10, 42, 3, 2)));
        assert_eq!(ipam.allocate("d"), Ok(Ipv4Addr::new(10, 42, 3, 4)));
    }

    #[test]
    fn network_gateway_and_broadcast_are_never_given_and_exhaustion_is_an_error() {
        // A /29: .0 network, .1 gateway, .7 broadcast, so .2 to .6 for pods.
        let cidr: Ipv4Net = "10.42.0.0/29".parse().unwrap();
        let mut ipam = Ipam::new(cidr);
        let given: Vec<Ipv4Addr> = (0..5)
            .map(|i| ipam.allocate(&format!("p{i}")).expect("an address"))
            .collect();
        let last: Vec<u8> = given.iter().map(|ip| ip.octets()[3]).collect();
        assert_eq!(last, [2, 3, 4, 5, 6]);
        assert_eq!(ipam.allocate("p5"), Err(Exhausted { cidr, used: 5 }));
        ipam.release("p2");
        assert_eq!(ipam.allocate("p5"), Ok(Ipv4Addr::new(10, 42, 0, 4)));
    }
}
