//! `skiff agent`: a node agent joining a cluster over HTTPS. Its join token carries the
//! cluster CA's hash (`K10<hash>::<token>`): the agent fetches the CA from `/cacerts`,
//! checks it against the hash, and trusts only it from then on. With the token it then gets
//! a client certificate of its own (`system:node:<name>`, in `DATA_DIR/pki/`), which it uses
//! for every call after.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use skiff_api::join_token;
use skiff_client::{Client, Credentials};
use skiff_node_runtime::agent::credentials::{node_client, Bootstrap};

use super::daemon::{
    descriptor_budget, host_name, parse_listen_or_none, terminated, wasm_agent, ConnArgs,
    ListenOrNone, NodeArgs,
};
use crate::cli::ClientOpts;

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The join token from `skiff token create`.
    #[arg(long, env = "SKIFF_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The cluster CA (PEM) to trust, for a join token without the CA's hash.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// The node's name (default: this host's name).
    #[arg(long, alias = "name")]
    pub node_name: Option<String>,
    /// A node label `key=value` (repeatable), for nodeSelector and affinity.
    #[arg(long = "node-label", value_parser = parse_label)]
    pub node_labels: Vec<(String, String)>,
    /// Where the agent keeps images, compiled guests and logs.
    #[arg(long, default_value = "./skiff-agent")]
    pub data_dir: PathBuf,
    /// Where this node's local-path PersistentVolumes live (default: <data-dir>/storage).
    #[arg(long)]
    pub local_path_root: Option<PathBuf>,
    /// The kubelet endpoint (logs, exec, images), or `none`. The servers reach the agent
    /// through the tunnel it keeps open to each of them, and dial this endpoint only for a
    /// node with no tunnel to them; an agent behind NAT or a firewall runs with `none`.
    #[arg(
        long,
        alias = "kubelet-listen",
        default_value = "127.0.0.1:10250",
        value_parser = parse_listen_or_none,
        overrides_with = "listen"
    )]
    pub listen: ListenOrNone,
    /// Open no tunnels to the servers: they reach this node on its listener (HTTPS) alone.
    #[arg(long)]
    pub no_tunnel: bool,
    /// The node's address, published as its InternalIP (default: the --listen address,
    /// else 127.0.0.1).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// The cluster's pod network (the servers' `--cluster-cidr`): pod traffic to anywhere
    /// else is masqueraded with `--pod-network bridge`.
    #[arg(long, default_value = skiff_api::pod_cidr::DEFAULT_CLUSTER_CIDR)]
    pub cluster_cidr: ipnet::Ipv4Net,
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub connections: ConnArgs,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?}: expected key=value"))
}

pub async fn run(mut args: AgentArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    args.node.network.cluster_cidr = Some(args.cluster_cidr.trunc());
    let node = args.node_name.clone().unwrap_or_else(host_name);
    let mut budget = descriptor_budget();
    let limits = args.connections.limits(
        skiff_node_runtime::agent::DEFAULT_MAX_CONNECTIONS,
        &mut budget,
    );
    let servers: Vec<String> = opts
        .server
        .as_deref()
        .context("--server: the API server's URL")?
        .split(',')
        .map(|s| s.trim().trim_end_matches('/').to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let (hash, token) = join_token::split_ca_hash(&args.token);
    let ca_pem = match (&args.ca_file, hash) {
        (Some(file), _) => {
            Some(std::fs::read(file).with_context(|| format!("--ca-file {}", file.display()))?)
        }
        (None, Some(hash)) => Some(fetch_ca(&servers, hash).await?),
        (None, None) if servers.iter().all(|s| s.starts_with("http://")) => None,
        (None, None) => anyhow::bail!(
            "this join token carries no CA hash (K10<hash>::<token>, as `skiff token create` \
             prints it): pass the cluster CA with --ca-file"
        ),
    };
    // Over TLS the node gets a client certificate of its own (`system:node:<name>`) with the
    // join token, and uses it for everything after; plain HTTP has no client identity.
    let (client, token) = match &ca_pem {
        Some(ca_pem) => {
            let bootstrap = Bootstrap {
                servers: &servers,
                ca_pem,
                token,
                data_dir: &args.data_dir,
                node: &node,
            };
            (node_client(&bootstrap).await?, None)
        }
        None => (
            Client::with_credentials(
                &servers,
                &Credentials {
                    ca_pem: None,
                    identity: None,
                    token: Some(token.to_string()),
                },
            )?,
            Some(token),
        ),
    };
    let mut agent = wasm_agent(
        servers,
        token,
        args.node_labels.into_iter().collect(),
        node,
        args.data_dir,
        args.listen.0,
        args.node,
    )?
    .connections(limits)
    .client(client);
    if args.no_tunnel {
        anyhow::ensure!(
            ca_pem.is_some(),
            "--no-tunnel needs the cluster CA (an https:// server): the listener serves HTTPS \
             only, so without it the servers could not reach this node"
        );
    }
    if let Some(ca_pem) = ca_pem {
        agent = agent.cluster_ca(ca_pem);
    }
    if let Some(ip) = args.node_ip {
        agent = agent.node_ip(ip);
    }
    if args.no_tunnel {
        anyhow::ensure!(
            args.listen.0.is_some(),
            "--no-tunnel with --listen none: the servers could not reach this node"
        );
        agent = agent.without_tunnel();
    }
    if let Some(root) = args.local_path_root {
        agent = agent.local_path_root(root);
    }
    agent.build()?.run(terminated()).await?;
    Ok(())
}

/// The cluster CA from the first server that serves one whose SHA-256 is `hash`. The
/// server's certificate cannot be checked yet (the CA is what is being fetched): the hash
/// from the token is what makes the answer trustworthy.
async fn fetch_ca(servers: &[String], hash: &str) -> anyhow::Result<Vec<u8>> {
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .connect_timeout(std::time::Duration::from_secs(3))
        .build()?;
    let mut last = None;
    for server in servers {
        let url = format!("{server}/cacerts");
        let answer = async {
            let response = http.get(&url).send().await?.error_for_status()?;
            response.text().await
        }
        .await;
        match answer {
            Ok(pem) if skiff_control_plane::pki::ca_hash(&pem) == hash => {
                return Ok(pem.into_bytes())
            }
            Ok(_) => {
                last = Some(anyhow::anyhow!(
                    "{url} serves a CA whose SHA-256 is not the join token's: refusing it"
                ))
            }
            Err(err) => last = Some(anyhow::anyhow!("fetching {url}: {err}")),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("--server: no server given")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Line {
        #[command(flatten)]
        args: AgentArgs,
    }

    fn listen(flags: &[&str]) -> Option<std::net::SocketAddr> {
        let line = ["agent", "--token", "t"].iter().chain(flags);
        Line::try_parse_from(line).expect("parses").args.listen.0
    }

    #[test]
    fn the_listener_is_optional_and_the_last_flag_wins() {
        assert_eq!(listen(&[]), Some("127.0.0.1:10250".parse().expect("addr")));
        assert_eq!(listen(&["--kubelet-listen", "none"]), None);
        assert_eq!(
            listen(&["--listen", "127.0.0.1:0", "--kubelet-listen", "none"]),
            None
        );
        assert_eq!(
            listen(&["--listen", "none", "--listen", "0.0.0.0:10250"]),
            Some("0.0.0.0:10250".parse().expect("addr"))
        );
    }
}
