//! The registry: Kubernetes object semantics (admission, optimistic concurrency, graceful pod
//! deletion, watch) over the revisioned Raft store. The HTTP layer and the in-process
//! controllers both go through it, so every write takes the same path.

mod admission;
pub mod allocation;
mod codec;
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
mod rewrite;
mod runtime_class;
mod scale;
pub(crate) mod service_account;
#[cfg(test)]
mod shared_keys_tests;
mod storage_class;
pub mod strategic_merge;
mod strategy;
#[cfg(test)]
mod tests;
mod token_request;
pub mod typed;
mod watch;

use futures::StreamExt;
use serde_json::Value;
use skiff_api::resources::{self, ResourceKind};
use skiff_raft_store::{Compare, KeyValue, Op, OpResult, Store, Txn};

use self::codec::{decode, strip_version};
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

/// How many names a create with `generateName` draws before it answers AlreadyExists
/// (Kubernetes' API server tries eight).
const GENERATE_NAME_ATTEMPTS: u32 = 8;

/// How often a create charges its namespace's quotas again when a concurrent create moved
/// them first (Kubernetes' quota admission retries on conflict too).
const QUOTA_ATTEMPTS: u32 = 64;

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

    pub async fn get(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let kv = self.get_kv(kind, namespace, name).await?;
        decode(&kv)
    }

    pub(super) async fn get_kv(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<KeyValue, ApiError> {
        let key = kind.store_key(scope(kind, namespace), name);
        let kv = self
            .store
            .get(key.as_bytes())
            .await?
            .ok_or_else(|| ApiError::not_found(kind, name))?;
        Ok(self.encryption.open_kv(kv)?)
    }

    /// Lists objects of `kind` (all namespaces when `namespace` is `None`) and the revision read at.
    pub async fn list(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        options: &ListOptions,
    ) -> Result<(Vec<Value>, u64), ApiError> {
        let page = self
            .list_page(kind, namespace, options, None, None, ReadAt::Latest)
            .await?;
        Ok((page.items, page.revision))
    }

    /// Whether this member's store holds any object of `kind` in `namespace` (all namespaces
    /// when `None`): what an unfiltered `list` would say about emptiness, from the same local
    /// store and without a read barrier, for one key read instead of a range.
    pub(super) async fn any_stored(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
    ) -> Result<bool, ApiError> {
        let prefix = list_prefix(kind, namespace);
        Ok(self.store.has_prefix(prefix.as_bytes()).await?)
    }

    /// Creates an object after defaulting, admission and validation; 409 if the name is taken.
    pub async fn create(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        let generate_prefix = admission::generate_name_prefix(&obj);
        admission::prepare_create(kind, namespace, &mut obj)?;
        self.admit_runtime_class(kind, &mut obj).await?;
        self.admit_storage_class(kind, &mut obj).await?;
        self.admit_limit_ranges(kind, &mut obj, None).await?;
        admission::validate(kind, &obj)?;
        self.record_write(kind, None, &mut obj, Subresource::Main)?;
        let ns = object::namespace(&obj).map(str::to_string);
        if let Some(ns) = ns.as_deref() {
            self.ensure_namespace(ns).await?;
            self.admit_service_account(kind, &mut obj).await?;
            if kind == quotas() {
                obj["status"] = self.quota_status(ns, &obj).await?;
            }
        }
        let mut attempt = 1;
        loop {
            let name = object::name(&obj).unwrap_or_default().to_string();
            let key = kind.store_key(ns.as_deref(), &name);
            match self
                .write_charged(kind, ns.as_deref(), &key, &obj, None)
                .await?
            {
                Some(kv) => return decode(&kv),
                // A generated name that is taken is drawn again, as Kubernetes does since
                // 1.30, so creates with `generateName` do not fail as a collection grows.
                None => match generate_prefix.as_deref() {
                    Some(prefix) if attempt < GENERATE_NAME_ATTEMPTS => {
                        attempt += 1;
                        object::set_meta(&mut obj, "name", admission::generate_name(prefix));
                    }
                    _ => return Err(ApiError::already_exists(kind, &name)),
                },
            }
        }
    }

    /// Writes `obj` at `key` with what it is charged in its namespace's quotas, in one store
    /// transaction: a create (`previous` `None`) if the key is absent, an update of the
    /// `previous` stored object (its revision and value) if the key is still at it. A
    /// Service's allocations are written with it. `None` if the key moved (a create's name
    /// is taken, an update's object changed); the quotas are charged again when they moved.
    async fn write_charged(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        key: &str,
        obj: &Value,
        previous: Option<(&KeyValue, &Value)>,
    ) -> Result<Option<KeyValue>, ApiError> {
        let expected = previous.map_or(0, |(kv, _)| kv.mod_revision);
        let old = previous.map(|(_, old)| old);
        let mut quota_attempts = 0;
        loop {
            let charges = match namespace {
                Some(ns) => self.charge_quotas(kind, ns, obj, old).await?,
                None => Vec::new(),
            };
            let charged = match previous {
                Some((current, old)) if is_service(kind) => {
                    self.update_service(kind, current, old, obj, &charges)
                        .await?
                }
                None if is_service(kind) => self.create_service(kind, key, obj, &charges).await?,
                _ if charges.is_empty() || self.dry_run => {
                    match self.put_if(key, expected, obj).await? {
                        Some(kv) => quota::Charged::Stored(kv),
                        None => quota::Charged::ObjectMoved,
                    }
                }
                _ => self.put_charged(key, expected, obj, &charges).await?,
            };
            match charged {
                quota::Charged::Stored(kv) => return Ok(Some(kv)),
                quota::Charged::ObjectMoved => return Ok(None),
                quota::Charged::QuotaMoved if quota_attempts < QUOTA_ATTEMPTS => {
                    quota_attempts += 1;
                }
                quota::Charged::QuotaMoved => {
                    return Err(ApiError::Conflict {
                        resource: crate::error::qualified(kind),
                        name: object::name(obj).unwrap_or_default().to_string(),
                        message: "the namespace's quotas kept changing; try again".into(),
                    })
                }
            }
        }
    }

    async fn ensure_namespace(&self, namespace: &str) -> Result<(), ApiError> {
        let ns_kind = namespaces();
        match self.get_kv(ns_kind, None, namespace).await {
            Ok(_) => Ok(()),
            Err(ApiError::NotFound { .. }) => Err(ApiError::not_found(ns_kind, namespace)),
            Err(other) => Err(other),
        }
    }

    /// Replaces an object (or its status). A `metadata.resourceVersion` in `obj` that is not
    /// the current one fails with 409; an absent one means an unconditional update.
    pub async fn update(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        obj: Value,
        subresource: Subresource,
    ) -> Result<Value, ApiError> {
        let expected = object::resource_version(&obj).map_err(ApiError::BadRequest)?;
        // Compared against the current object, not a replica that may trail the client.
        self.read_barrier().await?;
        let current = self.get_kv(kind, namespace, name).await?;
        if expected.is_some_and(|rv| rv != current.mod_revision) {
            return Err(ApiError::stale(kind, name));
        }
        self.update_from(kind, namespace, name, &current, obj, subresource)
            .await
    }

    pub(super) async fn update_from(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        current: &KeyValue,
        obj: Value,
        subresource: Subresource,
    ) -> Result<Value, ApiError> {
        let old = decode(current)?;
        let mut new = admission::prepare_update(kind, namespace, name, &old, obj, subresource)?;
        if strip_version(&new) == strip_version(&old) {
            return Ok(old);
        }
        self.record_write(kind, Some(&old), &mut new, subresource)?;
        let key = kind.store_key(scope(kind, namespace), name);
        let stored = if subresource == Subresource::Main {
            self.admit_limit_ranges(kind, &mut new, Some(&old)).await?;
            let ns = scope(kind, namespace);
            self.write_charged(kind, ns, &key, &new, Some((current, &old)))
                .await?
        } else {
            self.put_if(&key, current.mod_revision, &new).await?
        };
        let Some(kv) = stored else {
            return Err(ApiError::stale(kind, name));
        };
        let stored = decode(&kv)?;
        if finalizers::ready_to_remove(&stored) {
            // The update removed the last finalizer of an object being deleted: it goes now.
            let removed = if is_service(kind) {
                self.delete_service(&kv, &stored).await?
            } else {
                self.delete_if(&kv).await?
            };
            if removed.is_none() {
                tracing::debug!(name, "a finalized object changed again before its removal");
            }
        }
        Ok(stored)
    }

    /// Binds a pod to a node (the `pods/binding` subresource); 409 if it is already bound.
    pub async fn bind(&self, namespace: &str, name: &str, node: &str) -> Result<Value, ApiError> {
        let kind = pods();
        let current = self.get_kv(kind, Some(namespace), name).await?;
        let mut pod = decode(&current)?;
        if let Some(bound) = pod.pointer("/spec/nodeName").and_then(Value::as_str) {
            if !bound.is_empty() {
                return Err(ApiError::Conflict {
                    resource: crate::error::qualified(kind),
                    name: name.to_string(),
                    message: format!("pod {name} is already assigned to node \"{bound}\""),
                });
            }
        }
        if object::meta_str(&pod, "deletionTimestamp").is_some() {
            return Err(ApiError::Conflict {
                resource: crate::error::qualified(kind),
                name: name.to_string(),
                message: "pod is being deleted, cannot be assigned to a host".into(),
            });
        }
        pod["spec"]["nodeName"] = Value::String(node.to_string());
        strategy::mark_scheduled(&mut pod);
        let key = kind.store_key(Some(namespace), name);
        match self.put_if(&key, current.mod_revision, &pod).await? {
            Some(kv) => decode(&kv),
            None => Err(ApiError::stale(kind, name)),
        }
    }

    /// Streams changes to objects of `kind` matching `options`. Without `from`, the stream
    /// starts with an ADDED event for every existing object, as Kubernetes does.
    pub async fn watch(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        options: ListOptions,
        from: Option<u64>,
    ) -> Result<WatchStream, ApiError> {
        let prefix = list_prefix(kind, namespace);
        let (initial, start) = match from {
            Some(rv) => (Vec::new(), rv + 1),
            None => {
                let (items, revision) = self.list(kind, namespace, &options).await?;
                (items, revision + 1)
            }
        };
        if let Some(node) = strategy::of(kind).node_index(&options) {
            return self.watch_node(&node, prefix, initial, start, options);
        }
        let live = self.store.watch(prefix.as_bytes(), start)?;
        let encryption = self.encryption.clone();
        let events = watch::receiver_stream(live.events)
            .filter_map(move |e| std::future::ready(encryption.open_event(e)));
        Ok(watch::stream(initial, events, options, start - 1))
    }

    /// A watch of one node's pods from `start`: history up to the shared hub's revision,
    /// then the hub's routed events (see `node_watch`).
    fn watch_node(
        &self,
        node: &str,
        prefix: String,
        initial: Vec<Value>,
        start: u64,
        options: ListOptions,
    ) -> Result<WatchStream, ApiError> {
        let subscription = self.node_watches.subscribe(node);
        let replay = if start <= subscription.revision {
            self.node_watches
                .history(node, start, subscription.revision)?
        } else {
            Vec::new()
        };
        let live = watch::receiver_stream(subscription.events);
        let events = futures::stream::iter(replay.into_iter().map(std::sync::Arc::new))
            .chain(live)
            .filter(move |e| {
                let keep = e.revision() >= start && e.kv.key.starts_with(prefix.as_bytes());
                std::future::ready(keep)
            });
        Ok(watch::stream(initial, events, options, start - 1))
    }

    /// Puts `obj` at `key` if the key's revision is `expected` (0: absent); `None` on mismatch.
    async fn put_if(
        &self,
        key: &str,
        expected: u64,
        obj: &Value,
    ) -> Result<Option<KeyValue>, ApiError> {
        let plain = codec::encode(obj)?;
        if self.dry_run {
            return self.check_put(key, expected, plain).await;
        }
        let value = self.encryption.seal(key.as_bytes(), plain.clone())?;
        let response = self
            .store
            .txn(Txn {
                compare: vec![Compare::ModRevision {
                    key: key.as_bytes().to_vec(),
                    revision: expected,
                }],
                success: vec![Op::Put {
                    key: key.as_bytes().to_vec(),
                    value,
                }],
                failure: vec![],
            })
            .await?;
        if !response.succeeded {
            return Ok(None);
        }
        match response.results.into_iter().next() {
            // Answered in clear: what was written is what the caller asked for.
            Some(OpResult::Put { mut kv, .. }) => {
                kv.value = plain;
                Ok(Some(kv))
            }
            other => Err(ApiError::Internal(format!(
                "store answered a put with {other:?}"
            ))),
        }
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
