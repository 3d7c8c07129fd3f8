//! The API as a user sees it while a benchmark loads the cluster: latencies of reads and
//! writes, sampled at a steady pace.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;
use skiff_client::{Client, ListParams};
use tokio::sync::watch;

use crate::cluster::kind;

/// How often the API probe calls.
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// Latencies of each kind of call, named.
pub type Latencies = Vec<(&'static str, Vec<Duration>)>;

/// Every `PROBE_EVERY` until stopped: a cluster-wide list of nodes, a selective list of pods, and a
/// create, patch and delete of a ConfigMap; returns the latencies of each kind of call.
pub async fn probe_api(client: Client, mut stopped: watch::Receiver<bool>) -> Latencies {
    let lists = Mutex::new(Vec::new());
    let pod_lists = Mutex::new(Vec::new());
    let mutations = Mutex::new(Vec::new());
    let timed = |into: &Mutex<Vec<Duration>>, since: Instant, ok: bool| {
        if ok {
            into.lock().expect("latencies").push(since.elapsed());
        }
    };
    let (Ok(nodes), Ok(pods), Ok(configmaps)) = (kind("nodes"), kind("pods"), kind("configmaps"))
    else {
        return Vec::new();
    };
    let selective = ListParams {
        label_selector: Some("app=no-such-app".into()),
        field_selector: None,
    };
    let mut tick = tokio::time::interval(PROBE_EVERY);
    for i in 0u64.. {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.wait_for(|s| *s) => break,
        }
        let t = Instant::now();
        let ok = client
            .list(nodes, None, &ListParams::default())
            .await
            .is_ok();
        timed(&lists, t, ok);
        let t = Instant::now();
        let ok = client.list(pods, None, &selective).await.is_ok();
        timed(&pod_lists, t, ok);
        let name = format!("probe-{i}");
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name}, "data": {"n": i.to_string()}});
        let t = Instant::now();
        let ok = client
            .create(configmaps, Some("default"), &object)
            .await
            .is_ok();
        timed(&mutations, t, ok);
        let t = Instant::now();
        let ok = client
            .patch(
                configmaps,
                Some("default"),
                &name,
                &json!({"data": {"patched": "yes"}}),
            )
            .await
            .is_ok();
        timed(&mutations, t, ok);
        let t = Instant::now();
        let ok = client
            .delete(configmaps, Some("default"), &name, &Default::default())
            .await
            .is_ok();
        timed(&mutations, t, ok);
    }
    vec![
        ("LIST nodes (all)", lists.into_inner().expect("latencies")),
        (
            "LIST pods (label selector)",
            pod_lists.into_inner().expect("latencies"),
        ),
        (
            "create/patch/delete",
            mutations.into_inner().expect("latencies"),
        ),
    ]
}
