//! Routes between nodes (flannel's host-gw backend): for every other node, a route to its pod
//! CIDR via its InternalIP, kept as the Nodes change (replaced on change, removed when the
//! node goes). Nodes whose InternalIP is an address of this host (several agents on one
//! host) get none. The routes carry a protocol number of their own, so an agent finds those
//! a previous run left.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol};
use rtnetlink::{Handle, RouteMessageBuilder};
use skiff_api::k8s_openapi::api::core::v1::Node;
use skiff_client::{Client, ListParams};
use tokio_util::sync::CancellationToken;

/// The protocol number of Skiff's routes (`ip route show proto 200`).
pub const ROUTE_PROTOCOL: u8 = 200;
/// Pause before listing again after an API error.
pub(super) const RETRY: Duration = Duration::from_secs(1);

/// Each other node's pod CIDR and the address to route it through.
pub type Routes = BTreeMap<Ipv4Net, Ipv4Addr>;

/// The routes that `nodes` call for on the node `me` whose addresses are `local`.
pub fn desired<'a>(
    nodes: impl IntoIterator<Item = &'a Node>,
    me: &str,
    local: &HashSet<IpAddr>,
) -> Routes {
    nodes
        .into_iter()
        .filter(|n| n.metadata.name.as_deref() != Some(me))
        .filter_map(|n| {
            let cidr: Ipv4Net = n.spec.as_ref()?.pod_cidr.as_deref()?.parse().ok()?;
            let via: Ipv4Addr = n
                .status
                .as_ref()?
                .addresses
                .iter()
                .flatten()
                .find(|a| a.type_ == "InternalIP")?
                .address
                .parse()
                .ok()?;
            (!local.contains(&IpAddr::V4(via)) && !via.is_loopback()).then_some((cidr, via))
        })
        .collect()
}

/// Keeps the routes to the other nodes' pod CIDRs until `stop`.
pub async fn run(client: Client, me: String, netlink: Handle, stop: CancellationToken) {
    let mut installed = own_routes(&netlink).await;
    let api = client.api::<Node>(None);
    let params = ListParams::default();
    loop {
        let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
        let version = match api.list(&params).await {
            Ok((list, version)) => {
                for node in list {
                    nodes.insert(node.metadata.name.clone().unwrap_or_default(), node);
                }
                version
            }
            Err(err) => {
                tracing::debug!(%err, "listing nodes for routes failed; retrying");
                if wait(&stop, RETRY).await {
                    return;
                }
                continue;
            }
        };
        sync(&netlink, &mut installed, &nodes, &me).await;
        let mut events = match api.watch(&params, &version).await {
            Ok(events) => events.boxed(),
            Err(err) => {
                tracing::debug!(%err, "watching nodes for routes failed; re-listing");
                if wait(&stop, RETRY).await {
                    return;
                }
                continue;
            }
        };
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return,
                event = events.next() => event,
            };
            let Some(Ok(event)) = event else { break };
            let name = event.object.metadata.name.clone().unwrap_or_default();
            if event.event_type == "DELETED" {
                nodes.remove(&name);
            } else {
                nodes.insert(name, event.object);
            }
            sync(&netlink, &mut installed, &nodes, &me).await;
        }
    }
}

/// Waits `delay`; true if the agent stops meanwhile.
pub(super) async fn wait(stop: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(delay) => false,
    }
}

/// Makes the kernel's routes what `nodes` call for.
async fn sync(netlink: &Handle, installed: &mut Routes, nodes: &BTreeMap<String, Node>, me: &str) {
    let want = desired(nodes.values(), me, &local_addresses(netlink).await);
    for (cidr, via) in installed.clone() {
        if want.get(&cidr) != Some(&via) {
            match netlink.route().del(message(cidr, via)).execute().await {
                Ok(()) => tracing::info!(%cidr, %via, "pod route removed"),
                Err(err) => tracing::debug!(%cidr, %err, "removing a pod route failed"),
            }
            installed.remove(&cidr);
        }
    }
    for (cidr, via) in want {
        if installed.get(&cidr) == Some(&via) {
            continue;
        }
        match netlink
            .route()
            .add(message(cidr, via))
            .replace()
            .execute()
            .await
        {
            Ok(()) => {
                tracing::info!(%cidr, %via, "pod route added");
                installed.insert(cidr, via);
            }
            Err(err) => tracing::warn!(%cidr, %via, %err, "adding a pod route failed"),
        }
    }
}

fn message(cidr: Ipv4Net, via: Ipv4Addr) -> RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(cidr.network(), cidr.prefix_len())
        .gateway(via)
        .protocol(RouteProtocol::from(ROUTE_PROTOCOL))
        .build()
}

/// The routes with Skiff's protocol number already in the main table.
async fn own_routes(netlink: &Handle) -> Routes {
    let query = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let routes: Vec<RouteMessage> = netlink
        .route()
        .get(query)
        .execute()
        .try_collect()
        .await
        .unwrap_or_default();
    routes
        .into_iter()
        .filter(|r| u8::from(r.header.protocol) == ROUTE_PROTOCOL)
        .filter_map(|r| {
            let mut destination = None;
            let mut gateway = None;
            for attribute in &r.attributes {
                match attribute {
                    RouteAttribute::Destination(RouteAddress::Inet(ip)) => destination = Some(*ip),
                    RouteAttribute::Gateway(RouteAddress::Inet(ip)) => gateway = Some(*ip),
                    _ => {}
                }
            }
            let cidr = Ipv4Net::new(destination?, r.header.destination_prefix_length).ok()?;
            Some((cidr, gateway?))
        })
        .collect()
}

/// This host's addresses.
async fn local_addresses(netlink: &Handle) -> HashSet<IpAddr> {
    let addresses: Vec<_> = netlink
        .address()
        .get()
        .execute()
        .try_collect()
        .await
        .unwrap_or_default();
    addresses
        .iter()
        .flat_map(|a| &a.attributes)
        .filter_map(|attribute| match attribute {
            AddressAttribute::Address(ip) | AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn node(name: &str, cidr: Option<&str>, ip: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"podCIDR": cidr},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]}}))
        .expect("node")
    }

    #[test]
    fn every_other_node_with_a_cidr_and_a_remote_address_gets_a_route() {
        let nodes = [
            node("me", Some("10.42.0.0/24"), "192.168.1.10"),
            node("b", Some("10.42.1.0/24"), "192.168.1.11"),
            node("no-cidr", None, "192.168.1.12"),
            node("same-host", Some("10.42.3.0/24"), "192.168.1.10"),
            node("loopback", Some("10.42.4.0/24"), "127.0.0.1"),
        ];
        let local = HashSet::from([IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10))]);
        let routes = desired(&nodes, "me", &local);
        let expected = Routes::from([(
            "10.42.1.0/24".parse().unwrap(),
            Ipv4Addr::new(192, 168, 1, 11),
        )]);
        assert_eq!(routes, expected);
    }
}
