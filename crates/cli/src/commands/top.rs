//! `skiff top pods|nodes`: what pods and nodes use now, from `metrics.k8s.io`, in
//! `kubectl top`'s columns (CPU in millicores, memory in Mi; nodes also as a share of what
//! they can allocate).

use std::collections::HashMap;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;
use skiff_api::quantity::{parse_bytes, parse_cpu_millis};
use skiff_client::ListParams;

use super::{client, kind};
use crate::cli::ClientOpts;
use crate::output::table;

#[derive(Subcommand, Debug)]
pub enum TopCommand {
    /// CPU and memory of pods.
    #[command(visible_alias = "pod", visible_alias = "po")]
    Pods(TopPodsArgs),
    /// CPU and memory of nodes, and their share of the node's allocatable.
    #[command(visible_alias = "node", visible_alias = "no")]
    Nodes(TopNodesArgs),
}

/// What rows are ordered by (`--sort-by`); by name otherwise.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortBy {
    Cpu,
    Memory,
}

#[derive(Args, Debug)]
pub struct TopPodsArgs {
    /// One pod's name (all pods when none).
    pub name: Option<String>,
    /// Label selector, e.g. `app=web`.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// All namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// One row per container.
    #[arg(long)]
    pub containers: bool,
    /// Most first by cpu or memory.
    #[arg(long, value_enum)]
    pub sort_by: Option<SortBy>,
}

#[derive(Args, Debug)]
pub struct TopNodesArgs {
    /// One node's name (all nodes when none).
    pub name: Option<String>,
    /// Label selector, e.g. `kubernetes.io/os=linux`.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Most first by cpu or memory.
    #[arg(long, value_enum)]
    pub sort_by: Option<SortBy>,
}

pub async fn run(command: TopCommand, opts: &ClientOpts) -> anyhow::Result<()> {
    let client = client(opts)?;
    let (header, rows) = match command {
        TopCommand::Pods(args) => {
            let namespace = (!args.all_namespaces).then_some(opts.namespace.as_str());
            let in_namespace =
                namespace.map_or_else(String::new, |ns| format!(" in {ns} namespace"));
            let params = ListParams {
                label_selector: args.selector.clone(),
                field_selector: args.name.as_ref().map(|n| format!("metadata.name={n}")),
            };
            let list = client
                .pod_metrics(namespace, &params)
                .await
                .context("reading metrics.k8s.io PodMetrics")?;
            let (header, rows) = pod_rows(&items(&list), &args);
            if rows.is_empty() {
                // As kubectl: no pods (or none with metrics yet) is no error.
                eprintln!("No resources found{in_namespace}.");
                return Ok(());
            }
            (header, rows)
        }
        TopCommand::Nodes(args) => {
            let params = ListParams {
                label_selector: args.selector.clone(),
                field_selector: args.name.as_ref().map(|n| format!("metadata.name={n}")),
            };
            let list = client
                .node_metrics(&params)
                .await
                .context("reading metrics.k8s.io NodeMetrics")?;
            let nodes = client.list(kind("nodes")?, None, &params).await?;
            node_rows(&items(&list), &items(&nodes), args.sort_by)
        }
    };
    if rows.is_empty() {
        anyhow::bail!(
            "metrics not available yet (a node's agent rates CPU over two readings 10 s apart)"
        );
    }
    table::print(&header, &rows);
    Ok(())
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

/// Millicores and bytes of a `usage` map (`{cpu, memory}`), rounded up as kubectl rounds.
fn usage(usage: &Value) -> (u64, u64) {
    let read = |field: &str, parse: fn(&str) -> Result<u64, _>| {
        usage[field]
            .as_str()
            .and_then(|q| parse(q).ok())
            .unwrap_or(0)
    };
    (read("cpu", parse_cpu_millis), read("memory", parse_bytes))
}

fn cpu_cell(millis: u64) -> String {
    format!("{millis}m")
}

fn memory_cell(bytes: u64) -> String {
    format!("{}Mi", bytes / (1 << 20))
}

/// A row's name cells and its usage, sorted and rendered.
type Row = (Vec<String>, u64, u64);

fn sort(rows: &mut [Row], by: Option<SortBy>) {
    match by {
        Some(SortBy::Cpu) => rows.sort_by_key(|r| std::cmp::Reverse(r.1)),
        Some(SortBy::Memory) => rows.sort_by_key(|r| std::cmp::Reverse(r.2)),
        None => rows.sort_by(|a, b| a.0.cmp(&b.0)),
    }
}

fn pod_rows(metrics: &[Value], args: &TopPodsArgs) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let mut rows: Vec<Row> = Vec::new();
    for pod in metrics {
        let meta = &pod["metadata"];
        let mut names = Vec::new();
        if args.all_namespaces {
            names.push(meta["namespace"].as_str().unwrap_or_default().to_string());
        }
        names.push(meta["name"].as_str().unwrap_or_default().to_string());
        let containers = pod["containers"].as_array().cloned().unwrap_or_default();
        if args.containers {
            for container in &containers {
                let (cpu, memory) = usage(&container["usage"]);
                let mut names = names.clone();
                names.push(container["name"].as_str().unwrap_or_default().to_string());
                rows.push((names, cpu, memory));
            }
        } else {
            let (cpu, memory) = containers
                .iter()
                .map(|c| usage(&c["usage"]))
                .fold((0, 0), |(c, m), (cpu, memory)| (c + cpu, m + memory));
            rows.push((names, cpu, memory));
        }
    }
    sort(&mut rows, args.sort_by);
    let mut header = Vec::new();
    if args.all_namespaces {
        header.push("NAMESPACE");
    }
    header.extend(if args.containers {
        ["POD", "NAME"].as_slice()
    } else {
        ["NAME"].as_slice()
    });
    header.extend(["CPU(cores)", "MEMORY(bytes)"]);
    let rows = rows
        .into_iter()
        .map(|(mut cells, cpu, memory)| {
            cells.extend([cpu_cell(cpu), memory_cell(memory)]);
            cells
        })
        .collect();
    (header, rows)
}

fn node_rows(
    metrics: &[Value],
    nodes: &[Value],
    sort_by: Option<SortBy>,
) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let allocatable: HashMap<&str, (u64, u64)> = nodes
        .iter()
        .filter_map(|n| {
            let name = n["metadata"]["name"].as_str()?;
            Some((name, usage(&n["status"]["allocatable"])))
        })
        .collect();
    let mut rows: Vec<Row> = metrics
        .iter()
        .map(|m| {
            let name = m["metadata"]["name"].as_str().unwrap_or_default();
            let (cpu, memory) = usage(&m["usage"]);
            (vec![name.to_string()], cpu, memory)
        })
        .collect();
    sort(&mut rows, sort_by);
    let percent = |used: u64, of: u64| match of {
        0 => "<unknown>".to_string(),
        of => format!("{}%", used * 100 / of),
    };
    let rows = rows
        .into_iter()
        .map(|(mut cells, cpu, memory)| {
            let (cpu_of, memory_of) = allocatable
                .get(cells[0].as_str())
                .copied()
                .unwrap_or((0, 0));
            cells.extend([
                cpu_cell(cpu),
                percent(cpu, cpu_of),
                memory_cell(memory),
                percent(memory, memory_of),
            ]);
            cells
        })
        .collect();
    (
        vec!["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"],
        rows,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(ns: &str, name: &str, containers: &[(&str, &str, &str)]) -> Value {
        let containers: Vec<Value> = containers
            .iter()
            .map(|(n, cpu, memory)| json!({"name": n, "usage": {"cpu": cpu, "memory": memory}}))
            .collect();
        json!({"metadata": {"name": name, "namespace": ns}, "containers": containers})
    }

    fn args(all_namespaces: bool, containers: bool, sort_by: Option<SortBy>) -> TopPodsArgs {
        TopPodsArgs {
            name: None,
            selector: None,
            all_namespaces,
            containers,
            sort_by,
        }
    }

    #[test]
    fn pods_sum_containers_in_kubectls_units() {
        let metrics = [
            pod(
                "shop",
                "web",
                &[("app", "1500000n", "3Mi"), ("log", "250000000n", "1024Ki")],
            ),
            pod("shop", "db", &[("main", "0", "512Ki")]),
        ];
        let (header, rows) = pod_rows(&metrics, &args(false, false, None));
        assert_eq!(
            table::render(&header, &rows),
            "NAME   CPU(cores)   MEMORY(bytes)\n\
             db     0m           0Mi\n\
             web    252m         4Mi\n"
        );
        let (header, rows) = pod_rows(&metrics, &args(true, true, Some(SortBy::Cpu)));
        assert_eq!(
            table::render(&header, &rows),
            "NAMESPACE   POD   NAME   CPU(cores)   MEMORY(bytes)\n\
             shop        web   log    250m         1Mi\n\
             shop        web   app    2m           3Mi\n\
             shop        db    main   0m           0Mi\n"
        );
    }

    #[test]
    fn nodes_show_their_share_of_allocatable() {
        let metrics = [
            json!({"metadata": {"name": "n1"}, "usage": {"cpu": "500000000n", "memory": "1Gi"}}),
            json!({"metadata": {"name": "n2"}, "usage": {"cpu": "0", "memory": "0"}}),
        ];
        let nodes = [json!({"metadata": {"name": "n1"},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi"}}})];
        let (header, rows) = node_rows(&metrics, &nodes, Some(SortBy::Memory));
        assert_eq!(
            table::render(&header, &rows),
            "NAME   CPU(cores)   CPU(%)      MEMORY(bytes)   MEMORY(%)\n\
             n1     500m         25%         1024Mi          25%\n\
             n2     0m           <unknown>   0Mi             <unknown>\n"
        );
    }
}
