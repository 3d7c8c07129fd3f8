//! `skiff cordon` and `skiff uncordon`.

use serde_json::json;

use super::{client, kind};
use crate::cli::NodeArgs;

/// Sets `spec.unschedulable`; the scheduler skips unschedulable nodes.
pub async fn set_unschedulable(args: NodeArgs, unschedulable: bool) -> anyhow::Result<()> {
    let client = client(&args.client)?;
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
