//! `skiff server --token-auth-file`: a static token authenticates the CLI as its user, given
//! with `--token` or in a kubeconfig's `user.token`; RBAC decides for that user (403 without a
//! binding, allowed with one); a wrong token gets 401.

use std::time::Duration;

use skiff_e2e::{wait_until, DevServer};

const TOKENS: &str = "# token,user,uid,groups\ntina-token,tina,u-7,\"writers\"\n";

const BINDING: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: writers-edit
  namespace: default
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: edit
subjects:
- kind: Group
  apiGroup: rbac.authorization.k8s.io
  name: writers
";

/// A kubeconfig for `server` with the admin kubeconfig's CA and `token` as the credential.
fn token_kubeconfig(admin: &str, server: &str, token: &str) -> anyhow::Result<String> {
    let ca = admin
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data:"))
        .map(|v| v.trim().trim_matches('"').to_string())
        .ok_or_else(|| anyhow::anyhow!("no CA in the admin kubeconfig:\n{admin}"))?;
    Ok(format!(
        "apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: tina
  user:
    token: {token}
contexts:
- name: tina
  context:
    cluster: c
    user: tina
current-context: tina
"
    ))
}

#[test]
fn a_static_token_authenticates_the_cli_and_rbac_decides_for_its_user() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let tokens = tmp.path().join("tokens.csv");
    std::fs::write(&tokens, TOKENS)?;
    let data = tmp.path().join("data");
    let tokens_flag = tokens.display().to_string();
    let server = DevServer::start_with(&data, false, &["--token-auth-file", &tokens_flag])?;
    let cli = server.cli();

    let refused = cli.run(&["--token", "tina-token", "get", "configmaps"])?;
    assert!(!refused.success, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("User \"tina\" cannot list resource \"configmaps\""),
        "{refused:?}"
    );
    let wrong = cli.run(&["--token", "tina-tokem", "get", "configmaps"])?;
    assert!(!wrong.success, "{wrong:?}");
    assert!(wrong.stderr.contains("Unauthorized"), "{wrong:?}");

    let admin = std::fs::read_to_string(data.join("admin.kubeconfig"))?;
    let kubeconfig = tmp.path().join("tina.kubeconfig");
    std::fs::write(
        &kubeconfig,
        token_kubeconfig(&admin, &server.url(), "tina-token")?,
    )?;
    let kubeconfig_flag = kubeconfig.display().to_string();
    let as_tina = |args: &[&str]| {
        let mut all = vec!["--kubeconfig", kubeconfig_flag.as_str()];
        all.extend(args);
        cli.run(&all)
    };
    let before = as_tina(&["get", "configmaps"])?;
    assert!(
        before.stderr.contains("User \"tina\""),
        "the kubeconfig's token was not used: {before:?}"
    );

    cli.run_with_stdin(&["apply", "-f", "-"], Some(BINDING))
        .and_then(|out| {
            anyhow::ensure!(out.success, "{out:?}");
            Ok(())
        })?;
    wait_until(
        "tina may apply a ConfigMap",
        Duration::from_secs(10),
        || {
            let out = cli.run_with_stdin(
                &["--token", "tina-token", "apply", "-f", "-"],
                Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  k: v\n"),
            )?;
            Ok(out.success.then_some(()))
        },
    )?;
    let listed = as_tina(&["get", "configmaps"])?;
    assert!(
        listed.success && listed.stdout.contains("notes"),
        "{listed:?}"
    );
    // The binding is in `default` only.
    let elsewhere = as_tina(&["get", "configmaps", "-n", "kube-system"])?;
    assert!(!elsewhere.success, "{elsewhere:?}");
    Ok(())
}
