//! The web dashboard at `/ui`, driven in headless Chromium (Debian's `chromium` and
//! `chromium-driver`): without a cookie pages redirect to the login form; signing in with a
//! static token sets an HttpOnly, Secure, SameSite=Strict cookie that the API itself ignores;
//! the pods page lists a pod the API has, its page shows its log escaped; a new event appears
//! on the events page without a reload; a user who may view one namespace sees its pods and a
//! 403 across namespaces; a user without rights gets a 403 page; a sign-in posted from another
//! site is refused. Screenshots go to `target/tmp/dashboard/`.

use std::path::PathBuf;
use std::time::Duration;

use skiff_e2e::webdriver::Browser;
use skiff_e2e::{example, wait_until, DevServer};

/// An admin (`system:masters`), a user with no bindings at all, and one the test binds to
/// `view` in `default`.
const TOKENS: &str = "dash-admin-token,dash-admin,u-1,\"system:masters\"
nobody-token,nobody,u-2,
viewer-token,viewer,u-3,
";

const VIEWER_BINDING: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: viewer-view
  namespace: default
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- kind: User
  apiGroup: rbac.authorization.k8s.io
  name: viewer
";
/// How long a guest may take to run and its log to be readable.
const LOG_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the page may take to show what the API has.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

fn pod_manifest(wasm: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: dash-pod
  namespace: default
  labels:
    app: dash
spec:
  restartPolicy: Never
  containers:
  - name: hello
    image: file:{wasm}
    env:
    - name: GREETING_TARGET
      value: \"<script>document.title='pwned'</script>\"
"
    )
}

const EVENT: &str = "apiVersion: v1
kind: Event
metadata:
  name: dash-pod.live
  namespace: default
involvedObject:
  apiVersion: v1
  kind: Pod
  name: dash-pod
  namespace: default
reason: DashboardTest
type: Normal
message: \"<img src=x onerror='window.pwned=1'> dash-live-event\"
";

fn screenshots() -> anyhow::Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Signs in through the login form, and waits for the overview it leads to (a click returns
/// before the page it submits has loaded).
fn sign_in(browser: &Browser, url: &str, token: &str) -> anyhow::Result<()> {
    browser.goto(&format!("{url}/ui/login"))?;
    browser.find("#token")?.type_text(token)?;
    browser.find("#sign-in")?.click()?;
    wait_until("the overview after signing in", PAGE_TIMEOUT, || {
        Ok(browser.url()?.ends_with("/ui/").then_some(()))
    })
}

#[test]
fn the_dashboard_signs_in_with_a_token_and_shows_the_cluster_as_that_user() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let tokens = tmp.path().join("tokens.csv");
    std::fs::write(&tokens, TOKENS)?;
    let tokens_flag = tokens.display().to_string();
    let server = DevServer::start_with(
        &tmp.path().join("data"),
        true,
        &["--token-auth-file", &tokens_flag],
    )?;
    let url = server.url();
    let cli = server.cli();
    let hello = example("hello")
        .parent()
        .and_then(|dir| dir.parent())
        .map(|root| root.join("target/wasm32-wasip1/release/hello.wasm"))
        .expect("the examples' root");
    cli.apply_yaml(&pod_manifest(&hello.display().to_string()))?;

    // Without a cookie: the pages redirect to the form, and the API ignores the cookie.
    let plain = reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let anonymous = plain.get(format!("{url}/ui/pods")).send()?;
    assert_eq!(anonymous.status(), 303);
    assert_eq!(anonymous.headers()["location"], "/ui/login");
    let cookie = "skiff_ui_token=dash-admin-token";
    let api = plain
        .get(format!("{url}/api/v1/pods"))
        .header("cookie", cookie)
        .send()?;
    assert_eq!(
        api.status(),
        401,
        "the API must not read the dashboard's cookie"
    );
    let with_cookie = plain
        .get(format!("{url}/ui/pods"))
        .header("cookie", cookie)
        .send()?;
    assert_eq!(with_cookie.status(), 200);

    let shots = screenshots()?;
    let browser = Browser::start(&tmp.path().join("chromium"))?;
    browser.goto(&format!("{url}/ui/pods"))?;
    assert!(browser.url()?.ends_with("/ui/login"), "{}", browser.url()?);

    sign_in(&browser, &url, "dash-admin-token")?;
    assert!(browser.url()?.ends_with("/ui/"), "{}", browser.url()?);
    let cookies = browser.cookies()?;
    let session = cookies
        .iter()
        .find(|c| c["name"] == "skiff_ui_token")
        .unwrap_or_else(|| panic!("no dashboard cookie in {cookies:?}"));
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["secure"], true, "{session}");
    assert_eq!(session["sameSite"], "Strict", "{session}");
    assert_eq!(
        browser.execute("return document.cookie;")?,
        "",
        "scripts cannot read the token"
    );

    // The overview: this server is the leader of a one-member group, with the API's node count.
    let nodes = cli.items(&["get", "nodes"])?;
    let overview = browser.find("#raft-members")?.text()?;
    assert!(overview.contains("leader"), "{overview}");
    let count = browser.find("#node-count")?.text()?;
    assert!(
        count.starts_with(&format!("{} nodes", nodes.len())),
        "{count}"
    );
    browser.screenshot(&shots.join("overview.png"))?;

    // The nodes page lists the API's nodes; the workloads page has a table per kind.
    browser.goto(&format!("{url}/ui/nodes"))?;
    let listed = browser.find("main")?.text()?;
    for node in &nodes {
        let name = node["metadata"]["name"].as_str().unwrap_or_default();
        assert!(
            !name.is_empty() && listed.contains(name),
            "{name}: {listed}"
        );
    }
    browser.goto(&format!("{url}/ui/workloads?namespace=default"))?;
    let workloads = browser.find("main")?.text()?;
    for kind in [
        "Deployments",
        "ReplicaSets",
        "DaemonSets",
        "StatefulSets",
        "Jobs",
    ] {
        assert!(workloads.contains(kind), "{kind}: {workloads}");
    }

    // The pods page lists the pod as the API has it, labels included.
    browser.goto(&format!("{url}/ui/pods?namespace=default"))?;
    let row = browser.find("table.objects tbody tr")?.text()?;
    assert!(
        row.contains("dash-pod") && row.contains("app=dash"),
        "{row}"
    );
    browser.screenshot(&shots.join("pods.png"))?;

    // The pod's page shows its log, the guest's `<script>` as text.
    let log = wait_until("the pod's log on its page", LOG_TIMEOUT, || {
        browser.goto(&format!("{url}/ui/namespaces/default/pods/dash-pod"))?;
        let text = browser
            .find("pre.log")
            .and_then(|pre| pre.text())
            .unwrap_or_default();
        Ok(text.contains("Hello").then_some(text))
    })?;
    assert!(
        log.contains("<script>document.title='pwned'</script>"),
        "{log}"
    );
    assert_ne!(browser.execute("return document.title;")?, "pwned");
    browser.screenshot(&shots.join("pod.png"))?;

    // Events stream in live: one created after the page loaded appears without a reload.
    browser.goto(&format!("{url}/ui/events?namespace=default"))?;
    wait_until("the live stream to open", PAGE_TIMEOUT, || {
        Ok(browser
            .find("#live")?
            .text()?
            .starts_with("Live")
            .then_some(()))
    })?;
    cli.apply_yaml(EVENT)?;
    let live = wait_until("the new event on the page", PAGE_TIMEOUT, || {
        let rows = browser.execute(
            "return Array.from(document.querySelectorAll('tr.live')).map(r => r.textContent).join('\\n');",
        )?;
        let rows = rows.as_str().unwrap_or_default().to_string();
        Ok(rows.contains("dash-live-event").then_some(rows))
    })?;
    assert!(
        live.contains("<img src=x"),
        "the message is shown as text: {live}"
    );
    assert_eq!(browser.execute("return window.pwned === undefined;")?, true);
    browser.screenshot(&shots.join("events.png"))?;

    // A user who may view `default` only: that namespace's pods, a 403 with the namespace
    // chooser across all namespaces.
    cli.apply_yaml(VIEWER_BINDING)?;
    wait_until("the viewer's binding to take effect", PAGE_TIMEOUT, || {
        let page = plain
            .get(format!("{url}/ui/pods?namespace=default"))
            .header("cookie", "skiff_ui_token=viewer-token")
            .send()?;
        Ok((page.status() == 200).then_some(()))
    })?;
    browser.delete_cookies()?;
    sign_in(&browser, &url, "viewer-token")?;
    browser.goto(&format!("{url}/ui/pods?namespace=default"))?;
    let row = browser.find("table.objects tbody tr")?.text()?;
    assert!(row.contains("dash-pod"), "{row}");
    browser.goto(&format!("{url}/ui/pods"))?;
    let page = browser.find("main")?.text()?;
    assert!(
        page.contains("User \"viewer\" cannot list resource \"pods\"")
            && page.contains("Forbidden"),
        "{page}"
    );
    browser.find("#namespace")?.type_text("default")?;
    browser.find("form.namespace button")?.click()?;
    // The click returns before the form's page has loaded.
    wait_until("the chosen namespace's pods", PAGE_TIMEOUT, || {
        let row = browser
            .find("table.objects tbody tr")
            .and_then(|row| row.text())
            .unwrap_or_default();
        Ok(row.contains("dash-pod").then_some(()))
    })?;

    // A user without rights: the form signs them in, the pods page is a 403.
    browser.delete_cookies()?;
    sign_in(&browser, &url, "nobody-token")?;
    browser.goto(&format!("{url}/ui/pods"))?;
    let page = browser.find("main")?.text()?;
    assert!(page.contains("Forbidden"), "{page}");
    assert!(
        page.contains("User \"nobody\" cannot list resource \"pods\""),
        "{page}"
    );
    browser.screenshot(&shots.join("forbidden.png"))?;
    let refused = plain
        .get(format!("{url}/ui/pods"))
        .header("cookie", "skiff_ui_token=nobody-token")
        .send()?;
    assert_eq!(refused.status(), 403);
    // A wrong token gets the form again with the reason.
    let wrong = plain
        .post(format!("{url}/ui/login"))
        .form(&[("token", "not-a-token")])
        .send()?;
    assert_eq!(wrong.status(), 401);
    // A sign-in posted from another site's page is refused.
    let cross = plain
        .post(format!("{url}/ui/login"))
        .header("origin", "https://evil.example")
        .form(&[("token", "dash-admin-token")])
        .send()?;
    assert_eq!(cross.status(), 403);
    assert!(cross.headers().get("set-cookie").is_none());
    Ok(())
}
