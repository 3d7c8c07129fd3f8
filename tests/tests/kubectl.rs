//! Stock `kubectl` against a dev server, through API discovery (`/api`, `/apis`, and each
//! group version's resources): the verbs that need nothing more than discovery and the REST
//! paths work unchanged. The `kubectl` on PATH is used (`scripts/install-deps.sh` installs
//! Debian's `kubernetes-client` when there is none).

use std::process::Command;
use std::time::Duration;

use skiff_e2e::{example, wait_until, DevServer};

/// `kubectl --server URL ARGS`, with a discovery cache of the test's own; its stdout.
fn kubectl(server: &str, cache: &std::path::Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("kubectl")
        .args(["--server", server, "--cache-dir"])
        .arg(cache)
        .args(args)
        .output()
        .map_err(|e| {
            anyhow::anyhow!("kubectl cannot run ({e}): scripts/install-deps.sh installs it")
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    anyhow::ensure!(
        out.status.success(),
        "kubectl {args:?} failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

#[test]
fn stock_kubectl_discovers_gets_reads_logs_and_deletes() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let (url, cache) = (server.url(), tmp.path().join("kube-cache"));
    let k = |args: &[&str]| kubectl(&url, &cache, args);
    server
        .cli()
        .ok(&["apply", "-f", example("ticker").to_str().expect("utf-8")])?;

    let resources = k(&["api-resources"])?;
    assert!(
        resources.lines().any(|l| {
            l.split_whitespace().collect::<Vec<_>>()
                == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
        }),
        "{resources}"
    );
    let raw = k(&["get", "--raw", "/apis/apps/v1"])?;
    assert!(raw.contains("\"deployments/status\""), "{raw}");

    let pod = wait_until("a ticker pod Running", Duration::from_secs(60), || {
        let names = k(&["get", "pods", "-o", "name"])?;
        let Some(pod) = names.lines().next().map(str::to_string) else {
            return Ok(None);
        };
        let phase = k(&["get", &pod, "-o", "jsonpath={.status.phase}"])?;
        Ok((phase == "Running").then_some(pod))
    })?;
    let table = k(&["get", "deployments"])?;
    assert!(table.lines().any(|l| l.starts_with("ticker ")), "{table}");
    let logs = wait_until("the pod's log", Duration::from_secs(30), || {
        let logs = k(&["logs", &pod])?;
        Ok(logs.contains("tick").then_some(logs))
    })?;
    assert!(logs.contains("hello from a ConfigMap"), "{logs}");

    let deleted = k(&["delete", &pod])?;
    let name = pod.trim_start_matches("pod/");
    assert!(
        deleted.contains(&format!("pod \"{name}\" deleted")),
        "{deleted}"
    );
    let left = server.cli().run(&["get", "pod", name])?;
    assert!(!left.success, "the pod is still there: {}", left.stdout);
    Ok(())
}
