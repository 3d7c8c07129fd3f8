//! The node proxy (kube-proxy's role), in userspace: every Service's ClusterIP is a local
//! address of the service link, and for each TCP and UDP Service port the agent listens on
//! CLUSTER_IP:PORT (and 0.0.0.0:NODEPORT for NodePort Services), joining each connection to
//! a ready endpoint in turn (`table.rs`, `balancer.rs`, `frontend.rs`), and each UDP client's
//! datagrams to one endpoint for as long as its flow lives (`udp.rs`). Services and
//! EndpointSlices are mirrored by list and watch (`mirror.rs`); listeners follow them
//! (`listeners.rs`). Userspace rather than nftables DNAT: it needs no conntrack or rule
//! language, works the same for every runtime, and its failure handling is code we test.

pub(super) mod balancer;
mod frontend;
pub(super) mod listeners;
pub(super) mod mirror;
pub(super) mod table;
mod udp;

use std::sync::Arc;
use std::time::Duration;

use skiff_api::k8s_openapi::api::core::v1::Service;
use skiff_api::k8s_openapi::api::discovery::v1::EndpointSlice;
use skiff_client::Client;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::network::service_link::ServiceLink;
use super::network::NetworkError;

/// Pause before trying again a listener that could not bind, or a ClusterIP not held.
const RETRY: Duration = Duration::from_secs(2);

/// Whether the node proxies Services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// The agent listens on ClusterIPs and NodePorts and copies bytes to endpoints.
    Userspace,
    /// No Service data plane on this node.
    None,
}

/// Makes the service link and proxies the cluster's Services for node `node` until `stop`.
pub async fn start(
    client: Client,
    node: String,
    stop: CancellationToken,
) -> Result<(), NetworkError> {
    let link = ServiceLink::create().await?;
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
    tokio::spawn(serve(link, node, services, slices, changed, stop));
    tracing::info!("node proxy started (userspace)");
    Ok(())
}

/// Makes the link's addresses and the listeners follow the mirrors.
async fn serve(
    mut link: ServiceLink,
    node: String,
    services: mirror::Objects<Service>,
    slices: mirror::Objects<EndpointSlice>,
    changed: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut listeners = listeners::Listeners::default();
    let mut complete = true;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = changed.notified() => {}
            _ = tokio::time::sleep(RETRY), if !complete => {}
        }
        let table = {
            let services = services.lock().expect("mirror lock");
            let slices = slices.lock().expect("mirror lock");
            table::build(services.values(), slices.values(), &node)
        };
        complete = match link.hold(&table.cluster_ips).await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(%err, "the service link does not hold every ClusterIP");
                false
            }
        };
        complete &= listeners.apply(&table.frontends).await;
    }
}
