//! The root command: the connection flags every command takes, before or after its name
//! (`skiff --server URL get pods` and `skiff get pods --server URL` alike), and the list of
//! commands. Each command's own flags live beside its handler in `commands/`.

use std::ffi::OsString;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use skiff_bench::BenchCommand;

use crate::commands::{
    agent::AgentArgs, apply::ApplyArgs, auth::AuthCommand, backup::BackupCommand,
    certificate::CertificateCommand, cluster::ClusterCommand, create::CreateCommand,
    delete::DeleteArgs, describe::DescribeArgs, drain::DrainArgs, exec::ExecArgs,
    expose::ExposeArgs, get::GetArgs, image::ImageCommand, logs::LogsArgs, node::NodeArgs,
    port_forward::PortForwardArgs, rollout::RolloutCommand, scale::ScaleArgs,
    secrets::SecretsCommand, server::ServerArgs, token::TokenCommand, top::TopCommand,
    user::UserCommand, wait::WaitArgs,
};

/// Skiff: a WebAssembly-first workload orchestrator with Kubernetes-shaped APIs.
#[derive(Parser, Debug)]
#[command(name = "skiff", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub client: ClientOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the client commands (and agents) find the API, and the namespace they work in.
#[derive(Args, Debug, Clone)]
pub struct ClientOpts {
    /// API server URL(s), comma-separated; requests fail over between them. Overrides the
    /// kubeconfig's server.
    #[arg(long, env = "SKIFF_SERVER", global = true)]
    pub server: Option<String>,
    /// The kubeconfig with the server, its CA and the client credential (default:
    /// ~/.skiff/config, else ./skiff-data/admin.kubeconfig, which `skiff server --dev` writes).
    #[arg(long, env = "KUBECONFIG", global = true)]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// A bearer token to authenticate with (as kubectl's `--token`), instead of the
    /// kubeconfig's credential; the kubeconfig's server and CA still apply. (`skiff agent
    /// --token` is the agent's join token.)
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// Namespace.
    #[arg(short = 'n', long, default_value = "default", global = true)]
    pub namespace: String,
    /// Act as this user (sent as `Impersonate-User`; needs the `impersonate` permission).
    #[arg(long = "as", global = true)]
    pub as_user: Option<String>,
    /// Act as a member of this group too (repeatable; needs `--as`).
    #[arg(long = "as-group", global = true)]
    pub as_groups: Vec<String>,
    /// Act with this user uid (sent as `Impersonate-Uid`; needs `--as`).
    #[arg(long = "as-uid", global = true)]
    pub as_uid: Option<String>,
    /// Act with this extra field, `KEY=VALUE` (repeatable; sent as `Impersonate-Extra-KEY`;
    /// needs `--as`).
    #[arg(long = "as-user-extra", global = true, value_parser = parse_extra)]
    pub as_user_extra: Vec<(String, String)>,
}

/// `KEY=VALUE` of `--as-user-extra`.
fn parse_extra(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a control-plane server (with `--dev`: also a node agent, in one process).
    Server(Box<ServerArgs>),
    /// Run a node agent that joins a cluster.
    Agent(Box<AgentArgs>),
    /// Create or update objects from manifest files.
    Apply(ApplyArgs),
    /// Inspect authorization: `skiff auth can-i VERB TYPE[/NAME]`.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// List or show objects.
    Get(GetArgs),
    /// Show details of an object and its events.
    Describe(DescribeArgs),
    /// Delete objects by name or by manifest.
    Delete(DeleteArgs),
    /// Print a container's logs.
    Logs(LogsArgs),
    /// Run a command in a container: `skiff exec POD [-c CONTAINER] [-i] [-t] -- CMD...`.
    Exec(ExecArgs),
    /// Forward local ports to a pod's: `skiff port-forward POD|TYPE/NAME [LOCAL:]REMOTE...`.
    PortForward(PortForwardArgs),
    /// Set the replicas of a Deployment, ReplicaSet or StatefulSet.
    Scale(ScaleArgs),
    /// Make a Service for a workload's pods: `skiff expose deployment NAME --port P [--type NodePort]`.
    Expose(ExposeArgs),
    /// Follow, list, undo, pause, resume or restart a Deployment's rollouts (a StatefulSet's: status and restart).
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Create an object from another: `skiff create job NAME --from=cronjob/NAME`.
    #[command(subcommand)]
    Create(CreateCommand),
    /// Wait for a condition: `skiff wait --for=condition=complete job/NAME --timeout 60s`.
    Wait(WaitArgs),
    /// Mark a node unschedulable: new pods are not placed on it (running ones stay).
    Cordon(NodeArgs),
    /// Mark a node schedulable again.
    Uncordon(NodeArgs),
    /// Cordon a node and evict its pods, honouring PodDisruptionBudgets, until they are gone.
    Drain(DrainArgs),
    /// The control plane's Raft group: `skiff cluster status`.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Back up a running cluster's store, or seed a new cluster from a backup.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Secrets at rest: `skiff secrets rotate-key` encrypts every Secret under a new key.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// What pods and nodes use now: `skiff top pods [-A] [--containers]`, `skiff top nodes`.
    #[command(subcommand)]
    Top(TopCommand),
    /// Join tokens for agents: `skiff token create`, `skiff token list`.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Images in registries: `skiff image push ./app.wasm REGISTRY/REPO:TAG`.
    #[command(subcommand)]
    Image(ImageCommand),
    /// The cluster's certificates: `skiff certificate create-ca --out DIR`,
    /// `skiff certificate approve|deny NAME`.
    #[command(subcommand)]
    Certificate(CertificateCommand),
    /// Users with client certificates: `skiff user create NAME --group G --out FILE`.
    #[command(subcommand)]
    User(UserCommand),
    /// Measure the cluster: see `skiff bench deploy --help`.
    #[command(subcommand)]
    Bench(BenchCommand),
}

impl Cli {
    /// Parses the process's arguments, or exits with clap's message.
    pub fn from_args() -> Cli {
        Cli::try_from_iter(std::env::args_os()).unwrap_or_else(|err| err.exit())
    }

    /// Parses `args` (the program's name first). `skiff bench nodes` measures the server given
    /// with `--server` on the command line (not one from `SKIFF_SERVER` or the default)
    /// instead of starting its own.
    fn try_from_iter(args: impl IntoIterator<Item = OsString>) -> Result<Cli, clap::Error> {
        let matches = Cli::command().try_get_matches_from(args)?;
        let mut cli =
            Cli::from_arg_matches(&matches).map_err(|err| err.format(&mut Cli::command()))?;
        if let Command::Bench(BenchCommand::Nodes(args)) = &mut cli.command {
            if matches.value_source("server") == Some(ValueSource::CommandLine) {
                args.server = cli.client.server.clone();
            }
        }
        Ok(cli)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Cli {
        Cli::try_from_iter(line.split(' ').map(OsString::from)).expect(line)
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn connection_flags_go_before_or_after_the_command() {
        for line in [
            "skiff --server http://a,http://b -n kube-system get pods",
            "skiff get pods --server http://a,http://b -n kube-system",
            "skiff -n kube-system get --server=http://a,http://b pods",
        ] {
            let cli = parse(line);
            assert_eq!(
                cli.client.server.as_deref(),
                Some("http://a,http://b"),
                "{line}"
            );
            assert_eq!(cli.client.namespace, "kube-system", "{line}");
            assert!(matches!(cli.command, Command::Get(_)), "{line}");
        }
        let cli = parse("skiff --server=http://a cluster status");
        assert_eq!(cli.client.server.as_deref(), Some("http://a"));
        assert!(matches!(
            cli.command,
            Command::Cluster(crate::commands::cluster::ClusterCommand::Status)
        ));
        let cli = parse(
            "skiff auth can-i list pods --as bob --as-group dev --as-group qa --as-uid u1 \
             --as-user-extra acme.com/team=a=b --as-user-extra acme.com/team=c",
        );
        assert_eq!(cli.client.as_user.as_deref(), Some("bob"));
        assert_eq!(cli.client.as_groups, ["dev", "qa"]);
        assert_eq!(cli.client.as_uid.as_deref(), Some("u1"));
        let team = "acme.com/team".to_string();
        assert_eq!(
            cli.client.as_user_extra,
            [(team.clone(), "a=b".to_string()), (team, "c".to_string())]
        );
        let no_value = ["skiff", "--as-user-extra", "novalue", "version"].map(OsString::from);
        assert!(Cli::try_from_iter(no_value).is_err());
        let cli = parse("skiff agent --server http://a --token t --node-name n");
        assert_eq!(cli.client.server.as_deref(), Some("http://a"));
    }

    #[test]
    fn bench_nodes_measures_only_a_server_named_on_the_command_line() {
        let server = |line: &str| match parse(line).command {
            Command::Bench(BenchCommand::Nodes(args)) => args.server,
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(server("skiff bench nodes"), None);
        assert_eq!(
            server("skiff bench nodes --nodes 10 --server http://a"),
            Some("http://a".to_string())
        );
        assert_eq!(
            server("skiff --server http://a bench nodes"),
            Some("http://a".to_string())
        );
    }
}
