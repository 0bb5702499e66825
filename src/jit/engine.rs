//! `Engine`: one ORC LLJIT, the helper runtime in it once, scripts added and removed many times.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::builder::{EngineBuilder, Strategy};
use super::startup::{CachedScript, RuntimeSource, StartupReport};
use crate::cache::{CacheKey, CacheOutcome, ScriptCache};
use crate::import::{self, ImportConfig, ImportReport, OptLevel, RuntimeMode};
use crate::llvm::orc::{JitFunction, LlJit, ResourceTracker};
use crate::llvm::resident::{self, AtExitRegistry, Structors};
use crate::llvm::{CodeGenOpt, Context, Linkage, Module, TargetMachine};
use crate::summary::{ObjectTarget, RuntimeObject, Summary};
use crate::{Error, OrcErrorKind, OrcFailure, Result};

/// Time spent in each stage of adding one script.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScriptTimes {
    /// Parsing and verifying the script.
    pub parse: Duration,
    /// Planning and importing helper bodies.
    pub import: Duration,
    /// The optimization pipeline.
    pub optimize: Duration,
    /// ORC materialization: code generation and linking (eager mode; zero when lazy).
    pub materialize: Duration,
}

impl ScriptTimes {
    /// The sum of all stages.
    pub fn total(&self) -> Duration {
        self.parse + self.import + self.optimize + self.materialize
    }
}

/// What happened to one script: stage times, what it defines, and (if asked for) its optimized IR.
#[derive(Clone, Debug, Default)]
pub struct ScriptReport {
    /// The script's name (as given to [`Engine::add_script`]).
    pub name: String,
    /// The strategy used.
    pub strategy: Strategy,
    /// Stage times.
    pub times: ScriptTimes,
    /// Symbols the script defines (what its ORC materialization unit claims).
    pub defined: Vec<String>,
    /// What the import pass did and why (summary strategy with a summary).
    pub import: Option<ImportReport>,
    /// The module after import and optimization, when [`EngineBuilder::keep_optimized_ir`] is set.
    pub optimized_ir: Option<String>,
    /// Size in bytes of the script's object file (eager mode; `None` when ORC compiled it lazily).
    pub object_size: Option<usize>,
    /// With a cache ([`EngineBuilder::cache`]): whether the object came from it (import, optimization and
    /// code generation skipped; `import` is the report of the compile that made it). `None` without a cache.
    pub cache: Option<CacheOutcome>,
}

impl ScriptReport {
    /// `true` when the script was added from the compiled-script cache.
    pub fn from_cache(&self) -> bool {
        self.cache.is_some_and(CacheOutcome::is_hit)
    }
}

/// A script's compiled form is shared between the handle and, in lazy mode, the IR transform.
type ReportSlot = Arc<Mutex<Option<ScriptReport>>>;

/// A script waiting for ORC to materialize it (lazy mode).
struct Pending {
    /// The script's id in the engine.
    id: u64,
    name: String,
    slot: ReportSlot,
    parse: Duration,
    /// The key of the script's own atexit registry.
    dso_key: u64,
}

/// A loaded script: its code, and what must run before that code is freed.
struct Script {
    /// The script's name (errors name the script that defines a symbol).
    name: String,
    /// The symbols it defines.
    defined: Vec<String>,
    tracker: ResourceTracker,
    /// `__cxa_atexit` registrations made by the script's code (through its own dso handle).
    atexit: AtExitRegistry,
    /// The script's `llvm.global_dtors`, in run order.
    dtors: Vec<String>,
}

/// State the IR transform needs, shared with it.
struct Shared {
    strategy: Strategy,
    opt_level: OptLevel,
    import_config: ImportConfig,
    keep_optimized_ir: bool,
    summary: Option<Arc<Summary>>,
    /// The helper library's bitcode (full-link strategy).
    library: Option<Arc<Vec<u8>>>,
    /// Host target machines for the optimizer, reused (a `TargetMachine` is not `Sync`).
    machines: Mutex<Vec<TargetMachine>>,
    /// Lazy scripts by module identity.
    pending: Mutex<HashMap<usize, Pending>>,
    /// Lazy scripts ORC has compiled (or is compiling), by module identity: a code generation failure names
    /// the module, and the engine removes its script.
    materializing: Mutex<HashMap<usize, u64>>,
    /// Worker processes that optimize and compile scripts (isolated compilation), if enabled.
    isolation: Option<super::isolate::Pool>,
    /// Whether scripts go through the pre-codegen target check.
    target_check: bool,
    /// Typed errors of lazy scripts whose import or optimization failed inside ORC's IR transform (ORC only
    /// carries text): the lookup that made ORC materialize the script returns them.
    transform_failures: Mutex<Vec<Error>>,
}

impl Shared {
    /// Runs `f` with a host target machine from the pool (made on first use; one per concurrent user).
    fn with_machine<T>(&self, f: impl FnOnce(&TargetMachine) -> Result<T>) -> Result<T> {
        // A pool of interchangeable machines: a poisoned lock leaves it consistent.
        let pooled = self
            .machines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        let machine = match pooled {
            Some(tm) => tm,
            None => TargetMachine::host(CodeGenOpt::Aggressive)?,
        };
        let result = f(&machine);
        self.machines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(machine);
        result
    }

    /// Import and optimize `module` in place; fills the import and optimize times. Returns the import report
    /// and, when asked for, the optimized IR.
    fn prepare(
        &self,
        module: &mut Module<'_>,
        times: &mut ScriptTimes,
    ) -> Result<(Option<ImportReport>, Option<String>)> {
        let start = Instant::now();
        let report = match (self.strategy, &self.summary) {
            (Strategy::Summary, Some(summary)) => {
                Some(import::import(module, &**summary, &self.import_config)?)
            }
            (Strategy::FullLink, _) => {
                self.full_link(module)?;
                None
            }
            (Strategy::FullLinkInternalize, _) => {
                self.full_link_internalize(module)?;
                None
            }
            _ => None,
        };
        times.import = start.elapsed();

        if self.isolation.is_some() {
            // The worker optimizes, with code generation.
            return Ok((report, None));
        }
        let start = Instant::now();
        let level = self.opt_level;
        self.with_machine(|tm| import::optimize(module, tm, level))?;
        times.optimize = start.elapsed();
        Ok((report, self.keep_optimized_ir.then(|| module.print())))
    }

    /// The `full-link-internalize` strategy: link the library's strong definitions (the script's declarations
    /// resolve to them), then make everything that came from the library internal.
    fn full_link_internalize(&self, module: &mut Module<'_>) -> Result<()> {
        let Some(bytes) = &self.library else {
            return Err(Error::Config {
                message: "the full-link-internalize strategy needs a summary or a helper library"
                    .into(),
            });
        };
        let library = Module::parse(module.context(), bytes, "helper library")?;
        let from_library = library.defined_symbols();
        module.link_in(library)?;
        for f in module.functions() {
            if !f.is_declaration() && from_library.contains(&f.name()) {
                f.set_linkage(Linkage::Internal);
                f.clear_comdat();
            }
        }
        for g in module.globals() {
            if !g.is_declaration() && from_library.contains(&g.name()) {
                g.set_linkage(Linkage::Internal);
                g.clear_comdat();
            }
        }
        Ok(())
    }

    /// The `full-link` strategy: the whole helper library linked in, every definition `available_externally`
    /// (mutable variables as declarations), its static constructors dropped.
    fn full_link(&self, module: &mut Module<'_>) -> Result<()> {
        let Some(bytes) = &self.library else {
            return Err(Error::Config {
                message: "the full-link strategy needs a summary or a helper library".into(),
            });
        };
        let mut library = Module::parse(module.context(), bytes, "helper library")?;
        library.drop_structors();
        for f in library.functions() {
            if !f.is_declaration() && !f.linkage().is_local() {
                f.set_linkage(Linkage::AvailableExternally);
                f.clear_comdat();
            }
        }
        for g in library.globals() {
            if g.is_declaration() || g.linkage().is_local() || g.name().starts_with("llvm.") {
                continue;
            }
            g.clear_comdat();
            if g.is_constant() {
                g.set_linkage(Linkage::AvailableExternally);
            } else {
                g.remove_initializer();
                g.set_linkage(Linkage::External);
            }
        }
        module.link_in(library)
    }

    /// The IR transform as ORC sees it: on failure the typed error is kept for the lookup that triggered the
    /// materialization ([`Engine::lookup_address`]) and ORC gets its text.
    fn transform(&self, module: &mut Module<'_>) -> std::result::Result<(), String> {
        self.transform_typed(module).map_err(|error| {
            let text = error.to_string();
            self.transform_failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(error);
            text
        })
    }

    /// The IR transform body: prepares modules registered as pending, passes every other module through.
    fn transform_typed(&self, module: &mut Module<'_>) -> Result<()> {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&module.identity());
        let Some(pending) = pending else {
            return Ok(());
        };
        if let Ok(mut m) = self.materializing.lock() {
            m.insert(module.identity(), pending.id);
        }
        let mut times = ScriptTimes {
            parse: pending.parse,
            ..ScriptTimes::default()
        };
        let defined = module.defined_symbols();
        let (import, optimized_ir) = self.prepare(module, &mut times)?;
        // Constructors a whole-library link brought along cannot run from here: dropped (lazy mode).
        module.drop_structors();
        module.redirect_atexit();
        module.localize_dso_handle(pending.dso_key);
        let after = module.defined_symbols();
        if after != defined {
            return Err(Error::Import {
                module: pending.name,
                message: format!(
                    "import and optimization changed the script's definitions ({defined:?} -> {after:?})"
                ),
            });
        }
        {
            let mut slot = pending.slot.lock().unwrap_or_else(|e| e.into_inner());
            *slot = Some(ScriptReport {
                name: pending.name,
                strategy: self.strategy,
                times,
                defined: after.into_iter().collect(),
                import,
                optimized_ir,
                object_size: None,
                cache: None,
            });
        }
        Ok(())
    }
}

/// An ORC JIT with the helper runtime in it, to which scripts are added.
///
/// `Send + Sync`: scripts can be added, looked up and removed from several threads at once.
pub struct Engine {
    jit: LlJit,
    shared: Arc<Shared>,
    mode: RuntimeMode,
    lazy: bool,
    /// Symbols the helper runtime defines; a script may not define them again.
    helper_symbols: BTreeSet<String>,
    /// Static destructors of the JIT-resident library.
    structors: Structors,
    atexit: AtExitRegistry,
    scripts: Mutex<HashMap<u64, Script>>,
    next_id: AtomicU64,
    /// Scripts removed so far (dead symbol names are freed every 64).
    removals: AtomicU64,
    /// Held while ORC may compile IR (lazy mode): LLJIT compiles IR with one shared target machine.
    compile_lock: Mutex<()>,
    /// How the engine started.
    startup: StartupReport,
    /// What the JIT targets (object compatibility, cache keys).
    target: ObjectTarget,
    /// The compiled-script cache, and the key parts every script shares.
    cache: Option<Arc<ScriptCache>>,
    cache_salt: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("mode", &self.mode)
            .field("lazy", &self.lazy)
            .field("strategy", &self.shared.strategy)
            .finish_non_exhaustive()
    }
}

/// An ORC failure while doing `context`, as an [`Error::Jit`].
fn jit_error(context: impl Into<String>) -> impl FnOnce(OrcFailure) -> Error {
    let context = context.into();
    move |source| Error::Jit { context, source }
}

/// The error for a registry whose lock a panicking thread poisoned.
fn poisoned(
    what: &'static str,
) -> impl FnOnce(std::sync::PoisonError<std::sync::MutexGuard<'_, HashMap<u64, Script>>>) -> Error {
    move |_| Error::Poisoned { what }
}

/// Makes a script's `linkonce`/`weak` definitions internal. ORC binds every module's copy of such a symbol to
/// the first one loaded; if that script were removed, the others would keep calling freed memory. A script's
/// copies are its own.
fn internalize_shared_definitions(module: &Module<'_>) {
    use crate::llvm::Linkage;
    let shared = |l: Linkage| {
        matches!(
            l,
            Linkage::LinkOnceAny | Linkage::LinkOnceOdr | Linkage::WeakAny | Linkage::WeakOdr
        )
    };
    for f in module.functions() {
        if !f.is_declaration() && shared(f.linkage()) {
            f.set_linkage(Linkage::Internal);
        }
    }
    for g in module.globals() {
        if !g.is_declaration() && shared(g.linkage()) {
            g.set_linkage(Linkage::Internal);
        }
    }
}

/// Triples name the same target when architecture and OS/environment agree (the vendor field may differ:
/// `x86_64-pc-linux-gnu` and `x86_64-unknown-linux-gnu` are the same target).
fn same_target(a: &str, b: &str) -> bool {
    let parts = |t: &str| -> (String, Vec<String>) {
        let mut it = t.split('-').map(str::to_owned);
        let arch = it.next().unwrap_or_default();
        let rest: Vec<String> = it.collect();
        let rest = if rest.len() >= 3 {
            rest[1..].to_vec()
        } else {
            rest
        };
        (arch, rest)
    };
    parts(a) == parts(b)
}

impl Engine {
    /// Builds an engine from `builder` (see [`EngineBuilder::build`]).
    pub fn new(builder: EngineBuilder) -> Result<Self> {
        builder.import_config.validate()?;
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
        if cache.is_some() && builder.lazy {
            return Err(Error::Config {
                message: "the compiled-script cache stores objects made eagerly: use lazy(false)"
                    .into(),
            });
        }
        let mode = builder.import_config.mode;
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

        // Engine runtime support: the atexit registry and its dso handle, the personality cell.
        jit.define_absolute(&[
            (resident::CXA_ATEXIT, AtExitRegistry::cxa_atexit_address()),
            (resident::ATEXIT_IMPL, AtExitRegistry::atexit_impl_address()),
        ])
        .map_err(jit_error("defining the atexit registry's entry points"))?;
        let atexit = AtExitRegistry::new();
        for (name, ir) in [
            ("thinjit.support", resident::support_ir(atexit.key())),
            (
                "thinjit.personality",
                resident::PERSONALITY_PIN_IR.to_owned(),
            ),
        ] {
            let ctx = Context::new();
            let module = Module::parse_ir(&ctx, ir.as_bytes(), name)?;
            jit.add_module(module, None)
                .map_err(jit_error(format!("adding {name}")))?;
        }
        jit.lookup(resident::DSO_HANDLE)
            .map_err(jit_error("materializing the engine's dso handle"))?;

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
        let shared = Arc::new(Shared {
            strategy: builder.strategy,
            opt_level: builder.opt_level,
            import_config: builder.import_config.clone(),
            keep_optimized_ir: builder.keep_optimized_ir,
            summary: builder.summary.clone(),
            library,
            machines: Mutex::new(Vec::new()),
            pending: Mutex::new(HashMap::new()),
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
            transform_failures: Mutex::new(Vec::new()),
        });
        if builder.lazy {
            let for_transform = Arc::clone(&shared);
            jit.set_ir_transform(Box::new(move |m: &mut Module<'_>| {
                for_transform.transform(m)
            }));
        }

        let mut engine = Engine {
            jit,
            shared,
            mode,
            lazy: builder.lazy,
            helper_symbols: BTreeSet::new(),
            structors: Structors::default(),
            atexit,
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
    /// JIT, else the library bitcode (with a notice saying why) — and runs its static constructors.
    fn start_resident(&mut self, builder: &EngineBuilder) -> Result<()> {
        let mut notice = None;
        if let (None, Some(summary)) = (&builder.helper_library, &builder.summary) {
            let name = summary.path().display().to_string();
            match (builder.runtime_object, summary.runtime_object()) {
                (false, _) => {
                    notice = Some("precompiled runtime object not used (disabled by the host)".into())
                }
                (true, None) => {
                    notice = Some(format!(
                        "{name} has no precompiled runtime object (precompute-summary --object): the library \
                         bitcode was compiled at start-up"
                    ))
                }
                (true, Some(object)) => {
                    let start = Instant::now();
                    let checked = object
                        .target
                        .check_runs_on(&self.target)
                        .and_then(|()| match summary.runtime_object_bytes() {
                            Ok(bytes) => Ok(bytes.unwrap_or_default()),
                            Err(e) => Err(e.to_string()),
                        });
                    self.startup.times.load = start.elapsed();
                    match checked {
                        Ok(bytes) => {
                            self.add_resident_object(&name, bytes, object)?;
                            self.startup.runtime = RuntimeSource::Object;
                            return Ok(());
                        }
                        Err(why) => {
                            notice = Some(format!(
                                "precompiled runtime object of {name} (for {}) not used: {why}; the library \
                                 bitcode was compiled at start-up",
                                object.target
                            ))
                        }
                    }
                }
            }
        }
        let library = match (&builder.helper_library, &builder.summary) {
            (Some((name, bytes)), _) => Some((name.clone(), &bytes[..])),
            (None, Some(summary)) => Some((
                summary.path().display().to_string(),
                summary.library_bitcode()?,
            )),
            (None, None) => None,
        };
        if let Some((name, bytes)) = library {
            self.add_resident_library(&name, bytes)?;
            self.startup.runtime = RuntimeSource::Bitcode;
            self.startup.notice = notice;
        }
        Ok(())
    }

    /// Adds the precompiled runtime object once and runs its static constructors.
    fn add_resident_object(
        &mut self,
        name: &str,
        bytes: &[u8],
        object: &RuntimeObject,
    ) -> Result<()> {
        let start = Instant::now();
        self.jit
            .add_object_file(bytes, &format!("{name} (runtime object)"), None)
            .map_err(|f| {
                self.script_error(name, format!("adding the runtime object of {name}"), f)
            })?;
        self.helper_symbols.extend(object.defined.iter().cloned());
        if let Some(first) = object.defined.first() {
            self.jit.lookup(first).map_err(|f| {
                runtime_error(self.script_error(
                    name,
                    format!("linking the runtime object of {name}"),
                    f,
                ))
            })?;
        }
        self.startup.times.materialize = start.elapsed();
        self.startup.runtime_bytes = bytes.len();
        let structors = Structors::new(object.ctors.clone(), object.dtors.clone());
        self.run_resident_ctors(name, structors)
    }

    /// Runs the runtime's constructors (timed) and keeps its destructors for the drop.
    fn run_resident_ctors(&mut self, name: &str, structors: Structors) -> Result<()> {
        let start = Instant::now();
        self.jit.run_structors(structors.ctors()).map_err(|f| {
            self.script_error(
                name,
                format!("running the static constructors of {name}"),
                f,
            )
        })?;
        self.startup.times.initializers = start.elapsed();
        self.structors.extend(structors);
        Ok(())
    }

    /// Adds the helper library once and runs its static constructors in priority order.
    fn add_resident_library(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let start = Instant::now();
        let ctx = Context::new();
        let mut module = Module::parse(&ctx, bytes, name)?;
        module.verify()?;
        self.check_target(&module, name)?;
        let structors = resident::prepare_resident_library(&mut module);
        let defined = module.defined_symbols();
        let first = defined.iter().next().cloned();
        self.helper_symbols.extend(defined);
        self.startup.times.load = start.elapsed();
        let start = Instant::now();
        self.jit
            .add_module(module, None)
            .map_err(|f| self.script_error(name, format!("adding {name}"), f))?;
        drop(ctx);
        // Compile the library now (single-threaded); unresolved references surface here.
        if let Some(first) = first {
            self.jit.lookup(&first).map_err(|f| {
                runtime_error(self.script_error(name, format!("compiling {name}"), f))
            })?;
        }
        self.startup.times.materialize = start.elapsed();
        self.startup.runtime_bytes = bytes.len();
        self.run_resident_ctors(name, structors)
    }

    /// How the engine started: where the runtime came from, why not from the object, stage times.
    pub fn startup_report(&self) -> &StartupReport {
        &self.startup
    }

    /// The compiled-script cache, if the engine has one.
    pub fn cache(&self) -> Option<&ScriptCache> {
        self.cache.as_deref()
    }

    /// The cache key of a script: its bytes plus everything the engine shares between scripts.
    fn script_key(&self, source: &[u8]) -> CacheKey {
        CacheKey::new(
            self.cache_salt
                .iter()
                .map(Vec::as_slice)
                .chain(std::iter::once(source)),
        )
    }

    /// Adds a script from its cache entry: no parsing, import, optimization or code generation.
    fn add_cached_script(
        &self,
        name: &str,
        entry: CachedScript,
        outcome: CacheOutcome,
    ) -> Result<ScriptHandle<'_>> {
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
        let times = ScriptTimes {
            materialize: start.elapsed(),
            ..ScriptTimes::default()
        };
        let report = ScriptReport {
            name: name.to_owned(),
            strategy: self.shared.strategy,
            times,
            defined: entry.defined.clone(),
            import: entry.import,
            optimized_ir: None,
            object_size: Some(entry.object.len()),
            cache: Some(outcome),
        };
        let structors = Structors::new(entry.ctors, entry.dtors);
        self.run_script_ctors(name, &structors)?;
        loading.commit(
            entry.defined,
            structors.dtors().to_vec(),
            Arc::new(Mutex::new(Some(report))),
        )
    }

    /// A script may not define what the helper runtime defines (one instance of every helper).
    fn refuse_helper_redefinition<'a>(
        &self,
        name: &str,
        mut defined: impl Iterator<Item = &'a String>,
    ) -> Result<()> {
        match defined.find(|s| self.helper_symbols.contains(*s)) {
            Some(clash) => Err(Error::DuplicateDefinition {
                symbol: clash.clone(),
                first: Some("the helper runtime".into()),
                second: format!("script `{name}`"),
                source: None,
            }),
            None => Ok(()),
        }
    }

    /// Runs a freshly added script's static constructors (lookups of what they name fail as unresolved).
    fn run_script_ctors(&self, name: &str, structors: &Structors) -> Result<()> {
        if structors.ctors().is_empty() {
            return Ok(());
        }
        let _compiling = self.compile_guard();
        self.jit.run_structors(structors.ctors()).map_err(|f| {
            self.script_error(
                name,
                format!("running the static constructors of script `{name}`"),
                f,
            )
        })
    }
    /// A module with a target triple or data layout must match the JIT's.
    fn check_target(&self, module: &Module<'_>, what: &str) -> Result<()> {
        let layout = module.data_layout();
        if !layout.is_empty() && layout != self.jit.data_layout() {
            return Err(Error::Target {
                triple: self.jit.triple(),
                message: format!(
                    "{what}: data layout `{layout}` does not match the JIT's `{}`",
                    self.jit.data_layout()
                ),
            });
        }
        let triple = module.triple();
        if !triple.is_empty() && !same_target(&triple, &self.jit.triple()) {
            return Err(Error::Target {
                triple: self.jit.triple(),
                message: format!(
                    "{what}: target triple `{triple}` does not match the JIT's `{}`",
                    self.jit.triple()
                ),
            });
        }
        Ok(())
    }

    /// Where the helper runtime lives for this engine.
    pub fn runtime_mode(&self) -> RuntimeMode {
        self.mode
    }

    /// Whether scripts are imported and optimized lazily, inside ORC's IR transform.
    pub fn is_lazy(&self) -> bool {
        self.lazy
    }

    /// The static constructors run for the JIT-resident helper library, in the order they ran.
    pub fn initializers(&self) -> &[String] {
        self.structors.ctors()
    }

    /// Symbols the helper runtime defines (JIT-resident library definitions).
    pub fn helper_symbols(&self) -> &BTreeSet<String> {
        &self.helper_symbols
    }

    /// Number of scripts currently loaded.
    pub fn script_count(&self) -> usize {
        self.scripts.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Reads and adds the script at `path` (textual IR or bitcode).
    pub fn add_script_file(&self, path: &Path) -> Result<ScriptHandle<'_>> {
        let bytes = crate::check::read_regular_file(path)?;
        self.add_script(&path.display().to_string(), &bytes)
    }

    /// Adds a module built by the caller (for example with the IR builder). The module is copied into the
    /// script's own context (as bitcode), so the caller's context stays the caller's.
    pub fn add_script_module(&self, module: &Module<'_>) -> Result<ScriptHandle<'_>> {
        self.add_script(&module.name(), &module.write_bitcode())
    }

    /// Adds a script (textual IR or bitcode, named `name` in errors and reports) in its own LLVM context and
    /// under its own resource tracker: verify → import → optimize → materialize (eager), or verify now and
    /// import + optimize when ORC materializes it (lazy). A failed add leaves nothing of the script in the JIT.
    pub fn add_script(&self, name: &str, source: &[u8]) -> Result<ScriptHandle<'_>> {
        let cached = match &self.cache {
            Some(cache) => {
                let key = self.script_key(source);
                let (bytes, outcome) = cache.get(&key);
                match bytes.as_deref().and_then(CachedScript::decode) {
                    Some(entry) => return self.add_cached_script(name, entry, outcome),
                    None => Some((Arc::clone(cache), key)),
                }
            }
            None => None,
        };
        // Code that will be cached gets names that do not depend on this process (structors, dso handle).
        let tag = cached.as_ref().map(|(_, key)| key.hex()[..16].to_owned());
        let dso_name = tag
            .as_ref()
            .map(|t| format!("{}.{t}", resident::DSO_HANDLE));
        let ctx = Context::new();
        let start = Instant::now();
        let mut module = Module::parse(&ctx, source, name)?;
        module.verify()?;
        self.check_target(&module, name)?;
        super::checks::script(
            &module,
            name,
            &self.target,
            &self.helper_symbols,
            self.shared.target_check,
        )?;
        if module.triple().is_empty() {
            module.set_triple(&self.jit.triple());
        }
        if module.data_layout().is_empty() {
            module.set_data_layout(&self.jit.data_layout());
        }
        let mut times = ScriptTimes {
            parse: start.elapsed(),
            ..ScriptTimes::default()
        };
        let defined = module.defined_symbols();
        self.refuse_helper_redefinition(name, defined.iter())?;
        let mut loading = Loading::new(self, name);
        let mut structors = match &tag {
            Some(t) => module.take_structors_tagged(t),
            None => module.take_structors(),
        };
        module.redirect_atexit();
        let mut uses_dso = false;
        match &dso_name {
            Some(n) => uses_dso |= module.export_dso_handle(n),
            None => uses_dso |= module.localize_dso_handle(loading.key()),
        }
        internalize_shared_definitions(&module);

        let slot: ReportSlot = Arc::default();
        if self.lazy {
            let key = module.identity();
            self.shared
                .pending
                .lock()
                .map_err(|_| Error::Poisoned {
                    what: "lazy scripts",
                })?
                .insert(
                    key,
                    Pending {
                        id: loading.id,
                        name: name.to_owned(),
                        slot: Arc::clone(&slot),
                        parse: times.parse,
                        dso_key: loading.key(),
                    },
                );
            loading.pending = Some(key);
            self.jit
                .add_module(module, loading.tracker.as_ref())
                .map_err(|f| self.script_error(name, format!("adding script `{name}`"), f))?;
        } else {
            let before = module.defined_symbols();
            let (import, mut optimized_ir) = self.shared.prepare(&mut module, &mut times)?;
            let after = module.defined_symbols();
            if after != before {
                return Err(Error::Import {
                    module: name.to_owned(),
                    message: format!(
                        "import and optimization changed the script's definitions ({before:?} -> {after:?})"
                    ),
                });
            }
            // Strategies that link whole libraries bring their static constructors along.
            structors.extend(match &tag {
                Some(t) => module.take_structors_tagged(&format!("{t}.l")),
                None => module.take_structors(),
            });
            module.redirect_atexit();
            match &dso_name {
                Some(n) => uses_dso |= module.export_dso_handle(n),
                None => uses_dso |= module.localize_dso_handle(loading.key()),
            }
            // Code generation on this thread with a pooled target machine, then JITLink (thread-safe).
            let start = Instant::now();
            let object = match &self.shared.isolation {
                Some(pool) => {
                    let keep = self.shared.keep_optimized_ir;
                    let level = self.shared.opt_level;
                    let compiled =
                        pool.compile(&module, name, &self.target, level, keep, &after)?;
                    (times.optimize, optimized_ir) = (compiled.optimize, compiled.optimized_ir);
                    compiled.object
                }
                None => self.shared.with_machine(|tm| tm.emit_object(&module))?,
            };
            let object_len = object.len();
            drop(module);
            drop(ctx);
            self.jit
                .add_object_file(&object, name, loading.tracker.as_ref())
                .map_err(|f| self.script_error(name, format!("adding script `{name}`"), f))?;
            if let Some(first) = after.iter().next() {
                self.jit
                    .lookup(first)
                    .map_err(|f| self.script_error(name, format!("linking script `{name}`"), f))?;
            }
            let dso_handle = dso_name.filter(|_| uses_dso);
            if let Some(handle) = &dso_handle {
                self.jit
                    .write_dso_key(handle, loading.key())
                    .map_err(|f| self.script_error(name, format!("script `{name}`"), f))?;
            }
            times.materialize = start.elapsed();
            let outcome = cached.as_ref().map(|(cache, key)| {
                let entry = CachedScript {
                    defined: after.iter().cloned().collect(),
                    ctors: structors.ctors().to_vec(),
                    dtors: structors.dtors().to_vec(),
                    dso_handle,
                    import: import.clone(),
                    object,
                };
                // A failed disk write leaves the memory copy; the next process compiles again.
                let _ = cache.put(*key, &entry.encode());
                CacheOutcome::Miss
            });
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(ScriptReport {
                name: name.to_owned(),
                strategy: self.shared.strategy,
                times,
                defined: after.into_iter().collect(),
                import,
                optimized_ir,
                object_size: Some(object_len),
                cache: outcome,
            });
        }
        self.run_script_ctors(name, &structors)?;
        loading.commit(
            defined.into_iter().collect(),
            structors.dtors().to_vec(),
            slot,
        )
    }

    /// Turns an ORC failure while adding, linking or initializing `script` into a typed error: names ORC could
    /// not find are [`Error::UnresolvedSymbols`], a clash is an [`Error::DuplicateDefinition`] naming the first
    /// owner where the engine knows it, anything else an [`Error::Jit`] with `context`.
    fn script_error(&self, script: &str, context: String, failure: OrcFailure) -> Error {
        let missing = failure.symbols(OrcErrorKind::SymbolsNotFound);
        if !missing.is_empty() {
            return Error::UnresolvedSymbols {
                script: script.to_owned(),
                symbols: missing,
                source: Some(failure),
            };
        }
        if let Some(symbol) = failure
            .symbols(OrcErrorKind::DuplicateDefinition)
            .into_iter()
            .next()
        {
            let first = if self.helper_symbols.contains(&symbol) {
                Some("the helper runtime".to_owned())
            } else {
                self.script_defining(&symbol)
                    .map(|owner| format!("script `{owner}`"))
            };
            return Error::DuplicateDefinition {
                symbol,
                first,
                second: format!("`{script}`"),
                source: Some(failure),
            };
        }
        Error::Jit {
            context,
            source: failure,
        }
    }

    /// The name of the loaded script that defines `symbol`, if one does.
    fn script_defining(&self, symbol: &str) -> Option<String> {
        let scripts = self.scripts.lock().unwrap_or_else(|e| e.into_inner());
        scripts
            .values()
            .find(|s| s.defined.iter().any(|d| d == symbol))
            .map(|s| s.name.clone())
    }

    /// In lazy mode, a lookup may make ORC compile IR, which must not happen on two threads at once.
    fn compile_guard(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        self.lazy
            .then(|| self.compile_lock.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Looks up `name` anywhere in the engine (scripts and the JIT-resident helpers) as a function of type `F`.
    /// The result borrows the engine, so it cannot outlive the JIT memory; for a script's own functions prefer
    /// [`ScriptHandle::lookup`], which also keeps the script from being removed meanwhile.
    pub fn lookup<F>(&self, name: &str) -> Result<JitFunction<'_, F>> {
        self.lookup_function_address(name)
            .map(|address| JitFunction::new(address, self))
    }

    /// The address of the function `name` (a variable is an [`Error::InvalidEntry`]).
    fn lookup_function_address(&self, name: &str) -> Result<u64> {
        let _compiling = self.compile_guard();
        super::checks::function_address(&self.jit, name, |failure| {
            self.jit.clear_dead_symbol_names();
            self.lookup_error(name, failure)
        })
    }

    /// The address of `name` (a function or a variable), materializing what defines it if needed.
    ///
    /// Errors: [`Error::UndefinedSymbol`] when nothing defines `name`; [`Error::UnresolvedSymbols`] when the
    /// script defining it references names nothing defines; in lazy mode, the typed error of a failed import
    /// or optimization; [`Error::Jit`] for anything else ORC reports.
    pub fn lookup_address(&self, name: &str) -> Result<u64> {
        let _compiling = self.compile_guard();
        self.jit.lookup(name).map_err(|failure| {
            // The failed name stays in ORC's string pool until cleared: a host looking up many wrong names
            // (user input) would otherwise accumulate them.
            self.jit.clear_dead_symbol_names();
            self.lookup_error(name, failure)
        })
    }

    fn lookup_error(&self, name: &str, failure: OrcFailure) -> Error {
        // A lazy script whose code generation failed: removed (nothing of it stays), an `Error::Codegen`.
        let failures = self.jit.take_codegen_failures();
        if let Some(error) = super::checks::codegen_failure(&failures) {
            let ids: Vec<u64> = match self.shared.materializing.lock() {
                Ok(m) => failures
                    .iter()
                    .filter_map(|f| m.get(&f.module).copied())
                    .collect(),
                Err(_) => Vec::new(),
            };
            for (id, failure) in ids.into_iter().zip(&failures) {
                let _ = self.remove_id(id, &failure.name);
            }
            return error;
        }
        let transform_failure = std::mem::take(
            &mut *self
                .shared
                .transform_failures
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        if let Some(error) = transform_failure.into_iter().next() {
            return error;
        }
        let failed = failure.symbols(OrcErrorKind::FailedToMaterialize);
        let missing = failure.symbols(OrcErrorKind::SymbolsNotFound);
        if failed.is_empty() && missing.iter().any(|m| m == name) {
            return Error::UndefinedSymbol {
                symbol: name.to_owned(),
            };
        }
        if !missing.is_empty() {
            let script = failed
                .iter()
                .chain(std::iter::once(&name.to_owned()))
                .find_map(|s| self.script_defining(s))
                .unwrap_or_else(|| format!("the code defining `{name}`"));
            return Error::UnresolvedSymbols {
                script,
                symbols: missing,
                source: Some(failure),
            };
        }
        Error::Jit {
            context: format!("looking up `{name}`"),
            source: failure,
        }
    }

    /// Unloads a script: what it registered with `__cxa_atexit` and its static destructors run, then its
    /// symbols disappear and its memory is returned.
    pub fn remove(&self, handle: ScriptHandle<'_>) -> Result<()> {
        handle.remove()
    }

    fn remove_id(&self, id: u64, name: &str) -> Result<()> {
        // A lazy script removed before ORC materialized it: forget it (its module is freed with the tracker).
        self.shared
            .pending
            .lock()
            .map_err(|_| Error::Poisoned {
                what: "lazy scripts",
            })?
            .retain(|_, pending| pending.id != id);
        if let Ok(mut m) = self.shared.materializing.lock() {
            m.retain(|_, script| *script != id);
        }
        let script = self
            .scripts
            .lock()
            .map_err(poisoned("script registry"))?
            .remove(&id);
        match script {
            Some(script) => {
                self.run_script_destructors(&script);
                let removed = script
                    .tracker
                    .remove()
                    .map_err(jit_error(format!("removing script `{name}`")));
                // Every 64 removals, free the symbol names of removed scripts (see `clear_dead_symbol_names`).
                if self.removals.fetch_add(1, Ordering::Relaxed) % 64 == 63 {
                    self.jit.clear_dead_symbol_names();
                }
                removed
            }
            None => Ok(()),
        }
    }

    /// Runs a script's atexit handlers (last registered first), then its static destructors.
    fn run_script_destructors(&self, script: &Script) {
        script.atexit.run();
        if !script.dtors.is_empty() {
            let _compiling = self.compile_guard();
            let _ = self.jit.run_structors(&script.dtors);
        }
        script.atexit.run();
    }

    /// Adds a relocatable object file under its own tracker (no import or optimization happens).
    pub fn add_object(&self, name: &str, object: &[u8]) -> Result<ScriptHandle<'_>> {
        let loading = Loading::new(self, name);
        self.jit
            .add_object_file(object, name, loading.tracker.as_ref())
            .map_err(|f| self.script_error(name, format!("adding object `{name}`"), f))?;
        loading.commit(Vec::new(), Vec::new(), Arc::default())
    }

    /// Errors ORC reported asynchronously and no call returned (drained).
    pub fn take_reported_errors(&self) -> Vec<crate::OrcError> {
        self.jit.take_reported_errors()
    }
}

/// A script being added. Until [`Loading::commit`] registers it, dropping it undoes everything the add did in
/// the JIT: the handlers its constructors registered run, its code is removed with its resource tracker, and a
/// lazy registration is forgotten. The one clean-up path of every failed add (a `?` anywhere in between).
struct Loading<'e> {
    engine: &'e Engine,
    id: u64,
    name: String,
    /// `Some` until committed.
    tracker: Option<ResourceTracker>,
    atexit: Option<AtExitRegistry>,
    /// The key of the lazy script's entry in `Shared::pending`, once made.
    pending: Option<usize>,
}

impl<'e> Loading<'e> {
    fn new(engine: &'e Engine, name: &str) -> Self {
        Loading {
            engine,
            id: engine.next_id.fetch_add(1, Ordering::Relaxed),
            name: name.to_owned(),
            tracker: Some(engine.jit.create_tracker()),
            atexit: Some(AtExitRegistry::new()),
            pending: None,
        }
    }

    /// The key of the script's own atexit registry (what its dso handle holds).
    fn key(&self) -> u64 {
        self.atexit.as_ref().map_or(0, AtExitRegistry::key)
    }

    /// Registers the loaded script (its tracker, atexit registry and destructors, run at removal or drop) and
    /// hands out its handle. A poisoned registry is an error (and the script is unloaded).
    fn commit(
        mut self,
        defined: Vec<String>,
        dtors: Vec<String>,
        report: ReportSlot,
    ) -> Result<ScriptHandle<'e>> {
        let engine = self.engine;
        let mut scripts = engine.scripts.lock().map_err(poisoned("script registry"))?;
        let (Some(tracker), Some(atexit)) = (self.tracker.take(), self.atexit.take()) else {
            return Err(Error::Poisoned {
                what: "script being added",
            });
        };
        self.pending = None;
        scripts.insert(
            self.id,
            Script {
                name: self.name.clone(),
                defined,
                tracker,
                atexit,
                dtors,
            },
        );
        Ok(ScriptHandle {
            engine,
            id: self.id,
            name: std::mem::take(&mut self.name),
            report,
        })
    }
}

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.pending.take() {
            self.engine
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        }
        if let Some(atexit) = self.atexit.take() {
            // Constructors that ran before the failure may have registered handlers into the code about to go.
            atexit.run();
        }
        if let Some(tracker) = self.tracker.take() {
            // The add already failed with its own error; a tracker that cannot be removed was never used.
            let _ = tracker.remove();
            // The failed script's symbol names would otherwise stay in ORC's string pool.
            self.engine.jit.clear_dead_symbol_names();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Destructors first, while every piece of JIT'd code is still loaded: the scripts' (newest first), then
        // handlers registered through the engine's dso handle (last first) and the library's
        // `llvm.global_dtors`.
        let mut scripts: Vec<(u64, Script)> = self
            .scripts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        scripts.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
        for (_, script) in &scripts {
            self.run_script_destructors(script);
        }
        drop(scripts);
        self.atexit.run();
        let _ = self.jit.run_structors(self.structors.dtors());
        self.atexit.run();
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        // Trackers release here; the LLJIT is disposed when the last of them and `jit` are gone.
    }
}

/// A script added to an [`Engine`]; borrows the engine.
///
/// Dropping the handle keeps the script loaded (until the engine drops); [`ScriptHandle::remove`] unloads it.
pub struct ScriptHandle<'e> {
    engine: &'e Engine,
    id: u64,
    name: String,
    report: ReportSlot,
}

impl std::fmt::Debug for ScriptHandle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptHandle")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

impl<'e> ScriptHandle<'e> {
    /// The script's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The report: available after `add_script` in eager mode, after the first lookup materialized the script
    /// in lazy mode (`None` before).
    pub fn report(&self) -> Option<ScriptReport> {
        self.report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Looks up `name` as a function of type `F` (see [`Engine::lookup`]). The result borrows the handle, so
    /// the script cannot be removed while it is in use.
    pub fn lookup<F>(&self, name: &str) -> Result<JitFunction<'_, F>> {
        self.engine
            .lookup_function_address(name)
            .map(|address| JitFunction::new(address, self))
    }

    /// Unloads the script.
    pub fn remove(self) -> Result<()> {
        self.engine.remove_id(self.id, &self.name)
    }
}

/// The cache-key parts every script of an engine shares: format and versions, target, strategy, optimization
/// level, import configuration, and the identity of the helper summary / library.
fn script_key_salt(builder: &EngineBuilder, target: &ObjectTarget) -> Vec<Vec<u8>> {
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
        b"thinjit compiled script 1".to_vec(),
        env!("CARGO_PKG_VERSION").as_bytes().to_vec(),
        crate::llvm::llvm_version().into_bytes(),
        target.triple.clone().into_bytes(),
        target.cpu.clone().into_bytes(),
        target.features.clone().into_bytes(),
        builder.strategy.to_string().into_bytes(),
        format!("{:?}", builder.opt_level).into_bytes(),
        bincode::serialize(&builder.import_config).unwrap_or_default(),
        summary,
        library,
    ]
}

/// Names the JIT-resident runtime library as the summary's, not as a script, when it references symbols nothing
/// defines.
fn runtime_error(error: Error) -> Error {
    match error {
        Error::UnresolvedSymbols {
            script,
            symbols,
            source,
        } => Error::RuntimeUnresolvedSymbols {
            summary: script,
            symbols,
            source,
        },
        other => other,
    }
}
