//! For unit tests: a registry on a single-voter store in the test's directory, with the
//! system objects (namespaces, default classes) a server makes at start.

use std::path::Path;

use skiff_raft_store::{Cluster, Store, StoreConfig, Timing};

use crate::registry::Registry;

pub async fn registry(dir: &Path) -> Registry {
    let store = Store::open(StoreConfig {
        data_dir: dir.join("store"),
        cluster: Cluster::single("t"),
        peer_listen: None,
        peer_tls: None,
        watch_history: 10_000,
        timing: Timing::default(),
        log_retain: 1_000,
        join: None,
    })
    .await
    .expect("store");
    let registry = Registry::new(store);
    crate::bootstrap::ensure_system_objects(&registry)
        .await
        .expect("system objects");
    registry
}
