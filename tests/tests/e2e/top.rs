//! Resource usage end to end, through the real binary: a dev server's node runs a guest that
//! burns CPU and holds memory; stock `kubectl top pods|nodes` and `skiff top pods|nodes` show
//! it with non-zero CPU and memory (from `metrics.k8s.io`, which the API server answers from
//! the agent's summary); the agent's cAdvisor metrics, read through the API server's node
//! proxy (`kubectl get --raw /api/v1/nodes/NODE/proxy/metrics/cadvisor`), have the pod's
//! series; and the `view` role reads `metrics.k8s.io`, as metrics-server's aggregated role
//! grants it in Kubernetes, while the agent's endpoints need `nodes/proxy`.

use std::time::Duration;

use serde_json::Value;
use skiff_e2e::{kubectl, wait_until, wat_guest, DevServer};

/// Holds 2 MiB of linear memory and spins forever: a pod that uses a whole core's share.
const BURN: &str = r#"(module
  (memory (export "memory") 32)
  (func (export "_start")
    (loop $spin (br $spin))))"#;

/// The value of the `NAME` row's column `column` (0: the name) in a `top` table.
fn cell(table: &str, name: &str, column: usize) -> Option<String> {
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&name))
        .and_then(|cells| cells.get(column).map(|c| c.to_string()))
}

/// A number of millicores or Mi from `250m` or `2Mi`.
fn number(cell: &str) -> u64 {
    cell.trim_end_matches("Mi")
        .trim_end_matches('m')
        .parse()
        .unwrap_or(0)
}

#[test]
fn kubectl_top_and_skiff_top_show_a_busy_guest_and_the_agent_serves_cadvisor_metrics(
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let guests = tmp.path().join("guests");
    let server = DevServer::start_with_guests(&tmp.path().join("data"), &guests, &[])?;
    let cli = server.cli();
    let (url, cache) = (server.url(), tmp.path().join("kube-cache"));
    let k = |args: &[&str]| kubectl(&url, &cache, args);
    let guest = wat_guest(&guests, "burn", BURN)?;
    cli.apply_yaml(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: burn, labels: {{app: burn}}}}\nspec:\n  \
         containers:\n  - name: main\n    image: \"file:{guest}\"\n    resources:\n      \
         limits: {{cpu: 500m, memory: 64Mi}}\n"
    ))?;
    wait_until("the burner Running", Duration::from_secs(60), || {
        let pod = cli.json(&["get", "pod", "burn"])?;
        Ok((pod["status"]["phase"] == "Running").then_some(()))
    })?;

    // The agent rates CPU over two readings 10 s apart, from the first summary asked for: the
    // pod shows once it has two.
    let table = wait_until(
        "kubectl top pods to show the burner",
        Duration::from_secs(60),
        || {
            let out = skiff_e2e::kubectl_output(&url, &cache, &["top", "pods"])?;
            let table = String::from_utf8_lossy(&out.stdout).to_string();
            Ok((out.status.success() && cell(&table, "burn", 1).is_some()).then_some(table))
        },
    )?;
    assert!(table.starts_with("NAME"), "{table}");
    let cpu = number(&cell(&table, "burn", 1).expect("cpu"));
    let memory = number(&cell(&table, "burn", 2).expect("memory"));
    // Throttled to 500m, it still burns well above nothing.
    assert!((50..=700).contains(&cpu), "cpu {cpu}m in\n{table}");
    assert!(memory >= 2, "memory {memory}Mi in\n{table}");

    let selected = k(&["top", "pods", "-l", "app=burn", "--containers"])?;
    assert!(selected.contains("main"), "{selected}");
    let nodes = k(&["top", "nodes"])?;
    let node_cpu = number(&cell(&nodes, "dev1", 1).expect("dev1 in kubectl top nodes"));
    assert!(node_cpu > 0, "{nodes}");
    assert!(
        cell(&nodes, "dev1", 2).is_some_and(|c| c.ends_with('%')),
        "{nodes}"
    );

    let ours = cli.ok(&["top", "pods"])?;
    assert!(
        ours.starts_with("NAME   CPU(cores)   MEMORY(bytes)"),
        "{ours}"
    );
    assert!(
        number(&cell(&ours, "burn", 1).expect("burn in skiff top")) > 0,
        "{ours}"
    );
    assert!(
        number(&cell(&ours, "burn", 2).expect("memory")) >= 2,
        "{ours}"
    );
    let ours = cli.ok(&["top", "nodes"])?;
    assert!(
        ours.contains("CPU(%)") && cell(&ours, "dev1", 1).is_some(),
        "{ours}"
    );

    let metrics: Value = serde_json::from_str(&k(&[
        "get",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/burn",
    ])?)?;
    assert_eq!(metrics["kind"], "PodMetrics");
    assert_eq!(metrics["containers"][0]["name"], "main");

    let cadvisor = k(&["get", "--raw", "/api/v1/nodes/dev1/proxy/metrics/cadvisor"])?;
    let series = |name: &str| {
        cadvisor
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "{name}{{container=\"main\",namespace=\"default\",pod=\"burn\"}} "
                ))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    assert!(
        series("container_cpu_usage_seconds_total").is_some_and(|s| s > 0.0),
        "{cadvisor}"
    );
    assert!(
        series("container_memory_working_set_bytes").is_some_and(|b| b >= 2.0 * 1048576.0),
        "{cadvisor}"
    );
    let resource = k(&["get", "--raw", "/api/v1/nodes/dev1/proxy/metrics/resource"])?;
    assert!(
        resource
            .lines()
            .any(|l| l.starts_with("node_cpu_usage_seconds_total ")),
        "{resource}"
    );

    // `view` (and so `edit` and `admin`) aggregates metrics-server's reader role.
    let view = wait_until(
        "view to read metrics.k8s.io",
        Duration::from_secs(30),
        || {
            let role = cli.json(&["get", "clusterrole", "view"])?;
            let reads = role["rules"]
                .as_array()
                .is_some_and(|rules| rules.iter().any(|r| r["apiGroups"][0] == "metrics.k8s.io"));
            Ok(reads.then_some(role))
        },
    )?;
    assert!(view["rules"].to_string().contains("\"nodes\""), "{view}");
    // A viewer reads metrics.k8s.io, but not the agent's own endpoints (`nodes/proxy`).
    cli.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: \
         {name: alice-views}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, \
         name: view}\nsubjects:\n- {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}\n",
    )?;
    let viewed = k(&["top", "pods", "--as", "alice"])?;
    assert!(cell(&viewed, "burn", 1).is_some(), "{viewed}");
    let refused = skiff_e2e::kubectl_output(
        &url,
        &cache,
        &[
            "get",
            "--raw",
            "/api/v1/nodes/dev1/proxy/metrics/cadvisor",
            "--as",
            "alice",
        ],
    )?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("Forbidden"),
        "{stderr}"
    );
    Ok(())
}
