//! A peer CA and one peer certificate for every member of a benchmarked control plane, as
//! the `--peer-*` flags of `skiff server` take them.

use std::path::Path;
use std::time::Duration;

use skiff_control_plane::pki::{CertRequest, ClusterCa, Usage};

/// Writes a fresh CA, a certificate naming members `s1..s{members}` and its key under `dir`;
/// returns the flags that give them to a server.
pub fn write_peer_files(dir: &Path, members: usize) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let ca = ClusterCa::create()?;
    let peer = ca.issue(&CertRequest {
        common_name: "skiff bench peer".into(),
        organizations: Vec::new(),
        sans: (1..=members).map(|i| format!("s{i}")).collect(),
        usage: Usage::ServerAndClient,
        validity: Duration::from_secs(24 * 3600),
    })?;
    let files = [
        ("--peer-cert-file", "peer.pem", peer.cert_pem.as_str()),
        ("--peer-key-file", "peer-key.pem", peer.key_pem.as_str()),
        ("--peer-trusted-ca-file", "peer-ca.pem", ca.cert_pem()),
    ];
    let mut flags = Vec::new();
    for (flag, file, pem) in files {
        let path = dir.join(file);
        std::fs::write(&path, pem)?;
        flags.extend([flag.to_string(), path.display().to_string()]);
    }
    Ok(flags)
}
