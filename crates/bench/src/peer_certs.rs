//! A peer CA and one peer certificate for every member of a benchmarked control plane, as
//! the `--peer-*` flags of `skiff server` take them.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Writes the CA, a certificate naming members `s1..s{members}` and its key under `dir`;
/// returns the flags that give them to a server.
pub fn write_peer_files(dir: &Path, members: usize) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "skiff bench peer CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate()?;
    let names: Vec<String> = (1..=members).map(|i| format!("s{i}")).collect();
    let mut peer = CertificateParams::new(names)?;
    peer.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = peer.signed_by(&key, &issuer)?;
    let files = [
        ("--peer-cert-file", "peer.pem", cert.pem()),
        ("--peer-key-file", "peer-key.pem", key.serialize_pem()),
        ("--peer-trusted-ca-file", "peer-ca.pem", ca_cert.pem()),
    ];
    let mut flags = Vec::new();
    for (flag, file, pem) in files {
        let path = dir.join(file);
        std::fs::write(&path, pem)?;
        flags.extend([flag.to_string(), path.display().to_string()]);
    }
    Ok(flags)
}
