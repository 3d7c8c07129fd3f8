//! `skiff logs`: a container's output, proxied from its node.

use std::io::Write;

use clap::Args;
use futures::StreamExt;
use skiff_client::LogParams;

use super::client;
use crate::cli::ClientOpts;

#[derive(Args, Debug)]
pub struct LogsArgs {
    pub pod: String,
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Keep streaming new output.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(long)]
    pub tail: Option<i64>,
    /// The previous (restarted) container's log.
    #[arg(short = 'p', long)]
    pub previous: bool,
}

pub async fn run(args: LogsArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let client = client(opts)?;
    let params = LogParams {
        container: args.container,
        follow: args.follow,
        tail_lines: args.tail,
        previous: args.previous,
    };
    let mut stream = client.logs(&opts.namespace, &args.pod, &params).await?;
    let mut stdout = std::io::stdout();
    while let Some(chunk) = stream.next().await {
        stdout.write_all(&chunk?)?;
        stdout.flush()?;
    }
    Ok(())
}
