//! `skiff apply -f`: create or update every object of the manifests.

use clap::Args;

use super::client;
use super::dry_run::DryRun;
use crate::cli::ClientOpts;
use crate::manifests::{self, ManifestObject};
use crate::output::{qualified_name, Output};

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// Manifest file, directory, or `-` for standard input (repeatable).
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<String>,
    #[arg(short = 'o', long)]
    pub output: Option<Output>,
    /// `server`: the server checks every object (admission, validation, conflicts) and
    /// stores nothing.
    #[arg(long, value_enum, default_value_t = DryRun::None)]
    pub dry_run: DryRun,
    /// Apply on the server (server-side apply): it merges each object and records which
    /// fields this manager owns, refusing to change fields another manager owns.
    #[arg(long)]
    pub server_side: bool,
    /// With `--server-side`: take over the fields other managers own instead of failing.
    #[arg(long, requires = "server_side")]
    pub force_conflicts: bool,
    /// With `--server-side`: the manager the applied fields are recorded under.
    #[arg(long, default_value = "skiff", requires = "server_side")]
    pub field_manager: String,
}

/// What applying one object did.
enum Outcome {
    Created,
    Configured,
    Unchanged,
    /// Merged by the server (`--server-side`).
    ServerSideApplied,
}

async fn apply_one(
    client: &skiff_client::Client,
    item: &ManifestObject,
) -> Result<Outcome, skiff_client::ClientError> {
    let (kind, ns, name) = (item.kind, item.namespace(), item.name());
    match client.create(kind, ns, &item.object).await {
        Ok(_) => return Ok(Outcome::Created),
        Err(err) if err.is_already_exists() => {}
        Err(err) => return Err(err),
    }
    // Exists: replace what the manifest says, keeping what the server owns.
    for _ in 0..5 {
        let current = client.get(kind, ns, name).await?;
        let mut desired = item.object.clone();
        desired["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        match client.replace(kind, ns, name, &desired).await {
            // An update that changes nothing answers the object as it was (also in a dry
            // run, whose answer keeps the current resourceVersion either way).
            Ok(updated) => {
                return Ok(if updated == current {
                    Outcome::Unchanged
                } else {
                    Outcome::Configured
                });
            }
            Err(err) if err.is_conflict() => continue,
            Err(err) => return Err(err),
        }
    }
    Err(skiff_client::ClientError::Api {
        status: Box::new(
            skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Status {
                message: Some(format!("{name}: kept conflicting with concurrent updates")),
                code: Some(409),
                ..Default::default()
            },
        ),
    })
}

pub async fn run(args: ApplyArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let objects = manifests::load(&args.files, &opts.namespace, true)?;
    let client = args.dry_run.client(client(opts)?);
    let mut failed = 0;
    for item in &objects {
        let label = qualified_name(item.kind, item.name());
        let outcome = if args.server_side {
            client
                .apply(
                    item.kind,
                    item.namespace(),
                    item.name(),
                    &item.object,
                    &args.field_manager,
                    args.force_conflicts,
                )
                .await
                .map(|_| Outcome::ServerSideApplied)
        } else {
            apply_one(&client, item).await
        };
        match outcome {
            Ok(outcome) => {
                let word = match outcome {
                    Outcome::Created => "created",
                    Outcome::Configured => "configured",
                    Outcome::Unchanged => "unchanged",
                    Outcome::ServerSideApplied => "serverside-applied",
                };
                match args.output {
                    Some(Output::Name) => println!("{label}"),
                    _ => println!("{label} {word}{}", args.dry_run.suffix()),
                }
            }
            Err(err) => {
                failed += 1;
                eprintln!("error: {}: {label}: {err}", item.source);
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} objects could not be applied", objects.len());
    }
    Ok(())
}
