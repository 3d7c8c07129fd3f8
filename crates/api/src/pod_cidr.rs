//! Node pod CIDRs: the cluster CIDR cut into one block per node (the nodeipam controller's
//! range allocator), as `spec.podCIDR` carries it.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The cluster CIDR when none is given (k3s' default).
pub const DEFAULT_CLUSTER_CIDR: &str = "10.42.0.0/16";
/// The prefix length of each node's block when none is given.
pub const DEFAULT_NODE_CIDR_MASK_SIZE: u8 = 24;

/// Why a cluster CIDR and node mask size do not make a range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("cluster CIDR {cidr:?} is not an IPv4 CIDR")]
    Cidr { cidr: String },
    #[error(
        "node CIDR mask size {mask} must be between the cluster CIDR's prefix ({prefix}) and 30"
    )]
    Mask { mask: u8, prefix: u8 },
}

/// The blocks nodes get: `cluster` cut into `/mask` subnets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodCidrRange {
    cluster: Ipv4Net,
    mask: u8,
}

impl Default for PodCidrRange {
    fn default() -> Self {
        let cluster = DEFAULT_CLUSTER_CIDR
            .parse()
            .expect("the default cluster CIDR");
        PodCidrRange {
            cluster,
            mask: DEFAULT_NODE_CIDR_MASK_SIZE,
        }
    }
}

impl PodCidrRange {
    /// The range of `/mask` blocks of `cluster` (such as `10.42.0.0/16`).
    pub fn new(cluster: &str, mask: u8) -> Result<Self, RangeError> {
        let cluster: Ipv4Net = cluster.parse().map_err(|_| RangeError::Cidr {
            cidr: cluster.to_string(),
        })?;
        if mask < cluster.prefix_len() || mask > 30 {
            return Err(RangeError::Mask {
                mask,
                prefix: cluster.prefix_len(),
            });
        }
        Ok(PodCidrRange {
            cluster: cluster.trunc(),
            mask,
        })
    }

    /// The cluster CIDR.
    pub fn cluster(&self) -> Ipv4Net {
        self.cluster
    }

    /// The prefix length of each node's block.
    pub fn mask(&self) -> u8 {
        self.mask
    }

    /// The lowest block that none of `taken` (CIDRs as nodes hold them; unparsable ones
    /// are ignored) overlaps, or None when the range is full.
    pub fn lowest_free<'a>(&self, taken: impl IntoIterator<Item = &'a str>) -> Option<Ipv4Net> {
        let taken: Vec<Ipv4Net> = taken.into_iter().filter_map(|c| c.parse().ok()).collect();
        self.cluster
            .subnets(self.mask)
            .ok()?
            .find(|block| !taken.iter().any(|t| overlaps(*block, *t)))
    }
}

/// Whether two networks share an address.
pub fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The gateway of a node's pod CIDR (its first address, held by the node's bridge).
pub fn gateway(cidr: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.network()) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_get_the_lowest_free_block() {
        let range = PodCidrRange::default();
        assert_eq!(range.lowest_free([]).unwrap().to_string(), "10.42.0.0/24");
        let taken = ["10.42.0.0/24", "10.42.2.0/24", "garbage"];
        assert_eq!(
            range.lowest_free(taken).unwrap().to_string(),
            "10.42.1.0/24"
        );
        // A deleted node's block is free again: only what nodes hold counts.
        assert_eq!(
            range.lowest_free(["10.42.1.0/24"]).unwrap().to_string(),
            "10.42.0.0/24"
        );
        // A block overlapping a differently sized one is taken.
        assert_eq!(
            range.lowest_free(["10.42.0.0/23"]).unwrap().to_string(),
            "10.42.2.0/24"
        );
    }

    #[test]
    fn a_full_range_has_no_free_block() {
        let range = PodCidrRange::new("10.9.0.0/23", 24).unwrap();
        assert_eq!(
            range.lowest_free(["10.9.0.0/24"]).unwrap().to_string(),
            "10.9.1.0/24"
        );
        assert_eq!(range.lowest_free(["10.9.0.0/24", "10.9.1.0/24"]), None);
    }

    #[test]
    fn bad_ranges_are_refused() {
        assert!(matches!(
            PodCidrRange::new("10.42.0.0", 24),
            Err(RangeError::Cidr { .. })
        ));
        assert!(matches!(
            PodCidrRange::new("fd00::/64", 80),
            Err(RangeError::Cidr { .. })
        ));
        assert_eq!(
            PodCidrRange::new("10.42.0.0/16", 8),
            Err(RangeError::Mask {
                mask: 8,
                prefix: 16
            })
        );
        assert!(PodCidrRange::new("10.42.0.0/16", 31).is_err());
        // Host bits are cleared.
        let range = PodCidrRange::new("10.42.7.1/16", 24).unwrap();
        assert_eq!(range.cluster().to_string(), "10.42.0.0/16");
    }

    #[test]
    fn the_gateway_is_the_first_address() {
        assert_eq!(
            gateway("10.42.3.0/24".parse().unwrap()),
            Ipv4Addr::new(10, 42, 3, 1)
        );
    }
}
