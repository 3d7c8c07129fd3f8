//! Stock `kubectl get --raw /metrics` against a dev server: the API server's, store's and
//! process's series are there; a user without `system:monitoring` is refused, one in the
//! group is served (impersonated with `--as`, which RBAC also authorizes).

use skiff_e2e::{kubectl, kubectl_output, DevServer};

#[test]
fn stock_kubectl_reads_metrics_and_rbac_decides_who_may() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let (url, cache) = (server.url(), tmp.path().join("kube-cache"));
    kubectl(&url, &cache, &["get", "namespaces"])?;

    let text = kubectl(&url, &cache, &["get", "--raw", "/metrics"])?;
    let namespaces_listed = text.lines().any(|l| {
        l.starts_with("apiserver_request_total{verb=\"LIST\"")
            && l.contains("resource=\"namespaces\"")
            && l.contains("code=\"200\"")
    });
    assert!(namespaces_listed, "{text}");
    for series in [
        "etcd_server_is_leader 1",
        "etcd_server_has_leader 1",
        "# TYPE apiserver_request_duration_seconds histogram",
        "# TYPE etcd_disk_wal_fsync_duration_seconds histogram",
        "# TYPE process_resident_memory_bytes gauge",
        "# TYPE workqueue_depth gauge",
    ] {
        assert!(
            text.lines().any(|l| l == series),
            "no {series:?} in\n{text}"
        );
    }

    let refused = kubectl_output(&url, &cache, &["get", "--raw", "/metrics", "--as", "carol"])?;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("Forbidden") || stderr.contains("forbidden"),
        "{stderr}"
    );
    let monitor = kubectl(
        &url,
        &cache,
        &[
            "get",
            "--raw",
            "/metrics",
            "--as",
            "prometheus",
            "--as-group",
            "system:monitoring",
        ],
    )?;
    assert!(monitor.contains("# TYPE apiserver_request_total counter"));
    Ok(())
}
