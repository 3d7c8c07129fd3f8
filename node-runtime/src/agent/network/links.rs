//! Small netlink steps shared by the bridge and the pods' links.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

use super::NetworkError;

/// The index of link `name`, or None when there is none.
pub async fn index_of(netlink: &Handle, name: &str) -> Option<u32> {
    let mut links = netlink.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Some(link.header.index),
        _ => None,
    }
}

/// The index of link `name`, which must exist.
pub async fn require(netlink: &Handle, name: &str) -> Result<u32, NetworkError> {
    index_of(netlink, name)
        .await
        .ok_or_else(|| NetworkError::LinkMissing {
            name: name.to_string(),
        })
}

/// Sets link `index` up.
pub async fn up(netlink: &Handle, index: u32, what: &str) -> Result<(), NetworkError> {
    netlink
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(NetworkError::netlink(format!("setting {what} up")))
}

/// Gives link `index` the address `ip/prefix` (kept if it has it already).
pub async fn address(
    netlink: &Handle,
    index: u32,
    ip: Ipv4Addr,
    prefix: u8,
    what: &str,
) -> Result<(), NetworkError> {
    netlink
        .address()
        .add(index, IpAddr::V4(ip), prefix)
        .replace()
        .execute()
        .await
        .map_err(NetworkError::netlink(format!(
            "adding {ip}/{prefix} to {what}"
        )))
}

/// Routes every destination through `gateway` (the default route).
pub async fn default_route(netlink: &Handle, gateway: Ipv4Addr) -> Result<(), NetworkError> {
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(gateway)
        .build();
    netlink
        .route()
        .add(route)
        .replace()
        .execute()
        .await
        .map_err(NetworkError::netlink(format!(
            "routing by default via {gateway}"
        )))
}

/// Deletes link `name`, if it exists (a veth's peer goes with it).
pub async fn delete(netlink: &Handle, name: &str) -> Result<(), NetworkError> {
    let Some(index) = index_of(netlink, name).await else {
        return Ok(());
    };
    netlink
        .link()
        .del(index)
        .execute()
        .await
        .map_err(NetworkError::netlink(format!("deleting link {name}")))
}
