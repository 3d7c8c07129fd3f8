//! A shared informer (kube-rs's reflector): list + watch of one kind into an in-memory cache,
//! with change notifications and "read your own writes" waiting.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use skiff_api::resources;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::registry::{object, typed, ListOptions, Registry, WatchEventType};

/// `namespace/name`, or `name` for cluster-scoped objects.
pub type ObjectKey = String;

/// The key of an object as informers and work queues use it.
pub fn key_of<K: typed::Object>(obj: &K) -> ObjectKey {
    let meta = obj.metadata();
    object_key(
        meta.namespace.as_deref(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

pub fn object_key(namespace: Option<&str>, name: &str) -> ObjectKey {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// A cache change: (`None`, `Some`) added, (`Some`, `Some`) modified, (`Some`, `None`) deleted.
#[derive(Clone)]
pub struct Change<K> {
    pub old: Option<Arc<K>>,
    pub new: Option<Arc<K>>,
}

/// The cache and its index of objects by controller uid.
struct Cache<K> {
    objects: HashMap<ObjectKey, Arc<K>>,
    by_controller: HashMap<String, HashSet<ObjectKey>>,
}

impl<K: typed::Object> Cache<K> {
    fn insert(&mut self, key: ObjectKey, obj: Arc<K>) -> Option<Arc<K>> {
        if let Some(uid) = controller_uid(obj.as_ref()) {
            self.by_controller
                .entry(uid)
                .or_default()
                .insert(key.clone());
        }
        let old = self.objects.insert(key.clone(), obj.clone());
        if let Some(old_uid) = old.as_deref().and_then(controller_uid) {
            if controller_uid(obj.as_ref()).as_ref() != Some(&old_uid) {
                self.unindex(&old_uid, &key);
            }
        }
        old
    }

    fn remove(&mut self, key: &str) -> Option<Arc<K>> {
        let old = self.objects.remove(key)?;
        if let Some(uid) = controller_uid(old.as_ref()) {
            self.unindex(&uid, key);
        }
        Some(old)
    }

    fn unindex(&mut self, uid: &str, key: &str) {
        if let Some(keys) = self.by_controller.get_mut(uid) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_controller.remove(uid);
            }
        }
    }
}

fn controller_uid<K: typed::Object>(obj: &K) -> Option<String> {
    super::ownership::controller_of(obj.metadata()).map(|r| r.uid.clone())
}

/// A cached, continuously updated view of every object of kind `K`.
pub struct Informer<K> {
    cache: RwLock<Cache<K>>,
    /// The revision the cache reflects (0 until the first list).
    revision: watch::Sender<u64>,
    changes: broadcast::Sender<Change<K>>,
}

/// How long a reconcile waits for the cache to see its own write before going on.
const SYNC_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before re-listing after the watch failed.
const RETRY_DELAY: Duration = Duration::from_millis(200);

impl<K: typed::Object> Informer<K> {
    /// Starts the list/watch loop; it ends when `shutdown` is cancelled.
    pub fn start(registry: Registry, shutdown: CancellationToken) -> Arc<Self> {
        let (revision, _) = watch::channel(0);
        let (changes, _) = broadcast::channel(65_536);
        let informer = Arc::new(Informer {
            cache: RwLock::new(Cache {
                objects: HashMap::new(),
                by_controller: HashMap::new(),
            }),
            revision,
            changes,
        });
        let runner = informer.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = runner.run(registry) => {}
                _ = shutdown.cancelled() => {}
            }
        });
        informer
    }

    async fn run(&self, registry: Registry) {
        let kind = resources::of::<K>();
        loop {
            let from = match self.relist(&registry).await {
                Ok(revision) => revision,
                Err(err) => {
                    tracing::warn!(kind = kind.kind, %err, "informer list failed; retrying");
                    tokio::time::sleep(RETRY_DELAY).await;
                    continue;
                }
            };
            let mut from = from;
            loop {
                let mut events = match registry
                    .watch(kind, None, ListOptions::default(), Some(from))
                    .await
                {
                    Ok(events) => events,
                    Err(err) => {
                        tracing::debug!(kind = kind.kind, %err, "informer watch ended; re-listing");
                        break;
                    }
                };
                while let Some(event) = events.next().await {
                    let revision = object::resource_version(&event.object).ok().flatten();
                    match typed::from_value::<K>(event.object) {
                        Ok(obj) => self.apply(event.event_type, obj),
                        Err(err) => tracing::error!(kind = kind.kind, %err, "undecodable object"),
                    }
                    if let Some(revision) = revision {
                        from = revision;
                        self.revision.send_replace(revision);
                    }
                }
            }
            tokio::time::sleep(RETRY_DELAY).await;
        }
    }

    /// Replaces the cache with a fresh list, notifying the differences; returns the list revision.
    async fn relist(&self, registry: &Registry) -> Result<u64, crate::error::ApiError> {
        let kind = resources::of::<K>();
        let (items, revision) = registry.list(kind, None, &ListOptions::default()).await?;
        let mut fresh = Cache {
            objects: HashMap::with_capacity(items.len()),
            by_controller: HashMap::new(),
        };
        for item in items {
            let obj: K = typed::from_value(item)?;
            fresh.insert(key_of(&obj), Arc::new(obj));
        }
        let fresh_objects = fresh.objects.clone();
        let old = {
            let mut cache = self.cache.write().expect("informer lock");
            std::mem::replace(&mut *cache, fresh).objects
        };
        let fresh = fresh_objects;
        for (key, new) in &fresh {
            let old = old.get(key).cloned();
            let _ = self.changes.send(Change {
                old,
                new: Some(new.clone()),
            });
        }
        for (key, gone) in old {
            if !fresh.contains_key(&key) {
                let _ = self.changes.send(Change {
                    old: Some(gone),
                    new: None,
                });
            }
        }
        // (Never `send_replace(..borrow()..)`: the borrow's read lock would deadlock the send.)
        self.revision
            .send_modify(|current| *current = (*current).max(revision));
        Ok(revision)
    }

    fn apply(&self, event_type: WatchEventType, obj: K) {
        let key = key_of(&obj);
        let obj = Arc::new(obj);
        let mut cache = self.cache.write().expect("informer lock");
        let change = match event_type {
            WatchEventType::Deleted => Change {
                old: cache.remove(&key),
                new: None,
            },
            WatchEventType::Added | WatchEventType::Modified => Change {
                old: cache.insert(key, obj.clone()),
                new: Some(obj),
            },
            // Informers do not ask for bookmarks; one would change nothing.
            WatchEventType::Bookmark => return,
        };
        drop(cache);
        let _ = self.changes.send(change);
    }

    /// Notifications of every later change.
    pub fn subscribe(&self) -> broadcast::Receiver<Change<K>> {
        self.changes.subscribe()
    }

    pub fn get(&self, key: &str) -> Option<Arc<K>> {
        self.cache
            .read()
            .expect("informer lock")
            .objects
            .get(key)
            .cloned()
    }

    /// Every cached object matching `filter`.
    pub fn list(&self, filter: impl Fn(&K) -> bool) -> Vec<Arc<K>> {
        self.cache
            .read()
            .expect("informer lock")
            .objects
            .values()
            .filter(|o| filter(o))
            .cloned()
            .collect()
    }

    /// The cached objects whose controller (owner reference) has `uid`, from an index.
    pub fn controlled_by(&self, uid: &str) -> Vec<Arc<K>> {
        let cache = self.cache.read().expect("informer lock");
        cache
            .by_controller
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|key| cache.objects.get(key).cloned())
            .collect()
    }

    pub fn keys(&self) -> Vec<ObjectKey> {
        self.cache
            .read()
            .expect("informer lock")
            .objects
            .keys()
            .cloned()
            .collect()
    }

    /// Waits until the cache reflects `revision` (bounded), so a reconcile sees its own writes.
    pub async fn wait_for(&self, revision: u64) {
        let mut rx = self.revision.subscribe();
        let reached = tokio::time::timeout(SYNC_TIMEOUT, rx.wait_for(|r| *r >= revision))
            .await
            .is_ok();
        if !reached {
            tracing::warn!(
                kind = K::KIND,
                revision,
                "informer did not catch up in time"
            );
        }
    }

    /// The revision the cache reflects; it grows with every change the cache takes in.
    pub fn revision(&self) -> u64 {
        *self.revision.borrow()
    }

    /// Waits for the first list.
    pub async fn synced(&self) {
        let mut rx = self.revision.subscribe();
        let _ = rx.wait_for(|r| *r > 0).await;
    }
}

/// The revision of a written object, for `Informer::wait_for`.
pub fn revision_of<K: typed::Object>(obj: &K) -> u64 {
    obj.metadata()
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}
