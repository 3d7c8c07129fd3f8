//! Secrets' encryption keys shared by a multi-member cluster (issue 14): with no config file
//! given, the members keep one config in the store, sealed with a key derived from the
//! cluster CA's; a Secret written through one member reads through every other; no data dir
//! nor backup holds a value or the config in clear; `skiff secrets rotate-key` through any
//! member moves every Secret to a new key while writes continue; a restarted member and a
//! cluster restored from a backup with the same CA still read them.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use skiff_e2e::{wait_until, Cluster, Skiff};

/// How long a member may take to see a write made through another.
const SEEN: Duration = Duration::from_secs(20);

fn secret_yaml(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: default\n\
         stringData:\n  password: {value}\n"
    )
}

/// The value each test Secret holds: unique, so a raw scan finds it only if it is stored
/// in clear.
fn value_of(name: &str) -> String {
    format!("plaintext-{name}-0f3a9c")
}

/// The Secret's password as served through `cli` (decoded from base64), if it reads.
fn password(cli: &Skiff, name: &str) -> anyhow::Result<String> {
    use base64::Engine;
    let secret = cli.json(&["get", "secret", name])?;
    let encoded = secret["data"]["password"].as_str().unwrap_or_default();
    Ok(String::from_utf8(
        base64::engine::general_purpose::STANDARD.decode(encoded)?,
    )?)
}

/// Waits until every Secret in `names` reads back with its value through `cli`.
fn assert_all_read(cli: &Skiff, names: &[String], through: &str) -> anyhow::Result<()> {
    for name in names {
        wait_until(&format!("{name} through {through}"), SEEN, || {
            Ok(password(cli, name)
                .ok()
                .filter(|p| *p == value_of(name))
                .map(drop))
        })?;
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every byte of every file under `dir` (the store's sled files included), and their names.
fn dir_bytes(dir: &Path) -> anyhow::Result<(Vec<u8>, Vec<String>)> {
    let mut bytes = Vec::new();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            let (b, n) = dir_bytes(&path)?;
            bytes.extend(b);
            names.extend(n);
        } else {
            names.push(path.display().to_string());
            bytes.extend(std::fs::read(&path)?);
        }
    }
    Ok((bytes, names))
}

/// Neither a Secret value nor the encryption config in clear is anywhere in `bytes`.
fn assert_nothing_in_clear(bytes: &[u8], names: &[String], what: &str) {
    for name in names {
        assert!(
            !contains(bytes, &value_of(name)),
            "{what} holds the value of {name} in clear"
        );
    }
    for clear in ["EncryptionConfiguration", "apiserver.config.k8s.io"] {
        assert!(!contains(bytes, clear), "{what} holds the config in clear");
    }
}

/// A thread creating Secrets through `url` until stopped; returns those acknowledged.
fn writer(url: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let cli = Skiff::new(url);
        let mut acked = Vec::new();
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            let name = format!("during-{i}");
            if cli
                .apply_yaml(&secret_yaml(&name, &value_of(&name)))
                .is_ok()
            {
                acked.push(name);
            }
            i += 1;
        }
        acked
    })
}

#[test]
fn three_members_share_keys_and_rotate_them_while_secrets_are_written() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut cluster = Cluster::start(&tmp.path().join("a"), 3, &[])?;
    let clis: Vec<Skiff> = cluster
        .members
        .iter()
        .map(|m| Skiff::new(m.url()))
        .collect();

    // Written through member 1 (it may take a moment to load the config: retried briefly),
    // read through members 2 and 3.
    let mut names: Vec<String> = (0..5).map(|i| format!("before-{i}")).collect();
    for name in &names {
        wait_until(&format!("{name} created through s1"), SEEN, || {
            Ok(clis[0].apply_yaml(&secret_yaml(name, &value_of(name))).ok())
        })?;
    }
    assert_all_read(&clis[1], &names, "s2")?;
    assert_all_read(&clis[2], &names, "s3")?;

    // Rotation through member 2 while member 3 keeps writing.
    let stop = Arc::new(AtomicBool::new(false));
    let writing = writer(cluster.members[2].url(), stop.clone());
    let count = |cli: &Skiff| -> anyhow::Result<usize> {
        Ok(cli.json(&["get", "secrets"])?["items"]
            .as_array()
            .map_or(0, Vec::len))
    };
    let before = count(&clis[2])?;
    wait_until("the writer's first Secrets", SEEN, || {
        Ok((count(&clis[2])? >= before + 2).then_some(()))
    })?;
    let rotated = clis[1].ok(&["secrets", "rotate-key"])?;
    assert!(rotated.contains("added key \"key2\""), "{rotated}");
    assert!(rotated.contains("now under key \"key2\""), "{rotated}");
    // A few more writes after the rotation.
    let after = count(&clis[2])?;
    wait_until("writes after the rotation", SEEN, || {
        Ok((count(&clis[2])? >= after + 3).then_some(()))
    })?;
    stop.store(true, Ordering::Relaxed);
    let during = writing.join().expect("writer thread");
    assert!(during.len() >= 3, "the writer wrote: {during:?}");
    names.extend(during);

    // Every Secret reads through every member, and all are under the new key: a rewrite
    // through each member finds none left to rewrite.
    for (i, cli) in clis.iter().enumerate() {
        assert_all_read(cli, &names, &format!("s{}", i + 1))?;
        let again = cli.ok(&["secrets", "rotate-key", "--rewrite-only"])?;
        assert!(
            again.starts_with("0 Secrets rewritten") && again.contains("key \"key2\""),
            "s{}: {again}",
            i + 1
        );
    }

    // No data dir holds a value, the config in clear, or a config file.
    for member in &cluster.members {
        let (bytes, files) = dir_bytes(&member.data_dir)?;
        assert_nothing_in_clear(&bytes, &names, &member.name);
        assert!(
            !files.iter().any(|f| f.ends_with("encryption-config.yaml")),
            "{}: {files:?}",
            member.name
        );
    }
    let backup = tmp.path().join("backup.db");
    clis[0].ok(&["backup", "save", &backup.display().to_string()])?;
    let bytes = std::fs::read(&backup)?;
    assert_nothing_in_clear(&bytes, &names, "the backup");

    // A member restarted reads them all.
    cluster.kill9(2)?;
    cluster.restart(2)?;
    assert_all_read(&clis[2], &names, "s3 restarted")?;

    // A cluster restored from the backup with the same CA reads them.
    let restored =
        Cluster::start_from_backup_with_ca(&tmp.path().join("b"), 3, &backup, cluster.ca_dir())?;
    let restored_cli = Skiff::new(restored.members[1].url());
    assert_all_read(&restored_cli, &names, "a restored member")?;
    Ok(())
}
