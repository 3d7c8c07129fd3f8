//! `skiff bench secrets`: the cost of Secrets encrypted at rest. Creates and gets of Secrets
//! on a `skiff server` child process with `identity` (clear text) and with `aesgcm` (the
//! default), one after the other, several rounds, from concurrent clients.

use std::path::PathBuf;

use clap::Args;
use skiff_client::Client;

use crate::cluster::kind;
use crate::figures::{self, Throughput};
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
            let client = server.client()?;
            let (create, get) = run(&client, &args).await?;
            println!("round {round} {mode:<8}  create {create}  get {get}");
            drop(server);
        }
    }
    Ok(())
}

/// Creates then gets `args.secrets` Secrets from `args.clients` concurrent clients.
async fn run(client: &Client, args: &BenchSecretsArgs) -> anyhow::Result<(Throughput, Throughput)> {
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

async fn measure<F, Fut>(args: &BenchSecretsArgs, op: F) -> anyhow::Result<Throughput>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    Ok(figures::load(args.secrets, args.clients, None, op).await?.1)
}
