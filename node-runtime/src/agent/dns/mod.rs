//! Node-local cluster DNS (kube-dns's role, served by every agent as NodeLocal DNSCache is):
//! records for Services and their endpoints (`records.rs`) from mirrors of Services and
//! EndpointSlices, answered on the cluster DNS address, port 53, UDP and TCP (`server.rs`,
//! `message.rs`); other names are relayed to the node's resolvers (`upstream.rs`). The
//! address is the `kube-dns` Service's ClusterIP, which the node proxy holds on the service
//! link, so the server binds once the proxy has it. Pods' resolver settings follow their
//! `dnsPolicy` (`pod_config.rs`).

mod message;
mod pod_config;
mod records;
mod resolv_conf;
mod server;
mod upstream;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use skiff_api::k8s_openapi::api::core::v1::Service;
use skiff_api::k8s_openapi::api::discovery::v1::EndpointSlice;
use skiff_client::Client;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::proxy::mirror;
pub use pod_config::pod_dns;
pub use resolv_conf::node_resolvers;

/// Pause between attempts to bind the cluster DNS address (until the proxy holds it).
const BIND_RETRY: Duration = Duration::from_secs(1);

/// Whether the node serves cluster DNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsMode {
    /// The agent answers on the cluster DNS address, port 53 (UDP and TCP).
    NodeLocal,
    /// No DNS server here: `ClusterFirst` pods get the node's resolvers, as the kubelet
    /// gives them without `--cluster-dns`.
    None,
}

/// The cluster's DNS settings as the node sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDns {
    /// Whether this node answers cluster DNS itself (`--dns`).
    pub mode: DnsMode,
    /// The `kube-dns` Service's ClusterIP (`--cluster-dns`).
    pub address: Ipv4Addr,
    /// `cluster.local` (`--cluster-domain`).
    pub domain: String,
}

impl Default for ClusterDns {
    /// Off, at k3s's address and domain.
    fn default() -> Self {
        ClusterDns {
            mode: DnsMode::None,
            address: skiff_api::dns::DEFAULT_CLUSTER_DNS,
            domain: skiff_api::dns::DEFAULT_CLUSTER_DOMAIN.into(),
        }
    }
}

/// Serves cluster DNS on `dns.address`:53 until `stop`, in the background.
pub fn start(client: Client, dns: &ClusterDns, stop: CancellationToken) {
    let services: mirror::Objects<Service> = Arc::default();
    let slices: mirror::Objects<EndpointSlice> = Arc::default();
    let changed = Arc::new(Notify::new());
    tokio::spawn(mirror::run(
        client.clone(),
        services.clone(),
        changed.clone(),
        stop.clone(),
    ));
    tokio::spawn(mirror::run(
        client,
        slices.clone(),
        changed.clone(),
        stop.clone(),
    ));
    let domain = dns.domain.clone();
    let (zone, zone_reader) = watch::channel(Arc::new(records::Zone::build(&domain, [], [])));
    let zone_stop = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = zone_stop.cancelled() => return,
                _ = changed.notified() => {}
            }
            let built = {
                let services = services.lock().expect("mirror lock");
                let slices = slices.lock().expect("mirror lock");
                records::Zone::build(&domain, services.values(), slices.values())
            };
            zone.send_replace(Arc::new(built));
        }
    });
    let host = resolv_conf::read(Path::new(resolv_conf::HOST_RESOLV_CONF));
    let resolver = server::Resolver {
        zone: zone_reader,
        upstream: Arc::new(upstream::Upstream::new(
            &host.nameservers,
            IpAddr::V4(dns.address),
        )),
    };
    let addr = SocketAddr::from((dns.address, 53));
    tokio::spawn(async move {
        let mut warned = false;
        let (udp, tcp) = loop {
            match server::bind(addr).await {
                Ok(sockets) => break sockets,
                Err(err) if !warned => {
                    tracing::warn!(%addr, %err, "cluster DNS cannot bind yet; retrying");
                    warned = true;
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(BIND_RETRY) => {}
            }
        };
        tracing::info!(%addr, "cluster DNS serving");
        server::serve(udp, tcp, resolver, stop).await;
    });
}

#[cfg(test)]
mod tests;
