//! `skiff bench api`: the cost of the secure path. One `skiff server` child process, the same
//! ConfigMap create and get load from keep-alive clients over (a) the loopback
//! `--insecure-http` listener, (b) HTTPS as the admin (`system:masters`: TLS, RBAC skipped)
//! and (c) HTTPS as a `--token-auth-file` user that a RoleBinding to `edit` authorizes (TLS,
//! token authentication and RBAC), in alternating rounds, with the ratios to (a).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;
use skiff_client::{Client, Credentials, Kubeconfig};

use crate::cluster::kind;
use crate::figures::{self, Throughput};
use crate::server::ServerUnderTest;
use crate::tempfile_dir;

#[derive(Args, Debug)]
pub struct BenchApiArgs {
    /// Creates, then as many gets, per mode and round (fewer if `--duration` ends a phase first).
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// The longest one phase (a mode's creates, or its gets) runs, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Concurrent requests (each client keeps its connection open).
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Runs of each mode, alternating (the machine's drift falls on all).
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Where the server keeps its data (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// The user of the static token, and the token.
const USER: &str = "bench-user";
const TOKEN: &str = "bench-token-0123456789abcdef";
/// What `skiff server` prints after its API address when `--insecure-http` is given.
const PLAIN_HTTP: &str = "plain HTTP (as admin) on ";
const NAMESPACE: &str = "default";

/// The three ways in.
const MODES: [&str; 3] = ["insecure-http", "https-admin", "https-token+rbac"];

/// A mode's create and get figures in one round.
type Run = (Throughput, Throughput);

pub async fn api(args: BenchApiArgs) -> anyhow::Result<()> {
    let dir = tempfile_dir(args.data_dir.as_deref())?;
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, format!("{TOKEN},{USER},bench-uid\n"))?;
    let data_dir = dir.path().join("server");
    let tokens_flag = tokens.display().to_string();
    let server = ServerUnderTest::spawn_with(
        &data_dir,
        &[
            "--insecure-http",
            "127.0.0.1:0",
            "--token-auth-file",
            &tokens_flag,
        ],
    )
    .await?;
    let admin = server.client()?;
    let resolved = Kubeconfig::load(&data_dir.join("admin.kubeconfig"))?;
    let insecure = Client::new(&[plain_http_url(&data_dir).await?])?;
    let token_user = Client::with_credentials(
        &[server.url()],
        &Credentials {
            ca_pem: resolved.credentials.ca_pem.clone(),
            identity: None,
            token: Some(TOKEN.into()),
        },
    )?;
    bind_to_edit(&admin, &token_user).await?;

    println!(
        "ConfigMap creates and gets: {} per phase (at most {} s), {} clients, {} rounds, one server",
        args.requests, args.duration, args.clients, args.rounds
    );
    let clients = [&insecure, &admin, &token_user];
    let mut totals = vec![Vec::new(); MODES.len()];
    for round in 0..args.rounds {
        for (m, (mode, client)) in MODES.iter().zip(clients).enumerate() {
            let prefix = format!("r{round}-m{m}");
            let (create, get) = run(client, &args, &prefix).await?;
            println!("round {round} {mode:<17} create {create}   get {get}");
            totals[m].push((create, get));
        }
    }
    print_ratios(&totals);
    Ok(())
}

/// Where the server's `--insecure-http` listener is, from its log.
pub(crate) async fn plain_http_url(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let log = data_dir.with_extension("log");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(url) = text.lines().find_map(|l| l.split_once(PLAIN_HTTP)) {
            return Ok(url.1.trim().to_string());
        }
        if Instant::now() > deadline {
            bail!("the server did not announce its --insecure-http listener");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Binds the token user to `edit` in the namespace, and waits until the authorizer knows it.
async fn bind_to_edit(admin: &Client, user: &Client) -> anyhow::Result<()> {
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "bench-edit"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
    });
    admin
        .create(kind("rolebindings")?, Some(NAMESPACE), &binding)
        .await
        .context("binding the token user to edit")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while user
        .list(
            kind("configmaps")?,
            Some(NAMESPACE),
            &skiff_client::ListParams::default(),
        )
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("the token user was not authorized within 10 s of its RoleBinding");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Creates ConfigMaps named `PREFIX-i`, then gets them, from `args.clients` at once.
async fn run(client: &Client, args: &BenchApiArgs, prefix: &str) -> anyhow::Result<Run> {
    let configmaps = kind("configmaps")?;
    let create = measure(args, |i| {
        let client = client.clone();
        let object = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("{prefix}-{i}")},
            "data": {"k": "v"},
        });
        async move {
            client.create(configmaps, Some(NAMESPACE), &object).await?;
            Ok(())
        }
    })
    .await?;
    let created = create.0;
    let get = measure(args, |i| {
        let client = client.clone();
        let name = format!("{prefix}-{}", i % created.max(1));
        async move {
            client.get(configmaps, Some(NAMESPACE), &name).await?;
            Ok(())
        }
    })
    .await?;
    Ok((create.1, get.1))
}

/// Runs `op(0..)` with `args.clients` in flight until `args.requests` are done or the phase's
/// time is up; returns how many ran and their figures.
async fn measure<F, Fut>(args: &BenchApiArgs, op: F) -> anyhow::Result<(usize, Throughput)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let limit = Duration::from_secs_f64(args.duration);
    figures::load(args.requests, args.clients, Some(limit), op).await
}

/// Each mode's mean throughput and p99 over the rounds, against the insecure listener's.
fn print_ratios(totals: &[Vec<Run>]) {
    let mean = |runs: &[Run], get: bool| {
        let n = runs.len().max(1) as f64;
        let pick = |r: &Run| if get { r.1 } else { r.0 };
        let rate = runs.iter().map(|r| pick(r).per_second).sum::<f64>() / n;
        let p99 = runs.iter().map(|r| pick(r).p99.as_secs_f64()).sum::<f64>() / n;
        (rate, p99)
    };
    println!("against {} (mean over the rounds):", MODES[0]);
    for (op, get) in [("create", false), ("get", true)] {
        let (base_rate, base_p99) = mean(&totals[0], get);
        for (mode, runs) in MODES.iter().zip(totals).skip(1) {
            let (rate, p99) = mean(runs, get);
            println!(
                "  {op:<6} {mode:<17} throughput {:>5.1}% of it ({:+.1}%), p99 x{:.2}",
                100.0 * rate / base_rate,
                100.0 * (rate / base_rate - 1.0),
                p99 / base_p99
            );
        }
    }
}
