//! A real Prometheus (Debian's) scrapes a dev server as Kubernetes' stock jobs do: the API
//! server's `/metrics` (`kubernetes-apiservers`) and a node's cAdvisor metrics through the API
//! server's node proxy (`kubernetes-cadvisor`), both over HTTPS with the cluster CA and the
//! admin certificate. Both targets are up, and PromQL finds the API server's counters, the
//! store's leader gauge, a histogram's buckets and a running pod's CPU series, so
//! Prometheus' own parser accepted what Skiff serves.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use skiff_e2e::{wait_until, wat_guest, DevServer, Prometheus};

/// Holds linear memory and spins forever, throttled by its CPU limit: a pod with usage.
const SPIN: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $spin (br $spin))))"#;

/// The scrape configuration: both jobs at `api` (`HOST:PORT`) with the data dir's TLS files.
fn config(api: &str, tls: &Path) -> String {
    let tls_config = format!(
        "    tls_config:\n      ca_file: {ca}\n      cert_file: {cert}\n      key_file: {key}\n",
        ca = tls.join("ca.crt").display(),
        cert = tls.join("admin.crt").display(),
        key = tls.join("admin.key").display(),
    );
    let job = |name: &str, path: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    metrics_path: {path}\n{tls_config}    \
             static_configs:\n      - targets: ['{api}']\n"
        )
    };
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}{}",
        job("kubernetes-apiservers", "/metrics"),
        job(
            "kubernetes-cadvisor",
            "/api/v1/nodes/dev1/proxy/metrics/cadvisor"
        ),
    )
}

/// The value of a query's first sample, as Prometheus writes it.
fn first_value(result: &[Value]) -> Option<&str> {
    result.first()?["value"][1].as_str()
}

#[test]
fn prometheus_scrapes_the_api_server_and_a_node_through_it() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let guests = tmp.path().join("guests");
    let data = tmp.path().join("data");
    let server = DevServer::start_with_guests(&data, &guests, &[])?;
    let guest = wat_guest(&guests, "spin", SPIN)?;
    let cli = server.cli();
    cli.apply_yaml(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: spin}}\nspec:\n  containers:\n  \
         - name: main\n    image: \"file:{guest}\"\n    resources:\n      limits: {{cpu: 100m, \
         memory: 16Mi}}\n"
    ))?;
    cli.ok(&["get", "namespaces"])?;

    let api = server
        .url()
        .strip_prefix("https://")
        .expect("an https URL")
        .to_string();
    let prometheus_dir = tmp.path().join("prometheus");
    std::fs::create_dir(&prometheus_dir)?;
    let prometheus = Prometheus::start(&prometheus_dir, &config(&api, &data.join("tls")))?;

    wait_until("both targets up", Duration::from_secs(60), || {
        let targets = prometheus.targets()?;
        let up = targets.iter().filter(|t| t["health"] == "up").count();
        if up == 2 {
            return Ok(Some(()));
        }
        let errors: Vec<String> = targets
            .iter()
            .map(|t| format!("{}: {}", t["labels"]["job"], t["lastError"]))
            .collect();
        anyhow::bail!("{up} of 2 up: {errors:?}")
    })?;

    let leader = prometheus.query("etcd_server_is_leader{job=\"kubernetes-apiservers\"}")?;
    assert_eq!(first_value(&leader), Some("1"), "{leader:?}");
    let lists = prometheus
        .query("apiserver_request_total{verb=\"LIST\",resource=\"namespaces\",code=\"200\"}")?;
    assert!(!lists.is_empty(), "no namespace LISTs counted");
    // Buckets with `le` labels: a quantile comes out of them.
    let p99 = prometheus.query(
        "histogram_quantile(0.99, sum by (le) (apiserver_request_duration_seconds_bucket))",
    )?;
    assert!(
        first_value(&p99).is_some_and(|v| v.parse::<f64>().is_ok_and(|v| v > 0.0)),
        "{p99:?}"
    );
    // The pod's series come once the agent has read its usage.
    let cpu = wait_until("the pod's CPU series", Duration::from_secs(60), || {
        let cpu = prometheus.query(
            "container_cpu_usage_seconds_total{job=\"kubernetes-cadvisor\",pod=\"spin\",\
             container=\"main\"}",
        )?;
        Ok((!cpu.is_empty()).then_some(cpu))
    })?;
    assert_eq!(cpu[0]["metric"]["namespace"], "default", "{cpu:?}");
    Ok(())
}
