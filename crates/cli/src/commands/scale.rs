//! `skiff scale`: set replicas.

use clap::Args;
use serde_json::json;

use super::{client, kind};
use crate::cli::ClientOpts;
use crate::output::qualified_name;

#[derive(Args, Debug)]
pub struct ScaleArgs {
    /// `deployment`, `replicaset` or `statefulset` (short names work), then the name; or `deployment/NAME`.
    pub target: Vec<String>,
    #[arg(long)]
    pub replicas: i32,
}

pub async fn run(args: ScaleArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let (kind_name, name) = super::kind_and_name(
        &args.target,
        "usage: skiff scale deployment NAME --replicas N (or deployment/NAME)",
    )?;
    let kind = kind(&kind_name)?;
    if !matches!(kind.kind, "Deployment" | "ReplicaSet" | "StatefulSet") {
        anyhow::bail!(
            "{} cannot be scaled: only deployments, replicasets and statefulsets can",
            kind.plural
        );
    }
    if args.replicas < 0 {
        anyhow::bail!("--replicas must be 0 or more, not {}", args.replicas);
    }
    let client = client(opts)?;
    client
        .patch(
            kind,
            Some(&opts.namespace),
            &name,
            &json!({"spec": {"replicas": args.replicas}}),
        )
        .await?;
    println!("{} scaled", qualified_name(kind, &name));
    Ok(())
}
