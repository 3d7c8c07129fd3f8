//! The store through its public API: txns, revisions, ranges, watches, durability.

use std::time::Duration;

use skiff_raft_store::{Compare, EventKind, Op, OpResult, Store, StoreConfig, StoreError, Txn};

async fn open(dir: &std::path::Path, history: u64) -> Store {
    Store::open(StoreConfig::single(dir.to_path_buf(), "s1", history))
        .await
        .expect("open store")
}

fn put_if(key: &str, expected: u64, value: &str) -> Txn {
    Txn {
        compare: vec![Compare::ModRevision {
            key: key.as_bytes().to_vec(),
            revision: expected,
        }],
        success: vec![Op::Put {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        }],
        failure: vec![],
    }
}

fn put(key: &str, value: &str) -> Txn {
    Txn {
        success: vec![Op::Put {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        }],
        ..Default::default()
    }
}

fn delete(key: &str) -> Txn {
    Txn {
        success: vec![Op::Delete {
            key: key.as_bytes().to_vec(),
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn compare_and_swap_with_revisions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 1000).await;
    let created = store.txn(put_if("/a", 0, "1")).await.expect("create");
    assert!(created.succeeded);
    let rev = created.revision;
    let again = store
        .txn(put_if("/a", 0, "x"))
        .await
        .expect("second create");
    assert!(
        !again.succeeded,
        "create of an existing key must fail its compare"
    );
    assert_eq!(again.revision, rev, "a failed txn writes nothing");
    assert_eq!(
        again.compared[0].as_ref().map(|kv| kv.mod_revision),
        Some(rev)
    );
    let updated = store.txn(put_if("/a", rev, "2")).await.expect("update");
    assert!(updated.succeeded);
    let Some(OpResult::Put { kv, prev }) = updated.results.first() else {
        panic!("expected a put result")
    };
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (rev, rev + 1, 2)
    );
    assert_eq!(prev.as_ref().map(|p| p.value.as_slice()), Some(&b"1"[..]));
    assert!(
        !store
            .txn(put_if("/a", rev, "stale"))
            .await
            .expect("stale")
            .succeeded
    );
    let got = store.get(b"/a").await.expect("get").expect("present");
    assert_eq!(got.value, b"2");
    store.shutdown().await;
}

#[tokio::test]
async fn range_by_prefix_and_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 1000).await;
    for key in ["/p/a", "/p/b", "/q/c"] {
        store.txn(put(key, "v")).await.expect("put");
    }
    let (items, revision) = store.range(b"/p/").await.expect("range");
    assert_eq!(
        items.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>(),
        vec![b"/p/a".to_vec(), b"/p/b".to_vec()]
    );
    assert_eq!(revision, store.revision());
    let deleted = store.txn(delete("/p/a")).await.expect("delete");
    assert!(matches!(
        deleted.results[0],
        OpResult::Delete { prev: Some(_) }
    ));
    assert_eq!(deleted.revision, revision + 1);
    let noop = store.txn(delete("/nope")).await.expect("delete missing");
    assert_eq!(
        noop.revision,
        revision + 1,
        "deleting nothing does not bump the revision"
    );
    assert_eq!(store.range(b"/p/").await.expect("range").0.len(), 1);
    store.shutdown().await;
}

#[tokio::test]
async fn has_prefix_follows_puts_and_deletes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 1000).await;
    assert!(!store.has_prefix(b"/p/").await.expect("empty store"));
    store.txn(put("/p/a", "v")).await.expect("put");
    store.txn(put("/pq", "v")).await.expect("put");
    assert!(store.has_prefix(b"/p/").await.expect("one key"));
    assert!(store.has_prefix(b"/p").await.expect("two keys"));
    assert!(
        !store.has_prefix(b"/p/b").await.expect("a sibling"),
        "a prefix of no key"
    );
    store.txn(delete("/p/a")).await.expect("delete");
    assert!(
        !store.has_prefix(b"/p/").await.expect("deleted"),
        "the deleted key was the only one"
    );
    assert!(store.has_prefix(b"/p").await.expect("one left"));
    store.shutdown().await;
}

#[tokio::test]
async fn watch_replays_history_then_follows_live_without_gaps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 10_000).await;
    let first = store.txn(put("/w/0", "0")).await.expect("put").revision;
    for i in 1..50 {
        store.txn(put(&format!("/w/{i}"), "v")).await.expect("put");
        store
            .txn(put(&format!("/other/{i}"), "v"))
            .await
            .expect("put");
    }
    let mut watch = store.watch(b"/w/", first).expect("watch");
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 50..150 {
                store.txn(put(&format!("/w/{i}"), "v")).await.expect("put");
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 150 {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.events.recv())
            .await
            .expect("event in time")
            .expect("watch open");
        assert_eq!(event.kind, EventKind::Put);
        seen.push(event.revision());
    }
    writer.await.expect("writer");
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted, seen,
        "events in strictly increasing revision order, no duplicates"
    );
    store.shutdown().await;
}

#[tokio::test]
async fn deletes_are_watched_with_their_previous_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 1000).await;
    store.txn(put("/d/x", "old")).await.expect("put");
    let mut watch = store.watch(b"/d/", 0).expect("watch");
    store.txn(delete("/d/x")).await.expect("delete");
    let event = tokio::time::timeout(Duration::from_secs(5), watch.events.recv())
        .await
        .expect("in time")
        .expect("open");
    assert_eq!(event.kind, EventKind::Delete);
    assert_eq!(event.prev.map(|p| p.value), Some(b"old".to_vec()));
    store.shutdown().await;
}

#[tokio::test]
async fn watching_below_the_history_is_compacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 10).await;
    for i in 0..1_100 {
        store
            .txn(put(&format!("/c/{}", i % 7), "v"))
            .await
            .expect("put");
    }
    match store.watch(b"/c/", 1) {
        Err(StoreError::Compacted {
            requested: 1,
            oldest,
        }) => assert!(oldest > 900, "oldest {oldest}"),
        Err(other) => panic!("expected Compacted, got {other}"),
        Ok(_) => panic!("expected Compacted, got a watch"),
    }
    assert!(store.watch(b"/c/", store.revision()).is_ok());
    store.shutdown().await;
}

#[tokio::test]
async fn ranges_read_at_an_older_revision_until_it_is_compacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 10).await;
    for key in ["/r/a", "/r/b", "/r/c"] {
        store.txn(put(key, "1")).await.expect("put");
    }
    let then = store.revision();
    store.txn(put("/r/b", "2")).await.expect("update");
    store.txn(delete("/r/a")).await.expect("delete");
    store.txn(put("/r/d", "1")).await.expect("create");
    store.txn(put("/other", "1")).await.expect("elsewhere");
    let old = store.range_at(b"/r/", then).await.expect("range at then");
    let seen: Vec<(&[u8], &[u8])> = old
        .iter()
        .map(|kv| (kv.key.as_slice(), kv.value.as_slice()))
        .collect();
    assert_eq!(
        seen,
        [(&b"/r/a"[..], &b"1"[..]), (b"/r/b", b"1"), (b"/r/c", b"1")]
    );
    let now = store.range_at(b"/r/", store.revision()).await.expect("now");
    assert_eq!(now.len(), 3);
    assert_eq!(now[0].key, b"/r/b");
    for i in 0..1_100 {
        store
            .txn(put(&format!("/c/{}", i % 7), "v"))
            .await
            .expect("put");
    }
    assert!(matches!(
        store.range_at(b"/r/", then).await,
        Err(StoreError::Compacted { .. })
    ));
    store.shutdown().await;
}

#[tokio::test]
async fn acknowledged_writes_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let revision = {
        let store = open(dir.path(), 1000).await;
        let mut last = 0;
        for i in 0..20 {
            last = store
                .txn(put(&format!("/k/{i}"), &i.to_string()))
                .await
                .expect("put")
                .revision;
        }
        store.shutdown().await;
        last
    };
    let store = open(dir.path(), 1000).await;
    assert_eq!(store.revision(), revision);
    assert_eq!(store.range(b"/k/").await.expect("range").0.len(), 20);
    let next = store
        .txn(put("/k/new", "x"))
        .await
        .expect("write after reopen");
    assert_eq!(next.revision, revision + 1);
    // History survives too: a watch can resume from before the restart.
    let mut watch = store.watch(b"/k/", revision).expect("resume");
    let event = watch.events.recv().await.expect("event");
    assert_eq!(event.revision(), revision);
    store.shutdown().await;
}

#[tokio::test]
async fn concurrent_txns_are_all_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), 10_000).await;
    let tasks: Vec<_> = (0..1_000)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.txn(put(&format!("/n/{i}"), "v")).await })
        })
        .collect();
    let mut revisions = Vec::new();
    for task in tasks {
        revisions.push(task.await.expect("join").expect("txn").revision);
    }
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(revisions.len(), 1_000, "every txn got its own revision");
    store.shutdown().await;
    assert!(matches!(
        store.txn(put("/late", "v")).await,
        Err(StoreError::Stopped)
    ));
}
