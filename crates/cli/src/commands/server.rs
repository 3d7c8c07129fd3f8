//! `skiff server` and `skiff agent`: the daemons.

use std::sync::Arc;

use anyhow::Context;
use skiff_control_plane::{stored_cluster, Cluster, Server, ServerConfig, Timing};
use skiff_node_runtime::agent::Agent;
use skiff_node_runtime::runtime::wasm::WasmRuntime;

use crate::cli::{AgentArgs, ServerArgs};

/// Resolves on Ctrl-C or SIGTERM.
async fn terminated() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_lowercase())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "skiff-node".into())
}

fn wasm_agent(
    servers: Vec<String>,
    token: &str,
    labels: std::collections::BTreeMap<String, String>,
    node: String,
    data_dir: std::path::PathBuf,
    listen: std::net::SocketAddr,
) -> anyhow::Result<Agent> {
    let runtime = WasmRuntime::new(data_dir.join("wasm")).context("starting the Wasm runtime")?;
    Ok(Agent::builder()
        .servers(servers)
        .token(token)
        .labels(labels)
        .node_name(node)
        .data_dir(data_dir)
        .listen(listen)
        .runtime(Arc::new(runtime))
        .build()?)
}

/// The in-process node joins like any other, with a token that never expires, made on the
/// first start and kept in the data dir.
async fn dev_token(url: &str, data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("dev-join-token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        return Ok(token.trim().to_string());
    }
    let client = skiff_client::Client::new(&[url.to_string()])?;
    let token = super::token::create_token(&client, Default::default(), "dev node").await?;
    std::fs::write(&path, token.to_string())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(token.to_string())
}

/// The member's configuration from its flags; a bad peer list or timing is refused here,
/// before anything is opened. With `--join`, the membership comes from the running cluster
/// (first start) or from the data dir (restarts).
async fn server_config(args: &ServerArgs) -> anyhow::Result<ServerConfig> {
    use std::time::Duration;
    if args.election_timeout <= args.heartbeat_interval || args.heartbeat_interval == 0 {
        anyhow::bail!(
            "--election-timeout ({} ms) must be longer than --heartbeat-interval ({} ms), \
             which must be positive; etcd's defaults are 1000 and 100",
            args.election_timeout,
            args.heartbeat_interval
        );
    }
    let mut config = ServerConfig::new(args.name.clone(), args.data_dir.clone(), args.listen);
    config.node_grace = Duration::from_secs(args.node_grace_seconds);
    config.log_retain = args.log_retain.max(1);
    config.timing = Timing {
        tick: Duration::from_millis(args.heartbeat_interval),
        heartbeat_ticks: 1,
        election_ticks: (args.election_timeout / args.heartbeat_interval) as usize,
    };
    if let Some(urls) = &args.join {
        if args.dev || args.initial_cluster.is_some() {
            anyhow::bail!(
                "--join starts a new member of a running cluster: drop --dev and --initial-cluster"
            );
        }
        let store = args.data_dir.join(skiff_control_plane::STORE_DIR);
        config.cluster = match stored_cluster(&store)? {
            Some(cluster) => cluster,
            None => {
                let (cluster, conf) = super::cluster::join_info(urls, &args.name).await?;
                config.join = Some(conf);
                cluster
            }
        };
        let own = config
            .cluster
            .member(config.cluster.local)
            .map(|m| m.peer_addr.clone())
            .unwrap_or_default();
        config.peer_listen = Some(match args.peer_listen {
            Some(addr) => addr,
            None => own.parse().with_context(|| {
                format!(
                    "the cluster gives {:?} the peer address {own:?}; pass --peer-listen",
                    args.name
                )
            })?,
        });
    } else if let Some(initial) = &args.initial_cluster {
        if args.dev {
            anyhow::bail!("--dev runs a cluster of one; it cannot take --initial-cluster");
        }
        config.cluster = Cluster::parse(&args.name, initial)?;
        let own = config
            .cluster
            .member(config.cluster.local)
            .map(|m| m.peer_addr.clone())
            .unwrap_or_default();
        config.peer_listen = match args.peer_listen {
            Some(addr) => Some(addr),
            None => Some(own.parse().with_context(|| {
                format!(
                    "--initial-cluster gives {:?} the peer address {own:?}, which is not \
                     IP:PORT; pass --peer-listen",
                    args.name
                )
            })?),
        };
    } else if args.peer_listen.is_some() {
        anyhow::bail!("--peer-listen needs --initial-cluster (the other members)");
    }
    Ok(config)
}

pub async fn server(args: ServerArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let handle = Server::start(server_config(&args).await?).await?;
    let url = handle.url();
    println!(
        "skiff API listening on {url} (data in {})",
        args.data_dir.display()
    );
    let agent = if args.dev {
        let node = args.node_name.clone().unwrap_or_else(host_name);
        let token = dev_token(&url, &args.data_dir).await?;
        let agent = wasm_agent(
            vec![url.clone()],
            &token,
            Default::default(),
            node.clone(),
            args.data_dir.join("agent"),
            args.kubelet_listen,
        )?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(agent.run(async move {
            let _ = stopped.await;
        }));
        println!("dev node {node:?} runs Wasm pods; try:");
        println!("  export SKIFF_SERVER={url}");
        println!("  skiff apply -f wasm-examples/ticker/deploy.yaml && skiff get pods");
        Some((stop, task))
    } else {
        None
    };
    tokio::select! {
        _ = terminated() => {}
        _ = handle.removed() => println!("this server was removed from the cluster"),
    }
    println!("shutting down");
    if let Some((stop, task)) = agent {
        let _ = stop.send(());
        match task.await {
            Ok(Err(err)) => eprintln!("agent: {err}"),
            Err(err) => eprintln!("agent task: {err}"),
            Ok(Ok(())) => {}
        }
    }
    handle.shutdown().await;
    Ok(())
}

pub async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    let node = args.node_name.clone().unwrap_or_else(host_name);
    let agent = wasm_agent(
        vec![args.client.server.clone()],
        &args.token,
        args.node_labels.into_iter().collect(),
        node,
        args.data_dir,
        args.listen,
    )?;
    agent.run(terminated()).await?;
    Ok(())
}
