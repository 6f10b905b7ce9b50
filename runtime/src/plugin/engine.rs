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

    /// The cache file for `wasm`, named by the SHA-256 of the wasm and the
    /// SHA-256 of the engine's compatibility hash (wasmtime version, target,
    /// compiler settings, features): the same across worker restarts and
    /// Rust releases, different for another engine. (Were a name ever to
    /// match a file of another engine, loading it would fail wasmtime's own
    /// compatibility check and the plugin would be compiled again.)
    pub fn cache_path(&self, wasm: &[u8]) -> PathBuf {
        let mut engine = Sha256Hasher(Sha256::new());
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut engine);
        let name = format!(
            "{}-{}.cwasm",
            hex(&Sha256::digest(wasm)[..16]),
            hex(&engine.0.finalize()[..8])
        );
        self.cache_dir.join(name)
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

/// Feeds whatever a `Hash` implementation writes into SHA-256, so the
/// engine's compatibility hash becomes bytes that do not depend on the
/// standard library's hasher (which may change between Rust releases).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The first 8 bytes of the digest so far (`cache_path` reads the
    /// digest itself).
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        digest[..8].iter().fold(0, |n, b| n << 8 | u64::from(*b))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_names_are_the_wasm_digest_and_the_engine_digest() {
        let dir = Path::new("cache");
        let (one, two) = (
            PluginEngine::new(dir).unwrap(),
            PluginEngine::new(dir).unwrap(),
        );
        let empty = one.cache_path(b"");
        let name = empty.file_name().unwrap().to_str().unwrap();
        // The first 16 bytes of SHA-256(""), then 8 bytes of the engine's.
        let (wasm, rest) = name.split_once('-').unwrap();
        assert_eq!(wasm, "e3b0c44298fc1c149afbf4c8996fb924");
        let engine = rest.strip_suffix(".cwasm").unwrap();
        assert_eq!(engine.len(), 16);
        assert!(engine.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(empty.parent(), Some(dir));
        // Two engines of the same configuration share the cache; another
        // wasm gets another file.
        assert_eq!(two.cache_path(b""), empty);
        assert_ne!(one.cache_path(b"\0asm"), empty);
    }
}
