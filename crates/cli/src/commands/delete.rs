//! `skiff delete`: by type and names, or by manifest.

use clap::Args;
use skiff_client::DeleteParams;

use super::dry_run::DryRun;
use super::{client, kind};
use crate::cli::ClientOpts;
use crate::manifests;

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Resource type, then names (or use -f).
    pub args: Vec<String>,
    /// Delete the objects of these manifests.
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<String>,
    /// Seconds pods get to stop (0: at once).
    #[arg(long)]
    pub grace_period: Option<i64>,
    /// Treat "not found" as success.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// `server`: the server checks each deletion and deletes nothing.
    #[arg(long, value_enum, default_value_t = DryRun::None)]
    pub dry_run: DryRun,
}

pub async fn run(args: DeleteArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let client = args.dry_run.client(client(opts)?);
    let params = DeleteParams {
        grace_period_seconds: args.grace_period,
    };
    let mut targets = Vec::new();
    if !args.files.is_empty() {
        for item in manifests::load(&args.files, &opts.namespace, false)? {
            targets.push((
                item.kind,
                item.namespace().map(str::to_string),
                item.name().to_string(),
            ));
        }
    } else {
        let Some((kind_name, names)) = args.args.split_first() else {
            anyhow::bail!("usage: skiff delete TYPE NAME... or skiff delete -f FILE");
        };
        if names.is_empty() {
            anyhow::bail!("name a {kind_name} to delete");
        }
        let kind = kind(kind_name)?;
        let namespace = kind.namespaced.then(|| opts.namespace.clone());
        targets.extend(names.iter().map(|n| (kind, namespace.clone(), n.clone())));
    }
    let mut failures = Vec::new();
    for (kind, namespace, name) in targets {
        match client
            .delete(kind, namespace.as_deref(), &name, &params)
            .await
        {
            Ok(_) => {
                let resource = if kind.group.is_empty() {
                    kind.singular.to_string()
                } else {
                    format!("{}.{}", kind.singular, kind.group)
                };
                println!("{resource} \"{name}\" deleted{}", args.dry_run.suffix());
            }
            Err(err) if err.is_not_found() && args.ignore_not_found => {}
            Err(err) => failures.push(err.to_string()),
        }
    }
    if !failures.is_empty() {
        anyhow::bail!("{}", failures.join("\n"));
    }
    Ok(())
}
