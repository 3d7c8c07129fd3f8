//! ServiceAccount tokens end to end on a dev server: a pod running the `volumes` Wasm guest
//! finds its projected token, namespace and CA at the standard path (admission added the
//! volume, the agent asked TokenRequest for a token bound to the pod); the token from its log
//! authenticates as `system:serviceaccount:default:default` (`skiff auth whoami`), gets 403
//! listing pods until a RoleBinding grants `view`, and is refused (401) once the pod is gone;
//! `skiff get sa` lists the `default` account and `skiff create token` prints a token, one
//! bound to a Secret (`--bound-object-kind Secret`) refused once the Secret is deleted, and a
//! `kubernetes.io/service-account-token` Secret is filled with a legacy token that is the
//! account, marked with the day of its last use, and refused once its account is being deleted.

use std::path::Path;
use std::time::Duration;

use base64::Engine;

use skiff_e2e::{copy_example_guest, wait_until, DevServer, Skiff};

const WAIT: Duration = Duration::from_secs(40);
const MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// A kubeconfig `dir/NAME.kubeconfig` for `url` that authenticates with `token` and trusts
/// `ca`; its path.
fn token_kubeconfig(
    dir: &Path,
    name: &str,
    url: &str,
    ca: &Path,
    token: &str,
) -> anyhow::Result<String> {
    let path = dir.join(format!("{name}.kubeconfig"));
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: skiff\n  cluster:\n    server: {url}\n    \
         certificate-authority: {ca}\nusers:\n- name: robot\n  user:\n    token: {token}\n\
         contexts:\n- name: robot\n  context: {{cluster: skiff, user: robot}}\n\
         current-context: robot\n",
        ca = ca.display()
    );
    std::fs::write(&path, yaml)?;
    Ok(path.display().to_string())
}

/// The value of the `PATH: CONTENT` line the guest printed for `path`, once it is not an error.
fn printed(cli: &Skiff, path: &str) -> anyhow::Result<String> {
    wait_until(&format!("reader to print {path}"), WAIT, || {
        let out = cli.run(&["logs", "reader"])?;
        let prefix = format!("{path}: ");
        match out.stdout.lines().find_map(|l| l.strip_prefix(&prefix)) {
            Some(value) if !value.starts_with("error:") => Ok(Some(value.to_string())),
            _ => anyhow::bail!("printed so far: {}{}", out.stdout, out.stderr),
        }
    })
}

/// The legacy token the tokens controller fills token Secret `name` with, once it has.
fn filled_token(cli: &Skiff, name: &str) -> anyhow::Result<String> {
    let token = wait_until(&format!("token Secret {name} to be filled"), WAIT, || {
        let secret = cli.json(&["get", "secret", name])?;
        Ok(secret["data"]["token"].as_str().map(str::to_string))
    })?;
    Ok(String::from_utf8(
        base64::engine::general_purpose::STANDARD.decode(token)?,
    )?)
}

#[test]
fn a_pod_token_is_its_service_account_until_the_pod_goes() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let guests = tmp.path().join("guests");
    let data = tmp.path().join("data");
    let server = DevServer::start_with_guests(&data, &guests, &[])?;
    let image = copy_example_guest(&guests, "volumes")?;
    let cli = server.cli();
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: reader}}\nspec:\n  containers:\n  \
         - name: reader\n    image: \"file:{image}\"\n    \
         args: [watch, {MOUNT}/token, {MOUNT}/namespace, {MOUNT}/ca.crt]\n"
    );
    cli.apply_yaml(&pod)?;

    let token = printed(&cli, &format!("{MOUNT}/token"))?;
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    // The kubelet's token for the API server lasts a year and says when it should have been
    // refreshed (the 3607 s asked for), as Kubernetes extends it.
    let payload = token.split('.').nth(1).expect("claims");
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?;
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(
        claims["exp"].as_i64(),
        Some(iat + 365 * 24 * 3600),
        "{claims}"
    );
    assert_eq!(
        claims["kubernetes.io"]["warnafter"].as_i64(),
        Some(iat + 3607),
        "{claims}"
    );
    assert_eq!(printed(&cli, &format!("{MOUNT}/namespace"))?, "default");
    let ca = printed(&cli, &format!("{MOUNT}/ca.crt"))?;
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");

    let ca = data.join("tls/ca.crt");
    let kubeconfig = token_kubeconfig(tmp.path(), "pod", &server.url(), &ca, &token)?;
    let as_robot = |args: &[&str]| {
        let mut all = vec!["--kubeconfig", kubeconfig.as_str()];
        all.extend(args);
        cli.run(&all)
    };
    let me = as_robot(&["auth", "whoami", "-o", "json"])?;
    anyhow::ensure!(me.success, "whoami: {me:?}");
    let me: serde_json::Value = serde_json::from_str(&me.stdout)?;
    assert_eq!(me["username"], "system:serviceaccount:default:default");
    assert!(me["groups"]
        .as_array()
        .is_some_and(|g| g.iter().any(|g| g == "system:serviceaccounts:default")));

    let denied = as_robot(&["get", "pods"])?;
    assert!(!denied.success, "{denied:?}");
    assert!(denied.stderr.contains("forbidden"), "{denied:?}");
    cli.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: robot-view}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\n\
         subjects:\n- {kind: ServiceAccount, name: default, namespace: default}\n",
    )?;
    wait_until("the binding to let the token list pods", WAIT, || {
        let out = as_robot(&["get", "pods"])?;
        anyhow::ensure!(out.success, "{out:?}");
        Ok(out.stdout.contains("reader").then_some(()))
    })?;

    // `skiff get sa` and `skiff create token` as kubectl's.
    let accounts = cli.ok(&["get", "sa"])?;
    assert!(
        accounts.starts_with("NAME") && accounts.contains("default"),
        "{accounts}"
    );
    let made = cli.ok(&["create", "token", "default", "--duration", "20m"])?;
    let made = made.trim();
    assert_eq!(made.split('.').count(), 3, "{made}");
    let short = cli.run(&["create", "token", "default", "--duration", "5m"])?;
    assert!(!short.success, "a 5-minute token: {short:?}");

    // kubectl's `--bound-object-kind`: a token bound to a Secret dies with the Secret.
    cli.apply_yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: holder}\n")?;
    let held = cli.ok(&[
        "create",
        "token",
        "default",
        "--bound-object-kind",
        "Secret",
        "--bound-object-name",
        "holder",
    ])?;
    let whoami_with = |config: &str| cli.run(&["--kubeconfig", config, "auth", "whoami"]);
    let held_config = token_kubeconfig(tmp.path(), "held", &server.url(), &ca, held.trim())?;
    let as_holder = || whoami_with(&held_config);
    let me = as_holder()?;
    anyhow::ensure!(me.success, "whoami with the Secret's token: {me:?}");
    cli.ok(&["delete", "secret", "holder"])?;
    wait_until("the Secret's token to be refused", WAIT, || {
        let out = as_holder()?;
        anyhow::ensure!(!out.success, "still accepted: {out:?}");
        Ok(Some(()))
    })?;

    // A long-lived token, as Kubernetes makes one: a token Secret the controller fills.
    cli.apply_yaml(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: ci-token, annotations: \
         {kubernetes.io/service-account.name: default}}\ntype: kubernetes.io/service-account-token\n",
    )?;
    let legacy = filled_token(&cli, "ci-token")?;
    let legacy_config = token_kubeconfig(tmp.path(), "legacy", &server.url(), &ca, &legacy)?;
    let me = whoami_with(&legacy_config)?;
    anyhow::ensure!(me.success, "whoami with the legacy token: {me:?}");
    assert!(
        me.stdout.contains("system:serviceaccount:default:default"),
        "{me:?}"
    );
    // Its use is tracked, as Kubernetes' legacy token tracking does it: the Secret carries
    // the day (UTC) the token was last used.
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    wait_until("the token Secret to be marked used", WAIT, || {
        let secret = cli.json(&["get", "secret", "ci-token"])?;
        let used = &secret["metadata"]["labels"]["kubernetes.io/legacy-token-last-used"];
        Ok(used.as_str().filter(|day| *day >= today.as_str()).map(drop))
    })?;

    // An account being deleted (a finalizer holds it) vouches for its legacy tokens no more.
    cli.apply_yaml(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: deployer, finalizers: [example.com/hold]}\n\
         ---\napiVersion: v1\nkind: Secret\nmetadata: {name: deployer-token, annotations: \
         {kubernetes.io/service-account.name: deployer}}\ntype: kubernetes.io/service-account-token\n",
    )?;
    let deployer = filled_token(&cli, "deployer-token")?;
    let deployer_config = token_kubeconfig(tmp.path(), "deployer", &server.url(), &ca, &deployer)?;
    let me = whoami_with(&deployer_config)?;
    anyhow::ensure!(me.success, "whoami with the deployer's token: {me:?}");
    cli.ok(&["delete", "serviceaccount", "deployer"])?;
    wait_until("the deleting account's token to be refused", WAIT, || {
        let out = whoami_with(&deployer_config)?;
        anyhow::ensure!(!out.success, "still accepted: {out:?}");
        Ok(Some(()))
    })?;

    cli.ok(&["delete", "pod", "reader", "--grace-period", "0"])?;
    wait_until("the token to be refused", WAIT, || {
        let out = as_robot(&["auth", "whoami"])?;
        if out.success {
            anyhow::bail!("still accepted: {out:?}");
        }
        anyhow::ensure!(
            out.stderr.contains("401") || out.stderr.contains("nauthorized"),
            "{out:?}"
        );
        Ok(Some(()))
    })?;
    Ok(())
}
