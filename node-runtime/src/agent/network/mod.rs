//! Pod networking on the node (the CNI bridge plugin's and flannel host-gw's part): a bridge
//! holding the gateway of the node's pod CIDR (`bridge.rs`), per pod a network namespace held
//! by a descriptor (`netns.rs`) linked to the bridge by a veth pair (`pod_link.rs`) with an
//! address from the CIDR (`ipam.rs`), and routes to the other nodes' CIDRs (`routes.rs`).

mod bridge;
mod ipam;
mod links;
mod masquerade;
mod netns;
mod pod_link;
pub mod routes;
pub mod service_link;

use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use ipnet::Ipv4Net;
use skiff_api::k8s_openapi::api::core::v1::Node;
use skiff_client::{Client, ListParams};
use tokio_util::sync::CancellationToken;

pub use ipam::Exhausted;

use crate::runtime::PodNetwork;

/// The bridge's name when none is given.
pub const DEFAULT_BRIDGE: &str = "skiff0";

/// How the node's pods are networked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodNetworkMode {
    /// Pods share the node's network and report its address.
    Host,
    /// Each pod gets a namespace and an address of the node's pod CIDR on bridge `bridge`;
    /// with a `cluster_cidr`, pod traffic to destinations outside it is masqueraded.
    Bridge {
        bridge: String,
        cluster_cidr: Option<Ipv4Net>,
    },
}

/// Why the pod network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("{step}: {source}")]
    Netlink {
        step: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("{step}: {source}")]
    Io {
        step: String,
        #[source]
        source: io::Error,
    },
    #[error("link {name} is missing right after it was made")]
    LinkMissing { name: String },
    #[error("the node's pod CIDR {cidr:?} is not an IPv4 CIDR")]
    Cidr { cidr: String },
    #[error("nft refused the masquerade rules: {message}")]
    Nft { message: String },
    #[error(transparent)]
    Exhausted(#[from] Exhausted),
}

impl NetworkError {
    fn netlink(step: String) -> impl FnOnce(rtnetlink::Error) -> NetworkError {
        move |source| NetworkError::Netlink { step, source }
    }

    fn io(step: String) -> impl FnOnce(io::Error) -> NetworkError {
        move |source| NetworkError::Io { step, source }
    }
}

/// The node's pod network: its CIDR, bridge and the addresses its pods hold.
pub struct PodNetworks {
    cidr: Ipv4Net,
    bridge: u32,
    host: rtnetlink::Handle,
    addresses: Mutex<ipam::Ipam>,
}

impl PodNetworks {
    /// Makes the bridge for pod CIDR `cidr`, masquerades pod traffic leaving `cluster_cidr`
    /// (if given), and keeps the routes to the other nodes' pod CIDRs until `stop`.
    pub async fn start(
        cidr: &str,
        bridge: &str,
        cluster_cidr: Option<Ipv4Net>,
        client: Client,
        node: String,
        stop: CancellationToken,
    ) -> Result<Arc<PodNetworks>, NetworkError> {
        let cidr: Ipv4Net = cidr.parse().map_err(|_| NetworkError::Cidr {
            cidr: cidr.to_string(),
        })?;
        let (connection, host, _) =
            rtnetlink::new_connection().map_err(NetworkError::io("opening netlink".into()))?;
        tokio::spawn(connection);
        let index = bridge::ensure(&host, bridge, cidr).await?;
        if let Some(cluster) = cluster_cidr {
            // Pods still reach every node and pod without it: a warning, not a failure.
            if let Err(err) = masquerade::ensure(cidr, cluster).await {
                tracing::warn!(%err, "pod traffic leaving the cluster is not masqueraded");
            }
        }
        tracing::info!(%cidr, bridge, "pod network ready");
        tokio::spawn(routes::run(client, node, host.clone(), stop));
        Ok(Arc::new(PodNetworks {
            cidr,
            bridge: index,
            host,
            addresses: Mutex::new(ipam::Ipam::new(cidr)),
        }))
    }

    /// A network namespace for pod `uid`, linked to the bridge, with an address of its own.
    pub async fn attach(&self, uid: &str) -> Result<PodNetwork, NetworkError> {
        let ip = self.addresses.lock().expect("ipam lock").allocate(uid)?;
        let attached = async {
            let namespace = netns::create().await.map_err(NetworkError::io(
                "creating the pod's network namespace".into(),
            ))?;
            pod_link::attach(&self.host, self.bridge, &namespace, uid, ip, self.cidr).await?;
            Ok(namespace.fd)
        }
        .await;
        match attached {
            Ok(fd) => Ok(PodNetwork {
                ip: IpAddr::V4(ip),
                netns: Arc::new(fd),
            }),
            Err(err) => {
                self.detach(uid).await;
                Err(err)
            }
        }
    }

    /// Removes pod `uid`'s link and frees its address (its namespace goes with the last
    /// descriptor).
    pub async fn detach(&self, uid: &str) {
        if let Err(err) = links::delete(&self.host, &pod_link::host_name(uid)).await {
            tracing::warn!(uid, %err, "removing the pod's link failed");
        }
        self.addresses.lock().expect("ipam lock").release(uid);
    }
}

/// Waits until Node `node` has a pod CIDR (given by the control plane) and returns it; None
/// if `stop` comes first. Lists and watches the one Node, as the routes do all of them.
pub async fn wait_for_pod_cidr(
    client: &Client,
    node: &str,
    stop: &CancellationToken,
) -> Option<String> {
    let nodes = client.api::<Node>(None);
    let params = ListParams {
        field_selector: Some(format!("metadata.name={node}")),
        ..ListParams::default()
    };
    tracing::info!(
        node,
        "waiting for the control plane to give this node a pod CIDR"
    );
    loop {
        let version = match nodes.list(&params).await {
            Ok((list, version)) => {
                if let Some(cidr) = list.iter().find_map(pod_cidr) {
                    return Some(cidr);
                }
                version
            }
            Err(err) => {
                tracing::debug!(%err, "reading the node for its pod CIDR failed; retrying");
                if routes::wait(stop, routes::RETRY).await {
                    return None;
                }
                continue;
            }
        };
        let mut events = match nodes.watch(&params, &version).await {
            Ok(events) => events.boxed(),
            Err(err) => {
                tracing::debug!(%err, "watching the node for its pod CIDR failed; re-listing");
                if routes::wait(stop, routes::RETRY).await {
                    return None;
                }
                continue;
            }
        };
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return None,
                event = events.next() => event,
            };
            let Some(Ok(event)) = event else { break };
            if let Some(cidr) = pod_cidr(&event.object) {
                return Some(cidr);
            }
        }
    }
}

/// The node's pod CIDR, if the control plane gave it one.
fn pod_cidr(node: &Node) -> Option<String> {
    node.spec
        .as_ref()
        .and_then(|s| s.pod_cidr.clone())
        .filter(|c| !c.is_empty())
}
