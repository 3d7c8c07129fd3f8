//! Services on a dev server with real Wasm guests: a Deployment's EndpointSlice lists every
//! replica's podIP (the node's address until pods get their own) and follows a scale-down,
//! `get svc` shows the nodePort, a second Service asking for a taken nodePort is refused with
//! 422 naming the field, `expose` makes a Service from a Deployment, and a pod started after
//! the Service gets its variables.

use std::time::Duration;

use serde_json::Value;
use skiff_e2e::{copy_example_guest, wait_until, DevServer, Skiff};

fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  type: NodePort\n  \
         selector: {{app: web}}\n  ports:\n  - {{name: http, port: 80, targetPort: http, nodePort: 30080}}\n"
    )
}

/// The ready endpoints' addresses of the `web` Service's slices, sorted.
fn ready_endpoints(cli: &Skiff) -> anyhow::Result<Vec<String>> {
    let slices = cli.items(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
    ])?;
    let mut found: Vec<String> = slices
        .iter()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["conditions"]["ready"] == true)
        .filter_map(|e| e["addresses"][0].as_str().map(str::to_string))
        .collect();
    found.sort();
    Ok(found)
}

fn running_pod_ips(cli: &Skiff) -> anyhow::Result<Vec<String>> {
    let pods = cli.items(&["get", "pods", "-l", "app=web"])?;
    let mut ips: Vec<String> = pods
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_string))
        .collect();
    ips.sort();
    Ok(ips)
}

#[test]
fn services_list_their_replicas_refuse_a_taken_node_port_and_reach_the_env() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let guests = tmp.path().join("guests");
    let server = DevServer::start_with_guests(&tmp.path().join("data"), &guests, &[])?;
    let cli = server.cli();
    let ticker = copy_example_guest(&guests, "ticker")?;
    let hello = copy_example_guest(&guests, "hello")?;

    cli.apply_yaml(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: 3\n  \
         selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    \
         spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      \
         - {{name: ticker, image: \"file:{ticker}\", ports: [{{name: http, containerPort: 8080}}]}}\n"
    ))?;
    cli.apply_yaml(&service("web"))?;

    let endpoints = wait_until("three ready endpoints", Duration::from_secs(60), || {
        let found = ready_endpoints(&cli)?;
        Ok((found.len() == 3).then_some(found))
    })?;
    let ips = running_pod_ips(&cli)?;
    assert_eq!(endpoints, ips, "every replica's podIP, no other");
    // The web Service's slice (the `kubernetes` Service's lists the API server).
    let slice = &cli.items(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
    ])?[0];
    assert_eq!(slice["ports"][0]["port"], 8080, "{slice}");

    let table = cli.ok(&["get", "svc", "web"])?;
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(row[1], "NodePort", "{table}");
    assert!(row[2].starts_with("10.43."), "{table}");
    assert_eq!(row[4], "80:30080/TCP", "{table}");
    let web: Value = cli.json(&["get", "svc", "web"])?;
    let cluster_ip = web["spec"]["clusterIP"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // The nodePort is taken: a second Service asking for it is refused on the field.
    let out = cli.run_with_stdin(&["apply", "-f", "-"], Some(&service("other")))?;
    assert!(!out.success, "{}", out.stdout);
    assert!(
        out.stderr.contains("spec.ports[0].nodePort")
            && out.stderr.contains("provided port is already allocated"),
        "{}",
        out.stderr
    );

    // `expose` makes a Service from the Deployment's selector; its slice lists the same pods.
    let out = cli.ok(&[
        "expose",
        "deployment",
        "web",
        "--port",
        "8080",
        "--target-port",
        "http",
        "--name",
        "web-direct",
    ])?;
    assert!(out.contains("service/web-direct exposed"), "{out}");
    let direct: Value = cli.json(&["get", "svc", "web-direct"])?;
    assert_eq!(direct["spec"]["selector"]["app"], "web", "{direct}");
    assert_eq!(direct["spec"]["type"], "ClusterIP", "{direct}");

    // A pod started now sees the Service in its environment.
    cli.apply_yaml(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: env}}\nspec:\n  restartPolicy: Never\n  \
         containers:\n  - name: hello\n    image: \"file:{hello}\"\n    \
         args: [\"$(WEB_SERVICE_HOST)\", \"$(WEB_SERVICE_PORT_HTTP)\", \"$(WEB_PORT)\"]\n"
    ))?;
    wait_until("the env pod to finish", Duration::from_secs(60), || {
        let pod = cli.json(&["get", "pod", "env"])?;
        Ok((pod["status"]["phase"] == "Succeeded").then_some(()))
    })?;
    let logs = cli.ok(&["logs", "env"])?;
    assert!(
        logs.contains(&format!("args: {cluster_ip} 80 tcp://{cluster_ip}:80")),
        "{logs}"
    );

    // Scaling down leaves one endpoint.
    cli.ok(&["scale", "deployment", "web", "--replicas", "1"])?;
    wait_until("one endpoint", Duration::from_secs(60), || {
        let slices = cli.items(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
        ])?;
        let total: usize = slices
            .iter()
            .map(|s| s["endpoints"].as_array().map_or(0, Vec::len))
            .sum();
        Ok((total == 1).then_some(()))
    })?;
    assert_eq!(ready_endpoints(&cli)?, running_pod_ips(&cli)?);
    Ok(())
}
