//! `skiff user create NAME [--group G]... [--out FILE] [--expiration 1y]`: a client
//! certificate for a user, the way a cluster admin issues one with kubectl: a key made here
//! (it never leaves this machine), a CertificateSigningRequest for
//! `kubernetes.io/kube-apiserver-client`, approved (which needs the `approve` permission on
//! that signer) and signed by the cluster's controller manager; then a kubeconfig with the
//! CA, the certificate and the key embedded (written 0600, or printed).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use skiff_api::certificates::KUBE_APISERVER_CLIENT;
use skiff_client::certificates::{key_and_request, ClientRequest};
use skiff_client::Kubeconfig;

use super::certificate::{decide, Decision};
use crate::cli::ClientOpts;

/// How long `user create` waits for the signer.
const ISSUE_WAIT: Duration = Duration::from_secs(30);

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Issue a client certificate for a user and write a kubeconfig for it.
    Create(CreateArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The user name (the certificate's CN), as RBAC bindings name it.
    pub name: String,
    /// A group the user is in (the certificate's O); repeat for several.
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Write the kubeconfig here (mode 0600) instead of printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// How long the certificate is valid: `90d`, `12h`, `1y` (the server caps it at its
    /// `--cluster-signing-duration`).
    #[arg(long, default_value = "1y", value_parser = parse_expiration)]
    pub expiration: u64,
}

/// Seconds of `1y`, `30d`, or a duration jiff reads (`12h`, `90m`, `1h30m`).
fn parse_expiration(text: &str) -> Result<u64, String> {
    let units = [("y", 365 * 86_400), ("d", 86_400)];
    for (suffix, seconds) in units {
        if let Some(n) = text
            .strip_suffix(suffix)
            .and_then(|n| n.parse::<u64>().ok())
        {
            return Ok(n * seconds);
        }
    }
    let duration: jiff::SignedDuration = text
        .parse()
        .map_err(|e| format!("{text:?}: expected a duration like 1y, 30d or 12h ({e})"))?;
    u64::try_from(duration.as_secs())
        .ok()
        .filter(|s| *s >= 600)
        .ok_or_else(|| format!("{text:?}: at least 10 minutes"))
}

pub async fn run(command: UserCommand, opts: &ClientOpts) -> anyhow::Result<()> {
    match command {
        UserCommand::Create(args) => create(args, opts).await,
    }
}

async fn create(args: CreateArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let client = super::client(opts)?;
    let (servers, credentials, _) = super::connection(opts)?;
    let made = key_and_request(&args.name, &args.groups)?;
    let name = client
        .create_certificate_request(&ClientRequest {
            name_prefix: &format!("user-{}-", args.name),
            request_pem: &made.request_pem,
            signer_name: KUBE_APISERVER_CLIENT,
            expiration_seconds: Some(args.expiration),
        })
        .await?;
    decide(&client, &name, Decision::Approve, false).await?;
    let cert_pem = client.wait_for_certificate(&name, ISSUE_WAIT).await?;
    let ca_pem = match credentials.ca_pem {
        Some(pem) => String::from_utf8(pem).context("the CA is not PEM text")?,
        None => client
            .cluster_ca()
            .await?
            .context("the server serves no cluster CA (is it serving TLS?)")?,
    };
    let server = servers.first().cloned().unwrap_or_default();
    let config = Kubeconfig::embedded(
        "skiff",
        &server,
        &ca_pem,
        &args.name,
        &cert_pem,
        &made.key_pem,
    )
    .to_yaml();
    match &args.out {
        Some(path) => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("writing {}", path.display()))?;
            file.write_all(config.as_bytes())?;
            eprintln!(
                "user {} (certificatesigningrequest {name}): wrote {}",
                args.name,
                path.display()
            );
        }
        None => print!("{config}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expirations_read_years_days_and_hours() {
        assert_eq!(parse_expiration("1y"), Ok(365 * 86_400));
        assert_eq!(parse_expiration("30d"), Ok(30 * 86_400));
        assert_eq!(parse_expiration("12h"), Ok(12 * 3600));
        assert!(parse_expiration("1m").is_err());
        assert!(parse_expiration("soon").is_err());
    }
}
