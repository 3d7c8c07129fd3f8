//! Stock kubectl 1.32 writes built-in kinds as Kubernetes protobuf (typed client-go clients
//! send `application/vnd.kubernetes.protobuf`): `create configmap|secret|deployment|service|
//! role|token`, `scale`; the objects read back as JSON are what was asked. A client that
//! accepts only protobuf gets protobuf answers, errors included.

use skiff_e2e::{https_client, kubectl, kubectl_output, DevServer};

#[test]
fn stock_kubectl_creates_built_in_kinds_in_protobuf() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let (url, cache) = (server.url(), tmp.path().join("kube-cache"));
    let k = |args: &[&str]| kubectl(&url, &cache, args);
    let jsonpath = |what: &[&str], path: &str| {
        let output = format!("jsonpath={path}");
        let mut args = vec!["get"];
        args.extend(what);
        args.extend(["-o", &output]);
        k(&args)
    };

    // The body is protobuf: kubectl says so at -v=8.
    let traced = kubectl_output(
        &url,
        &cache,
        &[
            "create",
            "configmap",
            "app",
            "--from-literal=greeting=hello",
            "-v=8",
        ],
    )?;
    let trace = String::from_utf8_lossy(&traced.stderr);
    assert!(traced.status.success(), "{trace}");
    assert!(
        trace.contains("Content-Type: application/vnd.kubernetes.protobuf"),
        "kubectl sent no protobuf: {trace}"
    );
    assert_eq!(jsonpath(&["cm", "app"], "{.data.greeting}")?, "hello");

    // Secret data are bytes (base64 in JSON).
    k(&[
        "create",
        "secret",
        "generic",
        "db",
        "--from-literal=password=hunter2",
    ])?;
    assert_eq!(
        jsonpath(&["secret", "db"], "{.data.password}")?,
        "aHVudGVyMg=="
    );

    // IntOrString and defaults of a Deployment; the pod template's container.
    k(&[
        "create",
        "deployment",
        "web",
        "--image=registry.example/app:1",
        "--replicas=0",
    ])?;
    assert_eq!(
        jsonpath(
            &["deploy", "web"],
            "{.spec.template.spec.containers[0].image}"
        )?,
        "registry.example/app:1"
    );
    assert_eq!(jsonpath(&["deploy", "web"], "{.spec.replicas}")?, "0");
    assert_eq!(
        jsonpath(
            &["deploy", "web"],
            "{.spec.strategy.rollingUpdate.maxSurge}"
        )?,
        "25%"
    );
    k(&["scale", "deploy", "web", "--replicas=2"])?;
    assert_eq!(jsonpath(&["deploy", "web"], "{.spec.replicas}")?, "2");

    k(&["create", "service", "clusterip", "web", "--tcp=80:8080"])?;
    assert_eq!(
        jsonpath(&["svc", "web"], "{.spec.ports[0].targetPort}")?,
        "8080"
    );

    // An empty string in a list (the core API group) stays one.
    k(&["create", "role", "reader", "--verb=get", "--resource=pods"])?;
    assert_eq!(
        jsonpath(&["role", "reader"], "{.rules[0].apiGroups}")?,
        r#"[""]"#
    );

    k(&["create", "serviceaccount", "bot"])?;
    let token = k(&["create", "token", "bot"])?;
    assert_eq!(token.trim().split('.').count(), 3, "not a JWT: {token}");
    Ok(())
}

#[test]
fn a_client_that_accepts_only_protobuf_gets_protobuf() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start(&tmp.path().join("data"))?;
    let (url, cache) = (server.url(), tmp.path().join("kube-cache"));
    kubectl(
        &url,
        &cache,
        &["create", "configmap", "app", "--from-literal=a=b"],
    )?;
    let http = https_client(&url)?;
    let get = |path: &str| {
        http.get(format!("{url}{path}"))
            .header("Accept", "application/vnd.kubernetes.protobuf")
            .send()
    };
    let protobuf = |response: &reqwest::blocking::Response| {
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            == Some("application/vnd.kubernetes.protobuf")
    };

    let found = get("/api/v1/namespaces/default/configmaps/app")?;
    assert_eq!(found.status(), 200);
    assert!(protobuf(&found));
    let object = skiff_control_plane::protobuf::decode(&found.bytes()?)?;
    assert_eq!(object["kind"], "ConfigMap");
    assert_eq!(object["metadata"]["name"], "app");
    assert_eq!(object["data"]["a"], "b");

    let missing = get("/api/v1/namespaces/default/configmaps/nothing")?;
    assert_eq!(missing.status(), 404);
    assert!(protobuf(&missing));
    let status = skiff_control_plane::protobuf::decode(&missing.bytes()?)?;
    assert_eq!(
        (status["kind"].as_str(), status["reason"].as_str()),
        (Some("Status"), Some("NotFound"))
    );

    // The same request offering JSON too is answered in JSON.
    let json = http
        .get(format!("{url}/api/v1/namespaces/default/configmaps/app"))
        .header(
            "Accept",
            "application/vnd.kubernetes.protobuf,application/json",
        )
        .send()?;
    let object: serde_json::Value = json.json()?;
    assert_eq!(object["data"]["a"], "b");
    Ok(())
}
