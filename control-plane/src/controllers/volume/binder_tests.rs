use serde_json::{json, Value};
use skiff_api::storage::LOCAL_PATH_PROVISIONER;

use super::*;

fn claim(extra: Value) -> PersistentVolumeClaim {
    let mut claim = json!({
        "metadata": {"name": "data", "namespace": "default", "uid": "c1"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
            "resources": {"requests": {"storage": "1Gi"}}}
    });
    merge(&mut claim, extra);
    serde_json::from_value(claim).expect("claim")
}

fn volume(name: &str, size: &str, extra: Value) -> PersistentVolume {
    let mut volume = json!({
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
            "capacity": {"storage": size}, "hostPath": {"path": "/srv"}},
        "status": {"phase": "Available"}
    });
    merge(&mut volume, extra);
    serde_json::from_value(volume).expect("volume")
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p,
    }
}

fn class(mode: &str) -> StorageClass {
    serde_json::from_value(json!({"metadata": {"name": "manual"},
        "provisioner": LOCAL_PATH_PROVISIONER, "volumeBindingMode": mode}))
    .expect("class")
}

fn node(name: &str, root: Option<&str>) -> StorageNode {
    StorageNode {
        info: NodeInfo {
            name: name.into(),
            labels: [("kubernetes.io/hostname".to_string(), name.to_string())].into(),
            ready: true,
            ..Default::default()
        },
        root: root.map(str::to_string),
    }
}

const REF_C1: &str =
    r#"{"spec": {"claimRef": {"namespace": "default", "name": "data", "uid": "c1"}}}"#;

fn ref_c1() -> Value {
    serde_json::from_str(REF_C1).expect("json")
}

/// Name, claim, volumes, class, and the check of the step.
type Case<'a> = (
    &'static str,
    PersistentVolumeClaim,
    Vec<PersistentVolume>,
    Option<&'a StorageClass>,
    Box<dyn Fn(&ClaimStep) -> bool>,
);

#[test]
fn claim_steps() {
    let immediate = class("Immediate");
    let wffc = class("WaitForFirstConsumer");
    let selected =
        json!({"metadata": {"annotations": {"volume.kubernetes.io/selected-node": "n2"}}});
    let pinned_n1 = json!({"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}}});
    let nodes = [
        node("n1", Some("/r1")),
        node("n2", Some("/r2")),
        node("n3", None),
    ];
    let wait = |reason: &'static str| -> Box<dyn Fn(&ClaimStep) -> bool> {
        Box::new(move |step| matches!(step, ClaimStep::Wait { reason: r, .. } if *r == reason))
    };
    let is = |expected: ClaimStep| -> Box<dyn Fn(&ClaimStep) -> bool> {
        Box::new(move |step| *step == expected)
    };
    let cases: Vec<Case> = vec![
        (
            "smallest fitting Available volume, by name on ties",
            claim(json!({})),
            vec![
                volume("big", "10Gi", json!({})),
                volume("b-fit", "2Gi", json!({})),
                volume("a-fit", "2Gi", json!({})),
                volume("small", "512Mi", json!({})),
                volume(
                    "other-class",
                    "1Gi",
                    json!({"spec": {"storageClassName": "x"}}),
                ),
                volume(
                    "read-only",
                    "1Gi",
                    json!({"spec": {"accessModes": ["ReadOnlyMany"]}}),
                ),
                volume(
                    "taken",
                    "1Gi",
                    json!({"spec": {"claimRef": {"name": "o", "namespace": "default", "uid": "o"}}}),
                ),
                volume("released", "1Gi", json!({"status": {"phase": "Released"}})),
            ],
            Some(&immediate),
            is(ClaimStep::ClaimVolume {
                volume: "a-fit".into(),
            }),
        ),
        (
            "a volume naming the claim is finished first (failover between the two writes)",
            claim(json!({})),
            vec![
                volume("a-fit", "1Gi", json!({})),
                volume("mine", "5Gi", ref_c1()),
            ],
            Some(&immediate),
            is(ClaimStep::SetVolumeName {
                volume: "mine".into(),
            }),
        ),
        (
            "a volume naming an earlier claim of the same name is not ours",
            claim(json!({"metadata": {"uid": "c2"}})),
            vec![volume("old", "5Gi", ref_c1())],
            None,
            wait("FailedBinding"),
        ),
        (
            "bound both ways",
            claim(json!({"spec": {"volumeName": "mine"}})),
            vec![volume("mine", "1Gi", ref_c1())],
            Some(&immediate),
            is(ClaimStep::Bound {
                volume: "mine".into(),
            }),
        ),
        (
            "a claim naming its volume claims it",
            claim(json!({"spec": {"volumeName": "wanted"}})),
            vec![
                volume("a-fit", "1Gi", json!({})),
                volume("wanted", "3Gi", json!({})),
            ],
            Some(&immediate),
            is(ClaimStep::ClaimVolume {
                volume: "wanted".into(),
            }),
        ),
        (
            "a claim naming a volume taken by another claim waits",
            claim(json!({"spec": {"volumeName": "taken"}})),
            vec![volume(
                "taken",
                "1Gi",
                json!({"spec": {"claimRef": {"name": "o", "namespace": "default", "uid": "o"}}}),
            )],
            Some(&immediate),
            wait("FailedBinding"),
        ),
        (
            "the claim's volume is gone",
            claim(json!({"spec": {"volumeName": "gone"}})),
            vec![],
            Some(&immediate),
            is(ClaimStep::Lost {
                volume: "gone".into(),
            }),
        ),
        (
            "WaitForFirstConsumer waits for the scheduler, even with a fitting volume",
            claim(json!({})),
            vec![volume("a-fit", "1Gi", json!({}))],
            Some(&wffc),
            wait("WaitForFirstConsumer"),
        ),
        (
            "WaitForFirstConsumer on the selected node skips volumes pinned elsewhere",
            claim(selected.clone()),
            vec![volume("on-n1", "1Gi", pinned_n1.clone())],
            Some(&wffc),
            is(ClaimStep::Provision {
                node: "n2".into(),
                root: "/r2".into(),
            }),
        ),
        (
            "Immediate provisions on the first ready node with a root",
            claim(json!({})),
            vec![],
            Some(&immediate),
            is(ClaimStep::Provision {
                node: "n1".into(),
                root: "/r1".into(),
            }),
        ),
        (
            "a selected node without a root cannot be provisioned on",
            claim(
                json!({"metadata": {"annotations": {"volume.kubernetes.io/selected-node": "n3"}}}),
            ),
            vec![],
            Some(&wffc),
            wait("ProvisioningFailed"),
        ),
        (
            "no class and no volume",
            claim(json!({"spec": {"storageClassName": ""}})),
            vec![volume("a-fit", "1Gi", json!({}))],
            None,
            wait("FailedBinding"),
        ),
    ];
    for (name, claim, volumes, class, check) in cases {
        let refs: Vec<&PersistentVolume> = volumes.iter().collect();
        let lookup = match class {
            Some(class) => ClassLookup::Found(class),
            None => ClassLookup::None,
        };
        let step = claim_step(&claim, &refs, lookup, &nodes);
        assert!(check(&step), "{name}: {step:?}");
    }
    let missing = claim_step(&claim(json!({})), &[], ClassLookup::Missing, &nodes);
    assert!(wait("ProvisioningFailed")(&missing), "{missing:?}");
    let other: StorageClass = serde_json::from_value(json!({"metadata": {"name": "manual"},
        "provisioner": "ebs.csi.aws.com"}))
    .expect("class");
    let external = claim_step(&claim(json!({})), &[], ClassLookup::Found(&other), &nodes);
    assert!(wait("ExternalProvisioning")(&external), "{external:?}");
}

#[test]
fn volume_steps() {
    let bound_claim = claim(json!({"spec": {"volumeName": "pv"}}));
    let unbound_claim = claim(json!({}));
    let elsewhere = claim(json!({"spec": {"volumeName": "other"}}));
    let newer = claim(json!({"metadata": {"uid": "c2"}}));
    let deleting = json!({"spec": {"persistentVolumeReclaimPolicy": "Delete"}});
    let mut ref_delete = ref_c1();
    merge(&mut ref_delete, deleting.clone());
    let pre_bound = json!({"spec": {"claimRef": {"namespace": "default", "name": "data"}}});
    let cases: Vec<(
        &str,
        PersistentVolume,
        Option<&PersistentVolumeClaim>,
        VolumeStep,
    )> = vec![
        (
            "no claim: Available",
            volume("pv", "1Gi", json!({})),
            None,
            VolumeStep::Phase("Available"),
        ),
        (
            "bound both ways",
            volume("pv", "1Gi", ref_c1()),
            Some(&bound_claim),
            VolumeStep::Phase("Bound"),
        ),
        (
            "claim half still to write",
            volume("pv", "1Gi", ref_c1()),
            Some(&unbound_claim),
            VolumeStep::Phase("Available"),
        ),
        (
            "claim gone, Retain",
            volume("pv", "1Gi", ref_c1()),
            None,
            VolumeStep::Phase("Released"),
        ),
        (
            "claim gone, Delete",
            volume("pv", "1Gi", ref_delete.clone()),
            None,
            VolumeStep::Delete,
        ),
        (
            "claim recreated under the same name",
            volume("pv", "1Gi", ref_delete),
            Some(&newer),
            VolumeStep::Delete,
        ),
        (
            "claim bound to another volume",
            volume("pv", "1Gi", ref_c1()),
            Some(&elsewhere),
            VolumeStep::Unclaim,
        ),
        (
            "pre-bound, waiting for its claim",
            volume("pv", "1Gi", pre_bound),
            None,
            VolumeStep::Phase("Available"),
        ),
    ];
    for (name, volume, claim, expected) in cases {
        assert_eq!(volume_step(&volume, claim), expected, "{name}");
    }
}
