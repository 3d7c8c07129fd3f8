//! The node's bridge: the pods' host-side links are its ports, and it holds the gateway
//! address of the node's pod CIDR; the node forwards between it and its other links.

use ipnet::Ipv4Net;
use rtnetlink::{Handle, LinkBridge};
use skiff_api::pod_cidr::gateway;

use super::{links, NetworkError};

/// Makes (or takes over) bridge `name` with the gateway of `cidr`, up, and turns on IPv4
/// forwarding; returns the bridge's index.
pub async fn ensure(netlink: &Handle, name: &str, cidr: Ipv4Net) -> Result<u32, NetworkError> {
    let index = match links::index_of(netlink, name).await {
        Some(index) => index,
        None => {
            netlink
                .link()
                .add(LinkBridge::new(name).build())
                .execute()
                .await
                .map_err(NetworkError::netlink(format!("creating bridge {name}")))?;
            links::require(netlink, name).await?
        }
    };
    links::address(netlink, index, gateway(cidr), cidr.prefix_len(), name).await?;
    links::up(netlink, index, name).await?;
    let forward = "/proc/sys/net/ipv4/ip_forward";
    tokio::fs::write(forward, "1")
        .await
        .map_err(NetworkError::io(format!("writing {forward}")))?;
    Ok(index)
}
