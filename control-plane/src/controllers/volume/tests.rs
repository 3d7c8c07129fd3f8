//! The binder and reclaimer on a real store: a binding a previous leader half wrote (the
//! volume's `claimRef` only) is finished to that volume, not a better fitting one, and a
//! deleted claim releases its Retain volume.

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::runtime::Informers;

fn volume(name: &str, size: &str) -> PersistentVolume {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {
        "capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
        "storageClassName": "", "hostPath": {"path": format!("/srv/{name}")}}}))
    .expect("volume")
}

/// Reconciles `key` until the reconciler waits for a change (at most 10 rounds).
async fn settle(reconciler: &impl Reconciler, key: &str) {
    for _ in 0..10 {
        if reconciler.reconcile(key).await.expect("reconcile") == Action::AwaitChange {
            return;
        }
    }
    panic!("{key} did not settle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_written_binding_is_finished_and_a_deleted_claim_releases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = crate::test_registry::registry(dir.path()).await;
    let shutdown = CancellationToken::new();
    let informers = Informers::start(&registry, &shutdown);
    let binder = ClaimBinder {
        registry: registry.clone(),
        claims: informers.persistent_volume_claims.clone(),
        volumes: informers.persistent_volumes.clone(),
        classes: informers.storage_classes.clone(),
        nodes: informers.nodes.clone(),
        events: EventRecorder::new(registry.clone(), "persistentvolume-controller"),
        reported: Default::default(),
    };
    let reclaimer = VolumeReclaimer {
        registry: registry.clone(),
        volumes: informers.persistent_volumes.clone(),
        pods: informers.pods.clone(),
        events: EventRecorder::new(registry.clone(), "persistentvolume-controller"),
    };
    for v in [volume("small", "1Gi"), volume("big", "5Gi")] {
        registry.create_typed(&v).await.expect("volume");
    }
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
            "resources": {"requests": {"storage": "1Gi"}}}}))
    .expect("claim");
    let claim = registry.create_typed(&claim).await.expect("claim");
    // The previous leader wrote the first half: `big` names the claim.
    let mut big = registry
        .get(resources::of::<PersistentVolume>(), None, "big")
        .await
        .and_then(typed::from_value::<PersistentVolume>)
        .expect("big");
    big.spec.as_mut().expect("spec").claim_ref = Some(claim_reference(&claim));
    let big = registry
        .update_typed(&big, Subresource::Main)
        .await
        .expect("claimRef");
    informers
        .persistent_volumes
        .wait_for(revision_of(&big))
        .await;
    informers
        .persistent_volume_claims
        .wait_for(revision_of(&claim))
        .await;

    settle(&binder, "default/data").await;
    let bound = informers
        .persistent_volume_claims
        .get("default/data")
        .expect("claim");
    assert_eq!(
        claim_volume_name(&bound),
        Some("big"),
        "finished, not rebound"
    );
    let status = bound.status.as_ref().expect("status");
    assert_eq!(status.phase.as_deref(), Some("Bound"));
    assert_eq!(
        status.capacity.as_ref().expect("capacity")["storage"].0,
        "5Gi"
    );
    settle(&reclaimer, "big").await;
    settle(&reclaimer, "small").await;
    let phase = |name: &str| {
        informers
            .persistent_volumes
            .get(name)
            .map(|v| binder::phase(&v).to_string())
    };
    assert_eq!(phase("big").as_deref(), Some("Bound"));
    assert_eq!(phase("small").as_deref(), Some("Available"));
    let small = informers.persistent_volumes.get("small").expect("small");
    assert!(small.spec.as_ref().expect("spec").claim_ref.is_none());

    // The claim goes: its volume (reclaim policy Retain, the default) is Released, not deleted.
    registry
        .delete_typed::<PersistentVolumeClaim>(Some("default"), "data")
        .await
        .expect("delete");
    settle(&reclaimer, "big").await;
    assert_eq!(phase("big").as_deref(), Some("Released"));

    // A Delete volume whose claim is gone waits while a pod still mounts the claim.
    let mut doomed = volume("doomed", "1Gi");
    let spec = doomed.spec.as_mut().expect("spec");
    spec.persistent_volume_reclaim_policy = Some("Delete".into());
    spec.claim_ref = Some(ObjectReference {
        namespace: Some("default".into()),
        name: Some("gone".into()),
        uid: Some("uid-of-gone".into()),
        ..Default::default()
    });
    let doomed = registry.create_typed(&doomed).await.expect("doomed");
    let user: Pod = serde_json::from_value(json!({
        "metadata": {"name": "user", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "file:/x/c.wasm"}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "gone"}}]}}))
    .expect("pod");
    let user = registry.create_typed(&user).await.expect("pod");
    informers
        .persistent_volumes
        .wait_for(revision_of(&doomed))
        .await;
    informers.pods.wait_for(revision_of(&user)).await;
    let action = reclaimer.reconcile("doomed").await.expect("reconcile");
    assert_eq!(
        action,
        Action::requeue(IN_USE_RECHECK),
        "deleted under its pod"
    );
    assert!(informers.persistent_volumes.get("doomed").is_some());
    registry
        .delete_typed::<Pod>(Some("default"), "user")
        .await
        .expect("delete pod");
    let gone = registry.revision();
    informers.pods.wait_for(gone).await;
    settle(&reclaimer, "doomed").await;
    let volumes = resources::of::<PersistentVolume>();
    assert!(matches!(
        registry.get(volumes, None, "doomed").await,
        Err(ApiError::NotFound { .. })
    ));
    shutdown.cancel();
}
