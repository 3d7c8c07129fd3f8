//! Which log file belongs to which pod container: kept by the pod workers, read by the log server.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::RwLock;

/// The log of one container of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLog {
    /// Current attempt (= restart count); its file is `<attempt>.log`.
    pub attempt: u32,
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
pub fn pod_log_dir(pods_dir: &std::path::Path, uid: &str) -> PathBuf {
    pods_dir.join(uid).join("logs")
}

/// The file of one attempt of one container.
pub fn log_file(pods_dir: &std::path::Path, uid: &str, container: &str, attempt: u32) -> PathBuf {
    pod_log_dir(pods_dir, uid)
        .join(container)
        .join(format!("{attempt}.log"))
}
