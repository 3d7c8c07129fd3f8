//! `skiff image push`: publish a Wasm module or component to an OCI registry.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use skiff_node_runtime::agent::{auth_in_config, registry_of};
use skiff_node_runtime::runtime::{push_wasm, PullAuth};

/// `skiff image push FILE REFERENCE`.
#[derive(Args, Debug)]
pub struct PushArgs {
    /// The `.wasm` file.
    pub file: PathBuf,
    /// Where to push it: REGISTRY/REPO:TAG.
    pub reference: String,
    /// Registry user name (else the registry's entry in ~/.docker/config.json, else none).
    #[arg(long, requires = "password")]
    pub username: Option<String>,
    /// Registry password or token.
    #[arg(long, requires = "username")]
    pub password: Option<String>,
    /// Push to the registry HOST:PORT over plain HTTP (repeatable); loopback registries
    /// always are.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,
}

pub async fn push(args: PushArgs) -> anyhow::Result<()> {
    let module = tokio::fs::read(&args.file)
        .await
        .with_context(|| format!("reading {}", args.file.display()))?;
    let auth = match (args.username, args.password) {
        (Some(username), Some(password)) => Some(PullAuth {
            server: None,
            username,
            password,
        }),
        _ => docker_config_auth(&args.reference),
    };
    eprintln!(
        "pushing {} ({} bytes) to {}",
        args.file.display(),
        module.len(),
        args.reference
    );
    let bar = progress_bar(module.len() as u64);
    let pushed = push_wasm(
        &args.reference,
        &module,
        auth.as_ref(),
        &args.insecure_registries,
        {
            let bar = bar.clone();
            move |sent| bar.set_position(sent)
        },
    )
    .await;
    // Left where the push got to (the module's size once it is up).
    bar.abandon();
    let pushed = pushed.with_context(|| format!("pushing {}", args.reference))?;
    if bar.is_hidden() {
        eprintln!("pushed {} bytes", pushed.size);
    }
    println!("{}", pushed.digest);
    Ok(())
}

/// A bar of the module's bytes sent and the rate, on stderr when it is a terminal; else hidden
/// (and the push prints a byte count instead).
fn progress_bar(size: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
    )
    .expect("template");
    ProgressBar::new(size).with_style(style)
}

/// The credentials `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`) holds for the
/// reference's registry.
fn docker_config_auth(reference: &str) -> Option<PullAuth> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".docker")))?;
    let config = std::fs::read(dir.join("config.json")).ok()?;
    auth_in_config(&config, &registry_of(reference)?)
}
