//! Start-up and caching: how the helper runtime got into the JIT, how long each step took, and the entries of
//! the compiled-script cache.
//!
//! In: the engine's choices while it starts (precompiled runtime object or library bitcode) and compiled
//! scripts. Out: a [`StartupReport`] the host can read ([`super::Engine::startup_report`]; the library never
//! prints), and the bytes stored in a [`ScriptCache`](crate::cache::ScriptCache) per script: the object plus
//! what loading it needs (its definitions, structors, dso handle) and the import report it was made with.

use std::time::Duration;

use serde::Serialize;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::builder::RuntimeMode;
use super::builder::{EngineBuilder, Strategy};
use super::cache::script_key_salt;
use super::engine::{jit_error, Core};
use super::pipeline::Pipeline;
use super::resident::ResidentRuntime;
use super::runtime;
use super::tier::Tiering;
use crate::cache::ScriptCache;
use crate::llvm::orc::LlJit;
use crate::llvm::{Context, Module};
use crate::summary::ObjectTarget;
use crate::{Error, Result};

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
    /// The summary's shared runtime (`precompute-summary --shared-runtime`): a private copy mapped by the
    /// system loader, its imports bound by the engine.
    SharedObject,
}

impl std::fmt::Display for RuntimeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RuntimeSource::None => "none",
            RuntimeSource::Object => "precompiled object",
            RuntimeSource::Bitcode => "bitcode (compiled at start-up)",
            RuntimeSource::SharedObject => "shared object (mapped by the system loader)",
        })
    }
}

/// Time spent in each stage of building an engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StartupTimes {
    /// Creating the LLJIT, symbol sources and the engine's support modules.
    pub jit: Duration,
    /// Reading the runtime: checking the object's checksum (and reading the shared object's headers), or
    /// parsing and verifying the bitcode.
    pub load: Duration,
    /// Adding the runtime to the JIT and materializing it (code generation for bitcode) and linking; for the
    /// shared object: mapping it, binding its imports and defining its symbols in the JIT.
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

impl Core {
    /// Builds an engine from `builder` (see [`EngineBuilder::build`]).
    pub(super) fn new(mut builder: EngineBuilder) -> Result<Self> {
        builder.import_config.validate()?;
        if builder.strategy == Strategy::LlvmImporter {
            if builder.mode != RuntimeMode::JitResident {
                return Err(Error::Config {
                    message: "the llvm-importer strategy imports under the resident library's promoted names: \
                              it needs the JIT-resident runtime mode"
                        .into(),
                });
            }
            // LLVM's importer (like ThinLTO) needs the library's ThinLTO summary, and the library promoted so the
            // locals an import refers to are exported under the names the import uses: a helper library given
            // without a summary is promoted and summarized here, and that library is the one made resident.
            if let Some((name, bytes)) = &builder.helper_library {
                if crate::llvm::bitcode_has_summary(bytes) != Some(true) {
                    let promoted = crate::summary::promote_library_with_summary(name, bytes)?;
                    builder.helper_library = Some((name.clone(), promoted));
                }
            }
        }
        if builder.lazy && builder.strategy == Strategy::FullLinkInternalize {
            return Err(Error::Config {
                message: "the full-link-internalize strategy brings the helpers' static constructors into every \
                          script, which only eager mode can run: use lazy(false)"
                    .into(),
            });
        }
        let started = Instant::now();
        let cache = match (&builder.cache, &builder.cache_dir) {
            (Some(cache), _) => Some(Arc::clone(cache)),
            (None, Some((dir, memory, disk))) => {
                Some(Arc::new(ScriptCache::on_disk(dir, *memory, *disk)?))
            }
            (None, None) => None,
        };
        if builder.tiering.is_some() && (builder.lazy || cache.is_some()) {
            return Err(Error::Config {
                message: "tiering compiles scripts eagerly, twice, and does not cache them: use lazy(false) \
                          and no cache"
                    .into(),
            });
        }
        if cache.is_some() && builder.lazy {
            return Err(Error::Config {
                message: "the compiled-script cache stores objects made eagerly: use lazy(false)"
                    .into(),
            });
        }
        let mode = builder.mode;
        let mut jit = LlJit::new_host().map_err(jit_error("creating the LLJIT"))?;

        // Resolution order for names no module defines: host symbols (absolute, below), the shared libraries
        // in the order given, the process (opt-in), then the C/C++ runtime libraries.
        for library in &builder.shared_libraries {
            jit.add_shared_library(library)
                .map_err(jit_error(format!("shared library {}", library.display())))?;
        }
        if builder.process_symbols {
            jit.add_process_symbols()
                .map_err(jit_error("adding the process's symbols"))?;
        }
        for library in &builder.runtime_libraries {
            jit.add_shared_library(library)
                .map_err(jit_error(format!("runtime library {}", library.display())))?;
        }
        let host: Vec<(&str, u64)> = builder
            .host_symbols
            .iter()
            .map(|(n, a)| (n.as_str(), *a))
            .collect();
        jit.define_absolute(&host)
            .map_err(jit_error("defining the host symbols"))?;

        // Engine runtime support in the main JITDylib: the atexit registry, its dso handle and the `atexit`
        // wrapper (a [`ResidentRuntime`] without helper code yet; JIT-resident mode adds the helpers to it
        // below), then the personality cell.
        let resident = ResidentRuntime::new(&jit, jit.main_jitdylib(), &[])?;
        {
            let name = "thinjit.personality";
            let ctx = Context::new();
            let module = Module::parse_ir(&ctx, runtime::PERSONALITY_PIN_IR.as_bytes(), name)?;
            jit.add_module(module, None)
                .map_err(jit_error(format!("adding {name}")))?;
        }

        if let Some(summary) = &builder.summary {
            summary.check_target(&jit.triple(), &jit.data_layout())?;
        }
        // Whole-library strategies link the library bitcode into every script.
        let library: Option<Arc<Vec<u8>>> = match (builder.strategy, &builder.helper_library) {
            (Strategy::None | Strategy::Summary, _) => None,
            (_, Some((_, bytes))) => Some(Arc::new(bytes.clone())),
            (_, None) => match &builder.summary {
                Some(summary) => Some(Arc::new(summary.library_bitcode()?.to_vec())),
                None => None,
            },
        };
        let target = ObjectTarget {
            triple: jit.triple(),
            cpu: crate::llvm::host_cpu_name(),
            features: crate::llvm::host_cpu_features(),
        };
        let cache_salt = match &cache {
            Some(_) => script_key_salt(&builder, &target),
            None => Vec::new(),
        };
        if let Some(dir) = &builder.save_temps {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let pipeline = Arc::new(Pipeline {
            strategy: builder.strategy,
            opt_level: builder.opt_level,
            import_config: builder.import_config.clone(),
            mode,
            keep_optimized_ir: builder.keep_optimized_ir,
            save_temps: builder.save_temps.clone(),
            summary: builder.summary.clone(),
            library,
            machines: Mutex::new(Vec::new()),
            pending: Mutex::new(HashMap::new()),
            transform_failures: Mutex::new(Vec::new()),
            materializing: Mutex::new(HashMap::new()),
            isolation: match &builder.isolation {
                Some(isolation) if builder.lazy => {
                    return Err(Error::Config {
                        message: format!(
                            "isolated compilation ({isolation:?}) compiles eagerly: use lazy(false)"
                        ),
                    })
                }
                Some(isolation) => Some(super::isolate::Pool::start(isolation)?),
                None => None,
            },
            target_check: builder.target_check,
            contexts: Default::default(),
        });
        if builder.lazy {
            let for_transform = Arc::clone(&pipeline);
            jit.set_ir_transform_trusted(Box::new(move |m: &mut Module<'_>| {
                for_transform.transform(m)
            }));
        }

        let jit = Arc::new(jit);
        let tiering = match &builder.tiering {
            Some(config) => Some(Tiering::start(
                config.clone(),
                Arc::clone(&jit),
                Arc::clone(&pipeline),
                builder.strategy,
            )?),
            None => None,
        };
        let mut engine = Core {
            jit,
            pipeline,
            tiering,
            mode,
            lazy: builder.lazy,
            helper_symbols: BTreeSet::new(),
            resident,
            scripts: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            removals: AtomicU64::new(0),
            compile_lock: Mutex::new(()),
            startup: StartupReport::default(),
            target,
            cache,
            cache_salt,
        };
        // Compile the support modules now, while no other thread can be compiling.
        let _ = engine
            .jit
            .lookup("DW.ref.__gxx_personality_v0")
            .map_err(|_| engine.jit.take_reported_errors());
        engine.startup.times.jit = started.elapsed();
        match mode {
            RuntimeMode::JitResident => engine.start_resident(&builder)?,
            RuntimeMode::HostNative => {
                // The native runtime defines the summary's functions and variables under their source names.
                if let Some(summary) = &builder.summary {
                    let index = summary.index();
                    let names = index
                        .functions
                        .iter()
                        .filter(|f| f.original_name.is_none() && !f.linkage.is_local())
                        .map(|f| f.name.clone())
                        .chain(
                            index
                                .variables
                                .iter()
                                .filter(|v| v.original_name.is_none() && !v.linkage.is_local())
                                .map(|v| v.name.clone()),
                        );
                    engine.helper_symbols.extend(names);
                }
            }
        }
        engine.startup.times.total = started.elapsed();
        Ok(engine)
    }

    /// JIT-resident mode: adds the helper runtime once — the summary's precompiled object when it suits the
    /// JIT, else the library bitcode (with a notice saying why) — and runs its static constructors
    /// ([`ResidentRuntime`], the same code a C/C++ host's LLJIT gets through the C API).
    fn start_resident(&mut self, builder: &EngineBuilder) -> Result<()> {
        match (&builder.helper_library, &builder.summary) {
            (Some((name, bytes)), _) => self.resident.add_library(name, bytes)?,
            (None, Some(summary)) => {
                self.resident.set_shared_runtime(builder.shared_runtime);
                self.resident
                    .add_from_summary(summary, builder.runtime_object, &self.target)?
            }
            (None, None) => return Ok(()),
        }
        let report = self.resident.report();
        self.startup.runtime = report.source;
        self.startup.notice = report.notice.clone();
        self.startup.runtime_bytes = report.bytes;
        self.startup.times.load = report.load;
        self.startup.times.materialize = report.materialize;
        self.startup.times.initializers = report.initializers;
        self.helper_symbols
            .extend(self.resident.helper_symbols().iter().cloned());
        Ok(())
    }
}
