//! The `skiff` binary: parses flags and hands over to the command modules.

mod cli;
mod commands;
mod manifests;
mod output;

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = cli::Cli::parse();
    // Daemons report what they do; client commands only warn.
    let default_level = match cli.command {
        cli::Command::Server(_) | cli::Command::Agent(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(err) = commands::run(cli.command).await {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
