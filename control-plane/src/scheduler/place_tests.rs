//! Table tests of placement: one case per filter and score.

use super::*;
use serde_json::json;
use skiff_api::k8s_openapi::api::core::v1::Taint;

use crate::scheduler::snapshot::PodInfo;
use crate::scheduler::volumes::ClaimState;

const GI: u64 = 1024 * 1024 * 1024;

fn node(name: &str, cpu: u64, mem_gi: u64) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        allocatable: Resources {
            cpu_millis: cpu,
            memory_bytes: mem_gi * GI,
            pods: 110,
        },
        ready: true,
        ..Default::default()
    }
}

fn pod(spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).expect("pod")
}

fn requesting(cpu: &str, memory: &str) -> Pod {
    pod(json!({"containers": [{"name": "c", "image": "file:/x.wasm",
        "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}))
}

/// (name, nodes, pod, the node chosen or the unschedulable message)
type Case<'a> = (&'a str, Vec<NodeInfo>, Pod, Result<&'a str, &'a str>);

fn run(cases: Vec<Case>) {
    for (name, nodes, pod, expected) in cases {
        let snapshot = ClusterSnapshot::from_nodes(nodes);
        let got = place(&snapshot, &pod)
            .map(|p| p.node)
            .map_err(|u| u.to_string());
        let expected = expected.map(str::to_string).map_err(str::to_string);
        assert_eq!(got, expected, "case {name}");
    }
}

#[test]
fn table() {
    let busy = NodeInfo {
        requested: Resources {
            cpu_millis: 1500,
            memory_bytes: GI,
            pods: 3,
        },
        ..node("busy", 2000, 4)
    };
    let cordoned = NodeInfo {
        unschedulable: true,
        ..node("cordoned", 8000, 16)
    };
    let not_ready = NodeInfo {
        ready: false,
        ..node("down", 8000, 16)
    };
    let tainted = NodeInfo {
        taints: vec![Taint {
            key: "dedicated".into(),
            value: Some("gpu".into()),
            effect: "NoSchedule".into(),
            ..Default::default()
        }],
        ..node("tainted", 8000, 16)
    };
    let labelled = NodeInfo {
        labels: BTreeMap::from([("disk".to_string(), "ssd".to_string())]),
        ..node("ssd", 1000, 2)
    };
    let cases: Vec<Case> = vec![
        ("least allocated wins", vec![busy.clone(), node("idle", 2000, 4)], requesting("100m", "64Mi"), Ok("idle")),
        ("insufficient cpu", vec![busy.clone()], requesting("1", "64Mi"), Err("0/1 nodes are available: 1 Insufficient cpu.")),
        ("insufficient memory", vec![node("small", 4000, 1)], requesting("1", "2Gi"), Err("0/1 nodes are available: 1 Insufficient memory.")),
        ("cordoned and not ready are skipped", vec![cordoned.clone(), not_ready.clone(), node("ok", 100, 1)], requesting("50m", "1Mi"), Ok("ok")),
        ("reasons are counted", vec![cordoned, not_ready, busy], requesting("1", "1Mi"),
            Err("0/3 nodes are available: 1 Insufficient cpu, 1 node(s) were not ready, 1 node(s) were unschedulable.")),
        ("taint not tolerated", vec![tainted.clone()], requesting("1", "1Mi"),
            Err("0/1 nodes are available: 1 node(s) had untolerated taint {dedicated=gpu}.")),
        ("taint tolerated", vec![tainted],
            pod(json!({"containers": [{"name": "c", "image": "i"}], "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]})),
            Ok("tainted")),
        ("node selector", vec![node("plain", 8000, 16), labelled],
            pod(json!({"containers": [{"name": "c", "image": "i"}], "nodeSelector": {"disk": "ssd"}})), Ok("ssd")),
        ("no nodes", vec![], requesting("1", "1Mi"), Err("0/0 nodes are available: no nodes registered.")),
    ];
    run(cases);
}

#[test]
fn request_less_pods_spread_over_equal_nodes() {
    let mut snapshot = ClusterSnapshot::from_nodes([node("a", 4000, 8), node("b", 4000, 8)]);
    let p = pod(json!({"containers": [{"name": "c", "image": "i"}]}));
    let mut counts = BTreeMap::new();
    for _ in 0..10 {
        let placed = place(&snapshot, &p).expect("fits").node;
        snapshot.assume(&placed, &p);
        *counts.entry(placed).or_insert(0) += 1;
    }
    assert_eq!(counts.values().copied().collect::<Vec<_>>(), vec![5, 5]);
}

/// A node in `zone`, labelled with its hostname and zone, running pods with these `app` labels.
fn zoned(name: &str, zone: &str, apps: &[&str]) -> NodeInfo {
    let mut info = NodeInfo {
        labels: BTreeMap::from([
            ("kubernetes.io/hostname".to_string(), name.to_string()),
            ("topology.kubernetes.io/zone".to_string(), zone.to_string()),
        ]),
        ..node(name, 8000, 16)
    };
    for (i, app) in apps.iter().enumerate() {
        let existing = pod(json!({"containers": [{"name": "c", "image": "i"}]}));
        let mut pod_info = PodInfo::of(&existing);
        pod_info.labels = BTreeMap::from([("app".to_string(), app.to_string())]);
        info.requested.add(&pod_info.requests);
        info.pods
            .insert(format!("default/{name}-{app}-{i}"), pod_info);
    }
    info
}

/// A request-less pod labelled `app=<app>` with extra spec fields.
fn app_pod(app: &str, spec: serde_json::Value) -> Pod {
    let mut value = json!({"metadata": {"name": "p", "namespace": "default", "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "i"}]}});
    for (k, v) in spec.as_object().expect("object") {
        value["spec"][k] = v.clone();
    }
    serde_json::from_value(value).expect("pod")
}

fn term(app: &str, topology: &str) -> serde_json::Value {
    json!({"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": topology})
}

const HOST: &str = "kubernetes.io/hostname";
const ZONE: &str = "topology.kubernetes.io/zone";

#[test]
fn constraints() {
    let required_zone = |op: &str, values: &[&str]| {
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": ZONE, "operator": op, "values": values}]}]}}}})
    };
    let preferred_zone = |zone: &str| {
        json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "preference": {"matchExpressions": [{"key": ZONE, "operator": "In", "values": [zone]}]}}]}}})
    };
    let pod_affinity = |kind: &str, mode: &str, t: serde_json::Value| match mode {
        "required" => {
            json!({"affinity": {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [t]}}})
        }
        _ => json!({"affinity": {kind: {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": t}]}}}),
    };
    let spread = |key: &str, skew: i32, when: &str| {
        json!({"topologySpreadConstraints": [{"maxSkew": skew, "topologyKey": key,
            "whenUnsatisfiable": when, "labelSelector": {"matchLabels": {"app": "web"}}}]})
    };
    let three_zones = || {
        vec![
            zoned("a1", "a", &["web", "web"]),
            zoned("b1", "b", &["db"]),
            zoned("c1", "c", &[]),
        ]
    };
    let cases: Vec<Case> = vec![
        ("required node affinity In", three_zones(), app_pod("x", required_zone("In", &["b"])), Ok("b1")),
        ("required node affinity NotIn", three_zones(), app_pod("x", required_zone("NotIn", &["b", "c"])), Ok("a1")),
        ("required node affinity unmet", three_zones(), app_pod("x", required_zone("In", &["z"])),
            Err("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.")),
        ("preferred node affinity outweighs load", three_zones(), app_pod("x", preferred_zone("a")), Ok("a1")),
        ("pod affinity to db", three_zones(), app_pod("x", pod_affinity("podAffinity", "required", term("db", ZONE))), Ok("b1")),
        ("pod affinity with no match anywhere",  three_zones(), app_pod("x", pod_affinity("podAffinity", "required", term("cache", HOST))),
            Err("0/3 nodes are available: 3 node(s) didn't match pod affinity rules.")),
        ("first pod of a self-affine group goes anywhere", three_zones(), app_pod("cache", pod_affinity("podAffinity", "required", term("cache", HOST))), Ok("c1")),
        ("anti-affinity to web", vec![zoned("a1", "a", &["web"]), zoned("a2", "a", &[]), zoned("b1", "b", &["web"])],
            app_pod("web", pod_affinity("podAntiAffinity", "required", term("web", ZONE))),
            Err("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.")),
        ("anti-affinity per host", vec![zoned("a1", "a", &["web"]), zoned("a2", "a", &[])],
            app_pod("web", pod_affinity("podAntiAffinity", "required", term("web", HOST))), Ok("a2")),
        ("preferred pod affinity", three_zones(), app_pod("x", pod_affinity("podAffinity", "preferred", term("web", HOST))), Ok("a1")),
        ("preferred pod anti-affinity", vec![zoned("a1", "a", &[]), zoned("b1", "b", &["web"])],
            app_pod("x", pod_affinity("podAntiAffinity", "preferred", term("web", HOST))), Ok("a1")),
        ("spread DoNotSchedule beats least allocated", vec![zoned("a1", "a", &["web"]), zoned("b1", "b", &["db", "db", "db"])],
            app_pod("web", spread(ZONE, 1, "DoNotSchedule")), Ok("b1")),
        ("spread skew exceeded everywhere but empty zones", vec![zoned("a1", "a", &["web", "web"]), zoned("b1", "b", &[])],
            app_pod("web", spread(ZONE, 1, "DoNotSchedule")), Ok("b1")),
        ("spread with nothing to balance", vec![zoned("a1", "a", &["web", "web"])],
            app_pod("web", spread(ZONE, 1, "DoNotSchedule")), Ok("a1")),
        ("spread missing topology label", vec![node("bare", 8000, 16)],
            app_pod("web", spread(ZONE, 1, "DoNotSchedule")),
            Err("0/1 nodes are available: 1 node(s) didn't match pod topology spread constraints (missing required label).")),
        ("spread ScheduleAnyway prefers the emptier zone", vec![zoned("a1", "a", &["web"]), zoned("b1", "b", &["web", "web", "db", "db"])],
            app_pod("web", spread(ZONE, 1, "ScheduleAnyway")), Ok("a1")),
    ];
    run(cases);
}

#[test]
fn existing_pods_anti_affinity_keeps_others_out() {
    let loner = app_pod(
        "loner",
        json!({"nodeName": "a1", "affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term("web", HOST)]}}}),
    );
    let mut snapshot =
        ClusterSnapshot::from_nodes([zoned("a1", "a", &[]), zoned("b1", "b", &["db", "db", "db"])]);
    snapshot.update_pod(&loner);
    let web = app_pod("web", json!({}));
    assert_eq!(place(&snapshot, &web).map(|p| p.node), Ok("b1".to_string()));
    let only_a1 = ClusterSnapshot::from_nodes([zoned("a1", "a", &[])]);
    let mut only_a1 = only_a1;
    only_a1.update_pod(&loner);
    assert_eq!(
        place(&only_a1, &web).map_err(|u| u.to_string()),
        Err(
            "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules."
                .to_string()
        )
    );
}

#[test]
fn cache_follows_pod_and_node_changes() {
    let mut snapshot = ClusterSnapshot::from_nodes([zoned("a1", "a", &[])]);
    let bound = app_pod("web", json!({"nodeName": "a1"}));
    snapshot.update_pod(&bound);
    assert_eq!(snapshot.nodes["a1"].requested.pods, 1);
    snapshot.update_pod(&bound);
    assert_eq!(
        snapshot.nodes["a1"].requested.pods, 1,
        "an update is not a second pod"
    );
    snapshot.remove_node("a1");
    let node: skiff_api::k8s_openapi::api::core::v1::Node =
        serde_json::from_value(json!({"metadata": {"name": "a1"}})).expect("node");
    assert!(snapshot.upsert_node(&node));
    assert_eq!(
        snapshot.nodes["a1"].requested.pods, 1,
        "pods survive their node's absence"
    );
    let mut finished = bound.clone();
    finished.status = Some(serde_json::from_value(json!({"phase": "Succeeded"})).expect("status"));
    snapshot.update_pod(&finished);
    assert_eq!(snapshot.nodes["a1"].requested.pods, 0);
    assert!(
        !snapshot.upsert_node(&node),
        "an unchanged node is no change"
    );
}

#[test]
fn claims_pin_pods_to_their_volumes_nodes() {
    let with_claim = || {
        serde_json::from_value::<Pod>(json!({"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "c", "image": "file:/x.wasm"}],
                "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]}}))
        .expect("pod")
    };
    let on = |host: &str| {
        serde_json::from_value(json!({"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}]}))
        .expect("selector")
    };
    let labelled = |name: &str| NodeInfo {
        labels: [("kubernetes.io/hostname".to_string(), name.to_string())].into(),
        local_path_root: name != "n1",
        ..node(name, 4000, 8)
    };
    let cases: Vec<(&str, Option<ClaimState>, Result<&str, &str>)> = vec![
        (
            "no claim",
            None,
            Err("0/2 nodes are available: 2 persistentvolumeclaim \"data\" not found."),
        ),
        (
            "bound to a volume on n2",
            Some(ClaimState::Bound {
                affinity: Some(on("n2")),
            }),
            Ok("n2"),
        ),
        (
            "bound to a volume on a node that is gone",
            Some(ClaimState::Bound {
                affinity: Some(on("n9")),
            }),
            Err("0/2 nodes are available: 2 node(s) had volume node affinity conflict."),
        ),
        (
            "bound to a volume reachable anywhere",
            Some(ClaimState::Bound { affinity: None }),
            Ok("n1"),
        ),
        (
            "waiting for the first consumer: any node",
            Some(ClaimState::WaitForConsumer {
                selected_node: None,
                local_path: false,
            }),
            Ok("n1"),
        ),
        (
            "waiting for the first consumer of a local-path volume: a node with a root",
            Some(ClaimState::WaitForConsumer {
                selected_node: None,
                local_path: true,
            }),
            Ok("n2"),
        ),
        (
            "waiting for the first consumer, n2 already selected",
            Some(ClaimState::WaitForConsumer {
                selected_node: Some("n2".into()),
                local_path: true,
            }),
            Ok("n2"),
        ),
        (
            "waiting for the first consumer, the selected node gone",
            Some(ClaimState::WaitForConsumer {
                selected_node: Some("n9".into()),
                local_path: false,
            }),
            Ok("n1"),
        ),
        (
            "a local-path volume selected on a node without a root",
            Some(ClaimState::WaitForConsumer {
                selected_node: Some("n1".into()),
                local_path: true,
            }),
            Err("0/2 nodes are available: 1 node(s) did not have a local-path storage root, 1 node(s) had volume node affinity conflict."),
        ),
        (
            "an unbound Immediate claim",
            Some(ClaimState::Unbound),
            Err("0/2 nodes are available: 2 pod has unbound immediate PersistentVolumeClaims."),
        ),
        (
            "a claim being deleted",
            Some(ClaimState::Deleting),
            Err("0/2 nodes are available: 2 persistentvolumeclaim \"data\" is being deleted."),
        ),
    ];
    for (name, state, expected) in cases {
        let mut snapshot = ClusterSnapshot::from_nodes([labelled("n1"), labelled("n2")]);
        if let Some(state) = state {
            snapshot.claims.insert("ns/data".into(), state);
        }
        let got = place(&snapshot, &with_claim())
            .map(|p| p.node)
            .map_err(|u| u.to_string());
        let expected = expected.map(str::to_string).map_err(str::to_string);
        assert_eq!(got, expected, "case {name}");
    }
}

#[test]
fn a_host_port_held_on_a_node_keeps_a_second_claimant_off_it() {
    let web = |name: &str| -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "i",
                "ports": [{"containerPort": 8080, "hostPort": 80}]}]}}))
        .expect("pod")
    };
    let mut snapshot = ClusterSnapshot::from_nodes([node("only", 4000, 8)]);
    let first = place(&snapshot, &web("first")).expect("the port is free");
    // Assumed before its binding is written: it already holds the port.
    snapshot.assume(&first.node, &web("first"));
    let refused = place(&snapshot, &web("second")).map_err(|u| u.to_string());
    assert_eq!(
        refused,
        Err("0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.".into())
    );
    // The other node of a two-node cluster takes it.
    let mut two = ClusterSnapshot::from_nodes([node("a", 4000, 8), node("b", 4000, 8)]);
    let placed = place(&two, &web("first")).expect("fits").node;
    two.assume(&placed, &web("first"));
    let second = place(&two, &web("second")).expect("fits").node;
    assert_ne!(placed, second);
    // Once the first goes, the port is free again.
    snapshot.remove_pod("default/first");
    assert_eq!(place(&snapshot, &web("second")).expect("fits").node, "only");
}
