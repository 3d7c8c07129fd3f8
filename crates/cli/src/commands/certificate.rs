//! `skiff certificate create-ca --out DIR`: a cluster CA that several servers share
//! (`skiff server --cluster-ca DIR`); `skiff certificate approve|deny NAME...`: decide
//! CertificateSigningRequests through their `/approval` subresource, as `kubectl certificate`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use skiff_api::resources;
use skiff_client::Client;
use skiff_control_plane::pki::{ClusterCa, ServiceAccountKey, CA_CERT, CA_KEY};

use crate::cli::ClientOpts;

#[derive(Subcommand, Debug)]
pub enum CertificateCommand {
    /// Make a cluster CA (ca.crt, ca.key, and the ServiceAccount token key) for the members of a multi-member cluster.
    CreateCa(CreateCaArgs),
    /// Approve CertificateSigningRequests: their signers then issue the certificates.
    Approve(DecideArgs),
    /// Deny CertificateSigningRequests: they are never signed.
    Deny(DecideArgs),
}

#[derive(Args, Debug)]
pub struct CreateCaArgs {
    /// The directory to write ca.crt and ca.key (0600) into; created if missing.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct DecideArgs {
    /// The CertificateSigningRequests (`skiff get csr` lists them).
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Decide again a request already decided the other way.
    #[arg(long)]
    pub force: bool,
}

pub async fn run(command: CertificateCommand, opts: &ClientOpts) -> anyhow::Result<()> {
    match command {
        CertificateCommand::CreateCa(args) => create_ca(&args),
        CertificateCommand::Approve(args) => {
            let client = super::client(opts)?;
            for name in &args.names {
                decide(&client, name, Decision::Approve, args.force).await?;
                println!("certificatesigningrequest.certificates.k8s.io/{name} approved");
            }
            Ok(())
        }
        CertificateCommand::Deny(args) => {
            let client = super::client(opts)?;
            for name in &args.names {
                decide(&client, name, Decision::Deny, args.force).await?;
                println!("certificatesigningrequest.certificates.k8s.io/{name} denied");
            }
            Ok(())
        }
    }
}

/// Approve or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

impl Decision {
    fn condition(self) -> &'static str {
        match self {
            Decision::Approve => "Approved",
            Decision::Deny => "Denied",
        }
    }
}

/// Adds the decision's condition to CSR `name` through `/approval` (nothing if it has it).
pub async fn decide(
    client: &Client,
    name: &str,
    decision: Decision,
    force: bool,
) -> anyhow::Result<()> {
    let kind = resources::by_name("csr").context("CertificateSigningRequests are served")?;
    let mut csr = client.get(kind, None, name).await?;
    let wanted = decision.condition();
    let conditions: Vec<Value> = csr["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let held = |t: &str| conditions.iter().any(|c| c["type"] == t);
    if held(wanted) {
        return Ok(());
    }
    let other = match decision {
        Decision::Approve => "Denied",
        Decision::Deny => "Approved",
    };
    if held(other) && !force {
        anyhow::bail!("certificatesigningrequest {name} is already {other}; use --force");
    }
    let (reason, verb) = match decision {
        Decision::Approve => ("KubectlApprove", "approved"),
        Decision::Deny => ("KubectlDeny", "denied"),
    };
    let mut kept: Vec<Value> = conditions
        .into_iter()
        .filter(|c| c["type"] != other)
        .collect();
    kept.push(json!({
        "type": wanted,
        "status": "True",
        "reason": reason,
        "message": format!("This CSR was {verb} by skiff certificate {}.", &verb[..verb.len() - 1]),
    }));
    csr["status"]["conditions"] = Value::Array(kept);
    client
        .replace_subresource(kind, name, "approval", &csr)
        .await?;
    Ok(())
}

fn create_ca(args: &CreateCaArgs) -> anyhow::Result<()> {
    if args.out.join(CA_KEY).exists() {
        anyhow::bail!(
            "{} already holds a CA key: refusing to replace it",
            args.out.display()
        );
    }
    ClusterCa::create()?.write(&args.out)?;
    // The members share the ServiceAccount token key too, so each accepts the others' tokens.
    ServiceAccountKey::create()?.write(&args.out)?;
    println!(
        "wrote {}, {} and {}; start every member with --cluster-ca {}",
        args.out.join(CA_CERT).display(),
        args.out.join(CA_KEY).display(),
        args.out
            .join(skiff_control_plane::pki::SERVICE_ACCOUNT_KEY)
            .display(),
        args.out.display()
    );
    Ok(())
}
