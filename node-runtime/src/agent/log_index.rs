//! Which log file belongs to which pod container: kept by the pod workers from what the
//! runtimes report, read by the log server. The naming convention is [`container_log_path`](crate::runtime::container_log_path),
//! the only place that decides it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// The logs of one container of one pod, as the runtime reported their files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLog {
    /// The current attempt's file (`None`: not created yet).
    pub current: Option<PathBuf>,
    /// The previous attempt's file, if it restarted.
    pub previous: Option<PathBuf>,
    pub running: bool,
}

#[derive(Debug, Clone)]
struct PodLogs {
    uid: String,
    containers: HashMap<String, ContainerLog>,
}

/// Pod (namespace, name) → its containers' logs.
#[derive(Default)]
pub struct LogIndex {
    pods: RwLock<HashMap<(String, String), PodLogs>>,
}

impl LogIndex {
    pub fn set(&self, namespace: &str, pod: &str, uid: &str, container: &str, log: ContainerLog) {
        let mut pods = self.pods.write().expect("log index lock");
        let entry = pods
            .entry((namespace.to_string(), pod.to_string()))
            .or_insert_with(|| PodLogs {
                uid: uid.to_string(),
                containers: HashMap::new(),
            });
        entry.uid = uid.to_string();
        entry.containers.insert(container.to_string(), log);
    }

    pub fn remove(&self, namespace: &str, pod: &str) {
        self.pods
            .write()
            .expect("log index lock")
            .remove(&(namespace.to_string(), pod.to_string()));
    }

    /// The pod's uid and the container's log state.
    pub fn get(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Option<(String, ContainerLog)> {
        let pods = self.pods.read().expect("log index lock");
        let logs = pods.get(&(namespace.to_string(), pod.to_string()))?;
        Some((logs.uid.clone(), logs.containers.get(container)?.clone()))
    }
}

/// `<pods_dir>/<uid>/logs`: the directory a pod's sandbox writes its logs into.
pub fn pod_log_dir(pods_dir: &Path, uid: &str) -> PathBuf {
    pods_dir.join(uid).join("logs")
}
