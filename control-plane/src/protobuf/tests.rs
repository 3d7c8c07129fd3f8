//! Round trips through the protobuf form, and bodies that are refused.

use serde_json::json;

use super::*;

fn round_trip(object: serde_json::Value) {
    let body = encode(&object).expect("encodes");
    assert!(body.starts_with(b"k8s\0"));
    assert_eq!(decode(&body).expect("decodes"), object);
}

#[test]
fn a_pod_round_trips() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web",
            "namespace": "team",
            "labels": {"app": "web", "tier": "front"},
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "resourceVersion": "42",
            "managedFields": [{
                "manager": "kubectl",
                "operation": "Update",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {}}},
                "time": "2026-01-02T03:04:05Z",
            }],
        },
        "spec": {
            "containers": [{
                "name": "app",
                "image": "ghcr.io/skiff/hello:1",
                "args": ["--port", "8080"],
                "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a"}}}],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
            }],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": false,
        },
        "status": {"phase": "Running"},
    }));
}

#[test]
fn endpoints_round_trip() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "web", "namespace": "default"},
        "subsets": [{
            "addresses": [{"ip": "10.42.0.2", "nodeName": "n1",
                "targetRef": {"kind": "Pod", "name": "web-0", "namespace": "default"}}],
            "notReadyAddresses": [{"ip": "10.42.0.3"}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }],
    }));
}

#[test]
fn a_secret_round_trips_its_bytes() {
    round_trip(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "type": "Opaque",
        "data": {"password": "aHVudGVyMg==", "binary": "AP8BAg==", "empty": ""},
    }));
}

#[test]
fn a_deployment_round_trips_int_or_string_and_quantities() {
    round_trip(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1},
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "app",
                    "image": "hello",
                    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                }]},
            },
        },
    }));
}

#[test]
fn micro_times_and_events_round_trip() {
    round_trip(json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "e1", "namespace": "default"},
        "eventTime": "2026-01-02T03:04:05.123456Z",
        "reason": "Started",
        "regarding": {"kind": "Pod", "name": "web"},
    }));
}

#[test]
fn a_review_with_extra_values_round_trips() {
    round_trip(json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "metadata": {},
        "spec": {
            "user": "ann",
            "groups": ["dev"],
            "extra": {"scopes": ["a", "b"]},
            "resourceAttributes": {"namespace": "team", "verb": "list", "resource": "pods"},
        },
        "status": {"allowed": true},
    }));
}

#[test]
fn empty_strings_in_lists_and_maps_are_kept() {
    round_trip(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "r", "annotations": {"note": ""}},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }));
}

#[test]
fn quantities_given_as_numbers_come_back_as_strings() {
    let body = encode(&json!({
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q"},
        "spec": {"hard": {"pods": 10}},
    }))
    .expect("encodes");
    assert_eq!(
        decode(&body).expect("decodes")["spec"]["hard"]["pods"],
        "10"
    );
}

#[test]
fn malformed_bodies_are_refused_naming_what_is_wrong() {
    let error = decode(b"{\"kind\": \"Pod\"}").expect_err("no envelope");
    assert!(matches!(error, ProtobufError::NoEnvelope), "{error}");

    let good = encode(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}))
        .expect("encodes");
    let error = decode(&good[..good.len() - 3]).expect_err("truncated");
    assert!(error.to_string().contains("malformed"), "{error}");

    let error = encode(&json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"key": "not base64!"},
    }))
    .expect_err("bad base64");
    assert!(
        error.to_string().starts_with("data[key]: not base64"),
        "{error}"
    );

    let error = encode(&json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"replicas": "three"},
    }))
    .expect_err("bad replicas");
    assert!(error.to_string().starts_with("spec.replicas: "), "{error}");
}

#[test]
fn custom_resources_have_no_protobuf_form() {
    let error = encode(&json!({"apiVersion": "example.com/v1", "kind": "Widget"}))
        .expect_err("a custom resource");
    let text = error.to_string();
    assert!(matches!(error, ProtobufError::UnknownKind { .. }));
    assert!(
        text.contains("example.com/v1 Widget") && text.contains(MEDIA_TYPE),
        "{text}"
    );
}
