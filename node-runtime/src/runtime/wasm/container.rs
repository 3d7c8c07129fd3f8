//! One Wasm container: its compiled guest, its task, and what became of it.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wasmtime::component::{Component, Linker as ComponentLinker, ResourceTable};
use wasmtime::{Engine, Linker, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::http::HttpState;
use super::http_server::{self, Handler, StoreFactory};
use super::limits::{on_deadline, MemoryLimiter, Usage};
use super::log_output::LogOutput;
use super::name_lookup::{self, PodNames};
use super::resolver::PodResolver;
use super::sockets::PortPolicy;
use crate::runtime::logs::{LogLimits, LogWriter, Stream};
use crate::runtime::{
    ContainerConfig, ContainerEvent, ContainerEventKind, ContainerId, ContainerState, Protocol,
    RuntimeError, SandboxId,
};

/// Exit code reported for a guest that was killed (as for SIGKILL).
const KILLED: i32 = 137;
/// Exit code reported for a guest that trapped (as for SIGABRT).
const TRAPPED: i32 = 134;
/// Exit code reported for a guest that could not be set up (a mount that cannot be opened).
const CANNOT_RUN: i32 = 128;

/// Store data of a core module (WASI preview 1).
pub struct ModuleState {
    wasi: WasiP1Ctx,
    limiter: MemoryLimiter,
}

/// Store data of a component (WASI preview 2).
pub struct ComponentState {
    ctx: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    resolver: Option<Arc<PodResolver>>,
}

impl PodNames for ComponentState {
    fn resolver(&self) -> Option<Arc<PodResolver>> {
        self.resolver.clone()
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Store data that carries a guest's memory limiter.
trait Limited: Send + 'static {
    fn limiter(&mut self) -> &mut MemoryLimiter;
}

impl Limited for ModuleState {
    fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }
}

impl Limited for ComponentState {
    fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }
}

impl Limited for HttpState {
    fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }
}

/// What a container runs.
pub enum Guest {
    /// A WASI preview 1 module, run once from `_start`.
    Module(Module),
    /// A WASI preview 2 command component, run once through `wasi:cli/run`.
    Command(Component),
    /// A wasi:http handler, instantiated for each request it serves on its port.
    Handler { pre: ProxyPre<HttpState>, port: u16 },
}

/// The port a wasi:http handler serves on: its container's first TCP port.
pub fn http_port(config: &ContainerConfig) -> Option<u16> {
    config
        .ports
        .iter()
        .find(|p| p.protocol == Protocol::Tcp)
        .map(|p| p.port)
}

/// A store for one guest run: its memory limiter, and epoch deadlines that preempt, throttle
/// (`cpu_millis`) and stop it.
fn guest_store<T: Limited>(
    engine: &Engine,
    state: T,
    usage: Arc<Usage>,
    cpu_millis: Option<u64>,
) -> Store<T> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| s.limiter());
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| on_deadline(&usage, cpu_millis));
    store
}

/// WASI linkers, built once per runtime.
pub struct Linkers {
    pub module: Linker<ModuleState>,
    pub component: ComponentLinker<ComponentState>,
}

impl Linkers {
    pub fn new(engine: &Engine) -> wasmtime::Result<Self> {
        let mut module = Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut module, |s: &mut ModuleState| &mut s.wasi)?;
        let mut component = ComponentLinker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut component)?;
        name_lookup::shadow(&mut component)?;
        Ok(Linkers { module, component })
    }
}

pub struct Container {
    pub id: ContainerId,
    pub sandbox_id: SandboxId,
    pub config: ContainerConfig,
    pub log_path: PathBuf,
    pub guest: Guest,
    pub usage: Arc<Usage>,
    state: Mutex<ContainerState>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Cancelled when the runtime asks the container to stop (a handler stops accepting).
    stopping: CancellationToken,
    events: broadcast::Sender<ContainerEvent>,
    /// The pod's resolver for the guest's name lookups; None: the node's.
    resolver: Option<Arc<PodResolver>>,
}

impl Container {
    pub fn new(
        id: ContainerId,
        sandbox_id: SandboxId,
        config: ContainerConfig,
        log_path: PathBuf,
        guest: Guest,
        events: broadcast::Sender<ContainerEvent>,
    ) -> Self {
        Container {
            id,
            sandbox_id,
            config,
            log_path,
            guest,
            usage: Arc::new(Usage::default()),
            state: Mutex::new(ContainerState::Created),
            task: Mutex::new(None),
            stopping: CancellationToken::new(),
            events,
            resolver: None,
        }
    }

    /// Resolves the guest's names with `resolver` (the pod's DNS settings).
    pub fn with_resolver(mut self, resolver: Option<Arc<PodResolver>>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Tells subscribers (none listening is fine).
    fn emit(&self, kind: ContainerEventKind) {
        let _ = self.events.send(ContainerEvent {
            container: self.id.clone(),
            sandbox: self.sandbox_id.clone(),
            kind,
        });
    }

    pub fn state(&self) -> ContainerState {
        self.state.lock().expect("container state lock").clone()
    }

    /// Starts the guest on its own task on `runtime` (the pod's: in its network namespace);
    /// its output goes to the log file, capped at `log_limits`.
    pub fn start(
        self: &Arc<Self>,
        runtime: &Handle,
        engine: &Engine,
        linkers: &Arc<Linkers>,
        log_limits: LogLimits,
    ) -> Result<(), RuntimeError> {
        let mut state = self.state.lock().expect("container state lock");
        if *state != ContainerState::Created {
            return Err(RuntimeError::CreateContainer {
                name: self.config.name.clone(),
                message: format!("cannot start a container in state {:?}", *state),
            });
        }
        let log = LogWriter::open(self.log_path.clone(), log_limits).map_err(|source| {
            RuntimeError::Io {
                context: format!("opening log file {}", self.log_path.display()),
                source,
            }
        })?;
        let started_at = SystemTime::now();
        *state = ContainerState::Running { started_at };
        drop(state);
        let (container, engine, linkers) = (self.clone(), engine.clone(), linkers.clone());
        let task = runtime.spawn(async move {
            let log = Arc::new(log);
            let (exit_code, reason, message) = container.run(&engine, &linkers, log).await;
            container.finish(started_at, exit_code, reason, message);
        });
        *self.task.lock().expect("container task lock") = Some(task);
        self.emit(ContainerEventKind::Started);
        Ok(())
    }

    fn finish(&self, started_at: SystemTime, exit_code: i32, reason: &str, message: String) {
        let mut state = self.state.lock().expect("container state lock");
        if matches!(*state, ContainerState::Running { .. }) {
            *state = ContainerState::Exited {
                started_at,
                finished_at: SystemTime::now(),
                exit_code,
                reason: reason.to_string(),
                message,
            };
            drop(state);
            self.emit(ContainerEventKind::Exited);
        }
    }

    /// Asks the guest to stop at its next epoch check (a handler: to stop accepting and let its
    /// requests in flight finish); kills its task after `grace`.
    pub async fn stop(&self, grace: Duration) {
        self.stopping.cancel();
        if !matches!(self.guest, Guest::Handler { .. }) {
            self.usage.stop.store(true, Ordering::SeqCst);
        }
        let task = self.task.lock().expect("container task lock").take();
        let Some(mut task) = task else {
            return;
        };
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            self.usage.stop.store(true, Ordering::SeqCst);
            task.abort();
            let _ = task.await;
        }
        let started_at = match self.state() {
            ContainerState::Running { started_at } => started_at,
            _ => return,
        };
        self.finish(
            started_at,
            KILLED,
            "Error",
            "killed by the runtime after the grace period".into(),
        );
    }

    /// The guest's WASI context: argv, env, output to the log, the mounts as preopened
    /// directories, and sockets within its ports (the security context has nothing to apply to
    /// in a Wasm guest).
    fn wasi_builder(&self, log: &Arc<LogWriter>) -> wasmtime::Result<WasiCtxBuilder> {
        let mut builder = WasiCtxBuilder::new();
        let argv0 = self
            .config
            .command
            .first()
            .cloned()
            .unwrap_or_else(|| self.config.name.clone());
        let rest = self
            .config
            .command
            .iter()
            .skip(1)
            .chain(self.config.args.iter());
        builder
            .arg(argv0)
            .args(&rest.cloned().collect::<Vec<_>>())
            .envs(&self.config.env)
            .stdout(LogOutput::new(log.clone(), Stream::Stdout))
            .stderr(LogOutput::new(log.clone(), Stream::Stderr));
        for mount in &self.config.mounts {
            let perms = if mount.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            builder.preopened_dir(&mount.host_path, &mount.container_path, perms)?;
        }
        PortPolicy::new(&self.config.ports).apply(&mut builder);
        Ok(builder)
    }

    fn limiter(&self) -> MemoryLimiter {
        MemoryLimiter::new(self.config.resources.memory_bytes, self.usage.clone())
    }

    /// Runs the guest to completion (a handler: until it is stopped): (exit code, reason,
    /// message).
    async fn run(
        self: &Arc<Self>,
        engine: &Engine,
        linkers: &Linkers,
        log: Arc<LogWriter>,
    ) -> (i32, &'static str, String) {
        let cpu = self.config.resources.cpu_millis;
        let mut builder = match self.wasi_builder(&log) {
            Ok(builder) => builder,
            Err(err) => {
                return (
                    CANNOT_RUN,
                    "ContainerCannotRun",
                    format!("preparing the guest: {err:#}"),
                )
            }
        };
        let result = match &self.guest {
            Guest::Module(module) => {
                let state = ModuleState {
                    wasi: builder.build_p1(),
                    limiter: self.limiter(),
                };
                let mut store = guest_store(engine, state, self.usage.clone(), cpu);
                run_module(&mut store, &linkers.module, module).await
            }
            Guest::Command(component) => {
                let state = ComponentState {
                    ctx: builder.build(),
                    table: ResourceTable::new(),
                    limiter: self.limiter(),
                    resolver: self.resolver.clone(),
                };
                let mut store = guest_store(engine, state, self.usage.clone(), cpu);
                run_component(&mut store, &linkers.component, component).await
            }
            Guest::Handler { pre, port } => return self.serve(pre.clone(), *port, log).await,
        };
        self.outcome(result)
    }

    /// Serves a wasi:http handler on 0.0.0.0:`port` until the runtime stops it; requests that
    /// fail are told in the container's log.
    async fn serve(
        self: &Arc<Self>,
        pre: ProxyPre<HttpState>,
        port: u16,
        log: Arc<LogWriter>,
    ) -> (i32, &'static str, String) {
        let listener = match TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).await {
            Ok(listener) => listener,
            Err(err) => return (1, "Error", format!("listening on 0.0.0.0:{port}: {err}")),
        };
        let (container, engine, store_log) = (self.clone(), pre.engine().clone(), log.clone());
        let store: StoreFactory = Box::new(move || {
            let ctx = container.wasi_builder(&store_log)?.build();
            let state = HttpState::new(ctx, container.limiter());
            let cpu = container.config.resources.cpu_millis;
            Ok(guest_store(&engine, state, container.usage.clone(), cpu))
        });
        let handler = Handler::new(pre, store, move |line| {
            let _ = log.write(Stream::Stderr, format!("{line}\n").as_bytes());
        });
        http_server::serve(listener, Arc::new(handler), self.stopping.clone()).await;
        (0, "Completed", String::new())
    }

    fn outcome(&self, result: wasmtime::Result<i32>) -> (i32, &'static str, String) {
        match result {
            Ok(0) => (0, "Completed", String::new()),
            Ok(code) => (code, "Error", String::new()),
            Err(err) => {
                if let Some(exit) = err.downcast_ref::<I32Exit>() {
                    let reason = if exit.0 == 0 { "Completed" } else { "Error" };
                    (exit.0, reason, String::new())
                } else if self.usage.oom.load(Ordering::SeqCst) {
                    (KILLED, "OOMKilled", format!("{err:#}"))
                } else if self.usage.stop.load(Ordering::SeqCst) {
                    (KILLED, "Error", "stopped by the runtime".into())
                } else {
                    (TRAPPED, "Error", format!("wasm trap: {err:#}"))
                }
            }
        }
    }
}

async fn run_module(
    store: &mut Store<ModuleState>,
    linker: &Linker<ModuleState>,
    module: &wasmtime::Module,
) -> wasmtime::Result<i32> {
    let instance = linker.instantiate_async(&mut *store, module).await?;
    let start = instance.get_typed_func::<(), ()>(&mut *store, "_start")?;
    start.call_async(&mut *store, ()).await?;
    Ok(0)
}

async fn run_component(
    store: &mut Store<ComponentState>,
    linker: &ComponentLinker<ComponentState>,
    component: &wasmtime::component::Component,
) -> wasmtime::Result<i32> {
    let command = Command::instantiate_async(&mut *store, component, linker).await?;
    match command.wasi_cli_run().call_run(&mut *store).await? {
        Ok(()) => Ok(0),
        Err(()) => Ok(1),
    }
}
