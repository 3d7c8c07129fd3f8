//! One module per command, each holding its flags and its handler.

pub mod agent;
pub mod apply;
pub mod auth;
mod auth_rules;
pub mod backup;
pub mod certificate;
pub mod cluster;
pub mod create;
mod daemon;
pub mod delete;
pub mod describe;
mod describe_ingress;
mod describe_quota;
mod describe_service;
pub mod drain;
mod dry_run;
pub mod exec;
pub mod expose;
pub mod get;
pub mod image;
pub mod logs;
pub mod node;
mod node_events;
mod node_heartbeat;
mod node_resources;
mod node_runtimes;
pub mod port_forward;
mod port_forward_target;
pub mod rollout;
pub mod scale;
pub mod secrets;
pub mod server;
mod server_limits;
mod server_tls;
pub mod token;
pub mod top;
pub mod user;
pub mod wait;

use anyhow::Context;
use skiff_api::resources::{self, ResourceKind};
use skiff_bench::BenchCommand;
use skiff_client::{Client, Credentials, Impersonation, Kubeconfig};
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cli::{ClientOpts, Command};

/// Runs one command; `opts` are the connection flags given to the root command.
pub async fn run(command: Command, opts: &ClientOpts) -> anyhow::Result<()> {
    match command {
        Command::Server(args) => server::run(*args).await,
        Command::Agent(args) => agent::run(*args, opts).await,
        Command::Apply(args) => apply::run(args, opts).await,
        Command::Auth(command) => auth::run(command, opts).await,
        Command::Get(args) => get::run(args, opts).await,
        Command::Describe(args) => describe::run(args, opts).await,
        Command::Delete(args) => delete::run(args, opts).await,
        Command::Logs(args) => logs::run(args, opts).await,
        Command::Exec(args) => exec::run(args, opts).await,
        Command::PortForward(args) => port_forward::run(args, opts).await,
        Command::Scale(args) => scale::run(args, opts).await,
        Command::Expose(args) => expose::run(args, opts).await,
        Command::Rollout(command) => rollout::run(command, opts).await,
        Command::Create(command) => create::run(command, opts).await,
        Command::Wait(args) => wait::run(args, opts).await,
        Command::Cordon(args) => node::set_unschedulable(&args, opts, true).await,
        Command::Uncordon(args) => node::set_unschedulable(&args, opts, false).await,
        Command::Drain(args) => drain::drain(args, opts).await,
        Command::Cluster(command) => cluster::run(command, opts).await,
        Command::Backup(command) => backup::run(command, opts).await,
        Command::Secrets(command) => secrets::run(command, opts).await,
        Command::Token(command) => token::run(command, opts).await,
        Command::Top(command) => top::run(command, opts).await,
        Command::Image(command) => image::run(command, opts).await,
        Command::Bench(mut command) => {
            // A server named with `--server` is reached with the CLI's own credentials.
            if let BenchCommand::Nodes(args) = &mut command {
                if args.server.is_some() {
                    args.credentials = connection(opts)?.1;
                }
            }
            skiff_bench::run(command).await
        }
        Command::Certificate(command) => certificate::run(command, opts).await,
        Command::User(command) => user::run(command, opts).await,
    }
}

/// The client for the kubeconfig (`--kubeconfig`, `$KUBECONFIG`, `~/.skiff/config`, or
/// `./skiff-data/admin.kubeconfig`), its server overridden by `--server`; with no kubeconfig,
/// `--server` alone (a plain-HTTP `--insecure-http` listener, or a public certificate). It
/// impersonates whom the kubeconfig's user entry names, each part overridden by `--as`,
/// `--as-group`, `--as-uid` and `--as-user-extra` (as kubectl merges them).
pub fn client(opts: &ClientOpts) -> anyhow::Result<Client> {
    let (servers, credentials, configured) = connection(opts)?;
    let client = Client::with_credentials(&servers, &credentials).context("the API client")?;
    let mut impersonation = configured.unwrap_or_default();
    if let Some(user) = &opts.as_user {
        impersonation.user = user.clone();
    }
    if !opts.as_groups.is_empty() {
        impersonation.groups = opts.as_groups.clone();
    }
    if let Some(uid) = &opts.as_uid {
        impersonation.uid = Some(uid.clone());
    }
    if !opts.as_user_extra.is_empty() {
        impersonation.extra = BTreeMap::new();
        for (key, value) in &opts.as_user_extra {
            let values = impersonation.extra.entry(key.clone()).or_default();
            values.push(value.clone());
        }
    }
    if impersonation == Impersonation::default() {
        return Ok(client);
    }
    if impersonation.user.is_empty() {
        anyhow::bail!(
            "--as-group, --as-uid and --as-user-extra (or a kubeconfig's as-groups, as-uid and \
             as-user-extra) need a user to act as: --as (or as)"
        );
    }
    Ok(client.impersonate(impersonation))
}

/// The servers and credentials `client` uses, and whom the kubeconfig's user entry
/// impersonates.
pub fn connection(
    opts: &ClientOpts,
) -> anyhow::Result<(Vec<String>, Credentials, Option<Impersonation>)> {
    let resolved = match kubeconfig_path(opts) {
        Some(path) => Some(Kubeconfig::load(&path)?),
        None => None,
    };
    let server = opts
        .server
        .clone()
        .or_else(|| resolved.as_ref().map(|r| r.server.clone()))
        .context(
            "no kubeconfig found (--kubeconfig, $KUBECONFIG, ~/.skiff/config, \
             ./skiff-data/admin.kubeconfig) and no --server: `skiff server` writes \
             DATA_DIR/admin.kubeconfig",
        )?;
    let (mut credentials, impersonation) = resolved
        .map(|r| (r.credentials, r.impersonation))
        .unwrap_or_default();
    if let Some(token) = &opts.token {
        credentials.identity = None;
        credentials.token = Some(token.clone());
    }
    Ok((vec![server], credentials, impersonation))
}

/// The kubeconfig to read, if any.
fn kubeconfig_path(opts: &ClientOpts) -> Option<PathBuf> {
    if let Some(given) = &opts.kubeconfig {
        // `$KUBECONFIG` may list several files; the first one that exists is used.
        let text = given.to_string_lossy();
        return text
            .split(':')
            .map(PathBuf::from)
            .find(|p| p.exists())
            .or_else(|| Some(given.clone()));
    }
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".skiff/config"));
    let dev = PathBuf::from("./skiff-data/admin.kubeconfig");
    home.into_iter().chain([dev]).find(|p| p.exists())
}

/// A resource type as the user typed it (`pods`, `po`, `deployment.apps`, ...).
pub fn kind(name: &str) -> anyhow::Result<&'static ResourceKind> {
    resources::by_name(name).with_context(|| {
        let known: Vec<&str> = resources::KINDS.iter().map(|k| k.plural).collect();
        format!(
            "the server doesn't have a resource type {name:?} (known: {})",
            known.join(", ")
        )
    })
}

/// The `KIND NAME` or `KIND/NAME` a command names its target with; `usage` is the error.
pub(crate) fn kind_and_name(target: &[String], usage: &str) -> anyhow::Result<(String, String)> {
    let (kind, name) = match target {
        [both] => both.split_once('/').unwrap_or_default(),
        [kind, name] => (kind.as_str(), name.as_str()),
        _ => ("", ""),
    };
    if kind.is_empty() || name.is_empty() {
        anyhow::bail!("{usage}");
    }
    Ok((kind.to_string(), name.to_string()))
}
