//! `skiff delete`: by type and names, or by manifest.

use skiff_client::DeleteParams;

use super::{client, kind};
use crate::cli::DeleteArgs;
use crate::manifests;

pub async fn run(args: DeleteArgs) -> anyhow::Result<()> {
    let client = client(&args.client)?;
    let params = DeleteParams {
        grace_period_seconds: args.grace_period,
    };
    let mut targets = Vec::new();
    if !args.files.is_empty() {
        for item in manifests::load(&args.files, &args.client.namespace, false)? {
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
        let namespace = kind.namespaced.then(|| args.client.namespace.clone());
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
                println!("{resource} \"{name}\" deleted");
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
