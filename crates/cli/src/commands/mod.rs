//! One module per command.

mod apply;
mod backup;
mod bench;
mod cluster;
mod delete;
mod describe;
mod get;
mod logs;
mod node;
mod scale;
mod server;
mod token;

use anyhow::Context;
use skiff_api::resources::{self, ResourceKind};
use skiff_client::Client;

use crate::cli::{BackupCommand, BenchCommand, ClientOpts, ClusterCommand, Command, TokenCommand};

pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Server(args) => server::server(args).await,
        Command::Agent(args) => server::agent(args).await,
        Command::Apply(args) => apply::run(args).await,
        Command::Get(args) => get::run(args).await,
        Command::Describe(args) => describe::run(args).await,
        Command::Delete(args) => delete::run(args).await,
        Command::Logs(args) => logs::run(args).await,
        Command::Scale(args) => scale::run(args).await,
        Command::Cordon(args) => node::set_unschedulable(&args, true).await,
        Command::Uncordon(args) => node::set_unschedulable(&args, false).await,
        Command::Drain(args) => node::drain(args).await,
        Command::Cluster(ClusterCommand::Status(args)) => cluster::status(args).await,
        Command::Cluster(ClusterCommand::Add(args)) => cluster::add(args).await,
        Command::Cluster(ClusterCommand::Remove(args)) => cluster::remove(args).await,
        Command::Backup(BackupCommand::Save(args)) => backup::save(args).await,
        Command::Backup(BackupCommand::Restore(args)) => backup::restore(args),
        Command::Token(TokenCommand::Create(args)) => token::create(args).await,
        Command::Token(TokenCommand::List(args)) => token::list(args).await,
        Command::Bench(BenchCommand::Deploy(args)) => bench::deploy(args).await,
        Command::Bench(BenchCommand::Nodes(args)) => bench::nodes(args).await,
        Command::Bench(BenchCommand::NodeLoss(args)) => bench::node_loss(args).await,
        Command::Bench(BenchCommand::Store(args)) => bench::store(args).await,
    }
}

/// The client for `--server`.
pub fn client(opts: &ClientOpts) -> anyhow::Result<Client> {
    Client::new(std::slice::from_ref(&opts.server)).context("--server")
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
