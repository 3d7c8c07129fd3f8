//! A pod's link: a veth pair whose host end is a port of the node's bridge and whose other
//! end is `eth0` in the pod's namespace, with the pod's address, `lo` up and the default
//! route via the bridge's gateway address.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use ipnet::Ipv4Net;
use rtnetlink::{Handle, LinkUnspec, LinkVeth};
use skiff_api::pod_cidr::gateway;

use super::netns::Namespace;
use super::{links, NetworkError};

/// The name of the pod's interface inside its namespace.
const POD_INTERFACE: &str = "eth0";

/// The host-side name of pod `uid`'s veth (interface names have at most 15 bytes).
pub fn host_name(uid: &str) -> String {
    link_name("veth", uid)
}

/// The pod end's name until it is moved and renamed.
fn peer_name(uid: &str) -> String {
    link_name("vpod", uid)
}

/// `prefix` and the first 11 alphanumerics of `uid`: 15 bytes at most.
fn link_name(prefix: &str, uid: &str) -> String {
    let id: String = uid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(11)
        .collect();
    format!("{prefix}{id}")
}

/// Links the pod's namespace to bridge `bridge` with address `ip` of `cidr`.
pub async fn attach(
    host: &Handle,
    bridge: u32,
    pod: &Namespace,
    uid: &str,
    ip: Ipv4Addr,
    cidr: Ipv4Net,
) -> Result<(), NetworkError> {
    let (host_end, pod_end) = (host_name(uid), peer_name(uid));
    // What an earlier, interrupted attempt left.
    links::delete(host, &host_end).await?;
    links::delete(host, &pod_end).await?;
    host.link()
        .add(LinkVeth::new(&host_end, &pod_end).build())
        .execute()
        .await
        .map_err(NetworkError::netlink(format!("creating veth {host_end}")))?;
    let peer = links::require(host, &pod_end).await?;
    host.link()
        .set(
            LinkUnspec::new_with_index(peer)
                .setns_by_fd(pod.fd.as_raw_fd())
                .build(),
        )
        .execute()
        .await
        .map_err(NetworkError::netlink(format!(
            "moving {pod_end} into the pod's namespace"
        )))?;
    let host_index = links::require(host, &host_end).await?;
    host.link()
        .set(
            LinkUnspec::new_with_index(host_index)
                .controller(bridge)
                .up()
                .build(),
        )
        .execute()
        .await
        .map_err(NetworkError::netlink(format!(
            "putting {host_end} on the bridge"
        )))?;

    let netlink = &pod.netlink;
    let inside = links::require(netlink, &pod_end).await?;
    netlink
        .link()
        .set(
            LinkUnspec::new_with_index(inside)
                .name(POD_INTERFACE)
                .build(),
        )
        .execute()
        .await
        .map_err(NetworkError::netlink(format!(
            "renaming {pod_end} to {POD_INTERFACE}"
        )))?;
    links::address(netlink, inside, ip, cidr.prefix_len(), POD_INTERFACE).await?;
    links::up(netlink, inside, POD_INTERFACE).await?;
    let lo = links::require(netlink, "lo").await?;
    links::up(netlink, lo, "lo").await?;
    links::default_route(netlink, gateway(cidr)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_fit_the_kernels_limit() {
        let uid = "6f1c2a4e-0b7d-4c1e-9a55-1e2f3a4b5c6d";
        assert_eq!(host_name(uid), "veth6f1c2a4e0b7");
        assert_eq!(peer_name(uid), "vpod6f1c2a4e0b7");
        assert!(host_name(uid).len() <= 15);
    }
}
