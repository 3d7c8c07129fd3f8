//! Pod addresses from the node's pod CIDR (host-local IPAM): the next free address after the
//! one given last, wrapping around (as CNI's host-local plugin does), never the network,
//! gateway or broadcast address; released when the pod's sandbox goes. Not the lowest free
//! one: a just-released address given again at once would be unreachable for up to a minute,
//! while the node's neighbour cache (and its peers' traffic) still point at the gone pod's
//! link, which is what made replacement pods of a rollout take 30–45 s to get ready.

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
    /// The address given last; the search for a free one starts after it.
    last: Option<Ipv4Addr>,
}

impl Ipam {
    pub fn new(cidr: Ipv4Net) -> Self {
        Ipam {
            cidr: cidr.trunc(),
            held: BTreeMap::new(),
            last: None,
        }
    }

    /// The address of pod `uid`: the one it holds, else the next free one after the address
    /// given last.
    pub fn allocate(&mut self, uid: &str) -> Result<Ipv4Addr, Exhausted> {
        if let Some((ip, _)) = self.held.iter().find(|(_, owner)| *owner == uid) {
            return Ok(*ip);
        }
        let gateway = gateway(self.cidr);
        let last = self.last;
        let (before, after): (Vec<Ipv4Addr>, Vec<Ipv4Addr>) =
            self.cidr.hosts().partition(|ip| Some(*ip) <= last);
        let ip = after
            .into_iter()
            .chain(before)
            .find(|ip| *ip != gateway && !self.held.contains_key(ip))
            .ok_or(Exhausted {
                cidr: self.cidr,
                used: self.held.len(),
            })?;
        self.held.insert(ip, uid.to_string());
        self.last = Some(ip);
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
    fn pods_get_the_next_free_address_and_a_released_one_comes_round_again_last() {
        let mut ipam = Ipam::new("10.42.3.0/24".parse().unwrap());
        assert_eq!(ipam.allocate("a"), Ok(Ipv4Addr::new(10, 42, 3, 2)));
        assert_eq!(ipam.allocate("b"), Ok(Ipv4Addr::new(10, 42, 3, 3)));
        // Asking again gives the same address.
        assert_eq!(ipam.allocate("a"), Ok(Ipv4Addr::new(10, 42, 3, 2)));
        ipam.release("a");
        // Not the address just released: the next one after the last given.
        assert_eq!(ipam.allocate("c"), Ok(Ipv4Addr::new(10, 42, 3, 4)));
        assert_eq!(ipam.allocate("d"), Ok(Ipv4Addr::new(10, 42, 3, 5)));
    }

    #[test]
    fn the_search_wraps_round_to_released_addresses() {
        // A /29: .2 to .6 for pods.
        let mut ipam = Ipam::new("10.42.0.0/29".parse().unwrap());
        for i in 0..5 {
            ipam.allocate(&format!("p{i}")).expect("an address");
        }
        ipam.release("p1");
        ipam.release("p3");
        assert_eq!(ipam.allocate("q"), Ok(Ipv4Addr::new(10, 42, 0, 3)));
        assert_eq!(ipam.allocate("r"), Ok(Ipv4Addr::new(10, 42, 0, 5)));
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
