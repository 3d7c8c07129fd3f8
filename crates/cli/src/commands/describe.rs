//! `skiff describe`: an object in human terms, with its events.

use clap::Args;
use serde_json::Value;
use skiff_client::ListParams;

use super::{client, kind};
use crate::cli::ClientOpts;
use crate::output::{age, table};

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}

fn map(v: &Value) -> String {
    match v.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", text(v)))
            .collect::<Vec<_>>()
            .join("\n              "),
        _ => "<none>".into(),
    }
}

fn line(key: &str, value: impl std::fmt::Display) {
    println!("{:<14}{value}", format!("{key}:"));
}

fn describe_state(label: &str, state: &Value) {
    if let Some(running) = state.get("running") {
        println!(
            "    {label}:  Running\n      Started:  {}",
            text(&running["startedAt"])
        );
    } else if let Some(waiting) = state.get("waiting") {
        println!(
            "    {label}:  Waiting\n      Reason:   {}",
            text(&waiting["reason"])
        );
        if let Some(message) = waiting["message"].as_str() {
            println!("      Message:  {message}");
        }
    } else if let Some(done) = state.get("terminated") {
        println!(
            "    {label}:  Terminated\n      Reason:     {}\n      Exit Code:  {}\n      Started:    {}\n      Finished:   {}",
            text(&done["reason"]),
            text(&done["exitCode"]),
            text(&done["startedAt"]),
            text(&done["finishedAt"])
        );
        if let Some(message) = done["message"].as_str() {
            println!("      Message:    {message}");
        }
    }
}

fn describe_pod(pod: &Value) {
    line("Node", text(&pod["spec"]["nodeName"]));
    line("Status", text(&pod["status"]["phase"]));
    line("IP", text(&pod["status"]["podIP"]));
    line("Runtime", text(&pod["spec"]["runtimeClassName"]));
    if pod["spec"]["initContainers"].is_array() {
        println!("Init Containers:");
        describe_containers(
            &pod["spec"]["initContainers"],
            &pod["status"]["initContainerStatuses"],
        );
    }
    println!("Containers:");
    describe_containers(
        &pod["spec"]["containers"],
        &pod["status"]["containerStatuses"],
    );
    println!("Conditions:");
    for c in pod["status"]["conditions"].as_array().into_iter().flatten() {
        println!(
            "  {:<16}{}{}",
            text(&c["type"]),
            text(&c["status"]),
            c["message"]
                .as_str()
                .map(|m| format!("  ({m})"))
                .unwrap_or_default()
        );
    }
}

/// Each container of a pod (`specs`) with its status from `statuses`, as kubectl describes them.
fn describe_containers(specs: &Value, statuses: &Value) {
    let statuses = statuses.as_array().cloned().unwrap_or_default();
    for container in specs.as_array().into_iter().flatten() {
        let name = text(&container["name"]);
        println!("  {name}:");
        println!("    Image:          {}", text(&container["image"]));
        if let Some(status) = statuses.iter().find(|s| s["name"] == container["name"]) {
            describe_state("State", &status["state"]);
            if status["lastState"]
                .as_object()
                .is_some_and(|o| !o.is_empty())
            {
                describe_state("Last State", &status["lastState"]);
            }
            println!("    Ready:          {}", text(&status["ready"]));
            println!("    Restart Count:  {}", text(&status["restartCount"]));
        }
        for (field, title) in skiff_api::probes::PROBES {
            if let Some(probe) = container.get(field).filter(|p| p.is_object()) {
                println!("    {:<16}{}", format!("{title}:"), probe_summary(probe));
            }
        }
        if let Some(limits) = container["resources"]["limits"].as_object() {
            println!(
                "    Limits:         {}",
                limits
                    .iter()
                    .map(|(k, v)| format!("{k}={}", text(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
}

/// A probe as kubectl describes it:
/// `http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3`.
fn probe_summary(probe: &Value) -> String {
    let port = |action: &Value| match &action["port"] {
        Value::String(name) => name.clone(),
        other => other.to_string(),
    };
    let action = if let Some(http) = probe.get("httpGet") {
        format!(
            "http-get {}://{}:{}{}",
            http["scheme"].as_str().unwrap_or("HTTP").to_lowercase(),
            http["host"].as_str().unwrap_or_default(),
            port(http),
            http["path"].as_str().unwrap_or("/")
        )
    } else if let Some(tcp) = probe.get("tcpSocket") {
        format!(
            "tcp-socket {}:{}",
            tcp["host"].as_str().unwrap_or_default(),
            port(tcp)
        )
    } else if let Some(exec) = probe.get("exec") {
        let command: Vec<&str> = exec["command"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        format!("exec [{}]", command.join(" "))
    } else if let Some(grpc) = probe.get("grpc") {
        format!(
            "grpc <pod>:{} {}",
            port(grpc),
            grpc["service"].as_str().unwrap_or_default()
        )
    } else {
        "unknown".into()
    };
    let number = |key: &str| probe[key].as_i64().unwrap_or_default();
    format!(
        "{action} delay={}s timeout={}s period={}s #success={} #failure={}",
        number("initialDelaySeconds"),
        number("timeoutSeconds"),
        number("periodSeconds"),
        number("successThreshold"),
        number("failureThreshold")
    )
}

fn describe_workload(obj: &Value) {
    let status = &obj["status"];
    line(
        "Replicas",
        format!(
            "{} desired | {} updated | {} total | {} available | {} ready",
            text(&obj["spec"]["replicas"]),
            status["updatedReplicas"].as_i64().unwrap_or(0),
            status["replicas"].as_i64().unwrap_or(0),
            status["availableReplicas"].as_i64().unwrap_or(0),
            status["readyReplicas"].as_i64().unwrap_or(0)
        ),
    );
    line("Selector", map(&obj["spec"]["selector"]["matchLabels"]));
    if let Some(strategy) = obj["spec"]["strategy"]["type"].as_str() {
        line("Strategy", strategy);
    }
    for c in obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        line(
            "Container",
            format!("{} ({})", text(&c["name"]), text(&c["image"])),
        );
    }
    for c in status["conditions"].as_array().into_iter().flatten() {
        line(
            "Condition",
            format!(
                "{}={} {}",
                text(&c["type"]),
                text(&c["status"]),
                c["reason"].as_str().unwrap_or_default()
            ),
        );
    }
}

/// What only a StatefulSet has: its service, policies, revisions and claim templates.
fn describe_statefulset(sts: &Value) {
    let spec = &sts["spec"];
    line("Service", text(&spec["serviceName"]));
    line("Pod Mgmt", text(&spec["podManagementPolicy"]));
    let strategy = &spec["updateStrategy"];
    match strategy["rollingUpdate"]["partition"].as_i64() {
        Some(partition) => line(
            "Update",
            format!("{} (partition {partition})", text(&strategy["type"])),
        ),
        None => line("Update", text(&strategy["type"])),
    }
    line(
        "Revisions",
        format!(
            "current {} | update {}",
            text(&sts["status"]["currentRevision"]),
            text(&sts["status"]["updateRevision"])
        ),
    );
    let retention = &spec["persistentVolumeClaimRetentionPolicy"];
    line(
        "PVC Retention",
        format!(
            "whenDeleted={} whenScaled={}",
            text(&retention["whenDeleted"]),
            text(&retention["whenScaled"])
        ),
    );
    for claim in spec["volumeClaimTemplates"]
        .as_array()
        .into_iter()
        .flatten()
    {
        line(
            "Claim",
            format!(
                "{} ({} {})",
                text(&claim["metadata"]["name"]),
                text(&claim["spec"]["storageClassName"]),
                text(&claim["spec"]["resources"]["requests"]["storage"])
            ),
        );
    }
}

#[derive(Args, Debug)]
pub struct DescribeArgs {
    pub kind: String,
    pub name: String,
}

/// A node's pod CIDRs, as kubectl shows them.
fn describe_node(node: &Value) {
    line("PodCIDR", text(&node["spec"]["podCIDR"]));
    let cidrs: Vec<String> = node["spec"]["podCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    line(
        "PodCIDRs",
        if cidrs.is_empty() {
            "<none>".to_string()
        } else {
            cidrs.join(",")
        },
    );
}

/// The object's spec, data and status as YAML.
fn describe_fields(obj: &Value) -> anyhow::Result<()> {
    for field in ["spec", "data", "status"] {
        if let Some(value) = obj.get(field).filter(|v| !v.is_null()) {
            println!("{}:", field[..1].to_uppercase() + &field[1..]);
            for l in serde_yaml_ng::to_string(value)?.lines() {
                println!("  {l}");
            }
        }
    }
    Ok(())
}

pub async fn run(args: DescribeArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let client = client(opts)?;
    let kind = kind(&args.kind)?;
    let namespace = kind.namespaced.then_some(opts.namespace.as_str());
    let obj = client.get(kind, namespace, &args.name).await?;
    let meta = &obj["metadata"];
    line("Name", text(&meta["name"]));
    if kind.namespaced {
        line("Namespace", text(&meta["namespace"]));
    }
    line("Labels", map(&meta["labels"]));
    line("Annotations", map(&meta["annotations"]));
    line(
        "Created",
        format!(
            "{} ({} ago)",
            text(&meta["creationTimestamp"]),
            age::since(meta["creationTimestamp"].as_str())
        ),
    );
    if let Some(owner) = meta["ownerReferences"].as_array().and_then(|o| o.first()) {
        line(
            "Controlled By",
            format!("{}/{}", text(&owner["kind"]), text(&owner["name"])),
        );
    }
    match kind.kind {
        "Pod" => describe_pod(&obj),
        "Deployment" | "ReplicaSet" => describe_workload(&obj),
        "StatefulSet" => {
            describe_workload(&obj);
            describe_statefulset(&obj);
        }
        "Service" => {
            let slices = client
                .list(
                    super::kind("endpointslices")?,
                    namespace,
                    &ListParams {
                        field_selector: None,
                        label_selector: Some(format!("kubernetes.io/service-name={}", args.name)),
                    },
                )
                .await?;
            let slices = slices["items"].as_array().cloned().unwrap_or_default();
            for (key, value) in super::describe_service::lines(&obj, &slices) {
                line(&key, value);
            }
        }
        "Ingress" => {
            let (lines, rules) = super::describe_ingress::lines(&obj);
            for (key, value) in lines {
                line(&key, value);
            }
            println!("Rules:\n  {:<24}{:<32}Backend", "Host", "Path");
            for [host, path, backend] in rules {
                println!("  {host:<24}{path:<32}{backend}");
            }
        }
        "ResourceQuota" => super::describe_quota::quota_lines(&obj)
            .iter()
            .for_each(|l| println!("{l}")),
        "LimitRange" => super::describe_quota::limit_range_lines(&obj)
            .iter()
            .for_each(|l| println!("{l}")),
        "Node" => {
            describe_node(&obj);
            describe_fields(&obj)?;
        }
        _ => describe_fields(&obj)?,
    }
    let events_kind = super::kind("events")?;
    let selector = format!(
        "involvedObject.name={},involvedObject.kind={}{}",
        args.name,
        kind.kind,
        namespace
            .map(|ns| format!(",involvedObject.namespace={ns}"))
            .unwrap_or_default()
    );
    let events = client
        .list(
            events_kind,
            namespace.or(Some("default")),
            &ListParams {
                field_selector: Some(selector),
                label_selector: None,
            },
        )
        .await?;
    let mut items = events["items"].as_array().cloned().unwrap_or_default();
    items.sort_by(|a, b| {
        a["lastTimestamp"]
            .as_str()
            .cmp(&b["lastTimestamp"].as_str())
    });
    println!("Events:");
    if items.is_empty() {
        println!("  <none>");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|e| {
            vec![
                format!("  {}", text(&e["type"])),
                text(&e["reason"]),
                age::since(e["lastTimestamp"].as_str()),
                text(&e["source"]["component"]),
                text(&e["message"]),
            ]
        })
        .collect();
    table::print(&["  Type", "Reason", "Age", "From", "Message"], &rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn probes_read_as_kubectl_shows_them() {
        let timing = json!({"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                            "failureThreshold": 3});
        let with = |action: Value| {
            let mut probe = timing.clone();
            probe
                .as_object_mut()
                .expect("object")
                .extend(action.as_object().expect("object").clone());
            probe_summary(&probe)
        };
        assert_eq!(
            with(json!({"httpGet": {"port": 8080, "path": "/healthz", "scheme": "HTTP"}})),
            "http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3"
        );
        assert_eq!(
            with(json!({"tcpSocket": {"port": "admin"}, "initialDelaySeconds": 5})),
            "tcp-socket :admin delay=5s timeout=1s period=10s #success=1 #failure=3"
        );
        assert_eq!(
            with(json!({"exec": {"command": ["cat", "/tmp/healthy"]}})),
            "exec [cat /tmp/healthy] delay=0s timeout=1s period=10s #success=1 #failure=3"
        );
    }
}
