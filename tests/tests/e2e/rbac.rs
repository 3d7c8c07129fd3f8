//! RBAC against a real server: a user with no binding gets 403 naming user, verb and resource
//! and nothing is written; a RoleBinding to `view` lets them read one namespace only (once the
//! aggregation controller has filled `view`); `skiff auth can-i` and stock `kubectl auth can-i`
//! answer the same, `--list` included. A user who manages Roles cannot grant more than he
//! holds (escalation prevention). The admin acts as the user with `--as` (impersonation).

use std::time::Duration;

use skiff_e2e::Skiff;
use skiff_e2e::{kubectl_output, wait_until, DevServer};

/// `skiff auth can-i ARGS` as `user`: its answer, checked against its exit code.
fn can_i(cli: &Skiff, user: Option<&str>, args: &[&str]) -> anyhow::Result<bool> {
    let mut all = vec!["auth", "can-i"];
    all.extend(args);
    if let Some(user) = user {
        all.extend(["--as", user]);
    }
    let out = cli.run(&all)?;
    let answer = out.stdout.trim();
    anyhow::ensure!(
        (answer == "yes" && out.code == Some(0)) || (answer == "no" && out.code == Some(1)),
        "skiff {all:?}: {out:?}"
    );
    Ok(answer == "yes")
}

const CONFIG_MAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: prod
";

const BINDING: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: bob-views
  namespace: team
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- kind: User
  apiGroup: rbac.authorization.k8s.io
  name: bob
";

#[test]
fn users_get_403_without_a_binding_and_read_one_namespace_with_one() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start_with(&tmp.path().join("data"), false, &[])?;
    let cli = server.cli();

    assert!(can_i(&cli, None, &["create", "pods"])?);
    assert!(can_i(&cli, None, &["get", "/skiff/v1/backup"])?);
    assert!(!can_i(&cli, Some("bob"), &["list", "pods"])?);
    assert!(!can_i(&cli, Some("bob"), &["get", "/skiff/v1/backup"])?);
    // Every user may discover the API.
    assert!(can_i(&cli, Some("bob"), &["get", "/apis/apps/v1"])?);

    // A write without a binding: 403 naming user, verb and resource; nothing stored.
    let refused = cli.run_with_stdin(&["--as", "bob", "apply", "-f", "-"], Some(CONFIG_MAP))?;
    assert!(!refused.success, "{refused:?}");
    assert!(
        refused.stderr.contains(
            "User \"bob\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"default\""
        ),
        "{}",
        refused.stderr
    );
    let missing = cli.run(&["get", "configmap", "settings"])?;
    assert!(!missing.success, "the ConfigMap was written: {missing:?}");
    let everywhere = cli.run(&["--as", "bob", "get", "pods", "-A"])?;
    assert!(
        everywhere.stderr.contains(
            "User \"bob\" cannot list resource \"pods\" in API group \"\" at the cluster scope"
        ),
        "{everywhere:?}"
    );

    // Backups and member changes are for admins only.
    let file = tmp.path().join("backup.skiff");
    let backup = cli.run(&[
        "--as",
        "bob",
        "backup",
        "save",
        file.to_str().expect("utf-8"),
    ])?;
    assert!(
        !backup.success
            && backup
                .stderr
                .contains("User \"bob\" cannot get path \"/skiff/v1/backup\""),
        "{backup:?}"
    );
    assert!(!file.exists(), "a refused backup left a file");
    let remove = cli.run(&["--as", "bob", "cluster", "remove", "default"])?;
    assert!(
        !remove.success && remove.stderr.contains("forbidden"),
        "{remove:?}"
    );

    // A RoleBinding to the aggregated `view` role in `team`.
    cli.apply_yaml("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n")?;
    cli.apply_yaml(BINDING)?;
    wait_until("bob may list pods in team", Duration::from_secs(20), || {
        Ok(can_i(&cli, Some("bob"), &["list", "pods", "-n", "team"])?.then_some(()))
    })?;
    cli.ok(&["--as", "bob", "get", "pods", "-n", "team"])?;
    assert!(can_i(
        &cli,
        Some("bob"),
        &["get", "deployments.apps", "-n", "team"]
    )?);
    assert!(!can_i(
        &cli,
        Some("bob"),
        &["create", "deployments", "-n", "team"]
    )?);
    assert!(!can_i(
        &cli,
        Some("bob"),
        &["get", "secrets", "-n", "team"]
    )?);
    assert!(!can_i(
        &cli,
        Some("bob"),
        &["list", "pods", "-n", "default"]
    )?);
    assert!(!can_i(&cli, Some("bob"), &["list", "pods", "-A"])?);
    let elsewhere = cli.run(&["--as", "bob", "get", "pods", "-n", "default"])?;
    assert!(
        !elsewhere.success && elsewhere.stderr.contains("forbidden"),
        "{elsewhere:?}"
    );

    // Stock kubectl asks the same question the same way (a SelfSubjectAccessReview).
    let cache = tmp.path().join("kube-cache");
    let kubectl_can_i = |args: &[&str]| -> anyhow::Result<(String, Option<i32>)> {
        let mut all = vec!["auth", "can-i"];
        all.extend(args);
        let out = kubectl_output(&server.url(), &cache, &all)?;
        Ok((
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            out.status.code(),
        ))
    };
    assert_eq!(
        kubectl_can_i(&["list", "pods", "-n", "team", "--as", "bob"])?,
        ("yes".to_string(), Some(0))
    );
    assert_eq!(
        kubectl_can_i(&["list", "pods", "-n", "default", "--as", "bob"])?,
        ("no".to_string(), Some(1))
    );

    // `--list` (a SelfSubjectRulesReview): view's rules in team, discovery URLs, no secrets.
    let row = |listed: &str, resource: &str| -> Option<String> {
        listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(resource))
            .map(str::to_string)
    };
    for listed in [
        cli.ok(&["--as", "bob", "auth", "can-i", "--list", "-n", "team"])?,
        kubectl_can_i(&["--list", "-n", "team", "--as", "bob"])?.0,
    ] {
        let pods = row(&listed, "pods").unwrap_or_default();
        assert!(
            pods.contains("get") && pods.contains("list") && !pods.contains("delete"),
            "{listed}"
        );
        assert!(row(&listed, "deployments.apps").is_some(), "{listed}");
        assert!(row(&listed, "secrets").is_none(), "{listed}");
        assert!(listed.contains("[/healthz]"), "{listed}");
    }
    let elsewhere = cli.ok(&["--as", "bob", "auth", "can-i", "--list", "-n", "default"])?;
    assert!(row(&elsewhere, "pods").is_none(), "{elsewhere}");
    Ok(())
}

/// Lets bob manage Roles and RoleBindings in `team` (as `admin` does: not `*`, which would
/// include `escalate` and `bind`).
const ROLE_MANAGER: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: role-manager
  namespace: team
rules:
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [create, get, list, update, patch, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: bob-manages-roles
  namespace: team
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: role-manager
subjects:
- kind: User
  apiGroup: rbac.authorization.k8s.io
  name: bob
";

/// A Role reading pods (held by bob through `view`) and, with `extra`, secrets (not held).
fn reader_role(extra: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: reader
  namespace: team
rules:
- apiGroups: ['']
  resources: [pods{extra}]
  verbs: [get, list]
"
    )
}

/// A RoleBinding making bob a subject of `kind`/`name` in `team`.
fn bob_binding(name: &str, kind: &str, role: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {name}
  namespace: team
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: {kind}
  name: {role}
subjects:
- kind: User
  apiGroup: rbac.authorization.k8s.io
  name: bob
"
    )
}

#[test]
fn role_managers_cannot_grant_what_they_do_not_hold() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start_with(&tmp.path().join("data"), false, &[])?;
    let cli = server.cli();
    cli.apply_yaml("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n")?;
    cli.apply_yaml(BINDING)?;
    cli.apply_yaml(ROLE_MANAGER)?;
    wait_until("bob may create roles", Duration::from_secs(20), || {
        let roles = can_i(&cli, Some("bob"), &["create", "roles", "-n", "team"])?;
        let pods = can_i(&cli, Some("bob"), &["list", "pods", "-n", "team"])?;
        Ok((roles && pods).then_some(()))
    })?;
    let as_bob = |yaml: &str| cli.run_with_stdin(&["--as", "bob", "apply", "-f", "-"], Some(yaml));

    // A Role with a permission bob lacks is refused, naming what is missing; nothing stored.
    let refused = as_bob(&reader_role(", secrets"))?;
    assert!(!refused.success, "{refused:?}");
    assert!(
        refused.stderr.contains("user \"bob\"")
            && refused
                .stderr
                .contains("attempting to grant RBAC permissions not currently held")
            && refused
                .stderr
                .contains(r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}"#)
            && !refused.stderr.contains(r#"Resources:["pods"]"#),
        "{}",
        refused.stderr
    );
    assert!(!cli.run(&["get", "role", "reader", "-n", "team"])?.success);

    // What bob holds he may give; binding himself to it changes nothing.
    let allowed = as_bob(&reader_role(""))?;
    assert!(allowed.success, "{allowed:?}");
    let bound = as_bob(&bob_binding("bob-reads", "Role", "reader"))?;
    assert!(bound.success, "{bound:?}");

    // Widening the Role by a patch is refused too, whatever the patch type (kubectl's
    // default is a strategic merge patch), and leaves it as it was.
    let patch =
        r#"{"rules":[{"apiGroups":[""],"resources":["pods","secrets"],"verbs":["get","list"]}]}"#;
    let cache = tmp.path().join("kube-cache");
    for patch_type in ["merge", "strategic"] {
        let patched = kubectl_output(
            &server.url(),
            &cache,
            &[
                "--as", "bob", "patch", "role", "reader", "-n", "team", "--type", patch_type, "-p",
                patch,
            ],
        )?;
        let patch_error = String::from_utf8_lossy(&patched.stderr);
        assert!(
            !patched.status.success() && patch_error.contains("not currently held"),
            "{patch_type}: {patch_error}"
        );
    }
    let stored = cli.ok(&["get", "role", "reader", "-n", "team", "-o", "json"])?;
    assert!(!stored.contains("secrets"), "{stored}");

    // Binding a role with more than bob holds (`admin`) is refused...
    let admin = as_bob(&bob_binding("bob-admin", "ClusterRole", "admin"))?;
    assert!(
        !admin.success && admin.stderr.contains("not currently held"),
        "{admin:?}"
    );
    assert!(!can_i(
        &cli,
        Some("bob"),
        &["get", "secrets", "-n", "team"]
    )?);

    // ...unless bob may `bind` it; `escalate` lets him write any Role.
    cli.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: delegator
rules:
- apiGroups: [rbac.authorization.k8s.io]
  resources: [clusterroles]
  resourceNames: [admin]
  verbs: [bind]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles]
  verbs: [escalate]
",
    )?;
    cli.apply_yaml(&bob_binding("bob-delegates", "ClusterRole", "delegator"))?;
    wait_until("bob may escalate", Duration::from_secs(20), || {
        Ok(as_bob(&reader_role(", secrets"))?.success.then_some(()))
    })?;
    let stored = cli.ok(&["get", "role", "reader", "-n", "team", "-o", "json"])?;
    assert!(stored.contains("secrets"), "{stored}");
    let admin = as_bob(&bob_binding("bob-admin", "ClusterRole", "admin"))?;
    assert!(admin.success, "{admin:?}");
    Ok(())
}

/// The admin acts as a user with a uid and extra fields, and as a ServiceAccount (which is
/// then in its account's groups), with `skiff --as ...` and with a kubeconfig's impersonation
/// fields (`as`, `as-uid`, `as-user-extra`), read by `skiff` and by stock kubectl.
#[test]
fn impersonation_carries_a_uid_extra_fields_and_an_accounts_groups() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start_with(&tmp.path().join("data"), false, &[])?;
    let cli = server.cli();
    let bob = cli.ok(&[
        "--as",
        "bob",
        "--as-uid",
        "u-1",
        "--as-user-extra",
        "acme.com/project=web",
        "auth",
        "whoami",
    ])?;
    let row = |out: &str, name: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row(&bob, "Username").ends_with("bob"), "{bob}");
    assert!(row(&bob, "UID").ends_with("u-1"), "{bob}");
    assert!(
        row(&bob, "Extra: acme.com/project").ends_with("[web]"),
        "{bob}"
    );
    let robot = cli.ok(&["--as", "system:serviceaccount:team:robot", "auth", "whoami"])?;
    let groups = row(&robot, "Groups");
    assert!(
        groups.contains("system:serviceaccounts:team") && groups.contains("system:authenticated"),
        "{robot}"
    );

    // Stock kubectl with the admin's kubeconfig, impersonating from its user entry.
    let admin = skiff_e2e::kubeconfig_for(&server.url()).expect("the admin kubeconfig");
    let text = std::fs::read_to_string(&admin)?;
    let (head, user) = text
        .split_once("  user:\n")
        .ok_or_else(|| anyhow::anyhow!("no user entry in {text}"))?;
    let as_bob = tmp.path().join("as-bob.kubeconfig");
    std::fs::write(
        &as_bob,
        format!(
            "{head}  user:\n    as: bob\n    as-uid: u-2\n    as-user-extra:\n      \
             acme.com/project: [web, api]\n{user}"
        ),
    )?;
    let from_config = cli.ok(&[
        "--kubeconfig",
        &as_bob.display().to_string(),
        "auth",
        "whoami",
    ])?;
    assert!(
        row(&from_config, "Username").ends_with("bob"),
        "{from_config}"
    );
    assert!(
        row(&from_config, "Extra: acme.com/project").ends_with("[web api]"),
        "{from_config}"
    );
    let cache = tmp.path().join("kube-cache");
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&as_bob)
        .arg("--cache-dir")
        .arg(&cache)
        .args(["auth", "whoami", "-o", "json"])
        .output()?;
    anyhow::ensure!(out.status.success(), "kubectl auth whoami: {out:?}");
    let review: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let info = &review["status"]["userInfo"];
    assert_eq!(info["username"], "bob", "{review}");
    assert_eq!(info["uid"], "u-2", "{review}");
    assert_eq!(
        info["extra"]["acme.com/project"],
        serde_json::json!(["web", "api"]),
        "{review}"
    );
    Ok(())
}
