//! The node's service link: a dummy interface holding every Service's ClusterIP as a local
//! /32 address, so the node proxy can listen on CLUSTER_IP:PORT and pods reach it through
//! their default route to the node (as kube-proxy's ipvs mode does with `kube-ipvs0`).
//! Where the kernel has no dummy links (some containers), the addresses go on `lo` instead;
//! those a previous run left there stay until the agent holds that set again.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::{Handle, LinkDummy};

use super::{links, NetworkError};

/// The service link's name.
pub const SERVICE_LINK: &str = "skiff-svc";
/// Where ClusterIPs go when no dummy link can be made.
const LOOPBACK: &str = "lo";

/// The service link and the ClusterIPs it holds.
pub struct ServiceLink {
    netlink: Handle,
    name: &'static str,
    index: u32,
    held: BTreeSet<Ipv4Addr>,
}

impl ServiceLink {
    /// Makes the service link afresh (dropping addresses a previous run left), up; or takes
    /// `lo` when the kernel makes no dummy links.
    pub async fn create() -> Result<ServiceLink, NetworkError> {
        let (connection, netlink, _) =
            rtnetlink::new_connection().map_err(NetworkError::io("opening netlink".into()))?;
        tokio::spawn(connection);
        links::delete(&netlink, SERVICE_LINK).await?;
        let name = match netlink
            .link()
            .add(LinkDummy::new(SERVICE_LINK).build())
            .execute()
            .await
        {
            Ok(()) => SERVICE_LINK,
            Err(err) => {
                tracing::warn!(%err, "no dummy link {SERVICE_LINK}; ClusterIPs go on {LOOPBACK}");
                LOOPBACK
            }
        };
        let index = links::require(&netlink, name).await?;
        links::up(&netlink, index, name).await?;
        Ok(ServiceLink {
            netlink,
            name,
            index,
            held: BTreeSet::new(),
        })
    }

    /// Makes the link hold exactly `ips`.
    pub async fn hold(&mut self, ips: &BTreeSet<Ipv4Addr>) -> Result<(), NetworkError> {
        for ip in self.held.difference(ips).copied().collect::<Vec<_>>() {
            self.release(ip).await?;
            self.held.remove(&ip);
        }
        for ip in ips.difference(&self.held).copied().collect::<Vec<_>>() {
            links::address(&self.netlink, self.index, ip, 32, self.name).await?;
            self.held.insert(ip);
        }
        Ok(())
    }

    async fn release(&self, ip: Ipv4Addr) -> Result<(), NetworkError> {
        let step = || format!("removing {ip} from {}", self.name);
        let found: Vec<_> = self
            .netlink
            .address()
            .get()
            .set_link_index_filter(self.index)
            .set_address_filter(IpAddr::V4(ip))
            .execute()
            .try_collect()
            .await
            .map_err(NetworkError::netlink(step()))?;
        for address in found {
            self.netlink
                .address()
                .del(address)
                .execute()
                .await
                .map_err(NetworkError::netlink(step()))?;
        }
        Ok(())
    }
}
