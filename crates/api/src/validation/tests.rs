use serde_json::{json, Value};

use super::*;
use crate::resources::by_name;

fn errors(kind: &str, obj: Value) -> Vec<String> {
    match validate(by_name(kind).expect("kind"), &obj) {
        Ok(()) => vec![],
        Err(errs) => errs.iter().map(ToString::to_string).collect(),
    }
}

/// Sets the value at a JSON pointer, creating missing object members.
fn set(target: &mut Value, pointer: &str, value: Value) {
    let mut at = target;
    for token in pointer.trim_start_matches('/').split('/') {
        at = match token.parse::<usize>() {
            Ok(i) if at.is_array() => &mut at[i],
            _ => &mut at[token],
        };
    }
    *at = value;
}

fn kubernetes_deployment() -> Value {
    // A plain Kubernetes manifest; only the image is Skiff's.
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "web",
                    "image": "file:/srv/web.wasm",
                    "ports": [{"containerPort": 8080}],
                    "env": [{"name": "MODE", "value": "prod"},
                            {"name": "MSG", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "msg"}}}],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}}
                }]}
            }
        }
    })
}

#[test]
fn a_plain_kubernetes_deployment_is_valid() {
    assert_eq!(
        errors("deployment", kubernetes_deployment()),
        Vec::<String>::new()
    );
}

#[test]
fn bad_deployments_name_the_field() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/spec/replicas", json!(-1), "spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        ("/spec/selector", json!({}), "spec.selector: Invalid value: empty selector is invalid for deployment"),
        ("/spec/template/metadata/labels", json!({"app": "other"}), "spec.template.metadata.labels: Invalid value"),
        ("/spec/template/spec/containers/0/image", json!(""), "spec.template.spec.containers[0].image: Required value"),
        ("/spec/template/spec/containers/0/image", json!("file:/dev/zero"), "spec.template.spec.containers[0].image: Invalid value: \"file:/dev/zero\": a file: image must name a .wasm file"),
        ("/spec/template/spec/containers/0/image", json!("file:../x.wasm"), "spec.template.spec.containers[0].image: Invalid value: \"file:../x.wasm\": a file: image must be an absolute path"),
        ("/spec/template/spec/containers/0/image", json!("file:relative.wasm"), "spec.template.spec.containers[0].image: Invalid value: \"file:relative.wasm\": a file: image must be an absolute path"),
        ("/spec/template/spec/containers/0/image", json!("file:/srv/../etc/x.wasm"), "spec.template.spec.containers[0].image: Invalid value: \"file:/srv/../etc/x.wasm\": a file: image must be a normalized path"),
        ("/spec/template/spec/containers/0/image", json!("Registry/App"), "spec.template.spec.containers[0].image: Invalid value: \"Registry/App\": must be a file: image or an image reference"),
        ("/spec/template/spec/containers/0/resources/limits/memory", json!("12Zi"), "spec.template.spec.containers[0].resources.limits[memory]: Invalid value"),
        ("/spec/template/spec/containers/0/ports/0/containerPort", json!(70000), "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000"),
        ("/spec/template/spec/restartPolicy", json!("Never"), "spec.template.spec.restartPolicy: Unsupported value"),
        ("/metadata/name", json!("Web_1"), "metadata.name: Invalid value: \"Web_1\""),
        ("/metadata/labels", json!({"bad key": "x"}), "metadata.labels[bad key]: Invalid value"),
        ("/spec/template/spec/containers/0/resources/requests/cpu", json!("2"), "spec.template.spec.containers[0].resources.requests[cpu]: Invalid value: 2000: must be less than or equal to cpu limit of 500"),
        ("/spec/replicas", json!("three"), "spec.replicas: Invalid value: invalid type: string"),
        ("/spec/strategy", json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}), "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": may not be 0 when `maxSurge` is 0"),
        ("/spec/strategy", json!({"rollingUpdate": {"maxSurge": "150%"}}), "spec.strategy.rollingUpdate.maxSurge: Invalid value"),
        ("/spec/minReadySeconds", json!(-1), "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0"),
        ("/spec/progressDeadlineSeconds", json!(0), "spec.progressDeadlineSeconds: Invalid value: 0: must be greater than minReadySeconds"),
        ("/spec/progressDeadlineSeconds", json!(-5), "spec.progressDeadlineSeconds: Invalid value: -5: must be greater than or equal to 0"),
    ];
    for (pointer, value, expected) in cases {
        let mut d = kubernetes_deployment();
        set(&mut d, pointer, value);
        let errs = errors("deployment", d);
        assert!(
            errs.iter().any(|e| e.starts_with(expected)),
            "{pointer}: expected {expected:?} in {errs:?}"
        );
    }
}

#[test]
fn pods_need_containers_and_valid_env() {
    let errs = errors(
        "pod",
        json!({"metadata": {"name": "p"}, "spec": {"containers": []}}),
    );
    assert_eq!(
        errs,
        ["spec.containers: Required value: at least one container is required"]
    );
    let errs = errors(
        "pod",
        json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "i", "env": [{"name": "X", "valueFrom": {}}]},
            {"name": "a", "image": "i"}
        ]}}),
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.containers[0].env[0].valueFrom")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.containers[1].name: Duplicate value")),
        "{errs:?}"
    );
    let errs = errors(
        "pod",
        json!({"metadata": {}, "spec": {"containers": [{"name": "a", "image": "i"}]}}),
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("metadata.name: Required value")),
        "{errs:?}"
    );
}

#[test]
fn pre_stop_hooks_have_one_handler_and_sleep_within_the_grace_period() {
    let pod = |lifecycle: Value, grace: Value| {
        json!({"metadata": {"name": "p"}, "spec": {"terminationGracePeriodSeconds": grace,
            "containers": [{"name": "a", "image": "i", "lifecycle": lifecycle,
                "ports": [{"name": "http", "containerPort": 8080}]}]}})
    };
    for good in [
        json!({"preStop": {"sleep": {"seconds": 5}}}),
        json!({"preStop": {"sleep": {"seconds": 0}}}),
        json!({"preStop": {"httpGet": {"port": "http", "path": "/drain"}}}),
        json!({"preStop": {"exec": {"command": ["drain"]}}}),
    ] {
        assert_eq!(
            errors("pod", pod(good.clone(), json!(10))),
            Vec::<String>::new(),
            "{good}"
        );
    }
    let cases = [
        (json!({"preStop": {"sleep": {"seconds": 11}}}), json!(10),
         "spec.containers[0].lifecycle.preStop.sleep.seconds: Invalid value: 11: must be non-negative and less than terminationGracePeriodSeconds (10)"),
        (json!({"preStop": {"sleep": {"seconds": 31}}}), Value::Null,
         "spec.containers[0].lifecycle.preStop.sleep.seconds: Invalid value: 31: must be non-negative and less than terminationGracePeriodSeconds (30)"),
        (json!({"preStop": {"sleep": {"seconds": -1}}}), json!(10),
         "spec.containers[0].lifecycle.preStop.sleep.seconds: Invalid value: -1: must be non-negative and less than terminationGracePeriodSeconds (10)"),
        (json!({"preStop": {}}), json!(10),
         "spec.containers[0].lifecycle.preStop: Required value: must specify a handler type (exec, httpGet, tcpSocket or sleep)"),
        (json!({"preStop": {"sleep": {"seconds": 1}, "exec": {"command": ["x"]}}}), json!(10),
         "spec.containers[0].lifecycle.preStop: Forbidden: may not specify more than 1 handler type"),
        (json!({"preStop": {"httpGet": {"port": "metrics"}}}), json!(10),
         "spec.containers[0].lifecycle.preStop.httpGet.port"),
        (json!({"postStart": {"sleep": {"seconds": 1}}}), json!(10),
         "spec.containers[0].lifecycle.postStart: Unsupported value"),
    ];
    for (lifecycle, grace, expected) in cases {
        let errs = errors("pod", pod(lifecycle, grace));
        assert!(
            errs.len() == 1 && errs[0].starts_with(expected),
            "{expected}: {errs:?}"
        );
    }
    let errs = errors(
        "pod",
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "i"}],
            "initContainers": [{"name": "i", "image": "i",
                "lifecycle": {"preStop": {"sleep": {"seconds": 1}}}}]}}),
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.initContainers[0].lifecycle: Forbidden")),
        "{errs:?}"
    );
}

#[test]
fn init_containers_share_names_and_only_sidecars_set_a_restart_policy() {
    let errs = errors(
        "pod",
        json!({"metadata": {"name": "p"}, "spec": {
            "initContainers": [
                {"name": "a", "image": "i"},
                {"name": "side", "image": "i", "restartPolicy": "Always"},
                {"name": "once", "image": "i", "restartPolicy": "Never"}
            ],
            "containers": [
                {"name": "a", "image": "i"},
                {"name": "b", "image": "i", "restartPolicy": "Always"}
            ]
        }}),
    );
    assert_eq!(
        errs,
        [
            "spec.initContainers[2].restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            "spec.containers[0].name: Duplicate value: \"a\"",
            "spec.containers[1].restartPolicy: Forbidden: may not be set for non-init containers",
        ]
    );
}

#[test]
fn config_and_namespace_names() {
    assert!(errors(
        "configmap",
        json!({"metadata": {"name": "c"}, "data": {"ok.key": "v", "bad key": "v"}})
    )
    .iter()
    .any(|e| e.starts_with("data[bad key]")));
    assert!(!errors("namespace", json!({"metadata": {"name": "a.b"}})).is_empty());
    assert!(errors("namespace", json!({"metadata": {"name": "team-a"}})).is_empty());
}

#[test]
fn runtime_class_fields() {
    let wasm = json!({"metadata": {"name": "wasmtime"}, "handler": "wasm",
        "scheduling": {"nodeSelector": {"runtime.skiff.dev/wasm": "true"},
            "tolerations": [{"key": "runtime.skiff.dev/wasm", "operator": "Exists", "effect": "NoSchedule"}]}});
    assert_eq!(errors("runtimeclass", wasm.clone()), Vec::<String>::new());
    let errs = errors(
        "runtimeclass",
        json!({"metadata": {"name": "c"}, "handler": ""}),
    );
    assert_eq!(errs, vec!["handler: Required value"]);
    let errs = errors(
        "runtimeclass",
        json!({"metadata": {"name": "c"}, "handler": "Bad_Handler"}),
    );
    assert!(errs[0].starts_with("handler: Invalid value"), "{errs:?}");
    let mut bad = wasm;
    set(
        &mut bad,
        "/scheduling/nodeSelector",
        json!({"bad key": "v"}),
    );
    set(
        &mut bad,
        "/scheduling/tolerations",
        json!([
            {"key": "k", "operator": "Exists", "value": "v"},
            {"operator": "Equal", "value": "v"},
            {"key": "k", "operator": "Less"},
            {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5},
            {"key": "k", "effect": "Sometimes"}
        ]),
    );
    let errs = errors("runtimeclass", bad);
    for field in [
        "scheduling.nodeSelector[bad key]: Invalid value",
        "scheduling.tolerations[0].operator: Invalid value",
        "scheduling.tolerations[1].operator: Invalid value",
        "scheduling.tolerations[2].operator: Unsupported value",
        "scheduling.tolerations[3].effect: Invalid value",
        "scheduling.tolerations[4].effect: Unsupported value",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(field)),
            "{field} in {errs:?}"
        );
    }
    assert_eq!(errs.len(), 6, "{errs:?}");
}

fn kubernetes_statefulset() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {
            "serviceName": "db",
            "replicas": 3,
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{
                    "name": "db",
                    "image": "file:/srv/db.wasm",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]
                }]}
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}
            }]
        }
    })
}

#[test]
fn bad_statefulsets_name_the_field() {
    assert_eq!(
        errors("statefulset", kubernetes_statefulset()),
        Vec::<String>::new()
    );
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/spec/replicas",
            json!(-1),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            "/spec/template/metadata/labels",
            json!({"app": "other"}),
            "spec.template.metadata.labels: Invalid value",
        ),
        (
            "/spec/serviceName",
            json!(""),
            "spec.serviceName: Required value",
        ),
        (
            "/spec/serviceName",
            json!("Db_Svc"),
            "spec.serviceName: Invalid value: \"Db_Svc\"",
        ),
        (
            "/spec/volumeClaimTemplates/0/metadata/name",
            json!(""),
            "spec.volumeClaimTemplates[0].metadata.name: Required value",
        ),
        (
            "/spec/volumeClaimTemplates/0/metadata/name",
            json!("Data!"),
            "spec.volumeClaimTemplates[0].metadata.name: Invalid value: \"Data!\"",
        ),
        (
            "/spec/volumeClaimTemplates",
            json!([{"metadata": {"name": "data"}}, {"metadata": {"name": "data"}}]),
            "spec.volumeClaimTemplates[1].metadata.name: Duplicate value: \"data\"",
        ),
        (
            "/spec/podManagementPolicy",
            json!("Random"),
            "spec.podManagementPolicy: Unsupported value: \"Random\"",
        ),
        (
            "/spec/updateStrategy",
            json!({"type": "Rolling"}),
            "spec.updateStrategy.type: Unsupported value",
        ),
        (
            "/spec/updateStrategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": -1}}),
            "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1",
        ),
        (
            "/spec/updateStrategy",
            json!({"type": "OnDelete", "rollingUpdate": {"partition": 1}}),
            "spec.updateStrategy.rollingUpdate: Forbidden",
        ),
        (
            "/spec/persistentVolumeClaimRetentionPolicy",
            json!({"whenScaled": "Keep"}),
            "spec.persistentVolumeClaimRetentionPolicy.whenScaled: Unsupported value: \"Keep\"",
        ),
        (
            "/spec/template/spec/restartPolicy",
            json!("OnFailure"),
            "spec.template.spec.restartPolicy: Unsupported value",
        ),
    ];
    for (pointer, value, expected) in cases {
        let mut sts = kubernetes_statefulset();
        set(&mut sts, pointer, value);
        let errs = errors("statefulset", sts);
        assert!(
            errs.iter().any(|e| e.starts_with(expected)),
            "{pointer}: expected {expected:?} in {errs:?}"
        );
    }
}

#[test]
fn storage_objects_name_the_bad_field() {
    let local = json!({"metadata": {"name": "pv1"}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain", "local": {"path": "/data/pv1"},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}}});
    assert_eq!(errors("pv", local.clone()), Vec::<String>::new());
    let mut bad = local.clone();
    set(&mut bad, "/spec/nodeAffinity", Value::Null);
    set(
        &mut bad,
        "/spec/persistentVolumeReclaimPolicy",
        json!("Recycle"),
    );
    set(&mut bad, "/spec/accessModes", json!(["ReadWriteSometimes"]));
    set(&mut bad, "/spec/capacity", json!({}));
    let errs = errors("pv", bad);
    for field in [
        "spec.nodeAffinity: Required value",
        "spec.persistentVolumeReclaimPolicy: Unsupported value",
        "spec.accessModes[0]: Unsupported value",
        "spec.capacity.storage: Required value",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(field)),
            "{field} in {errs:?}"
        );
    }
    let mut two = local;
    set(&mut two, "/spec/hostPath", json!({"path": "/srv"}));
    assert!(errors("pv", two)[0].starts_with("spec.hostPath: Forbidden"));
    let none = json!({"metadata": {"name": "pv2"}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}});
    assert!(errors("pv", none)[0].starts_with("spec: Required value"));

    let claim = json!({"metadata": {"name": "data", "namespace": "default"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    assert_eq!(errors("pvc", claim), Vec::<String>::new());
    let errs = errors(
        "pvc",
        json!({"metadata": {"name": "data"}, "spec": {"storageClassName": "Bad_Class"}}),
    );
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].starts_with("spec.accessModes: Required value"));
    assert!(errs[1].starts_with("spec.resources.requests.storage: Required value"));
    assert!(errs[2].starts_with("spec.storageClassName: Invalid value"));

    let class = json!({"metadata": {"name": "fast"}, "provisioner": "skiff.dev/local-path",
        "reclaimPolicy": "Retain", "volumeBindingMode": "Immediate"});
    assert_eq!(errors("sc", class), Vec::<String>::new());
    let errs = errors(
        "sc",
        json!({"metadata": {"name": "slow"}, "provisioner": "",
            "volumeBindingMode": "Later"}),
    );
    assert_eq!(
        errs,
        vec![
            "provisioner: Required value",
            "volumeBindingMode: Unsupported value: \"Later\": supported values: \"Immediate\", \"WaitForFirstConsumer\""
        ]
    );
}

#[test]
fn pod_disruption_budgets() {
    let pdb = |spec: Value| json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "b"}, "spec": spec});
    assert!(errors(
        "pdb",
        pdb(json!({"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}))
    )
    .is_empty());
    assert_eq!(
        errors("pdb", pdb(json!({"minAvailable": 1, "maxUnavailable": 1}))),
        ["spec: Invalid value: minAvailable and maxUnavailable cannot be both set"]
    );
    let errs = errors("pdb", pdb(json!({"maxUnavailable": "120%"})));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.maxUnavailable: Invalid value")),
        "{errs:?}"
    );
    let errs = errors("pdb", pdb(json!({"minAvailable": -1})));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.minAvailable: Invalid value")),
        "{errs:?}"
    );
}

#[test]
fn node_pod_cidrs_must_be_cidrs() {
    let node = |spec: Value| json!({"metadata": {"name": "n1"}, "spec": spec});
    assert!(errors("nodes", node(json!({}))).is_empty());
    assert!(errors(
        "nodes",
        node(json!({"podCIDR": "10.42.1.0/24", "podCIDRs": ["10.42.1.0/24"]}))
    )
    .is_empty());
    let bad = errors("nodes", node(json!({"podCIDR": "10.42.1.0"})));
    assert!(bad[0].starts_with("spec.podCIDR: Invalid value"), "{bad:?}");
    let bad = errors("nodes", node(json!({"podCIDRs": ["fd00::/64", "nope"]})));
    assert!(
        bad[0].starts_with("spec.podCIDRs[1]: Invalid value"),
        "{bad:?}"
    );
    let bad = errors(
        "nodes",
        node(json!({"podCIDR": "10.42.1.0/24", "podCIDRs": ["10.42.2.0/24"]})),
    );
    assert!(bad[0].starts_with("spec.podCIDRs[0]"), "{bad:?}");
}

#[test]
fn service_traffic_policies_and_protocols_as_kubernetes_allows_them() {
    let service = |spec: Value| json!({"metadata": {"name": "web"}, "spec": spec});
    for good in [
        json!({"internalTrafficPolicy": "Local", "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}),
        json!({"type": "NodePort", "externalTrafficPolicy": "Local",
            "internalTrafficPolicy": "Cluster", "ports": [{"port": 80}]}),
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Cluster", "ports": [{"port": 80}]}),
    ] {
        assert_eq!(
            errors("service", service(good.clone())),
            Vec::<String>::new(),
            "{good}"
        );
    }
    let cases = [
        (json!({"internalTrafficPolicy": "Node"}),
         "spec.internalTrafficPolicy: Unsupported value: \"Node\": supported values: \"Cluster\", \"Local\""),
        (json!({"type": "NodePort", "externalTrafficPolicy": "local"}),
         "spec.externalTrafficPolicy: Unsupported value: \"local\""),
        (json!({"ports": [{"port": 53, "protocol": "udp"}]}),
         "spec.ports[0].protocol: Unsupported value: \"udp\": supported values: \"SCTP\", \"TCP\", \"UDP\""),
        (json!({"externalTrafficPolicy": "Local"}),
         "spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services"),
    ];
    for (spec, expected) in cases {
        let errs = errors("service", service(spec));
        assert!(
            errs.len() == 1 && errs[0].starts_with(expected),
            "{expected}: {errs:?}"
        );
    }
}

#[test]
fn dns_policy_and_config_name_the_field() {
    let pod = |spec: Value| {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "a", "image": "i"}]);
        errors("pod", json!({"metadata": {"name": "p"}, "spec": spec}))
    };
    assert_eq!(
        pod(json!({"dnsPolicy": "ClusterFirstWithHostNet"})),
        Vec::<String>::new()
    );
    assert_eq!(
        pod(
            json!({"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"],
            "searches": ["a.example."], "options": [{"name": "ndots", "value": "2"}]}})
        ),
        Vec::<String>::new()
    );
    let errs = pod(json!({"dnsPolicy": "Cluster"}));
    assert!(
        errs[0].starts_with("spec.dnsPolicy: Unsupported value: \"Cluster\""),
        "{errs:?}"
    );
    let errs = pod(json!({"dnsPolicy": "None"}));
    assert!(
        errs[0].starts_with("spec.dnsConfig.nameservers: Required value"),
        "{errs:?}"
    );
    let errs = pod(json!({"dnsConfig": {
        "nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3", "not-an-ip"],
        "searches": ["Bad_Domain"], "options": [{"value": "1"}]}}));
    for field in [
        "spec.dnsConfig.nameservers: Invalid value",
        "spec.dnsConfig.nameservers[3]: Invalid value",
        "spec.dnsConfig.searches[0]: Invalid value",
        "spec.dnsConfig.options[0].name: Required value",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(field)),
            "{field}: {errs:?}"
        );
    }
}

#[test]
fn endpoints_name_the_bad_subset_field() {
    let endpoints = |subsets: Value| json!({"metadata": {"name": "web"}, "subsets": subsets});
    let good = json!([{"addresses": [{"ip": "10.42.0.2", "nodeName": "n1"}],
        "notReadyAddresses": [{"ip": "10.42.0.3"}],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                  {"name": "dns", "port": 53, "protocol": "UDP"}]}]);
    assert_eq!(errors("ep", endpoints(good)), Vec::<String>::new());
    let cases = [
        (json!([{"ports": [{"port": 80, "protocol": "TCP"}]}]), "subsets[0]: Required value"),
        (json!([{"addresses": [{"ip": "nope"}]}]),
         "subsets[0].addresses[0].ip: Invalid value: \"nope\": must be a valid IP address"),
        (json!([{"notReadyAddresses": [{"ip": "0.0.0.0"}]}]),
         "subsets[0].notReadyAddresses[0].ip: Invalid value: \"0.0.0.0\""),
        (json!([{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 70000, "protocol": "TCP"}]}]),
         "subsets[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"),
        (json!([{"addresses": [{"ip": "10.0.0.1"}],
            "ports": [{"name": "a", "port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "TCP"}]}]),
         "subsets[0].ports[1].name: Required value"),
        (json!([{"addresses": [{"ip": "10.0.0.1"}],
            "ports": [{"name": "a", "port": 80, "protocol": "TCP"}, {"name": "a", "port": 81, "protocol": "TCP"}]}]),
         "subsets[0].ports[1].name: Duplicate value"),
        (json!([{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80, "protocol": "tcp"}]}]),
         "subsets[0].ports[0].protocol: Unsupported value: \"tcp\""),
    ];
    for (subsets, expected) in cases {
        let errs = errors("endpoints", endpoints(subsets));
        assert!(
            errs.len() == 1 && errs[0].starts_with(expected),
            "{expected}: {errs:?}"
        );
    }
}
