//! `skiff cordon`, `skiff uncordon` and `skiff drain`.

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use skiff_client::{DeleteParams, ListParams};

use super::{client, kind};
use crate::cli::ClientOpts;

#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The node's name.
    pub node: String,
}

#[derive(Args, Debug)]
pub struct DrainArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Seconds each pod gets to stop (default: the pod's own grace period).
    #[arg(long)]
    pub grace_period: Option<i64>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

/// How often a drain checks whether the pods are gone.
const DRAIN_POLL: Duration = Duration::from_millis(250);

/// Sets `spec.unschedulable`; the scheduler skips unschedulable nodes.
pub async fn set_unschedulable(
    args: &NodeArgs,
    opts: &ClientOpts,
    unschedulable: bool,
) -> anyhow::Result<()> {
    let client = client(opts)?;
    let nodes = kind("nodes")?;
    let node = client.get(nodes, None, &args.node).await?;
    let word = if unschedulable {
        "cordoned"
    } else {
        "uncordoned"
    };
    if node["spec"]["unschedulable"].as_bool().unwrap_or(false) == unschedulable {
        println!("node/{} already {word}", args.node);
        return Ok(());
    }
    client
        .patch(
            nodes,
            None,
            &args.node,
            &json!({"spec": {"unschedulable": unschedulable}}),
        )
        .await?;
    println!("node/{} {word}", args.node);
    Ok(())
}

/// Cordons the node, deletes every pod bound to it (gracefully), and waits until they are gone;
/// their controllers recreate them on other nodes. The node stays cordoned.
pub async fn drain(args: DrainArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    set_unschedulable(&args.node, opts, true).await?;
    let client = client(opts)?;
    let pods = kind("pods")?;
    let on_node = ListParams {
        field_selector: Some(format!("spec.nodeName={}", args.node.node)),
        label_selector: None,
    };
    let params = DeleteParams {
        grace_period_seconds: args.grace_period,
    };
    let list = client.list(pods, None, &on_node).await?;
    for pod in list["items"].as_array().into_iter().flatten() {
        let (namespace, name) = (
            pod["metadata"]["namespace"].as_str(),
            pod["metadata"]["name"].as_str().unwrap_or_default(),
        );
        match client.delete(pods, namespace, name, &params).await {
            Ok(_) => println!("evicting pod {}/{name}", namespace.unwrap_or("default")),
            Err(err) if err.is_not_found() => {}
            Err(err) => return Err(err.into()),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    loop {
        let left = client.list(pods, None, &on_node).await?;
        let count = left["items"].as_array().map_or(0, Vec::len);
        if count == 0 {
            break;
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{count} pods are still on node {} after {}s",
                args.node.node,
                args.timeout
            );
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
    println!("node/{} drained", args.node.node);
    Ok(())
}
