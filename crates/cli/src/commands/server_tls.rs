//! `skiff server`'s certificates: the flags, DATA_DIR/tls made or renewed from them, and the
//! admin credential and kubeconfig written for the user.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use skiff_client::{Credentials, Kubeconfig};
use skiff_control_plane::pki::{serving_names, ServerTls, TlsOptions};

use super::daemon::host_name;
use super::server::ServerArgs;
use crate::private_files;

/// The API's certificates (kept in DATA_DIR/tls/).
#[derive(Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Another name or IP address the API's serving certificate is valid for (repeatable).
    #[arg(long = "tls-san")]
    pub tls_san: Vec<String>,
    /// A directory with the cluster CA (ca.crt, ca.key) shared by every member, copied into
    /// DATA_DIR/tls on the first start (`skiff certificate create-ca --out DIR` makes one).
    #[arg(long)]
    pub cluster_ca: Option<PathBuf>,
    /// Serve the API with this certificate chain (PEM) instead of one from the cluster CA.
    #[arg(long, requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// The key of `--tls-cert-file` (PEM).
    #[arg(long, requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// Also serve the API over plain HTTP on ADDR, a loopback address only; its requests act
    /// as a cluster admin.
    #[arg(long)]
    pub insecure_http: Option<SocketAddr>,
}

/// The certificates of DATA_DIR/tls, made or renewed as the flags say.
pub(super) fn server_tls(args: &ServerArgs) -> anyhow::Result<ServerTls> {
    let first_service_ip = args
        .service_cluster_ip_range
        .net()
        .hosts()
        .next()
        .map(std::net::IpAddr::V4);
    let options = TlsOptions {
        serving_names: serving_names(
            args.listen,
            &host_name(),
            first_service_ip,
            &args.tls.tls_san,
        ),
        cluster_ca: args.tls.cluster_ca.clone(),
        cert_file: args.tls.tls_cert_file.clone(),
        key_file: args.tls.tls_private_key_file.clone(),
        needs_shared_ca: args.join.is_some()
            || args
                .initial_cluster
                .as_deref()
                .is_some_and(|members| members.split(',').count() > 1),
    };
    ServerTls::prepare(&args.data_dir, &options).context("preparing the API's certificates")
}

/// The admin's credentials: the cluster CA and the admin client certificate.
pub(super) fn admin_credentials(tls: &ServerTls) -> Credentials {
    Credentials {
        ca_pem: Some(tls.ca_pem().as_bytes().to_vec()),
        identity: Some((
            tls.admin().cert_pem.as_bytes().to_vec(),
            tls.admin().key_pem.as_bytes().to_vec(),
        )),
        token: None,
    }
}

/// Writes DATA_DIR/admin.kubeconfig (0600): the admin's credential for `url`.
pub(super) fn write_admin_kubeconfig(
    args: &ServerArgs,
    tls: &ServerTls,
    url: &str,
) -> anyhow::Result<PathBuf> {
    let path = args.data_dir.join(ADMIN_KUBECONFIG);
    let config = Kubeconfig::embedded(
        "skiff",
        url,
        tls.ca_pem(),
        "admin",
        &tls.admin().cert_pem,
        &tls.admin().key_pem,
    );
    private_files::write_secret(&path, &config.to_yaml())?;
    Ok(path)
}

/// The kubeconfig every server writes into its data dir.
const ADMIN_KUBECONFIG: &str = "admin.kubeconfig";
