//! `skiff drain`: cordons a node, then evicts its pods through the eviction subresource so
//! that PodDisruptionBudgets are honoured, retrying the evictions a budget refuses (429) with
//! a back-off until `--timeout`, and waits until the evicted pods are gone.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;
use skiff_client::{Client, ListParams};

use super::node::{set_unschedulable, NodeArgs};
use super::{client, kind};
use crate::cli::ClientOpts;

#[derive(Args, Debug)]
pub struct DrainArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Seconds each pod gets to stop (default: the pod's own grace period).
    #[arg(long)]
    pub grace_period: Option<i64>,
    /// Give up after this many seconds, leaving the pods not yet evicted running.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Leave DaemonSet-managed pods (their DaemonSet would put them back); without it,
    /// a node running any refuses to drain, as kubectl does.
    #[arg(long)]
    pub ignore_daemonsets: bool,
}

/// First wait before retrying an eviction a budget refused; doubles up to `MAX_RETRY`.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// A pod as `namespace/name`.
type PodKey = (String, String);

/// Which of the node's pods to evict and which DaemonSet pods are left alone.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub evict: Vec<PodKey>,
    pub daemonset_pods: Vec<PodKey>,
}

/// Sorts the node's pods; DaemonSet pods without `ignore_daemonsets` are an error.
pub fn plan(pods: &[Value], ignore_daemonsets: bool) -> anyhow::Result<Plan> {
    let mut plan = Plan {
        evict: Vec::new(),
        daemonset_pods: Vec::new(),
    };
    for pod in pods {
        let key = (
            pod["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
            pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        let by_daemonset = pod["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|o| o["controller"] == true && o["kind"] == "DaemonSet");
        if by_daemonset {
            plan.daemonset_pods.push(key);
        } else {
            plan.evict.push(key);
        }
    }
    if !plan.daemonset_pods.is_empty() && !ignore_daemonsets {
        anyhow::bail!(
            "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {}",
            names(&plan.daemonset_pods)
        );
    }
    Ok(plan)
}

fn names(pods: &[PodKey]) -> String {
    pods.iter()
        .map(|(ns, name)| format!("{ns}/{name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Cordons the node and evicts its pods, honouring their disruption budgets; their
/// controllers recreate them on other nodes. The node stays cordoned.
pub async fn drain(args: DrainArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    set_unschedulable(&args.node, opts, true).await?;
    let client = client(opts)?;
    let node = &args.node.node;
    let pods = kind("pods")?;
    let on_node = ListParams {
        field_selector: Some(format!("spec.nodeName={node}")),
        label_selector: None,
    };
    let list = client.list(pods, None, &on_node).await?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let plan = plan(&items, args.ignore_daemonsets)?;
    if !plan.daemonset_pods.is_empty() {
        println!(
            "Warning: ignoring DaemonSet-managed Pods: {}",
            names(&plan.daemonset_pods)
        );
    }
    // Each pod is known by its uid too: a StatefulSet brings a pod back under the same name.
    let uids: HashMap<PodKey, String> = items
        .iter()
        .filter_map(|p| {
            let key = (
                p["metadata"]["namespace"].as_str()?.to_string(),
                p["metadata"]["name"].as_str()?.to_string(),
            );
            Some((key, p["metadata"]["uid"].as_str()?.to_string()))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut pending = plan.evict;
    let mut evicted: Vec<PodKey> = Vec::new();
    // Why each pod still waits: the budget's answer, printed when it changes.
    let mut blocked: BTreeMap<PodKey, String> = BTreeMap::new();
    let mut retry = FIRST_RETRY;
    loop {
        let mut still = Vec::new();
        for (ns, name) in pending {
            let uid = uids.get(&(ns.clone(), name.clone())).map(String::as_str);
            match client.evict(&ns, &name, uid, args.grace_period).await {
                Ok(_) => {
                    println!("evicting pod {ns}/{name}");
                    blocked.remove(&(ns.clone(), name.clone()));
                    evicted.push((ns, name));
                    retry = FIRST_RETRY;
                }
                // Gone, or already replaced by a pod of the same name.
                Err(err) if err.is_not_found() || err.is_conflict() => {}
                Err(err) if err.is_too_many_requests() => {
                    let why = std::iter::once(err.to_string())
                        .chain(err.cause_messages())
                        .collect::<Vec<_>>()
                        .join(" ");
                    let key = (ns, name);
                    if blocked.get(&key) != Some(&why) {
                        println!(
                            "error when evicting pods/\"{}\" -n \"{}\" (will retry): {why}",
                            key.1, key.0
                        );
                        blocked.insert(key.clone(), why);
                    }
                    still.push(key);
                }
                Err(err) => return Err(err.into()),
            }
        }
        evicted = gone_or_going(&client, evicted, &uids).await?;
        pending = still;
        if pending.is_empty() && evicted.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            let reasons: Vec<String> = pending
                .iter()
                .filter_map(|k| blocked.get(k).map(|why| format!("{}/{}: {why}", k.0, k.1)))
                .collect();
            anyhow::bail!(
                "drain of node {node} did not complete within {}s: {} not evicted ({}), {} still stopping ({})",
                args.timeout,
                pending.len(),
                reasons.join("; "),
                evicted.len(),
                names(&evicted),
            );
        }
        let wait = if pending.is_empty() {
            FIRST_RETRY
        } else {
            retry
        };
        tokio::time::sleep(wait.min(deadline.saturating_duration_since(Instant::now()))).await;
        retry = (retry * 2).min(MAX_RETRY);
    }
    println!("node/{node} drained");
    Ok(())
}

/// The evicted pods still in the API (the same uid); those gone are reported.
async fn gone_or_going(
    client: &Client,
    evicted: Vec<PodKey>,
    uids: &HashMap<PodKey, String>,
) -> anyhow::Result<Vec<PodKey>> {
    let pods = kind("pods")?;
    let mut left = Vec::new();
    for (ns, name) in evicted {
        let same = match client.get(pods, Some(&ns), &name).await {
            Ok(pod) => {
                uids.get(&(ns.clone(), name.clone())).map(String::as_str)
                    == pod["metadata"]["uid"].as_str()
            }
            Err(err) if err.is_not_found() => false,
            Err(err) => return Err(err.into()),
        };
        if same {
            left.push((ns, name));
        } else {
            println!("pod/{name} evicted");
        }
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, owner: Option<&str>) -> Value {
        let owners: Vec<Value> = owner
            .map(|kind| json!({"kind": kind, "name": "o", "uid": "u", "controller": true}))
            .into_iter()
            .collect();
        json!({"metadata": {"namespace": "default", "name": name, "ownerReferences": owners}})
    }

    #[test]
    fn daemonset_pods_are_left_only_when_asked() {
        let pods = [
            pod("web-1", Some("ReplicaSet")),
            pod("agent-x", Some("DaemonSet")),
            pod("bare", None),
        ];
        let err = plan(&pods, false).expect_err("DaemonSet pods refuse");
        assert_eq!(
            err.to_string(),
            "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/agent-x"
        );
        let key = |n: &str| ("default".to_string(), n.to_string());
        assert_eq!(
            plan(&pods, true).expect("plan"),
            Plan {
                evict: vec![key("web-1"), key("bare")],
                daemonset_pods: vec![key("agent-x")],
            }
        );
    }
}
