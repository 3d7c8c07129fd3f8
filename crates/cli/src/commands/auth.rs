//! `skiff auth can-i VERB TYPE[/NAME] [NAME]`: asks the server (a SelfSubjectAccessReview)
//! whether the current user, or the one `--as` names, may do something; prints `yes` or `no`
//! and exits 0 or 1, as `kubectl auth can-i` does. `skiff auth whoami` prints who the server
//! takes the caller for (a SelfSubjectReview), as `kubectl auth whoami` does.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::cli::ClientOpts;

#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// Check whether an action is allowed: `skiff auth can-i list pods -n team`,
    /// `skiff auth can-i get /skiff/v1/backup`; `skiff auth can-i --list` lists what is.
    CanI(CanIArgs),
    /// Print who the server takes you for: user name, uid and groups.
    Whoami(WhoamiArgs),
}

#[derive(Args, Debug)]
pub struct WhoamiArgs {
    /// `json` or `yaml` for the review's userInfo; a table by default.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Args, Debug)]
pub struct CanIArgs {
    /// The verb: get, list, watch, create, update, patch, delete, deletecollection, `*`, ...
    #[arg(required_unless_present = "list")]
    pub verb: Option<String>,
    /// `TYPE`, `TYPE/NAME` or `TYPE NAME` (`pods`, `deployments.apps/web`, `*`), or a
    /// non-resource URL such as `/healthz`.
    #[arg(num_args = 1..=2, required_unless_present = "list")]
    pub target: Vec<String>,
    /// List every action allowed in the namespace (a SelfSubjectRulesReview), as
    /// `kubectl auth can-i --list` does.
    #[arg(long, conflicts_with_all = ["verb", "all_namespaces", "subresource"])]
    pub list: bool,
    /// In every namespace, not only `-n`'s.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// A subresource, e.g. `log` for `pods/log`.
    #[arg(long)]
    pub subresource: Option<String>,
}

pub async fn run(command: AuthCommand, opts: &ClientOpts) -> anyhow::Result<()> {
    match command {
        AuthCommand::CanI(args) => can_i(args, opts).await,
        AuthCommand::Whoami(args) => whoami(args, opts).await,
    }
}

async fn whoami(args: WhoamiArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let user = super::client(opts)?.whoami().await?;
    match args.output.as_deref() {
        Some("json") => println!("{}", serde_json::to_string_pretty(&user)?),
        Some("yaml") => print!("{}", serde_yaml_ng::to_string(&user)?),
        Some(other) => anyhow::bail!("unknown output format {other:?}: use json or yaml"),
        None => print!("{}", whoami_table(&user)),
    }
    Ok(())
}

/// `kubectl auth whoami`'s table: ATTRIBUTE and VALUE rows.
fn whoami_table(user: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut rows = vec![vec!["Username".to_string(), text(&user["username"])]];
    if let Some(uid) = user["uid"].as_str() {
        rows.push(vec!["UID".to_string(), uid.to_string()]);
    }
    let groups: Vec<String> = user["groups"]
        .as_array()
        .map(|g| g.iter().map(text).collect())
        .unwrap_or_default();
    rows.push(vec![
        "Groups".to_string(),
        format!("[{}]", groups.join(" ")),
    ]);
    for (key, values) in user["extra"].as_object().into_iter().flatten() {
        let values: Vec<String> = values.as_array().into_iter().flatten().map(text).collect();
        rows.push(vec![
            format!("Extra: {key}"),
            format!("[{}]", values.join(" ")),
        ]);
    }
    crate::output::table::render(&["ATTRIBUTE", "VALUE"], &rows)
}

async fn can_i(args: CanIArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    if args.list {
        return super::auth_rules::list(opts).await;
    }
    let (attributes, non_resource) = attributes(&args, &opts.namespace)?;
    let allowed = super::client(opts)?.can_i(attributes, non_resource).await?;
    if allowed {
        println!("yes");
        Ok(())
    } else {
        println!("no");
        std::process::exit(1);
    }
}

/// The review's attributes for what the user typed; whether they name a non-resource URL.
fn attributes(args: &CanIArgs, namespace: &str) -> anyhow::Result<(Value, bool)> {
    let verb = args.verb.as_deref().unwrap_or_default();
    if let [path] = args.target.as_slice() {
        if path.starts_with('/') {
            return Ok((json!({"verb": verb, "path": path}), true));
        }
    }
    let (typed, name) = match args.target.as_slice() {
        [one] => match one.split_once('/') {
            Some((t, n)) => (t, n),
            None => (one.as_str(), ""),
        },
        [t, n] => (t.as_str(), n.as_str()),
        _ => anyhow::bail!("usage: skiff auth can-i VERB TYPE[/NAME] [NAME]"),
    };
    let (group, resource, namespaced) = match skiff_api::resources::by_name(typed) {
        Some(kind) => (kind.group, kind.plural.to_string(), kind.namespaced),
        // `*`, or a type this build does not serve: `widgets.example.com`.
        None => match typed.split_once('.') {
            Some((resource, group)) => (group, resource.to_string(), true),
            None if typed == "*" => ("*", "*".to_string(), true),
            None => ("", typed.to_string(), true),
        },
    };
    let namespace = if args.all_namespaces || !namespaced {
        ""
    } else {
        namespace
    };
    let attributes = json!({
        "verb": verb,
        "group": group,
        "resource": resource,
        "subresource": args.subresource.as_deref().unwrap_or_default(),
        "namespace": namespace,
        "name": name,
    });
    Ok((attributes, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(verb: &str, target: &[&str], all: bool) -> CanIArgs {
        CanIArgs {
            verb: Some(verb.into()),
            target: target.iter().map(|s| s.to_string()).collect(),
            list: false,
            all_namespaces: all,
            subresource: None,
        }
    }

    #[test]
    fn whoami_prints_kubectl_rows() {
        let table = whoami_table(
            &json!({"username": "system:serviceaccount:a:b", "uid": "u1",
            "groups": ["system:serviceaccounts", "system:authenticated"],
            "extra": {"authentication.kubernetes.io/pod-name": ["web"]}}),
        );
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("ATTRIBUTE"), "{table}");
        assert!(lines[1].contains("system:serviceaccount:a:b"), "{table}");
        assert!(
            lines[2].starts_with("UID") && lines[2].contains("u1"),
            "{table}"
        );
        assert!(
            lines[3].contains("[system:serviceaccounts system:authenticated]"),
            "{table}"
        );
        assert!(
            lines[4].starts_with("Extra: authentication.kubernetes.io/pod-name")
                && lines[4].ends_with("[web]"),
            "{table}"
        );
    }

    #[test]
    fn targets_become_review_attributes() {
        let (deployments, non_resource) =
            attributes(&args("create", &["deploy/web"], false), "team").expect("attrs");
        assert!(!non_resource);
        assert_eq!(
            deployments,
            json!({"verb": "create", "group": "apps", "resource": "deployments",
                "subresource": "", "namespace": "team", "name": "web"})
        );
        let (nodes, _) = attributes(&args("list", &["nodes"], false), "team").expect("attrs");
        assert_eq!(nodes["namespace"], "");
        let (pods, _) = attributes(&args("get", &["pods", "p"], true), "team").expect("attrs");
        assert_eq!(
            (&pods["namespace"], &pods["name"]),
            (&json!(""), &json!("p"))
        );
        let (widgets, _) =
            attributes(&args("get", &["widgets.example.com"], false), "a").expect("attrs");
        assert_eq!(
            (&widgets["group"], &widgets["resource"]),
            (&json!("example.com"), &json!("widgets"))
        );
        let (backup, non_resource) =
            attributes(&args("get", &["/skiff/v1/backup"], false), "a").expect("attrs");
        assert!(non_resource);
        assert_eq!(backup, json!({"verb": "get", "path": "/skiff/v1/backup"}));
    }
}
