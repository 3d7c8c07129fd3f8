//! The official Python `kubernetes` client (the version `tests/python/requirements.txt` pins,
//! installed by `scripts/install-deps.sh`) against a real dev server: the scripts in
//! `tests/python/` load the kubeconfig `skiff` writes with `config.load_kube_config` and
//! list, watch, create, patch, replace, scale and delete through the typed API classes; each
//! test checks what they saw against the API read with Rust. A missing client fails the test.

use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};
use skiff_e2e::{https_client, wait_until, DevServer, PythonClient, PythonScript};

/// The namespace every test works in.
const NS: &str = "python";

/// A dev server, the Python client for it, and a plain HTTP client for the checks.
struct Fixture {
    _tmp: tempfile::TempDir,
    _server: DevServer,
    url: String,
    http: reqwest::blocking::Client,
    python: PythonClient,
}

impl Fixture {
    /// Starts a server and makes the namespace `NS`.
    fn start() -> anyhow::Result<Self> {
        let tmp = tempfile::tempdir()?;
        let server = DevServer::start(&tmp.path().join("data"))?;
        let url = server.url();
        let fixture = Fixture {
            http: https_client(&url)?,
            python: PythonClient::for_server(&url)?,
            url,
            _server: server,
            _tmp: tmp,
        };
        fixture.send(
            reqwest::Method::POST,
            "/api/v1/namespaces",
            Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})),
        )?;
        // The namespace's CA ConfigMap is there before a test starts counting ConfigMaps.
        let ca = format!("{}/kube-root-ca.crt", configmaps());
        wait_until(
            "the namespace's kube-root-ca.crt",
            Duration::from_secs(30),
            || Ok((fixture.status_of(&ca)? == 200).then_some(())),
        )?;
        Ok(fixture)
    }

    /// `METHOD PATH` with a JSON (or merge patch) body; the answer, failing unless it is a 2xx.
    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url));
        if let Some(body) = body {
            let content_type = if method == reqwest::Method::PATCH {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            request = request
                .header("Content-Type", content_type)
                .body(body.to_string());
        }
        let response = request.send()?;
        let status = response.status();
        let text = response.text()?;
        anyhow::ensure!(status.is_success(), "{method} {path}: {status} {text}");
        Ok(serde_json::from_str(&text)?)
    }

    fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::GET, path, None)
    }

    /// The HTTP status of `GET PATH`.
    fn status_of(&self, path: &str) -> anyhow::Result<u16> {
        Ok(self
            .http
            .get(format!("{}{path}", self.url))
            .send()?
            .status()
            .as_u16())
    }

    fn create(&self, collection: &str, object: Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, collection, Some(object))
    }

    fn configmap(&self, name: &str, labels: Value, data: Value) -> anyhow::Result<Value> {
        self.create(
            &configmaps(),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "labels": labels}, "data": data}),
        )
    }

    /// A Deployment of no replicas whose pods, should it get some, fit no node.
    fn deployment(&self, name: &str) -> anyhow::Result<Value> {
        self.create(
            &deployments(),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "labels": {"app": name}},
                "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}}, "spec": {
                        "nodeSelector": {"skiff.test/no-such-node": "true"},
                        "containers": [{"name": "app", "image": "registry.example/app:1",
                            "env": [{"name": "A", "value": "1"}]},
                            {"name": "side", "image": "registry.example/side:1"}]}}}}),
        )
    }

    /// The names of the items of the list at `path`, as served.
    fn names(&self, path: &str) -> anyhow::Result<Vec<String>> {
        Ok(items(&self.get(path)?)
            .iter()
            .map(|item| {
                item["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect())
    }
}

fn configmaps() -> String {
    format!("/api/v1/namespaces/{NS}/configmaps")
}

fn deployments() -> String {
    format!("/apis/apps/v1/namespaces/{NS}/deployments")
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn python_client_lists_with_selectors_and_pages() -> anyhow::Result<()> {
    let f = Fixture::start()?;
    for (name, tier) in [
        ("a1", "a"),
        ("a2", "a"),
        ("b1", "b"),
        ("b2", "b"),
        ("c1", "c"),
    ] {
        f.configmap(name, json!({"tier": tier}), json!({"k": name}))?;
    }
    f.configmap("plain", json!({}), json!({}))?;
    f.deployment("web")?;
    f.create(
        &format!("/api/v1/namespaces/{NS}/pods"),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "waiting"},
            "spec": {"nodeSelector": {"skiff.test/no-such-node": "true"},
                "containers": [{"name": "app", "image": "registry.example/app:1"}]}}),
    )?;

    let seen = f.python.run("list.py", &[NS])?;
    assert_eq!(seen["version"], f.get("/version")?["gitVersion"]);
    assert!(
        strings(&seen["groups"]).contains(&"apps".to_string()),
        "{seen}"
    );
    assert_eq!(strings(&seen["core_versions"]), ["v1"]);
    assert!(
        strings(&seen["apps_resources"]).contains(&"deployments/scale".to_string()),
        "{seen}"
    );
    let all = f.names(&configmaps())?;
    assert!(all.len() >= 6, "{all:?}");
    assert_eq!(strings(&seen["configmaps"]), all);
    assert_eq!(strings(&seen["tier_a"]), ["a1", "a2"]);
    assert_eq!(strings(&seen["tier_not_a"]), ["b1", "b2", "c1"]);
    assert_eq!(strings(&seen["tier_in"]), ["a1", "a2", "b1", "b2"]);
    assert_eq!(strings(&seen["pods"]), ["waiting"]);
    assert_eq!(strings(&seen["pod_phases"]), ["Pending"]);
    assert_eq!(strings(&seen["deployments"]), ["web"]);
    assert!(
        seen["deployments_everywhere"]
            .as_array()
            .context("deployments_everywhere")?
            .contains(&json!([NS, "web"])),
        "{seen}"
    );

    // Pages of two, all read at the first page's revision, make up the whole list in order;
    // each but the last carries a continue token and counts what follows.
    let pages = seen["pages"].as_array().context("pages")?;
    assert_eq!(pages.len(), all.len().div_ceil(2), "{pages:?}");
    let paged: Vec<String> = pages.iter().flat_map(|p| strings(&p["names"])).collect();
    assert_eq!(paged, all);
    let mut following = all.len();
    for (i, page) in pages.iter().enumerate() {
        following -= strings(&page["names"]).len();
        assert_eq!(page["resourceVersion"], pages[0]["resourceVersion"]);
        if i + 1 < pages.len() {
            assert_eq!(strings(&page["names"]).len(), 2, "{page}");
            assert!(page["continue"].is_string(), "{page}");
            assert_eq!(page["remaining"], following, "{page}");
        } else {
            assert!(page["continue"].is_null(), "{page}");
        }
    }
    Ok(())
}

#[test]
fn python_client_watch_sees_changes_and_resumes_from_a_resource_version() -> anyhow::Result<()> {
    let f = Fixture::start()?;
    f.configmap("before", json!({}), json!({"k": "0"}))?;
    let mut watch = PythonScript::spawn(f.python.command("watch.py", &[NS, "live"]), "watch.py")?;
    let next = |watch: &mut PythonScript| -> anyhow::Result<Value> {
        let line = watch
            .next_line(Duration::from_secs(60))?
            .context("watch.py ended early")?;
        Ok(serde_json::from_str(&line)?)
    };

    // The watch starts with what is there (ADDED events); once `before` shows, it is live.
    loop {
        let event = next(&mut watch)?;
        assert_eq!(event["type"], "ADDED", "{event}");
        if event["name"] == "before" {
            break;
        }
    }
    let created = f.configmap("live", json!({}), json!({"k": "1"}))?;
    let path = format!("{}/live", configmaps());
    let modified = f.send(
        reqwest::Method::PATCH,
        &path,
        Some(json!({"data": {"k": "2"}})),
    )?;
    f.send(reqwest::Method::DELETE, &path, None)?;

    // Only `live`'s events count: the namespace's other ConfigMaps are not touched.
    let mut events = Vec::new();
    while events.len() < 3 {
        let event = next(&mut watch)?;
        if event["name"] == "live" {
            events.push(event);
        }
    }
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"], "{events:?}");
    assert_eq!(
        events[0]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    assert_eq!(
        events[1]["resourceVersion"],
        modified["metadata"]["resourceVersion"]
    );
    assert_eq!(events[1]["data"], json!({"k": "2"}));
    let revision = |e: &Value| {
        e["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse::<u64>().ok())
    };
    assert!(revision(&events[2]) > revision(&events[1]), "{events:?}");

    // The second watch, from the ADDED event's revision, replays what came after it (and
    // nothing before), then ends when its `timeout_seconds` run out.
    let summary = next(&mut watch)?;
    watch.finish()?;
    assert_eq!(
        summary["resumed_from"],
        created["metadata"]["resourceVersion"]
    );
    assert_eq!(summary["last_seen"], events[2]["resourceVersion"]);
    let replayed = summary["replayed"].as_array().context("replayed")?;
    assert!(
        replayed.iter().all(|e| revision(e) > revision(&events[0])),
        "{summary}"
    );
    let replayed_live: Vec<&Value> = replayed.iter().filter(|e| e["name"] == "live").collect();
    assert_eq!(replayed_live, [&events[1], &events[2]], "{summary}");
    Ok(())
}

#[test]
fn python_client_creates_configmaps_secrets_and_deployments_from_typed_models() -> anyhow::Result<()>
{
    let f = Fixture::start()?;
    let made = f.python.run("create.py", &[NS])?;

    let configmap = f.get(&format!("{}/settings", configmaps()))?;
    assert_eq!(configmap["metadata"]["uid"], made["configmap"]["uid"]);
    assert_eq!(configmap["data"], json!({"mode": "fast"}));
    assert_eq!(made["configmap"]["data"], configmap["data"]);

    // `string_data` is folded into base64 `data`, and not kept.
    let secret = f.get(&format!("/api/v1/namespaces/{NS}/secrets/credentials"))?;
    assert_eq!(secret["metadata"]["uid"], made["secret"]["uid"]);
    assert_eq!(secret["data"], json!({"password": "aHVudGVyMg=="}));
    assert!(secret.get("stringData").is_none(), "{secret}");
    assert_eq!(made["secret"]["data"], secret["data"]);

    let deployment = f.get(&format!("{}/web", deployments()))?;
    assert_eq!(deployment["metadata"]["uid"], made["deployment"]["uid"]);
    let app = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(app["image"], "registry.example/app:1");
    assert_eq!(app["env"], json!([{"name": "MODE", "value": "fast"}]));
    assert_eq!(app["ports"][0]["containerPort"], 8080);
    assert_eq!(deployment["spec"]["replicas"], 0);
    // What the server defaults comes back to the client too.
    assert_eq!(made["deployment"]["strategy"], "RollingUpdate");
    assert_eq!(made["deployment"]["generation"], 1);

    assert_eq!(made["namespace"]["phase"], "Active");
    let extra = f.get(&format!("/api/v1/namespaces/{NS}-extra"))?;
    assert_eq!(extra["status"]["phase"], "Active");
    Ok(())
}

#[test]
fn python_client_patches_strategic_merge_json_merge_and_json_patch() -> anyhow::Result<()> {
    let f = Fixture::start()?;
    f.deployment("web")?;
    f.configmap("conf", json!({}), json!({"keep": "1", "drop": "2"}))?;
    let seen = f.python.run("patch.py", &[NS, "web", "conf"])?;

    // The default (strategic merge): the named container merged, env merged by name.
    assert_eq!(strings(&seen["containers"]), ["app", "side"]);
    assert_eq!(seen["app_image"], "registry.example/app:1");
    assert_eq!(seen["app_env"], json!([["A", "1"], ["B", "2"]]));
    let deployment = f.get(&format!("{}/web", deployments()))?;
    let containers = &deployment["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers[0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    );
    assert_eq!(containers[1]["image"], "registry.example/side:1");

    // Merge patch (null deletes), then JSON patch, then a list body (JSON patch by default).
    assert_eq!(seen["merged"], json!({"keep": "1", "added": "yes"}));
    assert_eq!(
        seen["json_patched"],
        json!({"keep": "changed", "added": "yes"})
    );
    let configmap = f.get(&format!("{}/conf", configmaps()))?;
    assert_eq!(
        configmap["data"],
        json!({"keep": "changed", "added": "yes"})
    );
    assert_eq!(configmap["metadata"]["labels"], json!({"patched": "json"}));
    assert_eq!(seen["default_list_labels"], configmap["metadata"]["labels"]);
    Ok(())
}

#[test]
fn python_client_replaces_reads_status_and_scales() -> anyhow::Result<()> {
    let f = Fixture::start()?;
    f.deployment("web")?;
    let seen = f.python.run("replace_status_scale.py", &[NS, "web"])?;

    assert_eq!(seen["replaced"]["image"], "registry.example/app:2");
    assert_eq!(seen["replaced"]["generation"], 2);
    // A replace at the revision read before is a 409 Conflict, as a Status.
    assert_eq!(seen["conflict"]["status"], 409);
    let conflict = &seen["conflict"]["body"];
    assert_eq!(
        (&conflict["kind"], &conflict["reason"]),
        (&json!("Status"), &json!("Conflict"))
    );
    assert_eq!(conflict["details"]["name"], "web");

    assert!(seen["status"]["observedGeneration"].is_u64(), "{seen}");
    assert_eq!(seen["scale"]["kind"], "Scale");
    assert_eq!(seen["scale"]["replicas"], 0);
    assert_eq!(seen["scale"]["selector"], "app=web");
    assert_eq!(seen["patched_scale"], 2);
    assert_eq!(seen["replaced_scale"], 3);

    let deployment = f.get(&format!("{}/web", deployments()))?;
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/app:2"
    );
    // The controller sees the scale: the Deployment's ReplicaSet asks for three pods.
    wait_until(
        "the ReplicaSet to ask for 3 pods",
        Duration::from_secs(30),
        || {
            let sets = f.get(&format!("/apis/apps/v1/namespaces/{NS}/replicasets"))?;
            Ok(items(&sets)
                .iter()
                .any(|rs| {
                    rs["spec"]["replicas"] == 3
                        && rs["spec"]["template"]["spec"]["containers"][0]["image"]
                            == "registry.example/app:2"
                })
                .then_some(()))
        },
    )?;
    Ok(())
}

#[test]
fn python_client_deletes_with_propagation_policies_and_collections() -> anyhow::Result<()> {
    let f = Fixture::start()?;
    f.configmap("single", json!({}), json!({}))?;
    for name in ["old1", "old2"] {
        f.configmap(name, json!({"batch": "old"}), json!({}))?;
    }
    f.configmap("new1", json!({"batch": "new"}), json!({}))?;
    f.deployment("orphaned")?;
    f.deployment("foreground")?;
    let replica_set_of = |owner: &str| -> anyhow::Result<Option<Value>> {
        let sets = f.get(&format!(
            "/apis/apps/v1/namespaces/{NS}/replicasets?labelSelector=app%3D{owner}"
        ))?;
        Ok(items(&sets).into_iter().next())
    };
    for owner in ["orphaned", "foreground"] {
        wait_until(
            "the Deployment's ReplicaSet",
            Duration::from_secs(30),
            || replica_set_of(owner),
        )?;
    }

    let seen = f
        .python
        .run("delete.py", &[NS, "single", "orphaned", "foreground"])?;
    assert_eq!(
        seen["still_there"], "single",
        "a dry-run delete deleted: {seen}"
    );
    assert_eq!(seen["gone"], 404);
    assert_eq!(
        seen["deleted"],
        json!(["Success", "single", "configmaps"]),
        "the delete answers a Status"
    );
    assert_eq!(f.status_of(&format!("{}/single", configmaps()))?, 404);

    // deletecollection took what the selector matched, nothing else.
    assert_eq!(seen["collection_kind"], "ConfigMapList");
    let left = f.names(&configmaps())?;
    assert_eq!(strings(&seen["left"]), left);
    assert!(left.contains(&"new1".to_string()), "{left:?}");
    assert!(!left.iter().any(|n| n.starts_with("old")), "{left:?}");

    // Orphan: the Deployment goes, its ReplicaSet stays without the owner reference.
    wait_until(
        "the orphaned Deployment to go",
        Duration::from_secs(60),
        || Ok((f.status_of(&format!("{}/orphaned", deployments()))? == 404).then_some(())),
    )?;
    let orphan = replica_set_of("orphaned")?.context("the orphaned ReplicaSet is gone")?;
    assert!(
        orphan["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{orphan}"
    );

    // Foreground: answered while it waits on its `foregroundDeletion` finalizer, then the
    // ReplicaSet goes before the Deployment does.
    assert_eq!(
        strings(&seen["foreground_finalizers"]),
        ["foregroundDeletion"]
    );
    assert_eq!(seen["foreground_deleting"], true);
    wait_until(
        "the foreground Deployment to go",
        Duration::from_secs(90),
        || Ok((f.status_of(&format!("{}/foreground", deployments()))? == 404).then_some(())),
    )?;
    assert!(
        replica_set_of("foreground")?.is_none(),
        "its ReplicaSet outlived it"
    );
    Ok(())
}

#[test]
fn python_client_raises_api_exceptions_with_status_bodies() -> anyhow::Result<()> {
    let f = Fixture::start()?;
    f.configmap("taken", json!({}), json!({}))?;
    let seen = f.python.run("errors.py", &[NS])?;

    for (case, code, reason) in [
        ("not_found", 404, "NotFound"),
        ("already_exists", 409, "AlreadyExists"),
        ("invalid", 422, "Invalid"),
    ] {
        let error = &seen[case];
        assert_eq!(error["status"], code, "{case}: {error}");
        let body = &error["body"];
        assert_eq!(body["kind"], "Status", "{case}: {body}");
        assert_eq!(body["apiVersion"], "v1", "{case}: {body}");
        assert_eq!(body["status"], "Failure", "{case}: {body}");
        assert_eq!(body["code"], code, "{case}: {body}");
        assert_eq!(body["reason"], reason, "{case}: {body}");
        assert!(body["message"].is_string(), "{case}: {body}");
    }
    // As Kubernetes names them: the resource for NotFound and AlreadyExists, the kind for
    // Invalid.
    assert_eq!(seen["not_found"]["body"]["details"]["kind"], "configmaps");
    assert_eq!(
        seen["already_exists"]["body"]["details"]["kind"],
        "configmaps"
    );
    assert_eq!(seen["invalid"]["body"]["details"]["kind"], "ConfigMap");
    assert_eq!(seen["not_found"]["body"]["details"]["name"], "missing");
    assert_eq!(seen["already_exists"]["body"]["details"]["name"], "taken");
    let invalid = &seen["invalid"]["body"]["details"];
    assert_eq!(invalid["name"], "Not_Valid");
    assert_eq!(invalid["causes"][0]["field"], "metadata.name");
    Ok(())
}
