//! `skiff secrets rotate-key`: Secrets encrypted at rest under a new key.

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::cli::ClientOpts;

#[derive(Subcommand, Debug)]
pub enum SecretsCommand {
    /// Add a new encryption key (to the cluster's shared config, or a lone server's own) and
    /// rewrite every Secret under it while the cluster serves.
    RotateKey(RotateKeyArgs),
}

#[derive(Args, Debug)]
pub struct RotateKeyArgs {
    /// Add no key: rewrite every Secret under the key each member's config writes with now
    /// (after adding a key first in every member's --encryption-provider-config file and
    /// restarting them, as Kubernetes rotates).
    #[arg(long)]
    pub rewrite_only: bool,
}

pub async fn run(command: SecretsCommand, opts: &ClientOpts) -> anyhow::Result<()> {
    match command {
        SecretsCommand::RotateKey(args) => rotate_key(args, opts).await,
    }
}

async fn rotate_key(args: RotateKeyArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let client = super::client(opts)?;
    let done = client
        .rotate_secrets_key(args.rewrite_only)
        .await
        .context("rotating the Secrets' encryption key")?;
    if let Some(added) = done["addedKey"].as_str() {
        println!("added key {added:?}");
    }
    let key = match done["key"].as_str() {
        Some(key) => format!("key {key:?}"),
        None => "clear text (Secrets are not encrypted)".into(),
    };
    println!(
        "{} Secrets rewritten; all {} now under {key}",
        done["rewritten"], done["secrets"]
    );
    Ok(())
}
