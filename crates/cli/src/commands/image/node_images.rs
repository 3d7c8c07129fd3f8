//! `skiff image ls|pull|rm [--node NODE]`: a node's images, through the API server's node
//! proxy to its agent.

use anyhow::Context;
use clap::Args;
use serde_json::Value;
use skiff_api::resources;
use skiff_client::{ListParams, Method};

use super::super::client;
use crate::cli::ClientOpts;

/// `skiff image ls`.
#[derive(Args, Debug)]
pub struct NodeImagesArgs {
    /// The node; may be left out when the cluster has one node.
    #[arg(long)]
    pub node: Option<String>,
}

/// `skiff image pull|rm IMAGE`.
#[derive(Args, Debug)]
pub struct NodeImageArgs {
    /// The image reference, as pods name it.
    pub image: String,
    /// The node; may be left out when the cluster has one node.
    #[arg(long)]
    pub node: Option<String>,
}

/// The node named, else the cluster's only node.
pub async fn node(client: &skiff_client::Client, named: Option<String>) -> anyhow::Result<String> {
    if let Some(node) = named {
        return Ok(node);
    }
    let nodes = resources::by_name("nodes").expect("nodes are served");
    let list = client.list(nodes, None, &ListParams::default()).await?;
    let names: Vec<&str> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["metadata"]["name"].as_str())
        .collect();
    match names.as_slice() {
        [only] => Ok(only.to_string()),
        [] => anyhow::bail!("the cluster has no nodes"),
        _ => anyhow::bail!(
            "the cluster has {} nodes: name one with --node ({})",
            names.len(),
            names.join(", ")
        ),
    }
}

fn query(image: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("image", image)
        .finish()
}

pub async fn list(args: NodeImagesArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let client = client(opts)?;
    let node = node(&client, args.node).await?;
    let answer = client
        .node_proxy(Method::GET, &node, "/images")
        .await
        .with_context(|| format!("listing the images of node {node}"))?;
    let rows: Vec<Vec<String>> = answer["images"]
        .as_array()
        .into_iter()
        .flatten()
        .map(row)
        .collect();
    crate::output::table::print(&["IMAGE", "DIGEST", "SIZE"], &rows);
    Ok(())
}

fn row(image: &Value) -> Vec<String> {
    let text = |field: &str| image[field].as_str().unwrap_or_default().to_string();
    let digest = text("digest");
    let short = digest
        .strip_prefix("sha256:")
        .map_or(digest.clone(), |hex| hex.chars().take(12).collect());
    vec![
        text("image"),
        short,
        human_size(image["size"].as_u64().unwrap_or(0)),
    ]
}

/// `12.3MB`, as crictl prints sizes.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < UNITS.len() {
        size /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{size:.1}{}", UNITS[unit])
    }
}

pub async fn pull(args: NodeImageArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let client = client(opts)?;
    let node = node(&client, args.node).await?;
    let path = format!("/images?{}", query(&args.image));
    let pulled = client
        .node_proxy(Method::POST, &node, &path)
        .await
        .with_context(|| format!("pulling {} on node {node}", args.image))?;
    println!(
        "Image is up to date for {} ({})",
        args.image,
        pulled["digest"].as_str().unwrap_or_default()
    );
    Ok(())
}

pub async fn remove(args: NodeImageArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let client = client(opts)?;
    let node = node(&client, args.node).await?;
    let path = format!("/images?{}", query(&args.image));
    client
        .node_proxy(Method::DELETE, &node, &path)
        .await
        .with_context(|| format!("removing {} from node {node}", args.image))?;
    println!("Deleted: {}", args.image);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_crictl_prints_them() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_500), "1.5kB");
        assert_eq!(human_size(12_345_678), "12.3MB");
    }
}
