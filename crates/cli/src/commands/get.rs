//! `skiff get`: tables, JSON, YAML or names; `-w` follows changes.

use std::collections::HashMap;

use clap::Args;
use futures::StreamExt;
use serde_json::Value;
use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::quantity;
use skiff_api::requests::{pod_requests, Resources};
use skiff_api::resources::ResourceKind;
use skiff_client::{Client, ListParams};

use super::{client, kind};
use crate::cli::ClientOpts;
use crate::output::{self, columns, table, Output};

#[derive(Args, Debug)]
pub struct GetArgs {
    /// Resource type(s), comma-separated (pods, deploy, rs, ds, jobs, cj, nodes, ns, cm, secrets, svc, events).
    pub kind: String,
    /// Names (all objects when none).
    pub names: Vec<String>,
    /// Label selector, e.g. `app=web,tier in (a,b)`.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector, e.g. `spec.nodeName=node-1`.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// All namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    #[arg(short = 'o', long)]
    pub output: Option<Output>,
    /// After listing, print changes as they happen.
    #[arg(short = 'w', long)]
    pub watch: bool,
}

pub async fn run(args: GetArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let client = client(opts)?;
    let kinds: Vec<&'static ResourceKind> =
        args.kind.split(',').map(kind).collect::<Result<_, _>>()?;
    let params = ListParams {
        label_selector: args.selector.clone(),
        field_selector: args.field_selector.clone(),
    };
    let namespace = (!args.all_namespaces).then_some(opts.namespace.as_str());
    let mut collected = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        let items = fetch(&client, kind, namespace, &args.names, &params).await?;
        match args.output {
            Some(Output::Json | Output::Yaml | Output::Name) => {
                collected.extend(items.into_iter().map(|i| (*kind, i)))
            }
            wide => {
                if kinds.len() > 1 && i > 0 {
                    println!();
                }
                let allocations = if kind.kind == "Node" {
                    Some(node_allocations(&client).await?)
                } else {
                    None
                };
                print_table(
                    kind,
                    &items,
                    wide == Some(Output::Wide),
                    args.all_namespaces,
                    kinds.len() > 1,
                    allocations.as_ref(),
                );
            }
        }
    }
    if let Some(format @ (Output::Json | Output::Yaml | Output::Name)) = args.output {
        let single = args.names.len() == 1 && kinds.len() == 1;
        let kind = kinds[0];
        if single {
            if let Some((_, item)) = collected.into_iter().next() {
                output::print_structured(format, kind, &item)?;
            }
        } else if format == Output::Name {
            for (kind, item) in collected {
                println!(
                    "{}",
                    output::qualified_name(
                        kind,
                        item["metadata"]["name"].as_str().unwrap_or_default()
                    )
                );
            }
        } else {
            output::print_structured(
                format,
                kind,
                &output::list(collected.into_iter().map(|(_, i)| i).collect()),
            )?;
        }
    }
    if args.watch {
        watch(
            &client,
            kinds[0],
            namespace,
            &params,
            args.output,
            args.all_namespaces,
        )
        .await?;
    }
    Ok(())
}

/// The named objects (all failing names reported), or the list.
async fn fetch(
    client: &Client,
    kind: &ResourceKind,
    namespace: Option<&str>,
    names: &[String],
    params: &ListParams,
) -> anyhow::Result<Vec<Value>> {
    if names.is_empty() {
        let list = client.list(kind, namespace, params).await?;
        let mut items = list["items"].as_array().cloned().unwrap_or_default();
        for item in &mut items {
            item["apiVersion"] = Value::String(kind.api_version());
            item["kind"] = Value::String(kind.kind.to_string());
        }
        return Ok(items);
    }
    let mut items = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match client.get(kind, namespace.or(Some("default")), name).await {
            Ok(item) => items.push(item),
            Err(err) if err.is_not_found() => missing.push(err.to_string()),
            Err(err) => return Err(err.into()),
        }
    }
    if !missing.is_empty() {
        anyhow::bail!("{}", missing.join("\n"));
    }
    Ok(items)
}

/// What the pods bound to each node request, by node name.
async fn node_allocations(client: &Client) -> anyhow::Result<HashMap<String, Resources>> {
    let pods = client
        .list(super::kind("pods")?, None, &ListParams::default())
        .await?;
    let mut requested: HashMap<String, Resources> = HashMap::new();
    for pod in pods["items"].as_array().into_iter().flatten() {
        let Ok(pod) = serde_json::from_value::<Pod>(pod.clone()) else {
            continue;
        };
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        if let (Some(node), false) = (node, matches!(phase, Some("Succeeded" | "Failed"))) {
            requested.entry(node).or_default().add(&pod_requests(&pod));
        }
    }
    Ok(requested)
}

/// The columns `skiff get nodes` adds after kubectl's own: requested/allocatable, as
/// `kubectl describe node` sums it.
const ALLOCATION_HEADER: [&str; 3] = ["CPU", "MEMORY", "PODS"];

fn allocation_cells(node: &Value, allocations: &HashMap<String, Resources>) -> Vec<String> {
    let used = node["metadata"]["name"]
        .as_str()
        .and_then(|n| allocations.get(n))
        .copied()
        .unwrap_or_default();
    let allocatable = &node["status"]["allocatable"];
    let share = |used: String, total: &Value| format!("{used}/{}", total.as_str().unwrap_or("?"));
    vec![
        share(
            quantity::format_cpu_millis(used.cpu_millis),
            &allocatable["cpu"],
        ),
        share(
            quantity::format_bytes(used.memory_bytes),
            &allocatable["memory"],
        ),
        share(used.pods.to_string(), &allocatable["pods"]),
    ]
}

fn print_table(
    kind: &ResourceKind,
    items: &[Value],
    wide: bool,
    all_namespaces: bool,
    prefix_kind: bool,
    allocations: Option<&HashMap<String, Resources>>,
) {
    if items.is_empty() {
        eprintln!("No resources found.");
        return;
    }
    let columns = columns::for_kind(kind.kind, wide);
    let mut header = columns.header.clone();
    // kubectl's own columns come first, then skiff's node allocations, then the wide ones.
    let own = columns::for_kind(kind.kind, false).header.len();
    if allocations.is_some() {
        header.splice(own..own, ALLOCATION_HEADER);
    }
    let with_namespace = all_namespaces && kind.namespaced;
    if with_namespace {
        header.insert(0, "NAMESPACE");
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            let mut row = (columns.row)(item, wide);
            if let Some(allocations) = allocations {
                row.splice(own..own, allocation_cells(item, allocations));
            }
            if prefix_kind {
                row[0] = output::qualified_name(kind, &row[0]);
            }
            if with_namespace {
                row.insert(
                    0,
                    item["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
            row
        })
        .collect();
    table::print(&header, &rows);
}

async fn watch(
    client: &Client,
    kind: &ResourceKind,
    namespace: Option<&str>,
    params: &ListParams,
    format: Option<Output>,
    all_namespaces: bool,
) -> anyhow::Result<()> {
    let list = client.list(kind, namespace, params).await?;
    let version = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut events = client.watch(kind, namespace, params, &version).await?;
    let columns = columns::for_kind(kind.kind, format == Some(Output::Wide));
    while let Some(event) = events.next().await {
        let event = event?;
        match format {
            Some(f @ (Output::Json | Output::Yaml | Output::Name)) => {
                output::print_structured(f, kind, &event.object)?
            }
            _ => {
                let mut row = (columns.row)(&event.object, format == Some(Output::Wide));
                if all_namespaces && kind.namespaced {
                    row.insert(
                        0,
                        event.object["metadata"]["namespace"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    );
                }
                if event.event_type == "DELETED" {
                    row.push("(deleted)".into());
                }
                println!("{}", row.join("   "));
            }
        }
    }
    Ok(())
}
