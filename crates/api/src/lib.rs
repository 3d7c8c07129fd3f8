//! Kubernetes-shaped resource types for Skiff, and what can be said about them without I/O:
//! the kinds served, quantities, label and field selectors, defaulting and validation.
//!
//! Typed objects come from `k8s-openapi` (re-exported), so a plain Kubernetes manifest parses
//! unchanged.

pub use k8s_openapi;

/// The largest request body the API server accepts, in bytes (3 MiB, as Kubernetes); larger
/// ones get a 413 `Status` after no more than this much was read.
pub const MAX_REQUEST_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The largest object the store keeps, in bytes of its stored JSON (etcd's 1.5 MiB request
/// limit); a write of a larger one gets a 413 `Status` naming the object.
pub const MAX_OBJECT_BYTES: usize = 1536 * 1024;

pub mod admission;
pub mod backoff;
pub mod batch;
pub mod capabilities;
pub mod cert_renewal;
pub mod certificates;
pub mod cron;
pub mod defaults;
pub mod dns;
pub mod events;
pub mod hash;
pub mod host_ports;
pub mod image;
pub mod ingress;
pub mod intstr;
pub mod join_token;
pub mod manifest;
pub mod nesting;
pub mod ownership;
pub mod platform;
pub mod pod_cidr;
pub mod portforward;
pub mod printers;
pub mod probes;
pub mod quantity;
pub mod remotecommand;
pub mod requests;
pub mod resources;
pub mod runtime_class;
pub mod selector;
pub mod stats;
pub mod storage;
pub mod strict;
pub mod time;
pub mod token_secret;
pub mod validation;
