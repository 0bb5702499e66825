//! The compiled-script cache, as the engine uses it: the key of a script (its bytes plus everything the
//! engine's scripts share, from stable encodings), the entry stored per script (the object plus what loading
//! it needs), and adding a script from its entry.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bincode::Options;
use serde::{Deserialize, Serialize};

use super::builder::EngineBuilder;
use super::engine::{Core, Loading, Registered};
use super::pipeline::{cached_times, ScriptReport};
use super::runtime::Structors;
use crate::cache::{CacheKey, CacheOutcome};
use crate::import::ImportReport;
use crate::summary::ObjectTarget;
use crate::Result;

/// One cache entry: a compiled script and what loading it needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct CachedScript {
    /// Symbols the object defines (checked against the helper runtime's before adding).
    pub defined: Vec<String>,
    /// Static constructors, in run order.
    pub ctors: Vec<String>,
    /// Static destructors, in run order.
    pub dtors: Vec<String>,
    /// The exported dso handle to write the script's registry key into, if the script uses one.
    pub dso_handle: Option<String>,
    /// The import report of the compile that produced the object.
    pub import: Option<ImportReport>,
    /// The relocatable object.
    pub object: Vec<u8>,
}

fn options(limit: u64) -> impl Options + Copy {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(limit)
}

impl CachedScript {
    pub fn encode(&self) -> Vec<u8> {
        options(u64::MAX).serialize(self).unwrap_or_default()
    }

    /// `None` for bytes that do not decode (an entry of another thinjit version): a miss.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        options(bytes.len() as u64).deserialize(bytes).ok()
    }
}

/// The cache-key parts every script of an engine shares: format and versions, target, strategy, optimization
/// level, import configuration, and the identity of the helper summary / library.
pub(super) fn script_key_salt(builder: &EngineBuilder, target: &ObjectTarget) -> Vec<Vec<u8>> {
    use sha2::Digest;
    let summary = builder
        .summary
        .as_ref()
        .map(|s| s.identity().to_vec())
        .unwrap_or_default();
    let library = builder
        .helper_library
        .as_ref()
        .map(|(_, bytes)| sha2::Sha256::digest(bytes).to_vec())
        .unwrap_or_default();
    vec![
        b"thinjit compiled script 2".to_vec(),
        env!("CARGO_PKG_VERSION").as_bytes().to_vec(),
        crate::llvm::llvm_version().into_bytes(),
        target.triple.clone().into_bytes(),
        target.cpu.clone().into_bytes(),
        target.features.clone().into_bytes(),
        builder.strategy.to_string().into_bytes(),
        builder.opt_level.pipeline().as_bytes().to_vec(),
        bincode::serialize(&builder.import_config).unwrap_or_default(),
        builder.mode.to_string().into_bytes(),
        summary,
        library,
    ]
}

impl Core {
    /// The cache key of a script: its bytes plus everything the engine shares between scripts.
    pub(super) fn script_key(&self, source: &[u8]) -> CacheKey {
        CacheKey::new(
            self.cache_salt
                .iter()
                .map(Vec::as_slice)
                .chain(std::iter::once(source)),
        )
    }

    /// Adds a script from its cache entry: only the link stage runs (no parsing, import, optimization or code
    /// generation).
    pub(super) fn add_cached_script(
        &self,
        name: &str,
        entry: CachedScript,
        outcome: CacheOutcome,
    ) -> Result<Registered> {
        self.refuse_helper_redefinition(name, entry.defined.iter())?;
        let loading = Loading::new(self, name);
        let start = Instant::now();
        self.jit
            .add_object_file(&entry.object, name, loading.tracker.as_ref())
            .map_err(|f| self.script_error(name, format!("adding cached script `{name}`"), f))?;
        if let Some(first) = entry.defined.first() {
            self.jit.lookup(first).map_err(|f| {
                self.script_error(name, format!("linking cached script `{name}`"), f)
            })?;
        }
        if let Some(handle) = &entry.dso_handle {
            self.jit
                .write_dso_key(handle, loading.key())
                .map_err(|f| self.script_error(name, format!("cached script `{name}`"), f))?;
        }
        let structors = Structors::new(entry.ctors, entry.dtors);
        self.run_script_ctors(name, &structors)?;
        let report = ScriptReport {
            name: name.to_owned(),
            strategy: self.pipeline.strategy,
            times: cached_times(start.elapsed()),
            defined: entry.defined.clone(),
            import: entry.import,
            optimized_ir: None,
            object_size: Some(entry.object.len()),
            cache: Some(outcome),
            temps: Vec::new(),
            isolated: None,
        };
        loading.commit(
            entry.defined,
            structors.dtors().to_vec(),
            Arc::new(Mutex::new(Some(report))),
        )
    }
}
