//! `skiff cordon` and `skiff uncordon` (`drain.rs` cordons, then evicts).

use clap::Args;
use serde_json::json;

use super::{client, kind};
use crate::cli::ClientOpts;

#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The node's name.
    pub node: String,
}

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
