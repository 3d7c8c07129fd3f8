//! The API servers this agent learns from the cluster, as k3s's agent load balancer does: it
//! watches the `default/kubernetes` Service's EndpointSlices (which the leader keeps listing
//! every member whose lease is live) and keeps a tunnel open to each server listed there
//! besides those it was given (`--server`), starting one for a server that joins and stopping
//! it when the server leaves the slices. The node authorizer lets a node read EndpointSlices.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::Router;
use futures::StreamExt;
use skiff_api::k8s_openapi::api::discovery::v1::EndpointSlice;
use skiff_client::{Client, ListParams};
use tokio_util::sync::CancellationToken;

/// The slices of the `kubernetes` Service (`default` namespace).
const SELECTOR: &str = "kubernetes.io/service-name=kubernetes";
const NAMESPACE: &str = "default";
/// Pause before listing again after an API error.
const RETRY: Duration = Duration::from_secs(1);

/// `IP:PORT` of every endpoint the slices list that is not known to be unready.
pub fn addresses<'a>(slices: impl IntoIterator<Item = &'a EndpointSlice>) -> BTreeSet<SocketAddr> {
    let mut found = BTreeSet::new();
    for slice in slices {
        let ports: Vec<u16> = slice
            .ports
            .iter()
            .flatten()
            .filter_map(|p| p.port.and_then(|port| u16::try_from(port).ok()))
            .collect();
        let ready = slice
            .endpoints
            .iter()
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false));
        for ip in ready
            .flat_map(|e| &e.addresses)
            .filter_map(|a| a.parse::<IpAddr>().ok())
        {
            found.extend(ports.iter().map(|port| SocketAddr::new(ip, *port)));
        }
    }
    found
}

/// The addresses (and scheme) of the servers the agent was given: an IP host as it is, a name
/// resolved, so that a server listed in the slices is not tunnelled to twice.
pub async fn given(servers: &[String]) -> (String, BTreeSet<SocketAddr>) {
    let mut scheme = "https".to_string();
    let mut addresses = BTreeSet::new();
    for server in servers {
        let Ok(url) = reqwest::Url::parse(server) else {
            continue;
        };
        scheme = url.scheme().to_string();
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            continue;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match host.parse::<IpAddr>() {
            Ok(ip) => {
                addresses.insert(SocketAddr::new(ip, port));
            }
            Err(_) => {
                if let Ok(resolved) = tokio::net::lookup_host((host, port)).await {
                    addresses.extend(resolved);
                }
            }
        }
    }
    (scheme, addresses)
}

/// Whether `server` is one of the `given` servers: listed as such, or on the port of a given
/// wildcard address (`https://0.0.0.0:6443`, which a server advertises by another of this
/// host's addresses) at an address of this host (one a socket can bind).
fn covers(given: &BTreeSet<SocketAddr>, server: SocketAddr) -> bool {
    given.contains(&server)
        || given.iter().any(|g| {
            g.ip().is_unspecified()
                && g.port() == server.port()
                && std::net::UdpSocket::bind(SocketAddr::new(server.ip(), 0)).is_ok()
        })
}

/// Keeps a tunnel open to every server the `kubernetes` slices list and `given` does not,
/// until `stop`.
pub async fn follow(client: Client, node: String, app: Router, stop: CancellationToken) {
    let (scheme, given) = given(client.servers()).await;
    let mut tunnels = Tunnels {
        open: BTreeMap::new(),
        given,
        scheme,
        client: client.clone(),
        node,
        app,
        stop: stop.clone(),
    };
    let watching = async {
        let api = client.api::<EndpointSlice>(Some(NAMESPACE));
        let params = ListParams {
            label_selector: Some(SELECTOR.into()),
            ..ListParams::default()
        };
        loop {
            let (listed, version) = match api.list(&params).await {
                Ok(listed) => listed,
                Err(err) => {
                    tracing::debug!(%err, "listing the API servers' endpoints failed; retrying");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            let mut slices: BTreeMap<String, EndpointSlice> = listed
                .into_iter()
                .map(|s| (s.metadata.name.clone().unwrap_or_default(), s))
                .collect();
            tunnels.follow(addresses(slices.values()));
            let mut events = match api.watch(&params, &version).await {
                Ok(events) => events.boxed(),
                Err(err) => {
                    tracing::debug!(%err, "watching the API servers' endpoints failed; re-listing");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            while let Some(Ok(event)) = events.next().await {
                let name = event.object.metadata.name.clone().unwrap_or_default();
                match event.event_type.as_str() {
                    "DELETED" => {
                        slices.remove(&name);
                    }
                    "ADDED" | "MODIFIED" => {
                        slices.insert(name, event.object);
                    }
                    _ => continue,
                }
                tunnels.follow(addresses(slices.values()));
            }
        }
    };
    tokio::select! {
        () = watching => {}
        () = stop.cancelled() => {}
    }
}

/// The tunnels to learned servers, each with the token that stops it.
struct Tunnels {
    open: BTreeMap<SocketAddr, CancellationToken>,
    given: BTreeSet<SocketAddr>,
    scheme: String,
    client: Client,
    node: String,
    app: Router,
    stop: CancellationToken,
}

impl Tunnels {
    /// Opens a tunnel to each server of `listed` not given nor open yet; stops those to
    /// servers no longer listed.
    fn follow(&mut self, listed: BTreeSet<SocketAddr>) {
        let wanted: BTreeSet<SocketAddr> = listed
            .into_iter()
            .filter(|server| !covers(&self.given, *server))
            .collect();
        self.open.retain(|server, stop| {
            let keep = wanted.contains(server);
            if !keep {
                tracing::info!(%server, "the API server left the kubernetes endpoints; closing its tunnel");
                stop.cancel();
            }
            keep
        });
        for server in wanted {
            if self.open.contains_key(&server) {
                continue;
            }
            tracing::info!(%server, "the kubernetes endpoints list a further API server; opening a tunnel");
            let stop = self.stop.child_token();
            tokio::spawn(super::tunnel::keep_open(
                self.client.clone(),
                format!("{}://{server}", self.scheme),
                self.node.clone(),
                self.app.clone(),
                stop.clone(),
            ));
            self.open.insert(server, stop);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(value: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn every_ready_address_at_every_port() {
        let slices = [
            slice(json!({
                "metadata": {"name": "kubernetes-7001"},
                "addressType": "IPv4",
                "endpoints": [
                    {"addresses": ["127.0.0.1"], "conditions": {"ready": true}},
                    {"addresses": ["10.0.0.9"], "conditions": {"ready": false}},
                ],
                "ports": [{"name": "https", "port": 7001, "protocol": "TCP"}],
            })),
            slice(json!({
                "metadata": {"name": "kubernetes-7002-ipv6"},
                "addressType": "IPv6",
                "endpoints": [{"addresses": ["::1"]}, {"addresses": ["not-an-ip"]}],
                "ports": [{"name": "https", "port": 7002, "protocol": "TCP"}],
            })),
        ];
        let found: Vec<String> = addresses(&slices).iter().map(|a| a.to_string()).collect();
        assert_eq!(found, ["127.0.0.1:7001", "[::1]:7002"]);
    }

    #[test]
    fn a_given_wildcard_covers_this_hosts_addresses_at_its_port() {
        let given = BTreeSet::from(["0.0.0.0:6443".parse().unwrap()]);
        assert!(covers(&given, "127.0.0.1:6443".parse().unwrap()));
        assert!(!covers(&given, "127.0.0.1:6444".parse().unwrap()));
        // A documentation address is no address of this host.
        assert!(!covers(&given, "192.0.2.7:6443".parse().unwrap()));
    }

    #[tokio::test]
    async fn given_servers_are_known_by_address() {
        let (scheme, given) = given(&[
            "https://127.0.0.1:7001".to_string(),
            "https://[::1]:7002".to_string(),
            "https://localhost:7003".to_string(),
        ])
        .await;
        assert_eq!(scheme, "https");
        assert!(given.contains(&"127.0.0.1:7001".parse().unwrap()));
        assert!(given.contains(&"[::1]:7002".parse().unwrap()));
        assert!(given
            .iter()
            .any(|a| a.port() == 7003 && a.ip().is_loopback()));
    }
}
