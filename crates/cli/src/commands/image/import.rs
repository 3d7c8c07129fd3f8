//! `skiff image import FILE [--node NODE]`: an image archive (a tar of an OCI image layout,
//! a `docker save` tarball, either maybe gzipped) or an OCI image layout directory (sent as a
//! tar), streamed through the API server's node proxy to the node's agent, which stores its
//! images under the names the archive gives them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use tokio::sync::mpsc;

use super::super::client;
use super::node_images::node;
use crate::cli::ClientOpts;

/// How much of the archive is read ahead of the upload.
const CHUNK: usize = 256 * 1024;

/// `skiff image import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The archive, or an OCI image layout directory.
    pub file: PathBuf,
    /// The node; may be left out when the cluster has one node.
    #[arg(long)]
    pub node: Option<String>,
}

/// `skiff image import FILE [--node NODE]`: streams the archive (a directory is tarred on the
/// fly) through the API server to the node's agent and prints what it stored.
pub async fn import(args: ImportArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let meta = std::fs::metadata(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let client = client(opts)?;
    let node = node(&client, args.node).await?;
    let (tx, rx) = mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    let file = args.file.clone();
    let producer = tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter { tx: tx.clone() };
        let written = if meta.is_dir() {
            tar_dir(&file, &mut out)
        } else {
            std::fs::File::open(&file).and_then(|mut f| std::io::copy(&mut f, &mut out).map(drop))
        };
        if let Err(err) = written {
            // The upload ends with the error, so the agent stores nothing.
            let _ = tx.blocking_send(Err(err));
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|c| (c, rx)) });
    let answer = client
        .node_proxy_upload(
            &node,
            "/images/import",
            "application/x-tar",
            reqwest::Body::wrap_stream(stream),
        )
        .await
        .with_context(|| format!("importing {} on node {node}", args.file.display()));
    producer.await.context("reading the archive")?;
    for image in answer?["images"].as_array().into_iter().flatten() {
        println!(
            "Imported {} ({})",
            image["image"].as_str().unwrap_or_default(),
            image["digest"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

/// A directory as a tar, its entries relative to it, symlinks kept as symlinks.
fn tar_dir(dir: &Path, out: &mut ChannelWriter) -> std::io::Result<()> {
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    builder.append_dir_all(".", dir)?;
    builder.into_inner()?.flush()
}

/// Writes into the upload's channel in chunks of [`CHUNK`] bytes.
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Vec<u8>>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(CHUNK);
        self.tx
            .blocking_send(Ok(buf[..n].to_vec()))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "upload ended"))?;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
