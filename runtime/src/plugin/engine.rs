//! One wasmtime engine per worker, its epoch ticker, and the compile cache.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

/// The contract version this worker speaks (the WIT package version).
pub const CONTRACT_VERSION: &str = "0.2.0";

/// How often the epoch advances; per-call deadlines are counted in ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The worker's wasmtime engine and compiled-component cache.
#[derive(Clone)]
pub struct PluginEngine {
    engine: Engine,
    cache_dir: PathBuf,
}

impl PluginEngine {
    /// Creates the engine and starts its epoch ticker (a thread that stops
    /// when the engine is dropped).
    pub fn new(cache_dir: &Path) -> anyhow::Result<PluginEngine> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        // For profiling: guest functions by name in `perf report`
        // (through perf's map file of JIT code). Off unless asked for.
        if std::env::var_os("TRIBUTARY_PERF_MAP").is_some_and(|v| v == "1") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            })?;
        Ok(PluginEngine {
            engine,
            cache_dir: cache_dir.to_path_buf(),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Deadline in epoch ticks for a call that may take `timeout`.
    pub fn ticks(timeout: Duration) -> u64 {
        (timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1
    }

    /// The cache file for `wasm`: its SHA-256 and the engine's compatibility
    /// hash (wasmtime version, target, compiler settings, features).
    pub fn cache_path(&self, wasm: &[u8]) -> PathBuf {
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let digest = Sha256::digest(wasm);
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        self.cache_dir
            .join(format!("{hex}-{:016x}.cwasm", engine_hash.finish()))
    }

    /// Compiles `wasm`, or loads it from the cache. The bool says whether it
    /// came from the cache.
    pub fn load_component(&self, wasm: &[u8]) -> anyhow::Result<(Component, bool)> {
        let cached = self.cache_path(wasm);
        if cached.exists() {
            // SAFETY: the file was written by `Component::serialize` of an
            // engine with the same compatibility hash (in its name), into a
            // directory only this worker writes. A damaged file fails to
            // deserialize and is recompiled below.
            match unsafe { Component::deserialize_file(&self.engine, &cached) } {
                Ok(component) => return Ok((component, true)),
                Err(e) => {
                    tracing::warn!(file = %cached.display(), error = %e, "ignoring damaged plugin cache entry")
                }
            }
        }
        let component = Component::new(&self.engine, wasm)?;
        if let Err(e) = self.store_in_cache(&component, &cached) {
            tracing::warn!(dir = %self.cache_dir.display(), error = %e, "cannot write the plugin cache; plugins will be compiled at every start");
        }
        Ok((component, false))
    }

    fn store_in_cache(&self, component: &Component, path: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.cache_dir)?;
        let bytes = component.serialize()?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}
