//! wasi:http incoming-handler components (the `proxy` world): how the runtime tells them from
//! commands, and the engine, linker and compile cache their per-request instances come from.

use std::path::Path;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::Engine;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::compile_cache::{CompileCache, Program};
use super::engine::{self, EpochTicker};
use super::limits::MemoryLimiter;
use super::read_image;
use crate::runtime::{ImageRef, RuntimeError};

/// The interface whose export makes a component an HTTP handler.
const INCOMING_HANDLER: &str = "wasi:http/incoming-handler@";

/// Whether `component` exports `wasi:http/incoming-handler` (any 0.2 version).
pub fn serves_http(component: &Component, engine: &Engine) -> bool {
    component
        .component_type()
        .exports(engine)
        .any(|(name, _)| name.starts_with(INCOMING_HANDLER))
}

/// Store data of one request's instance.
pub struct HttpState {
    pub ctx: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub limiter: MemoryLimiter,
}

impl HttpState {
    pub fn new(ctx: WasiCtx, limiter: MemoryLimiter) -> Self {
        HttpState {
            ctx,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limiter,
        }
    }
}

impl WasiView for HttpState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HttpState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

/// What serving handlers needs, made once per runtime on the first handler: the pooling
/// engine, its epoch clock, a linker with WASI and wasi:http, and compiled handlers.
pub struct HttpHost {
    linker: Linker<HttpState>,
    cache: CompileCache,
    _epoch: EpochTicker,
}

impl HttpHost {
    /// A host keeping its compiled handlers under `dir`.
    pub fn new(dir: &Path) -> Result<Self, RuntimeError> {
        let setup = |message: String| RuntimeError::CreateContainer {
            name: "wasi:http engine".into(),
            message,
        };
        let engine = engine::new_request_engine().map_err(|e| setup(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .map_err(|e| setup(format!("{e:#}")))?;
        let epoch = EpochTicker::start(&engine).map_err(|source| RuntimeError::Io {
            context: "starting the epoch thread of the wasi:http engine".into(),
            source,
        })?;
        Ok(HttpHost {
            cache: CompileCache::new(engine, dir.to_path_buf()),
            linker,
            _epoch: epoch,
        })
    }

    /// The handler in `image` compiled for the pooling engine and pre-instantiated.
    pub async fn prepare(&self, image: &ImageRef) -> Result<ProxyPre<HttpState>, RuntimeError> {
        let invalid = |message: String| RuntimeError::InvalidImage {
            reference: image.reference.clone(),
            message,
        };
        let Program::Component(component) = self.cache.get(image, || read_image(image)).await?
        else {
            return Err(invalid("a wasi:http handler must be a component".into()));
        };
        self.linker
            .instantiate_pre(&component)
            .and_then(ProxyPre::new)
            .map_err(|e| invalid(format!("cannot serve it as a wasi:http handler: {e:#}")))
    }
}
