//! The `skiff` binary: parses flags and hands over to the command modules.

mod cli;
mod commands;
mod duration;
mod manifests;
mod output;
mod private_files;

use skiff_node_runtime::runtime::linux::shim;

fn main() {
    // The Linux runtime's shim forks: it must run before any thread (tokio's) starts.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(shim::SUBCOMMAND) {
        std::process::exit(shim::main(&args[2..]));
    }
    run();
}

#[tokio::main]
async fn run() {
    let cli = cli::Cli::from_args();
    // Daemons report what they do; client commands only warn.
    let default_level = match cli.command {
        cli::Command::Server(_) | cli::Command::Agent(_) => "info",
        cli::Command::Bench(_) => "error",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    raise_open_files_limit();
    if let Err(err) = commands::run(cli.command, &cli.client).await {
        // `skiff exec` exits with the remote command's code, as kubectl does.
        if let Some(commands::exec::RemoteExit(code)) = err.downcast_ref() {
            eprintln!("{err}");
            std::process::exit(*code);
        }
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

/// Servers hold a connection per agent and watch: lift the open-files limit as far as allowed.
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    // Root may raise the hard limit too; otherwise the soft one goes up to the hard one.
    let wanted = hard.max(1 << 20);
    if setrlimit(Resource::RLIMIT_NOFILE, wanted, wanted).is_err() && soft < hard {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
