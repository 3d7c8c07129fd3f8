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
    /// At most this many bytes of output.
    #[arg(long, value_name = "N")]
    pub limit_bytes: Option<i64>,
    /// Only output newer than this (`10s`, `5m`, `2h`, `1h30m`).
    #[arg(long, value_parser = parse_since, conflicts_with = "since_time")]
    pub since: Option<i64>,
    /// Only output written at or after this RFC 3339 time.
    #[arg(long)]
    pub since_time: Option<String>,
    /// Prefix each line with the time it was written.
    #[arg(long)]
    pub timestamps: bool,
}

/// `5m`, `1h30m`, `10s` → whole seconds (at least 1), as kubectl's `--since`.
fn parse_since(text: &str) -> Result<i64, String> {
    let duration: jiff::SignedDuration = text
        .parse()
        .map_err(|e| format!("{text:?}: expected a duration like 10s, 5m or 1h30m ({e})"))?;
    if duration.is_negative() || duration.is_zero() {
        return Err(format!("{text:?}: the duration must be positive"));
    }
    Ok(duration.as_secs().max(1))
}

pub async fn run(args: LogsArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let client = client(opts)?;
    let params = LogParams {
        container: args.container,
        follow: args.follow,
        tail_lines: args.tail,
        previous: args.previous,
        limit_bytes: args.limit_bytes,
        since_seconds: args.since,
        since_time: args.since_time,
        timestamps: args.timestamps,
    };
    let mut stream = client.logs(&opts.namespace, &args.pod, &params).await?;
    let mut stdout = std::io::stdout();
    while let Some(chunk) = stream.next().await {
        stdout.write_all(&chunk?)?;
        stdout.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn parses_durations_as_kubectl_does() {
        assert_eq!(parse_since("10s"), Ok(10));
        assert_eq!(parse_since("5m"), Ok(300));
        assert_eq!(parse_since("1h30m"), Ok(5400));
        assert!(parse_since("0s").is_err());
        assert!(parse_since("soon").is_err());
    }
}
