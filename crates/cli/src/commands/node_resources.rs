//! The flags that keep a node's memory safe from its pods (`skiff agent` and the dev server's
//! node), as the kubelet has them: a default memory limit for containers that set none, the
//! system reserve, the hard eviction threshold and the pod count.

use clap::Args;
use skiff_api::quantity::{parse_bytes, parse_cpu_millis};
use skiff_node_runtime::agent::{AgentBuilder, Eviction};

#[derive(Args, Debug, Clone)]
pub struct NodeResourceArgs {
    /// The memory limit of containers that set none (as a LimitRange default would), so an
    /// unlimited guest cannot take the node's memory; `none` for no default.
    #[arg(long, value_name = "QUANTITY", default_value = "256Mi", value_parser = parse_default_memory)]
    pub default_container_memory: DefaultMemory,
    /// Resources kept for the system and not offered to pods, e.g. `memory=512Mi,cpu=500m`.
    #[arg(long, value_name = "RESOURCE=QUANTITY,...", default_value = "", value_parser = parse_reserved)]
    pub system_reserved: Reserved,
    /// Evict pods, the one furthest over its memory request first, when the node's available
    /// memory falls below this, e.g. `memory.available<100Mi`; `none` never evicts.
    #[arg(
        long,
        value_name = "memory.available<QUANTITY",
        default_value = "memory.available<100Mi",
        value_parser = parse_eviction)]
    pub eviction_hard: EvictionHard,
    /// How many pods the node runs at most (as the kubelet's flag); pods bound beyond it fail
    /// with `OutOfpods`. Default: 110 as the kubelet's; on a node whose only runtime is Wasm,
    /// as many as its memory (1 MiB each) and `vm.max_map_count` hold.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_pods: Option<u32>,
}

/// The kubelet's default `--max-pods`.
const KUBELET_MAX_PODS: u32 = 110;

/// `--default-container-memory`: bytes, or none.
#[derive(Debug, Clone, Copy)]
pub struct DefaultMemory(Option<u64>);

/// `--system-reserved`: millicores and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reserved {
    cpu_millis: u64,
    memory_bytes: u64,
}

/// `--eviction-hard`: the memory.available threshold in bytes, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvictionHard(Option<u64>);

fn parse_default_memory(text: &str) -> Result<DefaultMemory, String> {
    if text == "none" {
        return Ok(DefaultMemory(None));
    }
    parse_bytes(text)
        .map(|bytes| DefaultMemory(Some(bytes)))
        .map_err(|e| e.to_string())
}

fn parse_reserved(text: &str) -> Result<Reserved, String> {
    let mut reserved = Reserved::default();
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("memory", q)) => {
                reserved.memory_bytes = parse_bytes(q).map_err(|e| e.to_string())?
            }
            Some(("cpu", q)) => {
                reserved.cpu_millis = parse_cpu_millis(q).map_err(|e| e.to_string())?
            }
            _ => {
                return Err(format!(
                    "{pair:?}: expected memory=QUANTITY or cpu=QUANTITY"
                ))
            }
        }
    }
    Ok(reserved)
}

fn parse_eviction(text: &str) -> Result<EvictionHard, String> {
    if text == "none" {
        return Ok(EvictionHard(None));
    }
    let quantity = text
        .strip_prefix("memory.available<")
        .ok_or_else(|| format!("{text:?}: expected memory.available<QUANTITY or none"))?;
    parse_bytes(quantity)
        .map(|bytes| EvictionHard(Some(bytes)))
        .map_err(|e| e.to_string())
}

impl NodeResourceArgs {
    /// Configures the agent with these flags; `wasm_only`: the node's only runtime is Wasm.
    pub fn apply(&self, builder: AgentBuilder, wasm_only: bool) -> AgentBuilder {
        let Reserved {
            cpu_millis,
            memory_bytes,
        } = self.system_reserved;
        let max_pods = self.max_pods.unwrap_or_else(|| {
            if wasm_only {
                skiff_node_runtime::agent::wasm_max_pods_here()
            } else {
                KUBELET_MAX_PODS
            }
        });
        let builder = builder
            .max_pods(max_pods)
            .default_container_memory(self.default_container_memory.0)
            .system_reserved(cpu_millis, memory_bytes);
        match self.eviction_hard.0 {
            Some(threshold) => builder.eviction(Eviction::hard(threshold)),
            None => builder,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kubelets_spellings() {
        assert_eq!(
            parse_reserved("memory=512Mi,cpu=500m"),
            Ok(Reserved {
                cpu_millis: 500,
                memory_bytes: 512 << 20
            })
        );
        assert_eq!(parse_reserved(""), Ok(Reserved::default()));
        assert!(parse_reserved("disk=1Gi").is_err());
        assert_eq!(
            parse_eviction("memory.available<100Mi"),
            Ok(EvictionHard(Some(100 << 20)))
        );
        assert_eq!(parse_eviction("none"), Ok(EvictionHard(None)));
        assert!(parse_eviction("nodefs.available<10%").is_err());
        assert_eq!(parse_default_memory("none").map(|d| d.0), Ok(None));
        assert_eq!(
            parse_default_memory("256Mi").map(|d| d.0),
            Ok(Some(256 << 20))
        );
    }
}
