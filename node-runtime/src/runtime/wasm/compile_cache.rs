//! Compiled guests cached by content digest: in memory for this process, and on disk as
//! precompiled artifacts so that an agent restart does not compile again either.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use wasmtime::component::Component;
use wasmtime::{Engine, Module};

use super::kind::{wasm_kind, WasmKind};
use crate::runtime::{ImageRef, RuntimeError};

/// A compiled guest.
#[derive(Clone)]
pub enum Program {
    Module(Module),
    Component(Component),
}

/// How a program was obtained, counted for tests and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Compiled from Wasm bytes (cold).
    pub compiled: u64,
    /// Loaded from a precompiled artifact on disk.
    pub loaded: u64,
    /// Found in memory.
    pub hits: u64,
}

pub struct CompileCache {
    engine: Engine,
    dir: PathBuf,
    /// Changes whenever the engine's compilation settings or version change.
    engine_hash: String,
    /// One cell per digest, so concurrent first uses compile once (single flight).
    programs: Mutex<HashMap<String, Arc<OnceCell<Program>>>>,
    compiled: AtomicU64,
    loaded: AtomicU64,
    hits: AtomicU64,
}

impl CompileCache {
    pub fn new(engine: Engine, dir: PathBuf) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        CompileCache {
            engine,
            dir,
            engine_hash: format!("{:016x}", hasher.finish()),
            programs: Mutex::new(HashMap::new()),
            compiled: AtomicU64::new(0),
            loaded: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            loaded: self.loaded.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
        }
    }

    fn artifact_path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!(
            "{}-{}.cwasm",
            digest.trim_start_matches("sha256:"),
            self.engine_hash
        ))
    }

    /// The compiled program for `image`, compiling `bytes()` only when neither memory nor disk has it.
    pub async fn get<F, Fut>(&self, image: &ImageRef, bytes: F) -> Result<Program, RuntimeError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<u8>, RuntimeError>>,
    {
        let cell = self
            .programs
            .lock()
            .expect("cache lock")
            .entry(image.digest.clone())
            .or_default()
            .clone();
        if let Some(program) = cell.get() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(program.clone());
        }
        let mut produced = false;
        let program = cell
            .get_or_try_init(|| async {
                produced = true;
                self.produce(image, bytes().await?).await
            })
            .await?;
        if !produced {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(program.clone())
    }

    /// Loads or compiles `wasm` (off the async threads) and counts how.
    async fn produce(&self, image: &ImageRef, wasm: Vec<u8>) -> Result<Program, RuntimeError> {
        let artifact = self.artifact_path(&image.digest);
        let kind = wasm_kind(&wasm).map_err(|message| RuntimeError::InvalidImage {
            reference: image.reference.clone(),
            message: format!("not a WebAssembly module or component: {message}"),
        })?;
        let engine = self.engine.clone();
        let reference = image.reference.clone();
        let (program, loaded) =
            tokio::task::spawn_blocking(move || load_or_compile(&engine, kind, &wasm, &artifact))
                .await
                .map_err(|e| RuntimeError::CreateContainer {
                    name: reference.clone(),
                    message: format!("compilation task failed: {e}"),
                })?
                .map_err(|message| RuntimeError::InvalidImage { reference, message })?;
        let counter = if loaded { &self.loaded } else { &self.compiled };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(program)
    }
}

/// Loads the precompiled artifact if it is there and usable, else compiles and stores one.
/// Returns whether it was loaded.
fn load_or_compile(
    engine: &Engine,
    kind: WasmKind,
    wasm: &[u8],
    artifact: &PathBuf,
) -> Result<(Program, bool), String> {
    if artifact.exists() {
        // SAFETY: the artifact was written by `serialize` of this same engine configuration
        // (its file name carries the engine's compatibility hash) into the agent's own data
        // directory; wasmtime still validates its header and refuses mismatches.
        let loaded = match kind {
            WasmKind::Module => {
                unsafe { Module::deserialize_file(engine, artifact) }.map(Program::Module)
            }
            WasmKind::Component => {
                unsafe { Component::deserialize_file(engine, artifact) }.map(Program::Component)
            }
        };
        match loaded {
            Ok(program) => return Ok((program, true)),
            Err(err) => {
                tracing::warn!(artifact = %artifact.display(), %err, "unusable compiled artifact; recompiling")
            }
        }
    }
    let (program, serialized) = match kind {
        WasmKind::Module => {
            let module = Module::new(engine, wasm).map_err(|e| format!("compiling: {e:#}"))?;
            let bytes = module.serialize();
            (Program::Module(module), bytes)
        }
        WasmKind::Component => {
            let component =
                Component::new(engine, wasm).map_err(|e| format!("compiling: {e:#}"))?;
            let bytes = component.serialize();
            (Program::Component(component), bytes)
        }
    };
    match serialized {
        Ok(bytes) => {
            if let Err(err) = write_artifact(artifact, &bytes) {
                tracing::warn!(artifact = %artifact.display(), %err, "cannot cache the compiled guest");
            }
        }
        Err(err) => tracing::warn!(%err, "cannot serialize the compiled guest"),
    }
    Ok((program, false))
}

fn write_artifact(path: &PathBuf, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
