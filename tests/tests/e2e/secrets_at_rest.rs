//! Secrets encrypted at rest (issue 14): a raw read of the data dir or of a backup finds no
//! Secret value; Secrets written before encryption still read; a member without the key
//! answers a clear error; `skiff secrets rotate-key` rewrites every Secret under a new key.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use skiff_e2e::{DevServer, Skiff};

/// `keys` as an aesgcm provider (name, base64 secret), followed by identity if `identity`.
fn config(keys: &[(&str, &str)], identity: bool) -> String {
    let mut providers = String::new();
    if !keys.is_empty() {
        providers.push_str("      - aesgcm:\n          keys:\n");
        for (name, secret) in keys {
            providers.push_str(&format!(
                "            - name: {name}\n              secret: {secret}\n"
            ));
        }
    }
    if identity {
        providers.push_str("      - identity: {}\n");
    }
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  \
         - resources: [secrets]\n    providers:\n{providers}"
    )
}

/// base64 of `0123456789abcdef` twice: 32 bytes.
const KEY1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// base64 of `fedcba9876543210` twice.
const OTHER: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

fn create_secret(cli: &Skiff, name: &str, value: &str) -> anyhow::Result<()> {
    cli.apply_yaml(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: default\n\
         stringData:\n  password: {value}\n"
    ))
}

/// The Secret's `data.password` as served (base64, as Kubernetes serves it).
fn served_password(cli: &Skiff, name: &str) -> anyhow::Result<String> {
    let secret = cli.json(&["get", "secret", name])?;
    Ok(secret["data"]["password"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every byte of every file under `dir` (the store's sled files included).
fn dir_bytes(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(dir_bytes(&path)?);
        } else {
            out.extend(std::fs::read(&path)?);
        }
    }
    Ok(out)
}

#[test]
fn the_data_dir_and_backups_hold_no_secret_value_and_keys_rotate() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let data_dir = tmp.path().join("server");
    let enc = tmp.path().join("encryption.yaml");
    let enc_flag = enc.display().to_string();
    // First without encryption: the Secret is stored in clear, and the scans see it.
    std::fs::write(&enc, config(&[], true))?;
    let mut server = DevServer::start_with(
        &data_dir,
        false,
        &["--encryption-provider-config", &enc_flag],
    )?;
    let cli = server.cli();
    let before = "before-encryption-8d1f";
    create_secret(&cli, "old", before)?;
    let before_b64 = served_password(&cli, "old")?;
    server.terminate()?;
    let files = dir_bytes(&data_dir)?;
    assert!(
        contains(&files, &before_b64),
        "a clear Secret must be visible to the scan"
    );

    // Encrypted from now on; the Secret stored before still reads.
    std::fs::write(&enc, config(&[("key1", KEY1)], true))?;
    server.restart()?;
    assert_eq!(served_password(&cli, "old")?, before_b64);
    let value = "zebra-distinct-9917";
    create_secret(&cli, "db", value)?;
    let value_b64 = served_password(&cli, "db")?;
    assert!(!value_b64.is_empty());
    let backup = tmp.path().join("cluster.backup");
    cli.ok(&["backup", "save", &backup.display().to_string()])?;

    // A config the user gave is not edited by the server: the user adds keys (Kubernetes' way).
    let refused = cli.run(&["secrets", "rotate-key"])?;
    assert!(!refused.success);
    assert!(
        refused.stderr.contains("--rewrite-only"),
        "{}",
        refused.stderr
    );
    let rewritten = cli.ok(&["secrets", "rotate-key", "--rewrite-only"])?;
    assert!(
        rewritten.contains("1 Secrets rewritten; all 2 now under key \"key1\""),
        "{rewritten}"
    );
    server.terminate()?;
    let files = dir_bytes(&data_dir)?;
    let backup_bytes = std::fs::read(&backup)?;
    // The control: the backup was taken before the rewrite, with "old" still in clear.
    assert!(contains(&backup_bytes, &before_b64));
    for needle in [value, value_b64.as_str()] {
        assert!(!contains(&files, needle), "the data dir holds {needle}");
        assert!(
            !contains(&backup_bytes, needle),
            "the backup holds {needle}"
        );
    }

    // A member whose config lacks the key answers a clear error naming it, never garbage.
    std::fs::write(&enc, config(&[("other", OTHER)], false))?;
    server.restart()?;
    let failed = cli.run(&["get", "secret", "db", "-o", "json"])?;
    assert!(!failed.success, "{}", failed.stdout);
    assert!(
        failed.stderr.contains("key \"key1\""),
        "the error names the key: {}",
        failed.stderr
    );
    assert!(!failed.stdout.contains(value));
    // The rest of the API serves on.
    cli.ok(&["get", "namespaces"])?;

    // With the key back, everything reads.
    server.terminate()?;
    std::fs::write(&enc, config(&[("key1", KEY1)], true))?;
    server.restart()?;
    assert_eq!(served_password(&cli, "db")?, value_b64);
    assert_eq!(served_password(&cli, "old")?, before_b64);
    Ok(())
}

#[test]
fn a_lone_server_encrypts_secrets_by_default_and_rotates_its_own_key() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let data_dir = tmp.path().join("server");
    let mut server = DevServer::start_with(&data_dir, false, &[])?;
    let cli = server.cli();
    let config = data_dir.join("encryption-config.yaml");
    let mode = std::fs::metadata(&config)?.permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", config.display());

    let value = "default-on-7731";
    create_secret(&cli, "db", value)?;
    let value_b64 = served_password(&cli, "db")?;
    let rotated = cli.ok(&["secrets", "rotate-key"])?;
    assert!(rotated.contains("added key \"key2\""), "{rotated}");
    assert!(
        rotated.contains("1 Secrets rewritten; all 1 now under key \"key2\""),
        "{rotated}"
    );
    assert!(std::fs::read_to_string(&config)?.contains("key2"));
    server.terminate()?;
    server.restart()?;
    assert_eq!(served_password(&cli, "db")?, value_b64);
    server.terminate()?;
    let files = dir_bytes(&data_dir.join("store"))?;
    for needle in [value, value_b64.as_str()] {
        assert!(!contains(&files, needle), "the data dir holds {needle}");
    }
    Ok(())
}
