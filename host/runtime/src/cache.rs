//! Compiled components cached on disk by content hash.
//!
//! The key covers the component's bytes and the engine's compatibility hash
//! (wasmtime version, target and settings), so a stale artifact is never
//! loaded by an engine that did not make it. Files are written to a temporary
//! name and renamed, so a crash never leaves a half-written artifact.
//!
//! Loading an artifact maps native code into the process: the cache folder
//! must be writable only by the gateway itself.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::Error;

/// How a component was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Deserialized from the on-disk cache.
    Cached,
    /// Compiled now (and stored, if a cache is configured).
    Compiled,
}

/// The on-disk artifact cache.
#[derive(Clone, Debug)]
pub struct ArtifactCache {
    dir: PathBuf,
}

/// Feeds `Hash` output into SHA-256, so the engine hash is stable on disk.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ArtifactCache {
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| Error::Cache {
            path: dir.clone(),
            source,
        })?;
        Ok(ArtifactCache { dir })
    }

    fn key(engine: &Engine, wasm: &[u8]) -> String {
        let mut h = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut h);
        h.0.update(b"\0component\0");
        h.0.update(wasm);
        hex::encode(h.0.finalize())
    }

    /// The compiled component for `wasm`, from the cache or freshly compiled.
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        origin: &str,
    ) -> Result<(Component, Source, Duration), Error> {
        let start = Instant::now();
        let path = self.dir.join(format!("{}.cwasm", Self::key(engine, wasm)));
        if path.exists() {
            // SAFETY: the file was written by `precompile_component` of an
            // engine with the same compatibility hash (it is in the name), in
            // a folder only the gateway writes (see the module docs).
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, Source::Cached, start.elapsed())),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "discarding unreadable cached artifact: {e}")
                }
            }
        }
        let bytes = engine
            .precompile_component(wasm)
            .map_err(|e| load_error(origin, e));
        crate::heap::release_after_compile();
        let bytes = bytes?;
        let tmp = self
            .dir
            .join(format!(".{}.{}.tmp", std::process::id(), rand_suffix()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(source) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Cache { path, source });
        }
        // SAFETY: as above; we just wrote it.
        let c = unsafe { Component::deserialize_file(engine, &path) }
            .map_err(|e| load_error(origin, e))?;
        Ok((c, Source::Compiled, start.elapsed()))
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Compiles `wasm` without the cache, then returns the compiler's freed
/// heap to the system.
pub(crate) fn compile(engine: &Engine, wasm: &[u8], origin: &str) -> Result<Component, Error> {
    let c = Component::new(engine, wasm).map_err(|e| load_error(origin, e));
    crate::heap::release_after_compile();
    c
}

pub(crate) fn load_error(origin: &str, e: wasmtime::Error) -> Error {
    Error::Load {
        origin: origin.to_string(),
        reason: format!("not a loadable component: {e:#}"),
    }
}
