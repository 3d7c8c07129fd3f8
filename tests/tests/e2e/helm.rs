//! Stock helm 3 (`scripts/install-deps.sh` installs it into /opt/helm-v3.17.2) manages a
//! release of tests/charts/wasm-app (a Deployment of the ticker Wasm guest, its Service,
//! ConfigMap and Secret) on a dev server: `install`, `upgrade` with a changed value (the
//! Deployment rolls out), `rollback`, `uninstall`, each checked against the API. Helm keeps its
//! releases in Secrets, which it writes as protobuf.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use skiff_e2e::{kubectl, repo_root, wait_until, DevServer};

const TIMEOUT: Duration = Duration::from_secs(90);
const RELEASE: &str = "demo";

/// The helm binary: install-deps' pinned one, else one on PATH.
fn helm_binary() -> PathBuf {
    let pinned = Path::new("/opt/helm-v3.17.2/helm");
    if pinned.exists() {
        pinned.to_path_buf()
    } else {
        PathBuf::from("helm")
    }
}

/// `helm ARGS` as the server's admin, with helm's own directories under `home`.
fn helm(kubeconfig: &Path, home: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(helm_binary())
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .map_err(|e| {
            anyhow::anyhow!("helm cannot run ({e}): scripts/install-deps.sh installs it")
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    anyhow::ensure!(
        out.status.success(),
        "helm {args:?} failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

#[test]
fn helm_installs_upgrades_rolls_back_and_uninstalls_a_wasm_chart() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let (url, cache) = (server.url(), tmp.path().join("kube-cache"));
    let kubeconfig = tmp.path().join("data/admin.kubeconfig");
    let home = tmp.path().join("helm");
    let h = |args: &[&str]| helm(&kubeconfig, &home, args);
    let k = |args: &[&str]| kubectl(&url, &cache, args);
    let get = |what: &str, path: &str| k(&["get", what, "-o", &format!("jsonpath={path}")]);
    let chart = repo_root().join("tests/charts/wasm-app");
    let chart = chart.to_str().expect("utf-8");
    let image = repo_root().join("wasm-examples/target/wasm32-wasip1/release/ticker.wasm");
    let image = format!("image=file:{}", image.display());
    let ready = |message: &str| {
        wait_until(&format!("2 ready pods saying {message:?}"), TIMEOUT, || {
            let config = get(&format!("cm/{RELEASE}-config"), "{.data.message}")?;
            let deployment = get(
                &format!("deploy/{RELEASE}"),
                "{.status.updatedReplicas}/{.status.readyReplicas}/{.status.replicas}",
            )?;
            Ok((config == message && deployment == "2/2/2").then_some(()))
        })
    };

    // install: every object of the chart, the Deployment's pods ready.
    let installed = h(&[
        "install",
        RELEASE,
        chart,
        "--set",
        &image,
        "--wait",
        "--timeout",
        "90s",
    ])?;
    assert!(installed.contains("STATUS: deployed"), "{installed}");
    ready("hello from helm")?;
    assert_eq!(
        get(&format!("svc/{RELEASE}"), "{.spec.ports[0].targetPort}")?,
        "8080"
    );
    assert_eq!(
        get(&format!("secret/{RELEASE}-secret"), "{.data.password}")?,
        "aHVudGVyMg=="
    );
    let releases = k(&["get", "secrets", "-l", "owner=helm", "-o", "name"])?;
    assert!(
        releases.contains(&format!("sh.helm.release.v1.{RELEASE}.v1")),
        "{releases}"
    );
    let replica_sets = || -> anyhow::Result<usize> {
        let names = k(&[
            "get",
            "rs",
            "-l",
            &format!("app.kubernetes.io/instance={RELEASE}"),
            "-o",
            "name",
        ])?;
        Ok(names.lines().count())
    };
    assert_eq!(replica_sets()?, 1);

    // upgrade with a changed value: the ConfigMap changes and the Deployment rolls out.
    h(&[
        "upgrade",
        RELEASE,
        chart,
        "--set",
        &image,
        "--set",
        "message=second",
        "--wait",
        "--timeout",
        "90s",
    ])?;
    ready("second")?;
    assert_eq!(replica_sets()?, 2);
    let history = h(&["history", RELEASE])?;
    assert!(
        history.contains("superseded") && history.contains("deployed"),
        "{history}"
    );

    // rollback to revision 1: the first message again, a third revision.
    h(&["rollback", RELEASE, "1", "--wait", "--timeout", "90s"])?;
    ready("hello from helm")?;
    let status = h(&["status", RELEASE])?;
    assert!(status.contains("REVISION: 3"), "{status}");

    // uninstall: the chart's objects and the release records go.
    h(&["uninstall", RELEASE, "--wait", "--timeout", "90s"])?;
    wait_until("the release's objects to go", TIMEOUT, || {
        let left = k(&[
            "get",
            "deploy,svc,cm,secret",
            "-l",
            &format!("app.kubernetes.io/instance={RELEASE}"),
            "-o",
            "name",
        ])?;
        let records = k(&["get", "secrets", "-l", "owner=helm", "-o", "name"])?;
        Ok((left.trim().is_empty() && records.trim().is_empty()).then_some(()))
    })?;
    Ok(())
}
