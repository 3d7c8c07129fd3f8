//! Pod volumes on a dev server with the `volumes` Wasm guest, which reads and writes files in
//! its preopened directories: configMap, secret, downwardAPI and projected files (updated
//! while the pod runs), a memory emptyDir shared by two containers, a subPath file, a hostPath
//! made by its type, a read-only configMap mount, a PersistentVolumeClaim written by one pod
//! and read by the next (and one waited for until bound), a missing ConfigMap that keeps a pod
//! waiting until it exists, a pod evicted for filling its emptyDir past its sizeLimit, bad
//! volume specs refused with 422, and `wasm-examples/volumes/pod.yaml`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use skiff_e2e::{repo_root, wait_until, DevServer, Skiff};

const WAIT: Duration = Duration::from_secs(40);

fn apply(cli: &Skiff, dir: &Path, name: &str, yaml: &str) -> anyhow::Result<String> {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml)?;
    cli.ok(&["apply", "-f", path.to_str().expect("utf-8")])
}

/// Waits until the container's log has every one of `lines`.
fn wait_for_lines(cli: &Skiff, pod: &str, container: &str, lines: &[&str]) -> anyhow::Result<()> {
    wait_until(
        &format!("{pod}/{container} to print {lines:?}"),
        WAIT,
        || {
            let out = cli.run(&["logs", pod, "-c", container])?;
            let have: Vec<&str> = out.stdout.lines().collect();
            if lines.iter().all(|l| have.contains(l)) {
                Ok(Some(()))
            } else {
                anyhow::bail!("printed so far: {}{}", out.stdout, out.stderr)
            }
        },
    )
}

fn reader_pod(image: &str, tier: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: reader
  labels: {{app: reader, tier: {tier}}}
spec:
  nodeName: dev1
  restartPolicy: OnFailure
  volumes:
  - {{name: cfg, configMap: {{name: app-config}}}}
  - {{name: sec, secret: {{secretName: app-secret, defaultMode: 256}}}}
  - name: info
    downwardAPI:
      items:
      - {{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}
      - {{path: name, fieldRef: {{fieldPath: metadata.name}}}}
  - {{name: scratch, emptyDir: {{medium: Memory, sizeLimit: 4Mi}}}}
  - name: all
    projected:
      sources:
      - configMap: {{name: app-config, items: [{{key: greeting, path: config/greeting}}]}}
      - secret: {{name: app-secret}}
      - downwardAPI: {{items: [{{path: tier, fieldRef: {{fieldPath: "metadata.labels['tier']"}}}}]}}
  containers:
  - name: watch
    image: "file:{image}"
    args: [watch, /cfg/greeting, /sec/password, /info/labels, /info/name, /scratch/shared, /etc/app/greeting.txt, /all/config/greeting, /all/password, /all/tier]
    volumeMounts:
    - {{name: cfg, mountPath: /cfg}}
    - {{name: sec, mountPath: /sec}}
    - {{name: info, mountPath: /info}}
    - {{name: scratch, mountPath: /scratch}}
    - {{name: cfg, mountPath: /etc/app/greeting.txt, subPath: greeting}}
    - {{name: all, mountPath: /all}}
  - name: writer
    image: "file:{image}"
    args: [write, /scratch/shared, from-the-writer]
    volumeMounts:
    - {{name: scratch, mountPath: /scratch}}
"#
    )
}

fn uid(cli: &Skiff, pod: &str) -> anyhow::Result<String> {
    let pod = cli.json(&["get", "pod", pod])?;
    Ok(pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

fn mounted_under(needle: &str) -> anyhow::Result<bool> {
    Ok(std::fs::read_to_string("/proc/self/mountinfo")?.contains(needle))
}

#[test]
fn pods_read_their_volumes_and_see_updates() -> anyhow::Result<()> {
    let guest = skiff_e2e::example_guest("volumes")?;
    let tmp = tempfile::tempdir()?;
    let guests = tmp.path().join("guests");
    std::fs::create_dir(&guests)?;
    let image = guests.join("volumes.wasm");
    std::fs::copy(&guest, &image)?;
    let image = image.display().to_string();
    let data = tmp.path().join("data");
    let server = DevServer::start_with(
        &data,
        true,
        &[
            "--node-name",
            "dev1",
            "--allow-image-dir",
            &guests.display().to_string(),
            "--allow-image-dir",
            &guest.parent().expect("release dir").display().to_string(),
        ],
    )?;
    let cli = server.cli();
    let dir = tmp.path();

    // ConfigMap, Secret, downwardAPI, a memory emptyDir shared by two containers, a subPath.
    apply(
        &cli,
        dir,
        "sources",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config}\ndata: {greeting: hello-v1}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {name: app-secret}\nstringData: {password: s3cret}\n",
    )?;
    apply(&cli, dir, "reader", &reader_pod(&image, "web"))?;
    wait_for_lines(
        &cli,
        "reader",
        "watch",
        &[
            "/cfg/greeting: hello-v1",
            "/sec/password: s3cret",
            "/info/labels: app=\"reader\"|tier=\"web\"",
            "/info/name: reader",
            "/scratch/shared: from-the-writer",
            "/etc/app/greeting.txt: hello-v1",
            "/all/config/greeting: hello-v1",
            "/all/password: s3cret",
            "/all/tier: web",
        ],
    )?;
    let reader_uid = uid(&cli, "reader")?;
    let volumes = data.join("agent/pods").join(&reader_uid).join("volumes");
    let password = std::fs::metadata(volumes.join("sec/..data/password"))?;
    assert_eq!(password.permissions().mode() & 0o777, 0o400);
    assert!(mounted_under(&format!("{reader_uid}/volumes/scratch"))?);

    // The running guest sees the changed ConfigMap and the changed label; a subPath does not
    // change (as in Kubernetes).
    apply(
        &cli,
        dir,
        "config-v2",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config}\ndata: {greeting: hello-v2}\n",
    )?;
    apply(&cli, dir, "reader", &reader_pod(&image, "api"))?;
    wait_for_lines(
        &cli,
        "reader",
        "watch",
        &[
            "/cfg/greeting: hello-v2",
            "/info/labels: app=\"reader\"|tier=\"api\"",
            "/all/config/greeting: hello-v2",
            "/all/tier: api",
        ],
    )?;
    let logs = cli.ok(&["logs", "reader", "-c", "watch"])?;
    assert!(!logs.contains("/etc/app/greeting.txt: hello-v2"), "{logs}");

    // Deleting the pod unmounts its tmpfs and removes its volumes.
    cli.ok(&["delete", "pod", "reader"])?;
    wait_until("the reader's volumes to go", WAIT, || {
        Ok((!volumes.exists() && !mounted_under(&reader_uid)?).then_some(()))
    })?;

    // A PersistentVolumeClaim bound to a hostPath PersistentVolume: written by one pod,
    // read by the next.
    let pv_dir = tmp.path().join("pv-data");
    apply(
        &cli,
        dir,
        "storage",
        &format!(
            "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: pv1}}\nspec:\n  capacity: {{storage: 1Mi}}\n  \
             accessModes: [ReadWriteOnce]\n  hostPath: {{path: {}}}\n---\n\
             apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: data}}\nspec:\n  accessModes: [ReadWriteOnce]\n  \
             resources: {{requests: {{storage: 1Mi}}}}\n  volumeName: pv1\n  storageClassName: \"\"\n",
            pv_dir.display()
        ),
    )?;
    assert!(cli.ok(&["get", "pv"])?.contains("pv1"));
    assert!(cli.ok(&["get", "pvc"])?.contains("data"));
    let claim_pod = |name: &str, args: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  \
             volumes: [{{name: data, persistentVolumeClaim: {{claimName: data}}}}]\n  containers:\n  \
             - name: main\n    image: \"file:{image}\"\n    args: {args}\n    \
             volumeMounts: [{{name: data, mountPath: /data}}]\n"
        )
    };
    apply(
        &cli,
        dir,
        "pv-writer",
        &claim_pod("pv-writer", "[write, /data/counter, \"42\"]"),
    )?;
    wait_for_lines(&cli, "pv-writer", "main", &["wrote /data/counter"])?;
    assert_eq!(std::fs::read_to_string(pv_dir.join("counter"))?, "42");
    apply(
        &cli,
        dir,
        "pv-reader",
        &claim_pod("pv-reader", "[cat, /data/counter]"),
    )?;
    wait_for_lines(&cli, "pv-reader", "main", &["/data/counter: 42"])?;

    // A claim not bound yet keeps its pod Pending (the scheduler waits for it) until a volume
    // for it appears.
    apply(
        &cli,
        dir,
        "later-claim",
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: later}\nspec:\n  \
         accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Mi}}\n  \
         storageClassName: \"\"\n",
    )?;
    let later = claim_pod("pv-later", "[cat, /data/counter]")
        .replace("claimName: data", "claimName: later");
    apply(&cli, dir, "pv-later", &later)?;
    wait_until("the unbound claim's reason", WAIT, || {
        let pod = cli.json(&["get", "pod", "pv-later"])?;
        let unscheduled = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["type"] == "PodScheduled"
                    && c["status"] == "False"
                    && c["message"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("unbound immediate PersistentVolumeClaims")
            });
        Ok(unscheduled.then_some(()))
    })?;
    apply(
        &cli,
        dir,
        "pv2",
        &format!(
            "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: pv2}}\nspec:\n  capacity: {{storage: 1Mi}}\n  \
             accessModes: [ReadWriteOnce]\n  hostPath: {{path: {}}}\n",
            pv_dir.display()
        ),
    )?;
    wait_for_lines(&cli, "pv-later", "main", &["/data/counter: 42"])?;

    // A missing ConfigMap keeps the pod waiting with the kubelet's reason, until it exists.
    apply(
        &cli,
        dir,
        "waiting",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: waiting}}\nspec:\n  restartPolicy: Never\n  \
             volumes: [{{name: cfg, configMap: {{name: late}}}}]\n  containers:\n  \
             - name: main\n    image: \"file:{image}\"\n    args: [cat, /cfg/key]\n    \
             volumeMounts: [{{name: cfg, mountPath: /cfg}}]\n"
        ),
    )?;
    wait_until("the waiting pod's reason", WAIT, || {
        let pod = cli.json(&["get", "pod", "waiting"])?;
        let waiting = &pod["status"]["containerStatuses"][0]["state"]["waiting"];
        let message = waiting["message"].as_str().unwrap_or_default();
        Ok((waiting["reason"] == "ContainerCreating"
            && message.contains("configmap \"late\" not found"))
        .then_some(()))
    })?;
    let events = cli.ok(&["get", "events"])?;
    assert!(events.contains("FailedMount"), "{events}");
    apply(
        &cli,
        dir,
        "late",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late}\ndata: {key: arrived}\n",
    )?;
    wait_for_lines(&cli, "waiting", "main", &["/cfg/key: arrived"])?;

    // A hostPath directory made by its type, written by a guest; a configMap volume is
    // read-only whatever the mount says.
    let host_dir = tmp.path().join("host/made");
    apply(
        &cli,
        dir,
        "host",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: host}}\nspec:\n  restartPolicy: Never\n  \
             volumes:\n  - {{name: h, hostPath: {{path: {}, type: DirectoryOrCreate}}}}\n  \
             - {{name: cfg, configMap: {{name: app-config}}}}\n  containers:\n  \
             - name: main\n    image: \"file:{image}\"\n    args: [write, /h/file, from-a-guest]\n    \
             volumeMounts: [{{name: h, mountPath: /h}}]\n  \
             - name: readonly\n    image: \"file:{image}\"\n    args: [write, /cfg/new, nope]\n    \
             volumeMounts: [{{name: cfg, mountPath: /cfg, readOnly: false}}]\n",
            host_dir.display()
        ),
    )?;
    wait_until("the host pod to finish", WAIT, || {
        let pod = cli.json(&["get", "pod", "host"])?;
        Ok((pod["status"]["phase"] == "Failed").then_some(pod))
    })
    .map(|pod| {
        let statuses = pod["status"]["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let code = |name: &str| {
            statuses
                .iter()
                .find(|s| s["name"] == name)
                .map(|s| s["state"]["terminated"]["exitCode"].clone())
        };
        assert_eq!(code("main"), Some(0.into()), "{pod}");
        assert_eq!(code("readonly"), Some(1.into()), "{pod}");
    })?;
    assert_eq!(
        std::fs::read_to_string(host_dir.join("file"))?,
        "from-a-guest"
    );

    // A disk emptyDir written past its sizeLimit gets its pod evicted.
    apply(
        &cli,
        dir,
        "full",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: full}}\nspec:\n  restartPolicy: Never\n  \
             volumes: [{{name: tmp, emptyDir: {{sizeLimit: \"10\"}}}}]\n  containers:\n  \
             - name: watch\n    image: \"file:{image}\"\n    args: [watch, /tmp/big]\n    \
             volumeMounts: [{{name: tmp, mountPath: /tmp}}]\n  \
             - name: fill\n    image: \"file:{image}\"\n    args: [write, /tmp/big, more-than-ten-bytes]\n    \
             volumeMounts: [{{name: tmp, mountPath: /tmp}}]\n"
        ),
    )?;
    wait_until("the full pod's eviction", WAIT, || {
        let pod = cli.json(&["get", "pod", "full"])?;
        let status = &pod["status"];
        Ok((status["phase"] == "Failed"
            && status["reason"] == "Evicted"
            && status["message"].as_str().is_some_and(|m| {
                m.contains("Usage of EmptyDir volume \"tmp\" exceeds the limit \"10\"")
            }))
        .then_some(()))
    })?;

    // Bad volume specs: 422 naming the field, nothing created.
    let bad = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: bad}}\nspec:\n  \
         volumes: [{{name: v, emptyDir: {{}}}}, {{name: v, emptyDir: {{}}}}]\n  containers:\n  \
         - name: main\n    image: \"file:{image}\"\n    \
         volumeMounts: [{{name: v, mountPath: /v, subPath: ../escape}}]\n"
    );
    let path = dir.join("bad.yaml");
    std::fs::write(&path, bad)?;
    let out = cli.run(&["apply", "-f", path.to_str().expect("utf-8")])?;
    assert!(!out.success, "{}", out.stdout);
    assert!(
        out.stderr.contains("spec.volumes[1].name")
            && out
                .stderr
                .contains("spec.containers[0].volumeMounts[0].subPath"),
        "{}",
        out.stderr
    );
    assert!(!cli.run(&["get", "pod", "bad"])?.success);

    // The example: a ConfigMap volume and an emptyDir shared by two containers.
    let example = repo_root().join("wasm-examples/volumes/pod.yaml");
    cli.ok(&["apply", "-f", example.to_str().expect("utf-8")])?;
    wait_for_lines(
        &cli,
        "files",
        "show",
        &[
            "/etc/files/greeting: hello from a ConfigMap volume",
            "/etc/files/settings.ini: [app]|mode=demo",
            "/shared/note: written by the fill container",
        ],
    )?;
    Ok(())
}
