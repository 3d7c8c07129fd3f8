//! The cluster's shared encryption config, through registries on one real store (as members
//! of one cluster see the same replicated store).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::encryption::shared::SHARED_CONFIG_KEY;

const VALUE: &str = "shared-keys-value-5150";

fn secrets() -> &'static ResourceKind {
    resources::by_name("secrets").expect("kind")
}

fn secret(name: &str) -> Value {
    json!({"metadata": {"name": name}, "data": {"password": STANDARD.encode(VALUE)}})
}

fn password(obj: &Value) -> String {
    let data = obj["data"]["password"].as_str().expect("data.password");
    String::from_utf8(STANDARD.decode(data).expect("base64")).expect("utf8")
}

fn ca_key() -> Vec<u8> {
    rcgen::KeyPair::generate().expect("key").serialize_der()
}

/// Creates Secret `name` through `registry`, retried while its member loads the config.
async fn create(registry: &Registry, name: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match registry
            .create(secrets(), Some("default"), secret(name))
            .await
        {
            Ok(_) => return,
            Err(ApiError::Unavailable(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(err) => panic!("create {name}: {err}"),
        }
    }
}

#[tokio::test]
async fn members_share_one_sealed_config_rotate_it_and_a_wrong_ca_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = crate::test_registry::registry(dir.path()).await;
    let store = base.store().clone();
    let shutdown = CancellationToken::new();
    let ca = ca_key();
    let one =
        base.clone()
            .with_encryption(Encryption::shared(store.clone(), &ca, shutdown.clone()));
    create(&one, "a").await;
    let stored = store
        .get(b"/registry/core/secrets/default/a")
        .await
        .expect("get")
        .expect("stored");
    assert!(stored.value.starts_with(b"k8s:enc:aesgcm:v1:key1:"));
    let config = store
        .get(SHARED_CONFIG_KEY)
        .await
        .expect("get")
        .expect("the first member created the config");
    assert!(config.value.starts_with(b"k8s:enc:aesgcm:v1:cluster-ca:"));

    // Another member with the same CA loads that config (it creates none) and reads "a".
    let two =
        base.clone()
            .with_encryption(Encryption::shared(store.clone(), &ca, shutdown.clone()));
    let got = two
        .get(secrets(), Some("default"), "a")
        .await
        .expect("read through the second member");
    assert_eq!(password(&got), VALUE);

    // A rotation through the second member: the first reads what it writes under the new key.
    assert_eq!(two.encryption().rotate().await.expect("rotate"), "key2");
    create(&two, "b").await;
    let stored = store
        .get(b"/registry/core/secrets/default/b")
        .await
        .expect("get")
        .expect("stored");
    assert!(stored.value.starts_with(b"k8s:enc:aesgcm:v1:key2:"));
    let got = one
        .get(secrets(), Some("default"), "b")
        .await
        .expect("read through the first member");
    assert_eq!(password(&got), VALUE);
    let done = one.rewrite_all_at_rest(secrets()).await.expect("rewrite");
    assert_eq!(done.key.as_deref(), Some("key2"));
    assert_eq!(done.rewritten, 1, "only \"a\" was under key1");

    // A member with another CA cannot open the config: Secrets are refused (503), never
    // written in clear, and the message says why.
    let stranger = base.with_encryption(Encryption::shared(
        store.clone(),
        &ca_key(),
        shutdown.clone(),
    ));
    let refused = stranger
        .create(secrets(), Some("default"), secret("c"))
        .await
        .expect_err("no config loaded");
    assert!(matches!(refused, ApiError::Unavailable(_)), "{refused:?}");
    assert!(refused.to_string().contains("cluster CA"), "{refused}");
    let unread = stranger
        .get(secrets(), Some("default"), "a")
        .await
        .expect_err("no config loaded");
    assert!(matches!(unread, ApiError::Unavailable(_)), "{unread:?}");
    assert!(store
        .get(b"/registry/core/secrets/default/c")
        .await
        .expect("get")
        .is_none());
    shutdown.cancel();
}
