//! Pods that no node runs (they stay Pending): the objects of the benchmarks that measure
//! listing and showing many pods.

use serde_json::json;
use skiff_client::Client;

use crate::cluster::kind;
use crate::figures::{self, Throughput};

/// Creates `count` pods `bench-00000`... labelled `app=bench` in `namespace`, 16 at a time;
/// returns how many were created and the creates' figures.
pub(crate) async fn create(
    admin: &Client,
    namespace: &'static str,
    count: usize,
) -> anyhow::Result<(usize, Throughput)> {
    let pods = kind("pods")?;
    figures::load(count, 16, None, |i| {
        let admin = admin.clone();
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("bench-{i:05}"), "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "c", "image": "file:/bench/guest.wasm"}]},
        });
        async move {
            admin.create(pods, Some(namespace), &pod).await?;
            Ok(())
        }
    })
    .await
}
