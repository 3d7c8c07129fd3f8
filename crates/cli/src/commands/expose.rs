//! `skiff expose deployment NAME --port P [--target-port T] [--type NodePort]`: a Service that
//! selects a workload's pods, as `kubectl expose` makes it.

use anyhow::Context;
use clap::Args;
use serde_json::{json, Map, Value};

use super::{client, kind};
use crate::cli::ClientOpts;

#[derive(Args, Debug)]
pub struct ExposeArgs {
    /// `deployment`, `replicaset`, `statefulset`, `daemonset` or `pod`, then the name; or `deployment/NAME`.
    pub target: Vec<String>,
    /// The Service's port.
    #[arg(long)]
    pub port: i32,
    /// The pods' port: a number or a container port's name (default: `--port`).
    #[arg(long)]
    pub target_port: Option<String>,
    /// ClusterIP, NodePort or LoadBalancer.
    #[arg(long = "type", default_value = "ClusterIP")]
    pub service_type: String,
    /// The Service's name (default: the workload's).
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, default_value = "TCP")]
    pub protocol: String,
}

/// The pods a workload manages, as a Service selector: its `matchLabels` (a pod: its labels).
fn selector_of(kind: &str, obj: &Value) -> anyhow::Result<Map<String, Value>> {
    if kind == "Pod" {
        return obj["metadata"]["labels"]
            .as_object()
            .filter(|l| !l.is_empty())
            .cloned()
            .context("the pod has no labels to select it by");
    }
    let selector = &obj["spec"]["selector"];
    if selector["matchExpressions"]
        .as_array()
        .is_some_and(|e| !e.is_empty())
    {
        anyhow::bail!("its selector has matchExpressions, which a Service selector cannot hold");
    }
    selector["matchLabels"]
        .as_object()
        .filter(|l| !l.is_empty())
        .cloned()
        .context("it has no matchLabels to select its pods by")
}

/// The Service `expose` creates.
fn service(name: &str, selector: Map<String, Value>, args: &ExposeArgs) -> Value {
    let target: Value = match args.target_port.as_deref() {
        None => json!(args.port),
        Some(t) => t.parse::<i64>().map_or_else(|_| json!(t), |n| json!(n)),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": args.service_type,
            "selector": selector,
            "ports": [{"port": args.port, "targetPort": target, "protocol": args.protocol}],
        },
    })
}

pub async fn run(args: ExposeArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let (kind_name, name) = super::kind_and_name(
        &args.target,
        "usage: skiff expose deployment NAME --port P (or deployment/NAME)",
    )?;
    let kind = kind(&kind_name)?;
    if !matches!(
        kind.kind,
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Pod"
    ) {
        anyhow::bail!(
            "{} cannot be exposed: only deployments, replicasets, statefulsets, daemonsets and pods can",
            kind.plural
        );
    }
    let client = client(opts)?;
    let obj = client.get(kind, Some(&opts.namespace), &name).await?;
    let selector = selector_of(kind.kind, &obj).with_context(|| format!("cannot expose {name}"))?;
    let service_name = args.name.clone().unwrap_or(name);
    let services = super::kind("services")?;
    let created = client
        .create(
            services,
            Some(&opts.namespace),
            &service(&service_name, selector, &args),
        )
        .await?;
    println!(
        "service/{} exposed",
        created["metadata"]["name"].as_str().unwrap_or_default()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(target_port: Option<&str>) -> ExposeArgs {
        ExposeArgs {
            target: vec![],
            port: 80,
            target_port: target_port.map(str::to_string),
            service_type: "NodePort".into(),
            name: None,
            protocol: "TCP".into(),
        }
    }

    #[test]
    fn a_deployment_is_exposed_by_its_match_labels() {
        let deployment = json!({"spec": {"selector": {"matchLabels": {"app": "web"}}}});
        let selector = selector_of("Deployment", &deployment).unwrap();
        let svc = service("web", selector.clone(), &args(Some("http")));
        assert_eq!(svc["spec"]["selector"], json!({"app": "web"}));
        assert_eq!(svc["spec"]["type"], "NodePort");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
        let numbered = service("web", selector.clone(), &args(Some("8080")));
        assert_eq!(numbered["spec"]["ports"][0]["targetPort"], 8080);
        let same = service("web", selector, &args(None));
        assert_eq!(same["spec"]["ports"][0]["targetPort"], 80);
        let expressions = json!({"spec": {"selector": {"matchExpressions": [{"key": "a"}]}}});
        assert!(selector_of("Deployment", &expressions).is_err());
        assert!(selector_of("Pod", &json!({"metadata": {}})).is_err());
    }
}
