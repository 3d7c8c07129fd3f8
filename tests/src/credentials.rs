//! The secure path for tests: every server the harness starts writes
//! `DATA_DIR/admin.kubeconfig`; the harness remembers it by the server's URL, so that CLI
//! runs (`Skiff`) and hand-made HTTP calls (`https_client`) against that URL use the admin
//! credential and trust the cluster CA.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use skiff_client::Kubeconfig;

/// The admin kubeconfig of each server started, by `HOST:PORT`.
static KUBECONFIGS: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);

/// `HOST:PORT` of a URL (the first of a comma-separated list).
fn authority(url: &str) -> &str {
    let first = url.split(',').next().unwrap_or(url).trim();
    let rest = first.split_once("://").map_or(first, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// Remembers that the server at `url` keeps its admin kubeconfig in `data_dir`.
pub(crate) fn remember(url: &str, data_dir: &Path) {
    let mut map = KUBECONFIGS.lock().unwrap_or_else(|e| e.into_inner());
    map.get_or_insert_with(HashMap::new).insert(
        authority(url).to_string(),
        data_dir.join("admin.kubeconfig"),
    );
}

/// The admin kubeconfig of the server at `url` (any of a comma-separated list), if the
/// harness started it.
pub fn kubeconfig_for(url: &str) -> Option<PathBuf> {
    let map = KUBECONFIGS.lock().unwrap_or_else(|e| e.into_inner());
    let map = map.as_ref()?;
    url.split(',').find_map(|u| map.get(authority(u)).cloned())
}

/// A blocking HTTP client builder with the credential and CA of `kubeconfig`.
pub fn kubeconfig_client_builder(
    kubeconfig: &Path,
) -> anyhow::Result<reqwest::blocking::ClientBuilder> {
    let resolved = Kubeconfig::load(kubeconfig)?;
    let mut builder = reqwest::blocking::Client::builder().tls_built_in_root_certs(false);
    if let Some(ca) = &resolved.credentials.ca_pem {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(ca)?);
    }
    if let Some((cert, key)) = &resolved.credentials.identity {
        let mut pem = cert.clone();
        pem.extend_from_slice(key);
        builder = builder.identity(reqwest::Identity::from_pem(&pem)?);
    }
    Ok(builder)
}

/// A blocking HTTP client with the credential and CA of `kubeconfig`.
pub fn kubeconfig_client(
    kubeconfig: &Path,
    timeout: Duration,
) -> anyhow::Result<reqwest::blocking::Client> {
    kubeconfig_client_builder(kubeconfig)?
        .timeout(timeout)
        .build()
        .context("an HTTPS client from the kubeconfig")
}

/// A blocking HTTP client builder for the server at `url` (any of a comma-separated list),
/// as its admin; a plain one for a server the harness did not start.
pub fn https_client_builder(url: &str) -> anyhow::Result<reqwest::blocking::ClientBuilder> {
    match kubeconfig_for(url) {
        Some(path) => kubeconfig_client_builder(&path),
        None => Ok(reqwest::blocking::Client::builder()),
    }
}

/// `https_client_builder(url)`, built (reqwest's default 30 s timeout).
pub fn https_client(url: &str) -> anyhow::Result<reqwest::blocking::Client> {
    Ok(https_client_builder(url)?.build()?)
}
