//! Each member's own lease: created, then renewed a third of its duration apart (kube-apiserver
//! renews its identity lease every 10 s of 3600, its master lease every 10 s of 15), on every
//! member, leader or not; a follower's write goes through the leader like any other.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use serde_json::{json, Value};
use skiff_api::k8s_openapi::api::coordination::v1::Lease;
use skiff_api::resources;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{lease_name, ADDRESS_ANNOTATION, IDENTITY_LABEL, IDENTITY_VALUE, LEASE_NAMESPACE};
use crate::error::ApiError;
use crate::registry::{Registry, Subresource};

/// The address this member advertises: `configured` (`--advertise-address`), else the address
/// it listens on; a wildcard host becomes the address of the interface the default route
/// leaves by (as kube-apiserver chooses its host interface), loopback on a host without one.
pub fn advertised_address(configured: Option<IpAddr>, listening: SocketAddr) -> SocketAddr {
    let ip = match configured {
        Some(ip) => ip,
        None if listening.ip().is_unspecified() => default_route_ip(listening.is_ipv6()),
        None => listening.ip(),
    };
    SocketAddr::new(ip, listening.port())
}

/// The source address of the default route: a UDP socket "connected" to a documentation
/// address (no packet is sent) reports which local address the kernel would use.
fn default_route_ip(ipv6: bool) -> IpAddr {
    let (any, probe, loopback): (IpAddr, IpAddr, IpAddr) = if ipv6 {
        let probe = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        (
            Ipv6Addr::UNSPECIFIED.into(),
            probe.into(),
            Ipv6Addr::LOCALHOST.into(),
        )
    } else {
        let probe = Ipv4Addr::new(192, 0, 2, 1);
        (
            Ipv4Addr::UNSPECIFIED.into(),
            probe.into(),
            Ipv4Addr::LOCALHOST.into(),
        )
    };
    UdpSocket::bind(SocketAddr::new(any, 0))
        .and_then(|socket| {
            socket.connect(SocketAddr::new(probe, 9))?;
            socket.local_addr()
        })
        .map(|local| local.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(loopback)
}

/// Keeps member `member`'s lease, advertising `address`, renewed until `shutdown`.
pub fn spawn(
    registry: Registry,
    member: String,
    address: SocketAddr,
    duration: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let renew_every = (duration / 3).max(Duration::from_millis(100));
    tokio::spawn(async move {
        loop {
            if let Err(err) = renew(&registry, &member, address, duration).await {
                // Before the first leader made kube-system, or while no member leads.
                tracing::debug!(%err, "renewing this API server's lease failed; retrying");
            }
            tokio::select! {
                () = tokio::time::sleep(renew_every) => {}
                () = shutdown.cancelled() => return,
            }
        }
    })
}

/// Writes the lease with a fresh `renewTime`: an update, or a create the first time.
async fn renew(
    registry: &Registry,
    member: &str,
    address: SocketAddr,
    duration: Duration,
) -> Result<(), ApiError> {
    let kind = resources::of::<Lease>();
    let name = lease_name(member);
    let lease = lease_object(&name, address, duration);
    match registry
        .update(
            kind,
            Some(LEASE_NAMESPACE),
            &name,
            lease.clone(),
            Subresource::Main,
        )
        .await
    {
        Err(ApiError::NotFound { .. }) => {
            registry.create(kind, Some(LEASE_NAMESPACE), lease).await?;
            tracing::info!(lease = %name, %address, "this API server's lease created");
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

fn lease_object(name: &str, address: SocketAddr, duration: Duration) -> Value {
    let seconds = i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let now = jiff::Timestamp::now();
    let micros = jiff::Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now);
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": LEASE_NAMESPACE,
            "labels": {IDENTITY_LABEL: IDENTITY_VALUE},
            "annotations": {ADDRESS_ANNOTATION: address.to_string()},
        },
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": seconds,
            "renewTime": micros.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advertised_address_keeps_the_listening_port() {
        let listening: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        assert_eq!(advertised_address(None, listening), listening);
        let given: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(
            advertised_address(Some(given), listening),
            "10.1.2.3:7001".parse().unwrap()
        );
        let wildcard = advertised_address(None, "0.0.0.0:6443".parse().unwrap());
        assert!(!wildcard.ip().is_unspecified(), "{wildcard}");
        assert!(wildcard.is_ipv4());
        assert_eq!(wildcard.port(), 6443);
    }
}
