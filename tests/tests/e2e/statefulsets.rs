//! StatefulSets end to end on a dev server with the ticker guest: three replicas come up one
//! at a time in ordinal order (checked against a pod watch: each pod is created only after the
//! one below it was Running and Ready), names are stable and a deleted pod comes back under its
//! name with its claim, a partitioned rolling update replaces only the ordinals at or above the
//! partition, a scale-down removes the highest ordinal first and one at a time, the claims made
//! from the volumeClaimTemplate outlive it, and a bad StatefulSet is refused naming the field.

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use skiff_e2e::{repo_root, start_with_agent_flags, wait_until, DevServer, Skiff};

const TIMEOUT: Duration = Duration::from_secs(90);

fn manifest(message: &str) -> String {
    let image = repo_root().join("wasm-examples/target/wasm32-wasip1/release/ticker.wasm");
    format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  clusterIP: None
  selector: {{app: web}}
  ports: [{{port: 80}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web}}
spec:
  serviceName: web
  replicas: 3
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: ticker
        image: file:{image}
        env:
        - {{name: MESSAGE, value: "{message}"}}
        resources:
          requests: {{cpu: 10m, memory: 16Mi}}
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests: {{storage: 16Mi}}
"#,
        image = image.display()
    )
}

fn apply(cli: &Skiff, yaml: &str) -> anyhow::Result<()> {
    let out = cli.run_with_stdin(&["apply", "-f", "-"], Some(yaml))?;
    anyhow::ensure!(out.success, "apply failed: {}", out.stderr);
    Ok(())
}

/// Every event of the set's pods, in the order the server sent them.
type Events = Arc<Mutex<Vec<(String, Value)>>>;

fn watch_pods(server: &DevServer) -> anyhow::Result<Events> {
    let events: Events = Arc::default();
    let response = skiff_e2e::https_client_builder(&server.url())?
        .timeout(None)
        .build()?
        .get(format!(
            "{}/api/v1/namespaces/default/pods?watch=true&labelSelector=app%3Dweb",
            server.url()
        ))
        .send()?;
    anyhow::ensure!(
        response.status().is_success(),
        "watch: {}",
        response.status()
    );
    let sink = events.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(response).lines() {
            let Ok(line) = line else { return };
            if let Ok(event) = serde_json::from_str::<Value>(&line) {
                let kind = event["type"].as_str().unwrap_or_default().to_string();
                sink.lock()
                    .expect("events")
                    .push((kind, event["object"].clone()));
            }
        }
    });
    Ok(events)
}

fn name(pod: &Value) -> &str {
    pod["metadata"]["name"].as_str().unwrap_or_default()
}

fn running_and_ready(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
        && pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The index in `events` where `pod` was first marked for deletion (or deleted outright).
fn first_deletion(events: &[(String, Value)], pod: &str) -> Option<usize> {
    events.iter().position(|(kind, p)| {
        name(p) == pod && (kind == "DELETED" || !p["metadata"]["deletionTimestamp"].is_null())
    })
}

fn pod(cli: &Skiff, name: &str) -> anyhow::Result<Value> {
    cli.json(&["get", "pod", name])
}

fn revision(pod: &Value) -> String {
    pod["metadata"]["labels"]["controller-revision-hash"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn claims(cli: &Skiff) -> anyhow::Result<Vec<String>> {
    let list = cli.json(&["get", "pvc"])?;
    let mut names: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| name(c).to_string())
        .collect();
    names.sort();
    Ok(names)
}

/// Waits until pods `web-0..n` are Running and Ready, and no others exist.
fn wait_for_pods(cli: &Skiff, n: usize) -> anyhow::Result<Vec<Value>> {
    wait_until(&format!("{n} ready pods"), TIMEOUT, || {
        let list = cli.json(&["get", "pods", "-l", "app=web"])?;
        let mut pods = list["items"].as_array().cloned().unwrap_or_default();
        pods.sort_by_key(|p| name(p).to_string());
        let names: Vec<&str> = pods.iter().map(name).collect();
        let want: Vec<String> = (0..n).map(|i| format!("web-{i}")).collect();
        Ok((names == want && pods.iter().all(running_and_ready)).then_some(pods))
    })
}

fn patch_set(server: &DevServer, patch: &Value) -> anyhow::Result<()> {
    let response = skiff_e2e::https_client(&server.url())?
        .patch(format!(
            "{}/apis/apps/v1/namespaces/default/statefulsets/web",
            server.url()
        ))
        .header("content-type", "application/merge-patch+json")
        .body(patch.to_string())
        .send()?;
    anyhow::ensure!(
        response.status().is_success(),
        "patch: {}",
        response.text()?
    );
    Ok(())
}

#[test]
fn statefulsets_keep_names_order_and_claims() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let cli = server.cli();
    let events = watch_pods(&server)?;
    apply(&cli, &manifest("v1"))?;

    // Up in order: each pod is created only once the one below it is Running and Ready.
    let out = cli.ok(&["rollout", "status", "sts/web", "--timeout", "80s"])?;
    assert!(
        out.contains("statefulset rolling update complete 3 pods"),
        "{out}"
    );
    let pods = wait_for_pods(&cli, 3)?;
    {
        let events = events.lock().expect("events");
        let added: Vec<&str> = events
            .iter()
            .filter(|(kind, _)| kind == "ADDED")
            .map(|(_, p)| name(p))
            .collect();
        assert_eq!(added, ["web-0", "web-1", "web-2"], "creation order");
        for i in 1..3 {
            let created = events
                .iter()
                .position(|(kind, p)| kind == "ADDED" && name(p) == format!("web-{i}"))
                .expect("added");
            let below = events[..created]
                .iter()
                .rev()
                .find(|(_, p)| name(p) == format!("web-{}", i - 1))
                .map(|(_, p)| p.clone())
                .expect("the pod below was seen first");
            assert!(
                running_and_ready(&below),
                "web-{i} was created while web-{} was not Running and Ready: {below}",
                i - 1
            );
        }
    }
    for (i, pod) in pods.iter().enumerate() {
        let labels = &pod["metadata"]["labels"];
        assert_eq!(
            labels["statefulset.kubernetes.io/pod-name"],
            format!("web-{i}")
        );
        assert_eq!(labels["apps.kubernetes.io/pod-index"], i.to_string());
        assert_eq!(pod["spec"]["hostname"], format!("web-{i}"));
        assert_eq!(pod["spec"]["subdomain"], "web");
        // The template's claim, beside the ServiceAccount token volume admission adds.
        let volumes: Vec<&Value> = pod["spec"]["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .filter(|v| {
                !v["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("kube-api-access-"))
            })
            .collect();
        assert_eq!(
            volumes,
            [
                &json!({"name": "data", "persistentVolumeClaim": {"claimName": format!("data-web-{i}")}})
            ]
        );
    }
    assert_eq!(claims(&cli)?, ["data-web-0", "data-web-1", "data-web-2"]);
    let claim = cli.json(&["get", "pvc", "data-web-1"])?;
    assert!(claim["metadata"]["ownerReferences"].is_null(), "{claim}");
    assert_eq!(claim["metadata"]["labels"]["app"], "web", "{claim}");
    let table = cli.ok(&["get", "sts"])?;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("web") && l.contains("3/3")),
        "{table}"
    );
    let wide = cli.ok(&["get", "statefulsets", "-o", "wide"])?;
    assert!(
        wide.contains("CONTAINERS") && wide.contains("ticker.wasm"),
        "{wide}"
    );
    let described = cli.ok(&["describe", "sts", "web"])?;
    assert!(
        described.contains("OrderedReady") && described.contains("Claim:"),
        "{described}"
    );

    // A deleted pod comes back under its name, with its claim.
    let old_uid = pods[1]["metadata"]["uid"].clone();
    cli.ok(&["delete", "pod", "web-1"])?;
    wait_until("web-1 to come back", TIMEOUT, || {
        let pod = pod(&cli, "web-1")?;
        Ok((pod["metadata"]["uid"] != old_uid && running_and_ready(&pod)).then_some(()))
    })?;
    let back = pod(&cli, "web-1")?;
    assert_eq!(
        back["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "data-web-1"
    );

    // A partitioned rolling update: partition 2 replaces only web-2, then 1 also web-1.
    let old = revision(&pod(&cli, "web-0")?);
    // The template's container (a pod's also mounts the token volume admission added).
    let mut container =
        cli.json(&["get", "sts", "web"])?["spec"]["template"]["spec"]["containers"][0].clone();
    container["env"] = json!([{"name": "MESSAGE", "value": "v2"}]);
    patch_set(
        &server,
        &json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 2}},
            "template": {"spec": {"containers": [container]}}}}),
    )?;
    let out = cli.ok(&["rollout", "status", "statefulset/web", "--timeout", "80s"])?;
    assert!(
        out.contains("partitioned roll out complete: 1 new pods"),
        "{out}"
    );
    let set = cli.json(&["get", "sts", "web"])?;
    let new = set["status"]["updateRevision"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(new, old);
    assert_eq!(set["status"]["currentRevision"], old.as_str(), "{set}");
    wait_for_pods(&cli, 3)?;
    let revisions: Vec<String> = (0..3)
        .map(|i| pod(&cli, &format!("web-{i}")).map(|p| revision(&p)))
        .collect::<anyhow::Result<_>>()?;
    assert_eq!(revisions, [old.clone(), old.clone(), new.clone()]);
    assert_eq!(
        pod(&cli, "web-2")?["spec"]["containers"][0]["env"][0]["value"],
        "v2"
    );
    // web-0 is below the partition: deleted, it comes back at the old revision.
    let old_uid = pod(&cli, "web-0")?["metadata"]["uid"].clone();
    cli.ok(&["delete", "pod", "web-0"])?;
    let web0 = wait_until("web-0 to come back", TIMEOUT, || {
        let pod = pod(&cli, "web-0")?;
        Ok((pod["metadata"]["uid"] != old_uid && running_and_ready(&pod)).then_some(pod))
    })?;
    assert_eq!(revision(&web0), old);
    assert_eq!(web0["spec"]["containers"][0]["env"][0]["value"], "v1");
    patch_set(
        &server,
        &json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 1}}}}),
    )?;
    wait_until("web-1 to be updated", TIMEOUT, || {
        let pod = pod(&cli, "web-1")?;
        Ok((revision(&pod) == new && running_and_ready(&pod)).then_some(()))
    })?;
    assert_eq!(revision(&pod(&cli, "web-0")?), old);

    // Scale down from the top, one at a time; the claims stay.
    let mark = events.lock().expect("events").len();
    let out = cli.ok(&["scale", "statefulset", "web", "--replicas", "1"])?;
    assert!(out.contains("statefulset.apps/web scaled"), "{out}");
    wait_for_pods(&cli, 1)?;
    {
        let events = events.lock().expect("events");
        let since = &events[mark..];
        let two = first_deletion(since, "web-2").expect("web-2 deleted");
        let two_gone = since
            .iter()
            .position(|(kind, p)| kind == "DELETED" && name(p) == "web-2")
            .expect("web-2 gone");
        let one = first_deletion(since, "web-1").expect("web-1 deleted");
        assert!(
            two <= two_gone && two_gone < one,
            "web-2 marked at {two}, gone at {two_gone}, web-1 marked at {one}"
        );
    }
    assert_eq!(claims(&cli)?, ["data-web-0", "data-web-1", "data-web-2"]);

    // A restart (with the partition back at 0) rolls the pod that is left.
    patch_set(
        &server,
        &json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}),
    )?;
    let out = cli.ok(&["rollout", "restart", "statefulset/web"])?;
    assert!(out.contains("statefulset.apps/web restarted"), "{out}");
    let out = cli.ok(&["rollout", "status", "sts/web", "--timeout", "80s"])?;
    assert!(out.contains("rolling update complete 1 pods"), "{out}");
    let restarted = wait_for_pods(&cli, 1)?;
    assert!(
        restarted[0]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string(),
        "{}",
        restarted[0]
    );
    assert_eq!(
        restarted[0]["spec"]["containers"][0]["env"][0]["value"],
        "v2"
    );

    // Bad input is refused naming the field, and nothing is created.
    let bad = manifest("v1")
        .replace("serviceName: web", "serviceName: Web_Svc")
        .replace(
            "name: web}\nspec:\n  serviceName",
            "name: bad}\nspec:\n  serviceName",
        );
    let out = cli.run_with_stdin(&["apply", "-f", "-"], Some(&bad))?;
    assert!(
        !out.success && out.stderr.contains("spec.serviceName"),
        "{}",
        out.stderr
    );
    assert!(cli.run(&["get", "sts", "bad"]).map(|o| !o.success)?);
    let err = patch_set(&server, &json!({"spec": {"serviceName": "other"}}))
        .expect_err("serviceName is fixed");
    assert!(
        err.to_string()
            .contains("updates to statefulset spec for fields other than"),
        "{err}"
    );
    Ok(())
}

/// The counter example's guest keeps its count in its volume: each tick reads back what the
/// one before wrote (in an emptyDir here; the example mounts its claim).
#[test]
fn the_counter_guest_counts_in_its_volume() -> anyhow::Result<()> {
    let wasm = skiff_e2e::example_guest("counter")?;
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let cli = server.cli();
    apply(
        &cli,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: count}}\nspec:\n  restartPolicy: Never\n  \
             volumes: [{{name: data, emptyDir: {{}}}}]\n  containers:\n  - name: counter\n    \
             image: file:{}\n    env: [{{name: TICKS, value: \"3\"}}, {{name: POD_NAME, value: count}}]\n    \
             volumeMounts: [{{name: data, mountPath: /data}}]\n",
            wasm.display()
        ),
    )?;
    wait_until("the counter to finish", TIMEOUT, || {
        let pod = pod(&cli, "count")?;
        Ok((pod["status"]["phase"] == "Succeeded").then_some(()))
    })?;
    let logs = cli.ok(&["logs", "count"])?;
    assert_eq!(
        logs.lines().collect::<Vec<_>>(),
        ["count: count 1", "count: count 2", "count: count 3"],
        "{logs}"
    );
    // The example's manifest is accepted and makes the first replica with its claim (what the
    // guest then does with `/data` depends on the claim being bound and mounted).
    let example = repo_root().join("wasm-examples/counter/statefulset.yaml");
    cli.ok(&["apply", "-f", example.to_str().expect("utf-8")])?;
    wait_until("counter-0 and its claim", TIMEOUT, || {
        let made = cli.run(&["get", "pod", "counter-0"])?.success
            && claims(&cli)?.contains(&"data-counter-0".to_string());
        Ok(made.then_some(()))
    })?;
    // counter-0 counts on its claim; deleted, it comes back under its name and goes on from
    // where it was.
    let counts = |pod: &str| -> anyhow::Result<Vec<u64>> {
        let out = cli.run(&["logs", pod])?;
        Ok(out
            .stdout
            .lines()
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect())
    };
    let before = wait_until("counter-0 counting past 2", TIMEOUT, || {
        let counts = counts("counter-0")?;
        Ok((counts.last().is_some_and(|&n| n >= 2)).then_some(counts))
    })?;
    let uid = pod(&cli, "counter-0")?["metadata"]["uid"].clone();
    cli.ok(&["delete", "pod", "counter-0", "--grace-period", "0"])?;
    let after = wait_until("a new counter-0 counting", TIMEOUT, || {
        let now = pod(&cli, "counter-0")?;
        if now["metadata"]["uid"] == uid || now["metadata"]["uid"].is_null() {
            return Ok(None);
        }
        let counts = counts("counter-0")?;
        Ok((!counts.is_empty()).then_some(counts))
    })?;
    assert!(
        after[0] > *before.last().expect("counted"),
        "the count started over: before {before:?}, after {after:?}"
    );
    Ok(())
}

/// A StatefulSet `name` of ticker pods with one claim template; `extra` holds more `spec` lines.
fn set_manifest(name: &str, replicas: usize, extra: &str) -> String {
    let image = repo_root().join("wasm-examples/target/wasm32-wasip1/release/ticker.wasm");
    format!(
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: {name}}}
spec:
  serviceName: {name}
  replicas: {replicas}
{extra}  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: ticker
        image: file:{image}
        resources: {{requests: {{cpu: 10m, memory: 16Mi}}}}
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 16Mi}}}}}}
"#,
        image = image.display()
    )
}

/// `whenScaled: Delete` takes a removed pod's claim along; `whenDeleted: Delete` lets the
/// garbage collector remove the rest with the set.
#[test]
fn claims_go_with_the_set_when_its_retention_policy_says_so() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let cli = server.cli();
    apply(
        &cli,
        &set_manifest(
            "tmp",
            2,
            "  podManagementPolicy: Parallel\n  persistentVolumeClaimRetentionPolicy: \
             {whenDeleted: Delete, whenScaled: Delete}\n",
        ),
    )?;
    let names = |cli: &Skiff| claims(cli);
    wait_until("two claims", TIMEOUT, || {
        Ok((names(&cli)? == ["data-tmp-0", "data-tmp-1"]).then_some(()))
    })?;
    let claim = cli.json(&["get", "pvc", "data-tmp-0"])?;
    assert_eq!(
        claim["metadata"]["ownerReferences"][0]["kind"], "StatefulSet",
        "{claim}"
    );
    cli.ok(&["scale", "sts", "tmp", "--replicas", "1"])?;
    wait_until("the removed pod's claim to go", TIMEOUT, || {
        Ok((names(&cli)? == ["data-tmp-0"]).then_some(()))
    })?;
    cli.ok(&["delete", "sts", "tmp"])?;
    wait_until(
        "the set's pods, claims and revisions to go",
        TIMEOUT,
        || {
            let pods = cli.json(&["get", "pods", "-l", "app=tmp"])?;
            let revisions = cli.json(&["get", "controllerrevisions"])?;
            let empty = |list: &Value| list["items"].as_array().is_none_or(Vec::is_empty);
            Ok((names(&cli)?.is_empty() && empty(&pods) && empty(&revisions)).then_some(()))
        },
    )?;
    Ok(())
}

/// A replica on a lost node is marked for deletion but, with no agent to confirm it, keeps its
/// name (never two pods of one ordinal); once the node is deleted it comes back under the same
/// name with the same claim, on another node (or Pending, where its volume's node is gone).
#[test]
fn a_replica_of_a_lost_node_comes_back_under_its_name() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (server, mut agents) = start_with_agent_flags(
        tmp.path(),
        &["--node-grace-seconds", "3"],
        // A Lease renewed every second, well within the short grace.
        &["--node-lease-duration-seconds", "4"],
        &["node-a", "node-b"],
    )?;
    let cli = server.cli();
    let a = &mut agents[0];
    // A short grace period: the pod of the lost node is past its deletion time soon.
    let manifest = set_manifest("db", 4, "").replace(
        "      containers:",
        "      terminationGracePeriodSeconds: 1\n      containers:",
    );
    apply(&cli, &manifest)?;
    let on_a = wait_until("4 ready pods, some on node-a", TIMEOUT, || {
        let pods = cli.json(&["get", "pods", "-l", "app=db"])?;
        let pods = pods["items"].as_array().cloned().unwrap_or_default();
        let on_a: Vec<Value> = pods
            .iter()
            .filter(|p| p["spec"]["nodeName"] == "node-a")
            .cloned()
            .collect();
        let ready = pods.len() == 4 && pods.iter().all(running_and_ready);
        Ok((ready && !on_a.is_empty()).then(|| on_a[0].clone()))
    })?;
    let lost = name(&on_a).to_string();
    let uid = on_a["metadata"]["uid"].clone();

    a.kill9()?;
    wait_until("the lost pod to be marked for deletion", TIMEOUT, || {
        let pod = pod(&cli, &lost)?;
        Ok((!pod["metadata"]["deletionTimestamp"].is_null()).then_some(()))
    })?;
    let pod_now = pod(&cli, &lost)?;
    assert_eq!(
        pod_now["metadata"]["uid"], uid,
        "not replaced while it may still run"
    );

    // Each pod of node-a is warned about once its own deletion time is up: wait for this one's.
    let warning = format!("Pod {lost} is past its deletion time on node node-a");
    wait_until("a warning about the stuck pod", TIMEOUT, || {
        let described = cli.ok(&["describe", "sts", "db"])?;
        Ok(described.contains(&warning).then_some(()))
    })?;
    cli.ok(&["delete", "node", "node-a"])?;
    // Back under its name with its claim, whose local volume lives on the lost node: Pending
    // with the scheduler's reason, as Kubernetes leaves it, not started empty elsewhere.
    let back = wait_until("the replica back, Pending", TIMEOUT, || {
        let pod = pod(&cli, &lost)?;
        let unschedulable = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "PodScheduled" && c["status"] == "False")
            .cloned();
        Ok((pod["metadata"]["uid"] != uid)
            .then_some(unschedulable)
            .flatten()
            .map(|c| (pod, c)))
    })?;
    let (back, condition) = back;
    assert!(
        condition["message"]
            .as_str()
            .unwrap_or_default()
            .contains("volume node affinity conflict"),
        "{condition}"
    );
    assert_eq!(
        back["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        format!("data-{lost}")
    );

    // The node comes back: the replica runs there again, on its volume.
    a.restart()?;
    wait_until("the replica running on node-a again", TIMEOUT, || {
        a.check_running()?;
        let pod = pod(&cli, &lost)?;
        Ok((running_and_ready(&pod) && pod["spec"]["nodeName"] == "node-a").then_some(()))
    })?;
    Ok(())
}
