use serde_json::json;

use super::*;
use crate::runtime::Mount;

fn pod(volumes: serde_json::Value, mounts: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
        "spec": {"volumes": volumes, "containers": [{"name": "c", "volumeMounts": mounts}]}
    }))
    .expect("pod")
}

#[tokio::test]
async fn mounts_follow_kinds_sub_paths_and_read_only() {
    let root = tempfile::tempdir().expect("tempdir");
    let pods_dir = root.path().join("pods");
    let scratch = pods_dir.join("u1/volumes/scratch");
    let cfg = pods_dir.join("u1/volumes/cfg");
    std::fs::create_dir_all(&scratch).expect("scratch");
    let payload: Payload = [(
        "app.conf".to_string(),
        atomic_writer::File {
            data: b"x=1".to_vec(),
            mode: 0o644,
        },
    )]
    .into();
    atomic_writer::write(&cfg, &payload).expect("cfg");
    let pod = pod(
        json!([{"name": "scratch", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}}]),
        json!([
            {"name": "scratch", "mountPath": "/tmp"},
            {"name": "scratch", "mountPath": "/logs", "subPathExpr": "logs/$(POD)", "readOnly": true},
            {"name": "cfg", "mountPath": "/etc/cfg"},
            {"name": "cfg", "mountPath": "/etc/app/app.conf", "subPath": "app.conf"}
        ]),
    );
    let prepared: Volumes = [
        (
            "scratch".to_string(),
            Prepared {
                host_path: scratch.clone(),
                read_only: false,
            },
        ),
        (
            "cfg".to_string(),
            Prepared {
                host_path: cfg.clone(),
                read_only: true,
            },
        ),
    ]
    .into();
    let container = &pod.spec.as_ref().expect("spec").containers[0];
    let env = vec![("POD".to_string(), "web-0".to_string())];
    let got = mounts(&pod, container, &prepared, &env, &pods_dir)
        .await
        .expect("mounts");
    let stage = pods_dir.join("u1/files/c/3");
    let want = vec![
        Mount {
            container_path: "/tmp".into(),
            host_path: scratch.clone(),
            read_only: false,
        },
        Mount {
            container_path: "/logs".into(),
            host_path: scratch.canonicalize().expect("real").join("logs/web-0"),
            read_only: true,
        },
        Mount {
            container_path: "/etc/cfg".into(),
            host_path: cfg.clone(),
            read_only: true,
        },
        Mount {
            container_path: "/etc/app".into(),
            host_path: stage.clone(),
            read_only: true,
        },
    ];
    assert_eq!(got, want);
    assert_eq!(
        std::fs::read_to_string(stage.join("app.conf")).expect("staged"),
        "x=1"
    );

    let escape = pod_with_sub_path("../u2");
    let container = &escape.spec.as_ref().expect("spec").containers[0];
    let err = mounts(&escape, container, &prepared, &env, &pods_dir)
        .await
        .expect_err("escape");
    assert!(matches!(err, VolumeError::SubPath { .. }), "{err}");

    remove(&pods_dir, "u1").await.expect("remove");
    assert!(!pods_dir.join("u1/volumes").exists());
    assert!(!pods_dir.join("u1/files").exists());
}

fn pod_with_sub_path(sub: &str) -> Pod {
    pod(
        json!([{"name": "scratch", "emptyDir": {}}]),
        json!([{"name": "scratch", "mountPath": "/x", "subPath": sub}]),
    )
}

#[test]
fn references_match_kind_namespace_and_name() {
    let pod = pod(
        json!([
            {"name": "a", "configMap": {"name": "cfg"}},
            {"name": "b", "projected": {"sources": [{"secret": {"name": "tls"}}]}}
        ]),
        json!([]),
    );
    let change = |kind, namespace: &str, name: &str| SourceChange {
        kind,
        namespace: namespace.into(),
        name: name.into(),
    };
    let cases = [
        (change(SourceKind::ConfigMap, "ns", "cfg"), true),
        (change(SourceKind::Secret, "ns", "cfg"), false),
        (change(SourceKind::ConfigMap, "other", "cfg"), false),
        (change(SourceKind::Secret, "ns", "tls"), true),
        (change(SourceKind::ConfigMap, "ns", "tls"), false),
    ];
    for (change, want) in cases {
        assert_eq!(references(&pod, &change), want, "{change:?}");
    }
    assert!(projects_files(&pod));
    assert!(!projects_files(&pod_with_sub_path("x")));
}
