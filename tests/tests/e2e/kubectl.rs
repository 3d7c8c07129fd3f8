//! Stock `kubectl` against a dev server, through API discovery (`/api`, `/apis`, and each
//! group version's resources): the verbs that need nothing more than discovery and the REST
//! paths work unchanged. The `kubectl` on PATH is used (`scripts/install-deps.sh` installs
//! Debian's `kubernetes-client` when there is none).

use std::time::Duration;

use skiff_e2e::{example, kubectl, table_header as header, wait_until, DevServer};

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

#[test]
fn stock_kubectl_shows_kubectls_columns_pages_scales_and_deletes_all() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let (url, cache) = (server.url(), tmp.path().join("kube-cache"));
    let k = |args: &[&str]| kubectl(&url, &cache, args);
    server
        .cli()
        .ok(&["apply", "-f", example("ticker").to_str().expect("utf-8")])?;
    let service = tmp.path().join("svc.yaml");
    std::fs::write(
        &service,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: ticker\nspec:\n  selector:\n    app: ticker\n  ports:\n  - port: 80\n",
    )?;
    server
        .cli()
        .ok(&["apply", "-f", service.to_str().expect("utf-8")])?;

    let pods = wait_until("three ticker pods", Duration::from_secs(60), || {
        let table = k(&["get", "pods"])?;
        Ok((table.lines().count() == 4).then_some(table))
    })?;
    assert_eq!(
        header(&pods),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{pods}"
    );
    let wide = k(&["get", "pods", "-o", "wide"])?;
    assert_eq!(
        header(&wide),
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES"
        ],
        "{wide}"
    );
    let deployments = k(&["get", "deploy"])?;
    assert_eq!(
        header(&deployments),
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{deployments}"
    );
    assert!(deployments
        .lines()
        .nth(1)
        .is_some_and(|l| l.starts_with("ticker ")));
    let services = k(&["get", "svc", "ticker"])?;
    assert_eq!(
        header(&services),
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ],
        "{services}"
    );
    assert!(services.contains("80/TCP"), "{services}");
    // The endpoints controller's Endpoints, as kubectl prints them (`ep` is its short name).
    let endpoints = wait_until("ticker's ready endpoints", Duration::from_secs(60), || {
        let table = k(&["get", "ep", "ticker"])?;
        let row = table.lines().nth(1).unwrap_or_default().to_string();
        Ok((row.starts_with("ticker ") && row.contains(":80")).then_some(table))
    })?;
    assert_eq!(
        header(&endpoints),
        ["NAME", "ENDPOINTS", "AGE"],
        "{endpoints}"
    );
    let nodes = k(&["get", "nodes"])?;
    assert_eq!(
        header(&nodes),
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        "{nodes}"
    );

    // `get -w` prints the table, then a row per change (watch events carry Tables).
    let mut watch = skiff_e2e::kubectl_command(&url, &cache)
        .args(["get", "deploy", "ticker", "-w"])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || lines.recv_timeout(Duration::from_secs(30));
    let first = next_line()?;
    assert!(first.starts_with("NAME "), "{first}");
    assert!(next_line()?.starts_with("ticker "));

    let scaled = k(&["scale", "deploy", "ticker", "--replicas=4"])?;
    assert!(scaled.contains("deployment.apps/ticker scaled"), "{scaled}");
    let change = next_line();
    watch.kill()?;
    watch.wait()?;
    let change = change?;
    assert!(change.starts_with("ticker "), "{change}");
    wait_until("four ticker pods", Duration::from_secs(60), || {
        Ok((k(&["get", "pods", "-o", "name"])?.lines().count() == 4).then_some(()))
    })?;

    // Pages of two: kubectl follows the continue tokens and prints one table.
    let out = skiff_e2e::kubectl_command(&url, &cache)
        .args(["get", "pods", "--chunk-size=2", "-v=6"])
        .output()?;
    anyhow::ensure!(out.status.success(), "{out:?}");
    let (table, log) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(table.lines().count(), 5, "{table}");
    assert_eq!(header(&table)[0], "NAME");
    let pages = log
        .lines()
        .filter(|l| l.contains("/pods?") && l.contains("limit=2"))
        .count();
    assert!(pages >= 2, "kubectl asked for {pages} pages: {log}");
    assert!(log.contains("continue="), "{log}");

    let deleted = k(&["delete", "pods", "--all", "--wait=false"])?;
    assert_eq!(
        deleted
            .lines()
            .filter(|l| l.ends_with("\" deleted"))
            .count(),
        4,
        "{deleted}"
    );
    Ok(())
}
