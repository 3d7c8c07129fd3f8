//! `skiff logs`: a container's output, proxied from its node.

use std::io::Write;

use futures::StreamExt;
use skiff_client::LogParams;

use super::client;
use crate::cli::LogsArgs;

pub async fn run(args: LogsArgs) -> anyhow::Result<()> {
    let client = client(&args.client)?;
    let params = LogParams {
        container: args.container,
        follow: args.follow,
        tail_lines: args.tail,
        previous: args.previous,
    };
    let mut stream = client
        .logs(&args.client.namespace, &args.pod, &params)
        .await?;
    let mut stdout = std::io::stdout();
    while let Some(chunk) = stream.next().await {
        stdout.write_all(&chunk?)?;
        stdout.flush()?;
    }
    Ok(())
}
