//! `skiff backup save|restore`: etcd's `snapshot save` and `snapshot restore` for Skiff.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use skiff_control_plane::{restore_backup, Cluster, STORE_DIR};

use crate::cli::ClientOpts;

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Save every object of a running cluster, at one consistent point, to FILE.
    Save(BackupSaveArgs),
    /// Seed a new server's data dir from a backup (the server is not running); give every
    /// member of a new multi-master cluster the same file.
    Restore(BackupRestoreArgs),
}

#[derive(Args, Debug)]
pub struct BackupSaveArgs {
    /// Where to write the backup.
    pub file: PathBuf,
}

#[derive(Args, Debug)]
pub struct BackupRestoreArgs {
    /// A file from `skiff backup save`.
    pub file: PathBuf,
    /// The new server's data dir (must not hold a store yet).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The new server's `--name`.
    #[arg(long, default_value = "skiff-server")]
    pub name: String,
    /// The new cluster's `--initial-cluster` (omit for a cluster of one).
    #[arg(long)]
    pub initial_cluster: Option<String>,
}

pub async fn run(command: BackupCommand, opts: &ClientOpts) -> anyhow::Result<()> {
    match command {
        BackupCommand::Save(args) => save(args, opts).await,
        BackupCommand::Restore(args) => restore(args),
    }
}

async fn save(args: BackupSaveArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let client = super::client(opts)?;
    let bytes = client.backup().await.context("taking the backup")?;
    // Written aside, then renamed: FILE is either the old content or the whole new backup.
    let partial = args.file.with_extension("partial");
    std::fs::write(&partial, &bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &args.file)
        .with_context(|| format!("writing {}", args.file.display()))?;
    println!("saved {} ({} bytes)", args.file.display(), bytes.len());
    Ok(())
}

fn restore(args: BackupRestoreArgs) -> anyhow::Result<()> {
    let cluster = match &args.initial_cluster {
        Some(initial) => Cluster::parse(&args.name, initial)?,
        None => Cluster::single(&args.name),
    };
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let store = args.data_dir.join(STORE_DIR);
    let info = restore_backup(&bytes, &args.file, &store, &cluster)?;
    println!(
        "restored {} objects at revision {} into {}; start the server with --data-dir {} --name {}{}",
        info.keys,
        info.revision,
        store.display(),
        args.data_dir.display(),
        args.name,
        args.initial_cluster
            .as_deref()
            .map(|ic| format!(" --initial-cluster {ic}"))
            .unwrap_or_default()
    );
    Ok(())
}
