//! `skiff backup save|restore`: etcd's `snapshot save` and `snapshot restore` for Skiff.

use anyhow::Context;
use skiff_control_plane::{restore_backup, Cluster, STORE_DIR};

use crate::cli::{BackupRestoreArgs, BackupSaveArgs};

pub async fn save(args: BackupSaveArgs) -> anyhow::Result<()> {
    let client = super::client(&args.client)?;
    let bytes = client.backup().await.context("taking the backup")?;
    // Written aside, then renamed: FILE is either the old content or the whole new backup.
    let partial = args.file.with_extension("partial");
    std::fs::write(&partial, &bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &args.file)
        .with_context(|| format!("writing {}", args.file.display()))?;
    println!("saved {} ({} bytes)", args.file.display(), bytes.len());
    Ok(())
}

pub fn restore(args: BackupRestoreArgs) -> anyhow::Result<()> {
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
