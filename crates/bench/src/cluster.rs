//! Reading the cluster under test: resource kinds by name, and waiting for nodes.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use skiff_api::join_token::JoinToken;
use skiff_api::resources::{self, ResourceKind};
use skiff_client::{Client, ListParams};

/// A new join token that never expires, for the benchmark's agents.
pub async fn join_token(client: &Client) -> anyhow::Result<JoinToken> {
    let token = JoinToken::from_random(rand::random());
    client
        .create_join_token(&token, None, "bench")
        .await
        .context("storing the join token")?;
    Ok(token)
}

/// A resource kind by its plural or short name.
pub fn kind(name: &str) -> anyhow::Result<&'static ResourceKind> {
    resources::by_name(name).with_context(|| format!("unknown kind {name}"))
}

/// Waits until `count` nodes report `Ready`, at most `limit`.
pub async fn wait_nodes_ready(
    client: &Client,
    count: usize,
    limit: Duration,
) -> anyhow::Result<()> {
    let nodes = kind("nodes")?;
    let deadline = Instant::now() + limit;
    loop {
        let list = client.list(nodes, None, &ListParams::default()).await?;
        let ready = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| {
                n["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .count();
        if ready >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {ready} of {count} nodes Ready after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
