//! `skiff bench secrets`: the cost of Secrets encrypted at rest. Creates and gets of Secrets
//! on a `skiff server` child process with `identity` (clear text) and with `aesgcm` (the
//! default), one after the other, several rounds, from concurrent clients.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use futures::StreamExt;
use skiff_client::Client;

use crate::cluster::kind;
use crate::figures::{ms, percentile};
use crate::server::ServerUnderTest;
use crate::tempfile_dir;

#[derive(Args, Debug)]
pub struct BenchSecretsArgs {
    /// Secrets created (then read) per run.
    #[arg(long, default_value_t = 2000)]
    pub secrets: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Bytes of each Secret's value.
    #[arg(long, default_value_t = 1024)]
    pub value_bytes: usize,
    /// Runs of each mode, alternating (the machine's drift falls on both).
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Where the servers keep their data (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// A config that leaves Secrets in clear text.
const IDENTITY: &str = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n\
                        resources:\n  - resources: [secrets]\n    providers:\n      - identity: {}\n";

/// One operation's figures.
struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>8.0}/s  p50 {:>8}  p99 {:>8}",
            self.per_second,
            ms(self.p50),
            ms(self.p99)
        )
    }
}

pub async fn secrets(args: BenchSecretsArgs) -> anyhow::Result<()> {
    let dir = tempfile_dir(args.data_dir.as_deref())?;
    let identity = dir.path().join("identity.yaml");
    std::fs::write(&identity, IDENTITY)?;
    let identity_flag = identity.display().to_string();
    println!(
        "{} Secrets of {} bytes, {} clients, {} rounds",
        args.secrets, args.value_bytes, args.clients, args.rounds
    );
    for round in 0..args.rounds {
        for (mode, flags) in [
            (
                "identity",
                vec!["--encryption-provider-config", &identity_flag],
            ),
            ("aesgcm", vec![]),
        ] {
            let data_dir = dir.path().join(format!("{mode}-{round}"));
            let server = ServerUnderTest::spawn_with(&data_dir, &flags).await?;
            let client = Client::new(&[server.url()])?;
            let (create, get) = run(&client, &args).await?;
            println!("round {round} {mode:<8}  create {create}  get {get}");
            drop(server);
        }
    }
    Ok(())
}

/// Creates then gets `args.secrets` Secrets from `args.clients` concurrent clients.
async fn run(client: &Client, args: &BenchSecretsArgs) -> anyhow::Result<(Figures, Figures)> {
    let secrets = kind("secrets")?;
    let value = "v".repeat(args.value_bytes);
    let create = measure(args, |i| {
        let client = client.clone();
        let secret = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": format!("s{i}")},
            "stringData": {"value": value},
        });
        async move {
            client.create(secrets, Some("default"), &secret).await?;
            Ok(())
        }
    })
    .await?;
    let get = measure(args, |i| {
        let client = client.clone();
        async move {
            client
                .get(secrets, Some("default"), &format!("s{i}"))
                .await?;
            Ok(())
        }
    })
    .await?;
    Ok((create, get))
}

async fn measure<F, Fut>(args: &BenchSecretsArgs, op: F) -> anyhow::Result<Figures>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..args.secrets)
        .map(|i| {
            let op = op(i);
            async move {
                let at = Instant::now();
                op.await.map(|()| at.elapsed())
            }
        })
        .buffer_unordered(args.clients.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(Figures {
        per_second: args.secrets as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 50),
        p99: percentile(&latencies, 99),
    })
}
