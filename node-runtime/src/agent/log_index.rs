//! Which log file belongs to which pod container: kept by the pod workers from what the
//! runtimes report, read by the log and exec servers. The naming convention is [`container_log_path`](crate::runtime::container_log_path),
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

/// Pod (namespace, name) → the logs of each pod of that name on the node, oldest first: a pod
/// made anew under the same name (a StatefulSet's) may start while the old one is still being
/// torn down, and each keeps its own entry until its own worker removes it.
#[derive(Default)]
pub struct LogIndex {
    pods: RwLock<HashMap<(String, String), Vec<PodLogs>>>,
}

impl LogIndex {
    pub fn set(&self, namespace: &str, pod: &str, uid: &str, container: &str, log: ContainerLog) {
        let mut pods = self.pods.write().expect("log index lock");
        let named = pods
            .entry((namespace.to_string(), pod.to_string()))
            .or_default();
        let index = match named.iter().position(|p| p.uid == uid) {
            Some(index) => index,
            None => {
                named.push(PodLogs {
                    uid: uid.to_string(),
                    containers: HashMap::new(),
                });
                named.len() - 1
            }
        };
        named[index].containers.insert(container.to_string(), log);
    }

    /// Forgets pod `uid` of that name (not a newer pod of the same name).
    pub fn remove(&self, namespace: &str, pod: &str, uid: &str) {
        let mut pods = self.pods.write().expect("log index lock");
        let key = (namespace.to_string(), pod.to_string());
        if let Some(named) = pods.get_mut(&key) {
            named.retain(|p| p.uid != uid);
            if named.is_empty() {
                pods.remove(&key);
            }
        }
    }

    /// The uid of the newest pod of that name and its container's log state.
    pub fn get(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Option<(String, ContainerLog)> {
        let pods = self.pods.read().expect("log index lock");
        let logs = pods
            .get(&(namespace.to_string(), pod.to_string()))?
            .last()?;
        Some((logs.uid.clone(), logs.containers.get(container)?.clone()))
    }

    /// The uid of the newest pod of that name on the node.
    pub fn uid(&self, namespace: &str, pod: &str) -> Option<String> {
        let pods = self.pods.read().expect("log index lock");
        let named = pods.get(&(namespace.to_string(), pod.to_string()))?;
        Some(named.last()?.uid.clone())
    }

    /// Every pod on the node (each of a name's pods while an old one is torn down).
    pub fn pods(&self) -> Vec<PodName> {
        let pods = self.pods.read().expect("log index lock");
        pods.iter()
            .flat_map(|((namespace, name), named)| {
                named.iter().map(|p| PodName {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    uid: p.uid.clone(),
                })
            })
            .collect()
    }
}

/// A pod the node runs, as the log index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodName {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// `<pods_dir>/<uid>/logs`: the directory a pod's sandbox writes its logs into.
pub fn pod_log_dir(pods_dir: &Path, uid: &str) -> PathBuf {
    pods_dir.join(uid).join("logs")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(file: &str) -> ContainerLog {
        ContainerLog {
            current: Some(file.into()),
            previous: None,
            running: true,
        }
    }

    #[test]
    fn a_pod_made_anew_under_its_name_keeps_its_logs_while_the_old_one_goes() {
        let index = LogIndex::default();
        index.set("ns", "db-0", "old", "c", log("old.log"));
        index.set("ns", "db-0", "new", "c", log("new.log"));
        // The old pod's worker reports once more, then removes its entry.
        index.set("ns", "db-0", "old", "c", log("old-2.log"));
        assert_eq!(
            index.get("ns", "db-0", "c"),
            Some(("new".into(), log("new.log")))
        );
        index.remove("ns", "db-0", "old");
        assert_eq!(
            index.get("ns", "db-0", "c"),
            Some(("new".into(), log("new.log")))
        );
        assert_eq!(
            index.pods(),
            vec![PodName {
                namespace: "ns".into(),
                name: "db-0".into(),
                uid: "new".into()
            }]
        );
        index.remove("ns", "db-0", "new");
        assert_eq!(index.get("ns", "db-0", "c"), None);
        assert!(index.pods().is_empty());
    }
}
