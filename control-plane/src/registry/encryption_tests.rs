//! Secrets encrypted at rest, through the registry on a real store.

use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures::StreamExt;
use serde_json::{json, Value};

use super::*;
use crate::encryption::{self, EncryptionConfiguration};

const VALUE: &str = "hunter2-correct-horse-battery";

fn secrets() -> &'static ResourceKind {
    resources::by_name("secrets").expect("kind")
}

fn secret(name: &str, value: &str) -> Value {
    json!({"metadata": {"name": name}, "data": {"password": STANDARD.encode(value)}})
}

fn password(obj: &Value) -> String {
    let data = obj["data"]["password"].as_str().expect("data.password");
    String::from_utf8(STANDARD.decode(data).expect("base64")).expect("utf8")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every byte of every file under `dir`.
fn files_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_bytes(&path));
        } else {
            out.extend(std::fs::read(&path).expect("file"));
        }
    }
    out
}

async fn encrypted(dir: &Path) -> Registry {
    let encryption = encryption::setup(dir, None, true).expect("encryption");
    crate::test_registry::registry(dir)
        .await
        .with_encryption(encryption)
}

#[tokio::test]
async fn the_store_its_files_and_backups_hold_no_secret_value_in_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = encrypted(dir.path()).await;
    let mut watch = registry
        .watch(secrets(), Some("default"), ListOptions::default(), None)
        .await
        .expect("watch");
    registry
        .create(secrets(), Some("default"), secret("db", VALUE))
        .await
        .expect("create");
    // The control: a ConfigMap's value must be found by the same scans.
    let configmaps = resources::by_name("configmaps").expect("kind");
    let control = "plain-configmap-value-4711";
    registry
        .create(
            configmaps,
            Some("default"),
            json!({"metadata": {"name": "c"}, "data": {"v": control}}),
        )
        .await
        .expect("configmap");

    let got = registry
        .get(secrets(), Some("default"), "db")
        .await
        .expect("get");
    assert_eq!(password(&got), VALUE);
    let (items, _) = registry
        .list(secrets(), Some("default"), &ListOptions::default())
        .await
        .expect("list");
    assert_eq!(items.iter().map(password).collect::<Vec<_>>(), [VALUE]);
    let event = watch.next().await.expect("event");
    assert_eq!(password(&event.object), VALUE);

    let raw = registry
        .store()
        .get(b"/registry/core/secrets/default/db")
        .await
        .expect("get")
        .expect("stored");
    assert!(raw.value.starts_with(b"k8s:enc:aesgcm:v1:key1:"));
    let backup = registry.store().backup().await.expect("backup");
    let encoded = STANDARD.encode(VALUE);
    for needle in [VALUE, encoded.as_str()] {
        assert!(!contains(&raw.value, needle));
        assert!(!contains(&backup, needle), "the backup holds {needle}");
    }
    assert!(
        contains(&backup, control),
        "the backup scan sees clear values"
    );
    registry.store().shutdown().await;
    let files = files_bytes(&dir.path().join("store"));
    assert!(contains(&files, control), "the file scan sees clear values");
    for needle in [VALUE, encoded.as_str()] {
        assert!(!contains(&files, needle), "the data dir holds {needle}");
    }
}

#[tokio::test]
async fn secrets_stored_before_encryption_read_and_a_missing_key_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clear = crate::test_registry::registry(dir.path()).await;
    clear
        .create(secrets(), Some("default"), secret("old", VALUE))
        .await
        .expect("create");
    let config = EncryptionConfiguration::generate().expect("config");
    let registry = clear
        .clone()
        .with_encryption(encryption::Encryption::from_config(&config).expect("valid"));
    let old = registry
        .get(secrets(), Some("default"), "old")
        .await
        .expect("clear value reads");
    assert_eq!(password(&old), VALUE);
    registry
        .create(secrets(), Some("default"), secret("new", VALUE))
        .await
        .expect("create");

    // A member without the key answers a 500 naming it, never garbage.
    let err = clear
        .get(secrets(), Some("default"), "new")
        .await
        .expect_err("no key");
    assert!(matches!(err, ApiError::Internal(_)), "{err:?}");
    assert!(err.to_string().contains("key \"key1\""), "{err}");
    let err = clear
        .list(secrets(), Some("default"), &ListOptions::default())
        .await
        .expect_err("no key");
    assert!(err.to_string().contains("key \"key1\""), "{err}");

    let done = registry
        .rewrite_all_at_rest(secrets())
        .await
        .expect("rewrite");
    assert_eq!((done.rewritten, done.unchanged), (1, 2));
    let raw = registry
        .store()
        .get(b"/registry/core/secrets/default/old")
        .await
        .expect("get")
        .expect("stored");
    assert!(raw.value.starts_with(b"k8s:enc:aesgcm:v1:key1:"));
}

/// Writers update their own Secrets while the key rotates: every acknowledged write is what
/// reads back after, and every Secret ends under the new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_concurrent_writes_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = encrypted(dir.path()).await;
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 10;
    for w in 0..WRITERS {
        for s in 0..PER_WRITER {
            registry
                .create(
                    secrets(),
                    Some("default"),
                    secret(&format!("s{w}-{s}"), "v0"),
                )
                .await
                .expect("create");
        }
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (progress, mut acknowledged) = tokio::sync::watch::channel(0usize);
    let progress = Arc::new(progress);
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let registry = registry.clone();
        let stop = stop.clone();
        let progress = progress.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = vec![String::from("v0"); PER_WRITER];
            let mut round = 0;
            // Round after round until the rotation is over (stopping at once then, so that a
            // write the rotation lost is not made good by a later one).
            'rounds: loop {
                round += 1;
                for (s, acked) in acked.iter_mut().enumerate() {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break 'rounds;
                    }
                    let name = format!("s{w}-{s}");
                    let value = format!("v{round}");
                    loop {
                        let mut current = registry
                            .get(secrets(), Some("default"), &name)
                            .await
                            .expect("get");
                        current["data"]["password"] = json!(STANDARD.encode(&value));
                        match registry
                            .update(
                                secrets(),
                                Some("default"),
                                &name,
                                current,
                                Subresource::Main,
                            )
                            .await
                        {
                            Ok(_) => break,
                            Err(ApiError::Conflict { .. }) => continue,
                            Err(err) => panic!("update {name}: {err}"),
                        }
                    }
                    *acked = value;
                    progress.send_modify(|n| *n += 1);
                }
            }
            acked
        }));
    }
    // The rotation starts while the writers are under way.
    acknowledged
        .wait_for(|n| *n >= WRITERS * PER_WRITER)
        .await
        .expect("writers");
    let added = registry.encryption().add_key().expect("new key");
    assert_eq!(added, "key2");
    let done = registry
        .rewrite_all_at_rest(secrets())
        .await
        .expect("rewrite");
    assert_eq!(done.key.as_deref(), Some("key2"));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for (w, writer) in writers.into_iter().enumerate() {
        let acked = writer.await.expect("writer");
        for (s, value) in acked.iter().enumerate() {
            let got = registry
                .get(secrets(), Some("default"), &format!("s{w}-{s}"))
                .await
                .expect("get");
            assert_eq!(&password(&got), value, "s{w}-{s}");
        }
    }
    let (kvs, _) = registry
        .store()
        .range(b"/registry/core/secrets/")
        .await
        .expect("range");
    assert_eq!(kvs.len(), WRITERS * PER_WRITER);
    for kv in kvs {
        assert!(
            kv.value.starts_with(b"k8s:enc:aesgcm:v1:key2:"),
            "{} is not under the new key",
            String::from_utf8_lossy(&kv.key)
        );
    }
}
