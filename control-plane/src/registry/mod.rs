//! The registry: Kubernetes object semantics (admission, optimistic concurrency, graceful pod
//! deletion, watch) over the revisioned Raft store. The HTTP layer and the in-process
//! controllers both go through it, so every write takes the same path.

mod admission;
pub mod allocation;
mod bind;
mod codec;
mod create;
mod delete;
mod delete_collection;
mod dry_run;
#[cfg(test)]
mod encryption_tests;
pub mod eviction;
mod field_manager;
pub mod finalizers;
mod node_watch;
pub mod object;
mod pagination;
mod patch;
mod quota;
#[cfg(test)]
mod quota_tests;
mod read;
mod rewrite;
mod runtime_class;
mod scale;
pub(crate) mod service_account;
#[cfg(test)]
mod shared_keys_tests;
mod storage_class;
mod store_write;
pub mod strategic_merge;
mod strategy;
#[cfg(test)]
mod tests;
mod token_request;
pub mod typed;
mod update;
mod watch;
mod watch_open;

use skiff_api::resources::{self, ResourceKind};
use skiff_raft_store::Store;

use crate::encryption::Encryption;
use crate::error::ApiError;
use crate::serviceaccount::TokenIssuer;
pub use delete::DeleteOptions;
pub use field_manager::FieldManager;
pub use pagination::{Page, ReadAt};
pub use patch::{unguarded, Guard};
pub use rewrite::Rewritten;
pub use scale::has_scale_subresource;
pub use token_request::Requester;
pub use watch::{ListOptions, WatchEvent, WatchEventType, WatchStream};

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// Everything but `status`.
    Main,
    /// Only `status`.
    Status,
    /// Only the Approved and Denied conditions of a CertificateSigningRequest (`/approval`).
    Approval,
}

/// Object storage with Kubernetes semantics; cheap to clone.
#[derive(Clone)]
pub struct Registry {
    store: Store,
    node_watches: node_watch::NodeWatchHub,
    /// Writes are checked (admission, validation, preconditions) but not made (`dryRun=All`).
    dry_run: bool,
    /// Where Services get their ClusterIPs and NodePorts.
    service_ranges: allocation::ServiceRanges,
    /// Seals and opens the values of the resources encrypted at rest.
    encryption: Encryption,
    /// Signs ServiceAccount tokens; without it (a server without TLS) pods get no token volume.
    tokens: Option<TokenIssuer>,
    /// Whose creates and updates these are, recorded in `managedFields` (none: the server's
    /// own writes, which keep the entries as they are).
    field_manager: Option<FieldManager>,
}

impl Registry {
    pub fn new(store: Store) -> Self {
        let pod_prefix = pods().store_prefix(None);
        Registry {
            node_watches: node_watch::NodeWatchHub::new(
                store.clone(),
                pod_prefix,
                Encryption::identity(),
            ),
            store,
            dry_run: false,
            service_ranges: allocation::ServiceRanges::default(),
            encryption: Encryption::identity(),
            tokens: None,
            field_manager: None,
        }
    }

    /// This registry with ServiceAccount tokens signed by `tokens`.
    pub fn with_tokens(self, tokens: Option<TokenIssuer>) -> Self {
        Registry { tokens, ..self }
    }

    /// What signs ServiceAccount tokens, if this server makes them.
    pub fn tokens(&self) -> Option<&TokenIssuer> {
        self.tokens.as_ref()
    }

    /// This registry with values sealed and opened by `encryption` (its node watch hub too).
    pub fn with_encryption(self, encryption: Encryption) -> Self {
        let pod_prefix = pods().store_prefix(None);
        Registry {
            node_watches: node_watch::NodeWatchHub::new(
                self.store.clone(),
                pod_prefix,
                encryption.clone(),
            ),
            encryption,
            ..self
        }
    }

    /// How this registry's values are encrypted at rest.
    pub fn encryption(&self) -> &Encryption {
        &self.encryption
    }

    /// This registry with Services drawing from `ranges` instead of the defaults.
    pub fn with_service_ranges(self, ranges: allocation::ServiceRanges) -> Self {
        Registry {
            service_ranges: ranges,
            ..self
        }
    }

    /// The ranges Services draw their ClusterIPs and NodePorts from.
    pub fn service_ranges(&self) -> &allocation::ServiceRanges {
        &self.service_ranges
    }

    /// The store's latest revision.
    pub fn revision(&self) -> u64 {
        self.store.revision()
    }

    /// The store this registry reads and writes.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Makes the reads that follow linearizable: this member first applies everything the
    /// leader had committed (what Kubernetes gets from etcd's quorum reads).
    pub async fn read_barrier(&self) -> Result<(), ApiError> {
        Ok(self.store.read_barrier().await?)
    }
}

/// Whether `kind` takes `status` only through its `/status` subresource.
pub fn has_status_subresource(kind: &ResourceKind) -> bool {
    strategy::of(kind).has_status_subresource()
}

/// The namespace to address: `None` for cluster-scoped kinds whatever the caller passed.
fn scope<'a>(kind: &ResourceKind, namespace: Option<&'a str>) -> Option<&'a str> {
    if kind.namespaced {
        namespace
    } else {
        None
    }
}

/// The store prefix of the objects of `kind` in `namespace` (all namespaces when `None`),
/// which lists and watches read.
fn list_prefix(kind: &ResourceKind, namespace: Option<&str>) -> String {
    kind.store_prefix(scope(kind, namespace))
}

/// Services hold allocations that are written with them.
fn is_service(kind: &ResourceKind) -> bool {
    kind.group.is_empty() && kind.kind == "Service"
}

fn pods() -> &'static ResourceKind {
    resources::by_name("pods").expect("pods are served")
}

fn quotas() -> &'static ResourceKind {
    resources::by_name("resourcequotas").expect("resourcequotas are served")
}

fn namespaces() -> &'static ResourceKind {
    resources::by_name("namespaces").expect("namespaces are served")
}
