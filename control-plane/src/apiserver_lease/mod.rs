//! The API servers publish themselves, as kube-apiserver does: each member renews a Lease of
//! its own in `kube-system` (named after its identity, labelled
//! `apiserver.kubernetes.io/identity: kube-apiserver`) that carries the API address it
//! advertises, and the leader keeps the `default/kubernetes` Service's EndpointSlices (and its
//! v1 Endpoints) listing the members whose leases are live. Agents read those slices to find
//! every API server.

pub mod plan;
mod publish;
mod reconcile;

use std::time::Duration;

pub use publish::{advertised_address, spawn as spawn_publisher};
pub use reconcile::spawn as spawn_reconciler;

/// Where the members' leases live, as kube-apiserver's identity leases do.
pub const LEASE_NAMESPACE: &str = "kube-system";
/// The label every member lease carries, with [`IDENTITY_VALUE`].
pub const IDENTITY_LABEL: &str = "apiserver.kubernetes.io/identity";
/// kube-apiserver's value of [`IDENTITY_LABEL`].
pub const IDENTITY_VALUE: &str = "kube-apiserver";
/// The annotation of a member lease holding the member's advertised `IP:PORT`.
pub const ADDRESS_ANNOTATION: &str = "skiff.dev/advertise-address";
/// The Service whose endpoints are the API servers.
pub const SERVICE: &str = "kubernetes";
/// The Service's namespace.
pub const SERVICE_NAMESPACE: &str = "default";
/// The name of the Service's port (and of its slices' ports).
pub const PORT_NAME: &str = "https";
/// Default lease duration: kube-apiserver's master lease TTL (`--endpoint-reconciler-type=lease`).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);

/// The lease name of member `member` (`apiserver-` and its name, lower-cased).
pub fn lease_name(member: &str) -> String {
    format!("apiserver-{}", member.to_ascii_lowercase())
}
