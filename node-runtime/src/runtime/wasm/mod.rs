//! The Wasm runtime: WASI preview 1 modules, preview 2 command components and wasi:http
//! handler components on wasmtime, each container a task in the agent's process (on a thread
//! in the pod's network namespace when the pod has one). All wasmtime calls of the crate live
//! here.

mod compile_cache;
mod container;
mod engine;
mod http;
mod http_server;
mod kind;
mod limits;
mod log_output;
mod name_lookup;
mod netns;
mod resolver;
mod sockets;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

pub use compile_cache::CacheStats;
pub use kind::{wasm_kind, WasmKind};

use self::compile_cache::{CompileCache, Program};
use self::container::{http_port, Container, Guest, Linkers};
use self::http::HttpHost;
use self::netns::PodNetThread;
use self::resolver::PodResolver;
use super::logs::LogLimits;
use super::{
    ContainerConfig, ContainerEvent, ContainerId, ContainerRuntime, ContainerStats,
    ContainerStatus, ExecResult, ImageRef, PodSandboxConfig, PodSandboxStatus, RuntimeError,
    SandboxId,
};

/// The RuntimeClass handler this runtime serves.
pub const RUNTIME_CLASS: &str = "wasm";
/// How many container events wait for slow subscribers before they lag.
const EVENT_BUFFER: usize = 1024;

struct Sandbox {
    config: PodSandboxConfig,
    containers: Vec<ContainerId>,
    /// The thread the pod's guests run on when the pod has its own network namespace.
    net: Option<PodNetThread>,
}

impl Sandbox {
    /// Where the pod's guests run: its namespace's thread, or the agent's runtime.
    fn runtime(&self) -> tokio::runtime::Handle {
        match &self.net {
            Some(net) => net.handle().clone(),
            None => tokio::runtime::Handle::current(),
        }
    }
}

/// Runs Wasm containers in-process; cheap to share behind an `Arc`.
pub struct WasmRuntime {
    engine: wasmtime::Engine,
    linkers: Arc<Linkers>,
    cache: CompileCache,
    /// Made for the first wasi:http handler (its pooling engine reserves address space).
    http: tokio::sync::OnceCell<HttpHost>,
    data_dir: PathBuf,
    sandboxes: Mutex<HashMap<SandboxId, Sandbox>>,
    containers: Mutex<HashMap<ContainerId, Arc<Container>>>,
    events: broadcast::Sender<ContainerEvent>,
    log_limits: LogLimits,
    _epoch: engine::EpochTicker,
}

impl WasmRuntime {
    /// A runtime keeping compiled artifacts under `data_dir` (images are the node's, read
    /// from where the image service put them).
    pub fn new(data_dir: PathBuf) -> Result<Self, RuntimeError> {
        let engine = engine::new_engine().map_err(|e| RuntimeError::CreateContainer {
            name: "wasm engine".into(),
            message: format!("{e:#}"),
        })?;
        let linkers = Linkers::new(&engine).map_err(|e| RuntimeError::CreateContainer {
            name: "wasi linker".into(),
            message: format!("{e:#}"),
        })?;
        let epoch = engine::EpochTicker::start(&engine).map_err(|source| RuntimeError::Io {
            context: "starting the epoch thread".into(),
            source,
        })?;
        Ok(WasmRuntime {
            cache: CompileCache::new(engine.clone(), data_dir.join("compiled")),
            http: tokio::sync::OnceCell::new(),
            data_dir,
            engine,
            linkers: Arc::new(linkers),
            sandboxes: Mutex::new(HashMap::new()),
            containers: Mutex::new(HashMap::new()),
            events: broadcast::channel(EVENT_BUFFER).0,
            log_limits: LogLimits::default(),
            _epoch: epoch,
        })
    }

    /// Caps the containers' logs at `limits` (the kubelet's defaults without it).
    pub fn with_log_limits(mut self, limits: LogLimits) -> Self {
        self.log_limits = limits;
        self
    }

    /// How compiled programs were obtained so far (compiled, loaded from disk, memory hits).
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// What `config`'s image runs as: a module, a command, or a wasi:http handler (which needs
    /// a TCP port to serve on).
    async fn guest(&self, config: &ContainerConfig) -> Result<Guest, RuntimeError> {
        let program = self
            .cache
            .get(&config.image, || read_image(&config.image))
            .await?;
        let component = match program {
            Program::Module(module) => return Ok(Guest::Module(module)),
            Program::Component(component) => component,
        };
        if !http::serves_http(&component, &self.engine) {
            return Ok(Guest::Command(component));
        }
        let port = http_port(config).ok_or_else(|| RuntimeError::CreateContainer {
            name: config.name.clone(),
            message: "a wasi:http handler is served on its container's first TCP containerPort, \
                      and the container declares none"
                .into(),
        })?;
        let host = self
            .http
            .get_or_try_init(|| async { HttpHost::new(&self.data_dir.join("compiled-http")) })
            .await?;
        let pre = host.prepare(&config.image).await?;
        Ok(Guest::Handler { pre, port })
    }

    fn container(&self, id: &ContainerId) -> Result<Arc<Container>, RuntimeError> {
        self.containers
            .lock()
            .expect("containers lock")
            .get(id)
            .cloned()
            .ok_or_else(|| RuntimeError::ContainerNotFound(id.clone()))
    }

    fn status_of(container: &Container) -> ContainerStatus {
        ContainerStatus {
            id: container.id.clone(),
            sandbox_id: container.sandbox_id.clone(),
            name: container.config.name.clone(),
            image: container.config.image.clone(),
            attempt: container.config.attempt,
            state: container.state(),
            log_path: container.log_path.clone(),
        }
    }
}

#[async_trait]
impl ContainerRuntime for WasmRuntime {
    fn name(&self) -> &'static str {
        RUNTIME_CLASS
    }

    fn version(&self) -> String {
        "wasm://wasmtime".into()
    }

    /// Wasm guests see WASI, not the host's OS.
    fn node_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("kubernetes.io/os".to_string(), "wasi".to_string())])
    }

    /// Core modules and components, told by their header.
    fn can_handle(&self, image: &ImageRef) -> bool {
        kind::file_kind(&image.content).is_ok()
    }

    fn subscribe(&self) -> broadcast::Receiver<ContainerEvent> {
        self.events.subscribe()
    }

    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<SandboxId, RuntimeError> {
        tokio::fs::create_dir_all(&config.log_directory)
            .await
            .map_err(|source| RuntimeError::Io {
                context: format!("creating {}", config.log_directory.display()),
                source,
            })?;
        let id = config.uid.clone();
        if self
            .sandboxes
            .lock()
            .expect("sandboxes lock")
            .contains_key(&id)
        {
            return Ok(id);
        }
        let net = match &config.network {
            Some(network) => Some(
                PodNetThread::start(network.netns.clone(), &config.name).map_err(|source| {
                    RuntimeError::Io {
                        context: format!(
                            "entering the network namespace of pod {}/{}",
                            config.namespace, config.name
                        ),
                        source,
                    }
                })?,
            ),
            None => None,
        };
        self.sandboxes
            .lock()
            .expect("sandboxes lock")
            .entry(id.clone())
            .or_insert_with(|| Sandbox {
                config: config.clone(),
                containers: Vec::new(),
                net,
            });
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let ids = match self.sandboxes.lock().expect("sandboxes lock").get(id) {
            Some(sandbox) => sandbox.containers.clone(),
            None => return Ok(()),
        };
        for container in ids {
            self.stop_container(&container, Duration::ZERO).await?;
        }
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.stop_pod_sandbox(id).await?;
        let removed = self.sandboxes.lock().expect("sandboxes lock").remove(id);
        if let Some(sandbox) = removed {
            {
                let mut containers = self.containers.lock().expect("containers lock");
                for container in &sandbox.containers {
                    containers.remove(container);
                }
            }
            match tokio::fs::remove_dir_all(&sandbox.config.log_directory).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(RuntimeError::Io {
                        context: format!("removing {}", sandbox.config.log_directory.display()),
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// The pod's address when it has a network of its own; none when it shares the node's.
    async fn pod_sandbox_status(&self, id: &SandboxId) -> Result<PodSandboxStatus, RuntimeError> {
        let ip = self
            .sandboxes
            .lock()
            .expect("sandboxes lock")
            .get(id)
            .ok_or_else(|| RuntimeError::SandboxNotFound(id.clone()))?
            .config
            .network
            .as_ref()
            .map(|network| network.ip.to_string());
        Ok(PodSandboxStatus {
            id: id.clone(),
            ready: true,
            ip,
        })
    }

    async fn create_container(
        &self,
        sandbox: &SandboxId,
        config: &ContainerConfig,
    ) -> Result<ContainerId, RuntimeError> {
        let (log_directory, dns) = self
            .sandboxes
            .lock()
            .expect("sandboxes lock")
            .get(sandbox)
            .map(|s| (s.config.log_directory.clone(), s.config.dns.clone()))
            .ok_or_else(|| RuntimeError::SandboxNotFound(sandbox.clone()))?;
        for mount in &config.mounts {
            if !mount.host_path.is_dir() {
                return Err(RuntimeError::CreateContainer {
                    name: config.name.clone(),
                    message: format!(
                        "mount {}: {} is not a directory on the node",
                        mount.container_path,
                        mount.host_path.display()
                    ),
                });
            }
        }
        let guest = self.guest(config).await?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let container = Arc::new(
            Container::new(
                id.clone(),
                sandbox.clone(),
                config.clone(),
                log_directory.join(&config.log_path),
                guest,
                self.events.clone(),
            )
            .with_resolver(dns.map(|dns| Arc::new(PodResolver::new(&dns)))),
        );
        self.containers
            .lock()
            .expect("containers lock")
            .insert(id.clone(), container);
        if let Some(sandbox) = self
            .sandboxes
            .lock()
            .expect("sandboxes lock")
            .get_mut(sandbox)
        {
            sandbox.containers.push(id.clone());
        }
        Ok(id)
    }

    async fn start_container(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        let container = self.container(id)?;
        let runtime = self
            .sandboxes
            .lock()
            .expect("sandboxes lock")
            .get(&container.sandbox_id)
            .map(Sandbox::runtime)
            .ok_or_else(|| RuntimeError::SandboxNotFound(container.sandbox_id.clone()))?;
        container.start(&runtime, &self.engine, &self.linkers, self.log_limits)
    }

    /// Wasm guests have no signals: the guest is stopped at its next epoch check (at once if it
    /// is running Wasm code, when its current host call returns otherwise), or killed after `grace`.
    async fn stop_container(&self, id: &ContainerId, grace: Duration) -> Result<(), RuntimeError> {
        let container = match self.container(id) {
            Ok(c) => c,
            Err(RuntimeError::ContainerNotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        container.stop(grace).await;
        Ok(())
    }

    async fn remove_container(&self, id: &ContainerId) -> Result<(), RuntimeError> {
        self.stop_container(id, Duration::ZERO).await?;
        let removed = self.containers.lock().expect("containers lock").remove(id);
        if let Some(container) = removed {
            if let Some(sandbox) = self
                .sandboxes
                .lock()
                .expect("sandboxes lock")
                .get_mut(&container.sandbox_id)
            {
                sandbox.containers.retain(|c| c != id);
            }
        }
        Ok(())
    }

    async fn container_status(&self, id: &ContainerId) -> Result<ContainerStatus, RuntimeError> {
        Ok(Self::status_of(self.container(id)?.as_ref()))
    }

    async fn list_containers(
        &self,
        sandbox: Option<&SandboxId>,
    ) -> Result<Vec<ContainerStatus>, RuntimeError> {
        Ok(self
            .containers
            .lock()
            .expect("containers lock")
            .values()
            .filter(|c| sandbox.is_none_or(|s| *s == c.sandbox_id))
            .map(|c| Self::status_of(c))
            .collect())
    }

    async fn container_stats(&self, id: &ContainerId) -> Result<ContainerStats, RuntimeError> {
        let container = self.container(id)?;
        let ticks = container.usage.running_ticks.load(Ordering::Relaxed);
        // A guest's linear memories and tables are all it holds: none of it is reclaimable
        // cache, so its working set and its RSS are the same bytes.
        let memory = container.usage.memory_bytes.load(Ordering::Relaxed);
        Ok(ContainerStats {
            cpu_usage_nanos: ticks * engine::EPOCH_TICK.as_nanos() as u64,
            memory_bytes: memory,
            memory_working_set_bytes: memory,
            memory_rss_bytes: memory,
        })
    }

    async fn exec_sync(
        &self,
        _id: &ContainerId,
        _cmd: &[String],
        _timeout: Duration,
    ) -> Result<ExecResult, RuntimeError> {
        Err(RuntimeError::Unsupported {
            runtime: RUNTIME_CLASS,
            operation: "exec",
        })
    }

    /// Wasm containers live inside the agent's process, so none survive an agent restart:
    /// there is nothing to re-attach to, and the agent restarts the pods.
    async fn recover(&self) -> Result<Vec<SandboxId>, RuntimeError> {
        Ok(Vec::new())
    }
}

/// The bytes of a pulled image, from where the image service stored them.
async fn read_image(image: &ImageRef) -> Result<Vec<u8>, RuntimeError> {
    tokio::fs::read(&image.content)
        .await
        .map_err(|source| RuntimeError::Io {
            context: format!(
                "reading image {} from {}",
                image.reference,
                image.content.display()
            ),
            source,
        })
}

#[cfg(test)]
mod tests;
