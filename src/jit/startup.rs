//! Start-up and caching: how the helper runtime got into the JIT, how long each step took, and the entries of
//! the compiled-script cache.
//!
//! In: the engine's choices while it starts (precompiled runtime object or library bitcode) and compiled
//! scripts. Out: a [`StartupReport`] the host can read ([`super::Engine::startup_report`]; the library never
//! prints), and the bytes stored in a [`ScriptCache`](crate::cache::ScriptCache) per script: the object plus
//! what loading it needs (its definitions, structors, dso handle) and the import report it was made with.

use std::time::Duration;

use bincode::Options;
use serde::{Deserialize, Serialize};

use crate::import::ImportReport;

/// Where the JIT-resident helper runtime came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum RuntimeSource {
    /// No JIT-resident runtime (host-native mode, or no summary and no helper library).
    #[default]
    None,
    /// The summary's precompiled native object, added as is.
    Object,
    /// The library bitcode, compiled by the JIT at start-up.
    Bitcode,
}

impl std::fmt::Display for RuntimeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RuntimeSource::None => "none",
            RuntimeSource::Object => "precompiled object",
            RuntimeSource::Bitcode => "bitcode (compiled at start-up)",
        })
    }
}

/// Time spent in each stage of building an engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StartupTimes {
    /// Creating the LLJIT, symbol sources and the engine's support modules.
    pub jit: Duration,
    /// Reading the runtime: checking the object's checksum, or parsing and verifying the bitcode.
    pub load: Duration,
    /// Adding the runtime to the JIT and materializing it (code generation for bitcode) and linking.
    pub materialize: Duration,
    /// Running the runtime's static constructors.
    pub initializers: Duration,
    /// The whole of [`super::Engine::new`].
    pub total: Duration,
}

/// How an engine started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StartupReport {
    /// Where the JIT-resident runtime came from.
    pub runtime: RuntimeSource,
    /// Why the precompiled runtime object was not used, when the engine fell back to bitcode.
    pub notice: Option<String>,
    /// Size in bytes of what was added (object or bitcode).
    pub runtime_bytes: usize,
    /// Stage times.
    pub times: StartupTimes,
}

/// One cache entry: a compiled script and what loading it needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CachedScript {
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
