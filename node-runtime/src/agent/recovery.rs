//! After an agent restart: the sandboxes and containers the runtimes still run, for the pod
//! workers to re-attach to (instead of starting them twice) and for removing those whose
//! pods are gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::runtime::{ContainerRuntime, ContainerStatus, RuntimeError, RuntimeSet, SandboxId};

/// A sandbox that outlived the agent, on the runtime that runs it.
pub struct Recovered {
    pub runtime: Arc<dyn ContainerRuntime>,
    pub containers: Vec<ContainerStatus>,
}

/// Sandbox id (the pod's uid) → what survived; each taken once, by its pod's worker.
#[derive(Default)]
pub struct Survivors {
    sandboxes: Mutex<HashMap<SandboxId, Recovered>>,
}

impl Survivors {
    /// Asks every runtime to re-attach to its workloads and lists what it found.
    pub async fn collect(runtimes: &RuntimeSet) -> Result<Self, RuntimeError> {
        let mut sandboxes = HashMap::new();
        for runtime in runtimes.iter() {
            for sandbox in runtime.recover().await? {
                let containers = runtime.list_containers(Some(&sandbox)).await?;
                tracing::info!(runtime = runtime.name(), %sandbox, containers = containers.len(), "re-attached to a pod sandbox");
                sandboxes.insert(
                    sandbox,
                    Recovered {
                        runtime: runtime.clone(),
                        containers,
                    },
                );
            }
        }
        Ok(Survivors {
            sandboxes: Mutex::new(sandboxes),
        })
    }

    /// What survived of the pod `uid`, if anything (once).
    pub fn take(&self, uid: &str) -> Option<Recovered> {
        self.sandboxes.lock().expect("survivors lock").remove(uid)
    }

    /// Removes the surviving sandboxes of pods this node no longer has.
    pub async fn remove_orphans(&self, listed: &[String]) {
        let orphans: Vec<(SandboxId, Recovered)> = {
            let mut sandboxes = self.sandboxes.lock().expect("survivors lock");
            let gone: Vec<SandboxId> = sandboxes
                .keys()
                .filter(|uid| !listed.contains(uid))
                .cloned()
                .collect();
            gone.into_iter()
                .filter_map(|uid| sandboxes.remove_entry(&uid))
                .collect()
        };
        for (sandbox, orphan) in orphans {
            tracing::info!(%sandbox, "removing the sandbox of a pod that is gone");
            if let Err(err) = orphan.runtime.remove_pod_sandbox(&sandbox).await {
                tracing::warn!(%sandbox, %err, "removing an orphaned pod sandbox failed");
            }
        }
    }
}

/// The latest attempt of each container name.
pub fn latest_by_name(containers: &[ContainerStatus]) -> HashMap<String, ContainerStatus> {
    let mut latest: HashMap<String, ContainerStatus> = HashMap::new();
    for container in containers {
        let newer = latest
            .get(&container.name)
            .is_none_or(|seen| seen.attempt < container.attempt);
        if newer {
            latest.insert(container.name.clone(), container.clone());
        }
    }
    latest
}
