//! The engine itself: one ORC LLJIT with the helper runtime in it, a registry of loaded scripts, lookups,
//! removal, and the handles hosts keep ([`ScriptHandle`] borrowing the engine, [`Script`] owning a share of it).
//!
//! In: scripts from the per-script pipeline ([`super::pipeline`]), objects. Out: addresses, handles, typed
//! errors. Every add goes through one drop guard ([`Loading`]): a failed add leaves nothing in the JIT.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::builder::{EngineBuilder, RuntimeMode};
use super::pipeline::{Pipeline, ReportSlot, ScriptReport};
use super::resident::ResidentRuntime;
use super::startup::StartupReport;
use super::tier::{TierReport, Tiering};
use crate::cache::ScriptCache;
use crate::llvm::orc::{JitFunction, LlJit, ResourceTracker};
use crate::llvm::resident::AtExitRegistry;
use crate::llvm::Module;
use crate::summary::ObjectTarget;
use crate::{Error, OrcErrorKind, OrcFailure, Result};

/// A loaded script: its code, and what must run before that code is freed.
pub(super) struct Loaded {
    /// The script's name (errors name the script that defines a symbol).
    name: String,
    /// The symbols it defines.
    defined: Vec<String>,
    tracker: ResourceTracker,
    /// `__cxa_atexit` registrations made by the script's code (through its own dso handle).
    pub atexit: AtExitRegistry,
    /// The script's `llvm.global_dtors`, in run order.
    pub dtors: Vec<String>,
}

/// A script the registry now holds.
pub(super) struct Registered {
    pub id: u64,
    name: String,
    report: ReportSlot,
}

/// Everything an engine is, shared by the [`Engine`] and the [`Script`]s made from it: the JIT lives as long
/// as the last of them.
pub(super) struct Core {
    pub jit: Arc<LlJit>,
    pub pipeline: Arc<Pipeline>,
    /// Tiered compilation ([`EngineBuilder::tiering`](super::EngineBuilder::tiering)).
    pub tiering: Option<Tiering>,
    pub mode: RuntimeMode,
    pub lazy: bool,
    /// Symbols the helper runtime defines; a script may not define them again.
    pub helper_symbols: BTreeSet<String>,
    /// The engine's atexit registry and dso handle and, in JIT-resident mode, the helper runtime (its
    /// structors run once; its destructors at drop).
    pub resident: ResidentRuntime,
    pub scripts: Mutex<HashMap<u64, Loaded>>,
    pub next_id: AtomicU64,
    /// Scripts removed so far (dead symbol names are freed every 64).
    pub removals: AtomicU64,
    /// Held while ORC may compile IR (lazy mode): LLJIT compiles IR with one shared target machine.
    pub compile_lock: Mutex<()>,
    /// How the engine started.
    pub startup: StartupReport,
    /// What the JIT targets (object compatibility, cache keys).
    pub target: ObjectTarget,
    /// The compiled-script cache, and the key parts every script shares.
    pub cache: Option<Arc<ScriptCache>>,
    pub cache_salt: Vec<Vec<u8>>,
}

/// An ORC failure while doing `context`, as an [`Error::Jit`].
pub(super) fn jit_error(context: impl Into<String>) -> impl FnOnce(OrcFailure) -> Error {
    let context = context.into();
    move |source| Error::Jit { context, source }
}

/// The error for a registry whose lock a panicking thread poisoned.
fn poisoned(
    what: &'static str,
) -> impl FnOnce(std::sync::PoisonError<std::sync::MutexGuard<'_, HashMap<u64, Loaded>>>) -> Error {
    move |_| Error::Poisoned { what }
}

impl Core {
    /// Turns an ORC failure while adding, linking or initializing `script` into a typed error: names ORC could
    /// not find are [`Error::UnresolvedSymbols`], a clash is an [`Error::DuplicateDefinition`] naming the first
    /// owner where the engine knows it, anything else an [`Error::Jit`] with `context`.
    pub(super) fn script_error(&self, script: &str, context: String, failure: OrcFailure) -> Error {
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
    pub(super) fn compile_guard(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        self.lazy
            .then(|| self.compile_lock.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn lookup_error(&self, name: &str, failure: OrcFailure) -> Error {
        // A lazy script whose code generation failed: removed (nothing of it stays), an `Error::Codegen`.
        let failures = self.jit.take_codegen_failures();
        if let Some(error) = super::checks::codegen_failure(&failures) {
            let ids: Vec<u64> = match self.pipeline.materializing.lock() {
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
                .pipeline
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

    pub(super) fn remove_id(&self, id: u64, name: &str) -> Result<()> {
        // A lazy script removed before ORC materialized it: forget it (its module is freed with the tracker).
        self.pipeline
            .pending
            .lock()
            .map_err(|_| Error::Poisoned {
                what: "lazy scripts",
            })?
            .retain(|_, pending| pending.id != id);
        if let Ok(mut m) = self.pipeline.materializing.lock() {
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
                // Tier 1 goes first (a promotion in flight no longer installs), then tier 0 below.
                let tier1 = match &self.tiering {
                    Some(tiering) => tiering.remove(id),
                    None => Ok(()),
                };
                let removed = script
                    .tracker
                    .remove()
                    .map_err(jit_error(format!("removing script `{name}`")));
                // Every 64 removals, free the symbol names of removed scripts (see `clear_dead_symbol_names`).
                if self.removals.fetch_add(1, Ordering::Relaxed) % 64 == 63 {
                    self.jit.clear_dead_symbol_names();
                }
                tier1.and(removed)
            }
            None => Ok(()),
        }
    }

    /// A module with a target triple or data layout must match the JIT's.
    pub(super) fn check_target(&self, module: &Module<'_>, what: &str) -> Result<()> {
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
        if !triple.is_empty() && !crate::llvm::same_target(&triple, &self.jit.triple()) {
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

    /// The address of `name`, materializing what defines it if needed (see [`Engine::lookup_address`]).
    fn lookup_address(&self, name: &str) -> Result<u64> {
        let _compiling = self.compile_guard();
        self.jit.lookup(name).map_err(|failure| {
            // The failed name stays in ORC's string pool until cleared: a host looking up many wrong names
            // (user input) would otherwise accumulate them.
            self.jit.clear_dead_symbol_names();
            self.lookup_error(name, failure)
        })
    }

    /// The address of the function `name` (a variable is an [`Error::InvalidEntry`]), materializing what
    /// defines it if needed.
    fn lookup_function_address(&self, name: &str) -> Result<u64> {
        let _compiling = self.compile_guard();
        super::checks::function_address(&self.jit, name, |failure| {
            self.jit.clear_dead_symbol_names();
            self.lookup_error(name, failure)
        })
    }

    /// Adds a relocatable object file under its own tracker (no import or optimization happens).
    fn add_object(&self, name: &str, object: &[u8]) -> Result<Registered> {
        let loading = Loading::new(self, name);
        self.jit
            .add_object_file(object, name, loading.tracker.as_ref())
            .map_err(|f| self.script_error(name, format!("adding object `{name}`"), f))?;
        loading.commit(Vec::new(), Vec::new(), Arc::default())
    }
}

/// A script being added. Until [`Loading::commit`] registers it, dropping it undoes everything the add did in
/// the JIT: the handlers its constructors registered run, its code is removed with its resource tracker, and a
/// lazy registration is forgotten. The one clean-up path of every failed add (a `?` anywhere in between).
pub(super) struct Loading<'e> {
    core: &'e Core,
    pub id: u64,
    name: String,
    /// `Some` until committed.
    pub tracker: Option<ResourceTracker>,
    atexit: Option<AtExitRegistry>,
    /// The key of the lazy script's entry in `Shared::pending`, once made.
    pub pending: Option<usize>,
}

impl<'e> Loading<'e> {
    pub fn new(core: &'e Core, name: &str) -> Self {
        Loading {
            core,
            id: core.next_id.fetch_add(1, Ordering::Relaxed),
            name: name.to_owned(),
            tracker: Some(core.jit.create_tracker()),
            atexit: Some(AtExitRegistry::new()),
            pending: None,
        }
    }

    /// The key of the script's own atexit registry (what its dso handle holds).
    pub fn key(&self) -> u64 {
        self.atexit.as_ref().map_or(0, AtExitRegistry::key)
    }

    /// Registers the loaded script (its tracker, atexit registry and destructors, run at removal or drop) and
    /// hands out its handle. A poisoned registry is an error (and the script is unloaded).
    pub fn commit(
        mut self,
        defined: Vec<String>,
        dtors: Vec<String>,
        report: ReportSlot,
    ) -> Result<Registered> {
        let core = self.core;
        let mut scripts = core.scripts.lock().map_err(poisoned("script registry"))?;
        let (Some(tracker), Some(atexit)) = (self.tracker.take(), self.atexit.take()) else {
            return Err(Error::Poisoned {
                what: "script being added",
            });
        };
        self.pending = None;
        scripts.insert(
            self.id,
            Loaded {
                name: self.name.clone(),
                defined,
                tracker,
                atexit,
                dtors,
            },
        );
        Ok(Registered {
            id: self.id,
            name: std::mem::take(&mut self.name),
            report,
        })
    }
}

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.pending.take() {
            self.core
                .pipeline
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
            self.core.jit.clear_dead_symbol_names();
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // No promotion may install while the engine goes away.
        if let Some(tiering) = &self.tiering {
            tiering.shutdown();
        }
        // Destructors first, while every piece of JIT'd code is still loaded: the scripts' (newest first), then
        // handlers registered through the engine's dso handle (last first) and the library's
        // `llvm.global_dtors`.
        let mut scripts: Vec<(u64, Loaded)> = self
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
        self.resident.shutdown();
        self.pipeline
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        // Trackers release here; the LLJIT is disposed when the last of them and `jit` are gone.
    }
}

/// An ORC JIT with the helper runtime in it, to which scripts are added.
///
/// `Send + Sync`: scripts can be added, looked up and removed from several threads at once. The JIT (and every
/// script's code) lives until the engine and every [`Script`] made from it are dropped; then the scripts'
/// destructors run (newest first), the helper runtime's, and the JIT is disposed.
pub struct Engine {
    core: Arc<Core>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("mode", &self.core.mode)
            .field("lazy", &self.core.lazy)
            .field("strategy", &self.core.pipeline.strategy)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Builds an engine from `builder` (see [`EngineBuilder::build`]).
    pub fn new(builder: EngineBuilder) -> Result<Self> {
        Ok(Engine {
            core: Arc::new(Core::new(builder)?),
        })
    }

    fn handle(&self, r: Registered) -> ScriptHandle<'_> {
        ScriptHandle {
            engine: self,
            id: r.id,
            name: r.name,
            report: r.report,
        }
    }

    /// How the engine started: where the runtime came from, why not from the object, stage times.
    pub fn startup_report(&self) -> &StartupReport {
        &self.core.startup
    }

    /// The compiled-script cache, if the engine has one.
    pub fn cache(&self) -> Option<&ScriptCache> {
        self.core.cache.as_deref()
    }

    /// How eagerly compiled scripts reused LLVM contexts and the helper shards parsed in them.
    pub fn context_reuse(&self) -> super::ContextReuse {
        self.core.pipeline.contexts.stats()
    }

    /// Where the helper runtime lives for this engine.
    pub fn runtime_mode(&self) -> RuntimeMode {
        self.core.mode
    }

    /// Whether scripts are imported and optimized lazily, inside ORC's IR transform.
    pub fn is_lazy(&self) -> bool {
        self.core.lazy
    }

    /// The static constructors run for the JIT-resident helper library, in the order they ran.
    pub fn initializers(&self) -> &[String] {
        self.core.resident.initializers()
    }

    /// Symbols the helper runtime defines (JIT-resident library definitions).
    pub fn helper_symbols(&self) -> &BTreeSet<String> {
        &self.core.helper_symbols
    }

    /// Number of scripts currently loaded.
    pub fn script_count(&self) -> usize {
        self.core
            .scripts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Reads and adds the script at `path` (textual IR or bitcode).
    pub fn add_script_file(&self, path: &Path) -> Result<ScriptHandle<'_>> {
        let bytes = crate::check::read_regular_file(path)?;
        self.add_script(&path.display().to_string(), &bytes)
    }

    /// Runs a script through the stages [`Engine::add_script`] runs before code generation — parse, verify,
    /// plan, import, optimize — on the same code path (the same stage functions, timers and save-temps files),
    /// and adds nothing to the JIT: the report shows what an add would import and optimize
    /// (`thinjit plan`). Code generation and linking do not run; the script is never cached. With
    /// [`EngineBuilder::isolate_codegen`](super::EngineBuilder::isolate_codegen) optimization belongs to the
    /// worker and does not run either.
    pub fn dry_run_script(&self, name: &str, source: &[u8]) -> Result<ScriptReport> {
        self.core.dry_run(name, source)
    }

    /// Reads the script at `path` (textual IR or bitcode) and runs [`Engine::dry_run_script`] on it, named as
    /// [`Engine::add_script_file`] names it.
    pub fn dry_run_script_file(&self, path: &Path) -> Result<ScriptReport> {
        let bytes = crate::check::read_regular_file(path)?;
        self.dry_run_script(&path.display().to_string(), &bytes)
    }

    /// Adds a module built by the caller (for example with the IR builder). The module is copied into the
    /// script's own context (as bitcode), so the caller's context stays the caller's.
    pub fn add_script_module(&self, module: &Module<'_>) -> Result<ScriptHandle<'_>> {
        self.add_script(&module.name(), &module.write_bitcode())
    }

    /// Adds a script module that lives in a context the caller owns: an llvm-sys or C++ caller's context
    /// borrowed with [`Context::borrow_raw`](crate::llvm::Context::borrow_raw) and
    /// [`Module::borrow_raw`], an inkwell module ([`Engine::add_inkwell_module`], feature `inkwell`), or a
    /// thinjit [`Context`](crate::llvm::Context). The module is compiled where it lives, with no copy through
    /// text or bitcode: the import pass links helper bodies into it (into its context), O3 and code generation
    /// run on it on this thread, and the object goes to ORC under the script's own tracker. The module is left
    /// changed (imported, optimized, structors taken out): drop it afterwards.
    ///
    /// Eager engines only (a lazy engine hands the module itself to ORC, which needs it in a context of its
    /// own: [`Engine::add_script_module`] copies it there), and never from the compiled-script cache (its key is
    /// the script's bytes, which this path never makes). See docs/interop.md.
    ///
    /// ```
    /// use thinjit::jit::EngineBuilder;
    /// use thinjit::llvm::{Context, Module};
    /// let engine = EngineBuilder::new().build().unwrap();
    /// let ctx = Context::new();
    /// let mut module = Module::parse_ir(&ctx, b"define i32 @seven() { ret i32 7 }", "seven").unwrap();
    /// let script = engine.add_script_module_in_place(&mut module).unwrap();
    /// let seven = script.lookup::<extern "C" fn() -> i32>("seven").unwrap();
    /// assert_eq!(unsafe { seven.call() }, 7);
    /// ```
    pub fn add_script_module_in_place(&self, module: &mut Module<'_>) -> Result<ScriptHandle<'_>> {
        self.core
            .add_module_in_place(module)
            .map(|r| self.handle(r))
    }

    /// Adds an inkwell module (feature `inkwell`), compiled where it lives in the caller's inkwell context with
    /// no text or bitcode copy; see [`Engine::add_script_module_in_place`]. The module is consumed.
    ///
    /// ```
    /// let engine = thinjit::jit::EngineBuilder::new().build().unwrap();
    /// let ink = inkwell::context::Context::create();
    /// let module = ink.create_module("seven");
    /// let f = module.add_function("seven", ink.i32_type().fn_type(&[], false), None);
    /// let builder = ink.create_builder();
    /// builder.position_at_end(ink.append_basic_block(f, "entry"));
    /// builder.build_return(Some(&ink.i32_type().const_int(7, false))).unwrap();
    /// let script = engine.add_inkwell_module(module).unwrap();
    /// let seven = script.lookup::<extern "C" fn() -> i32>("seven").unwrap();
    /// assert_eq!(unsafe { seven.call() }, 7);
    /// ```
    #[cfg(feature = "inkwell")]
    pub fn add_inkwell_module(
        &self,
        module: inkwell::module::Module<'_>,
    ) -> Result<ScriptHandle<'_>> {
        crate::llvm::inkwell::with_module(&module, |m| self.add_script_module_in_place(m))
    }

    /// Adds a script (textual IR or bitcode, named `name` in errors and reports) in its own LLVM context and
    /// under its own resource tracker, through the pipeline's stages ([`super::Stage`]): all of them now
    /// (eager), or parse and verify now and the rest when ORC materializes it (lazy). A failed add leaves
    /// nothing of the script in the JIT.
    pub fn add_script(&self, name: &str, source: &[u8]) -> Result<ScriptHandle<'_>> {
        self.core.add_script(name, source).map(|r| self.handle(r))
    }

    /// Adds a relocatable object file under its own tracker (no import or optimization happens).
    pub fn add_object(&self, name: &str, object: &[u8]) -> Result<ScriptHandle<'_>> {
        self.core.add_object(name, object).map(|r| self.handle(r))
    }

    /// Looks up `name` anywhere in the engine (scripts and the JIT-resident helpers) as a function of type `F`.
    /// The result borrows the engine, so it cannot outlive the JIT memory; for a script's own functions prefer
    /// [`ScriptHandle::lookup`], which also keeps the script from being removed meanwhile.
    pub fn lookup<F>(&self, name: &str) -> Result<JitFunction<'_, F>> {
        self.core
            .lookup_function_address(name)
            .map(|address| JitFunction::new(address, self))
    }

    /// The address of `name` (a function or a variable), materializing what defines it if needed.
    ///
    /// Errors: [`Error::UndefinedSymbol`] when nothing defines `name`; [`Error::UnresolvedSymbols`] when the
    /// script defining it references names nothing defines; in lazy mode, the typed error of a failed import
    /// or optimization; [`Error::Jit`] for anything else ORC reports.
    pub fn lookup_address(&self, name: &str) -> Result<u64> {
        self.core.lookup_address(name)
    }

    /// Unloads a script: what it registered with `__cxa_atexit` and its static destructors run, then its
    /// symbols disappear and its memory is returned.
    pub fn remove(&self, handle: ScriptHandle<'_>) -> Result<()> {
        handle.remove()
    }

    /// Errors ORC reported asynchronously and no call returned (drained).
    pub fn take_reported_errors(&self) -> Vec<crate::OrcError> {
        self.core.jit.take_reported_errors()
    }
}

/// A script added to an [`Engine`]; borrows the engine.
///
/// Dropping the handle keeps the script loaded (until the engine drops); [`ScriptHandle::remove`] unloads it.
/// [`ScriptHandle::into_script`] turns it into an owned [`Script`] a host can store.
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
            .core
            .lookup_function_address(name)
            .map(|address| JitFunction::new(address, self))
    }

    /// With tiering: which tier runs, the profile, and what promotion changed (`None` without tiering).
    pub fn tier_report(&self) -> Option<TierReport> {
        self.engine.core.tiering.as_ref()?.report(self.id)
    }

    /// With tiering: waits until the script's promotion finished (the stubs switched, or tier 1 failed and
    /// tier 0 keeps running) or `timeout` passed, and returns the report then. `None` without tiering.
    pub fn wait_for_promotion(&self, timeout: Duration) -> Option<TierReport> {
        self.engine.core.tiering.as_ref()?.wait(self.id, timeout)
    }

    /// Unloads the script.
    pub fn remove(self) -> Result<()> {
        self.engine.core.remove_id(self.id, &self.name)
    }

    /// An owned handle to this script: `Clone`, `Send + Sync`, no borrow of the engine, so a host can keep
    /// scripts in its own structs. The script stays loaded while any clone exists and is unloaded (its
    /// destructors run, its code is freed) when the last clone is dropped or [`Script::remove`]d.
    pub fn into_script(self) -> Script {
        Script {
            inner: Arc::new(ScriptInner {
                core: Arc::clone(&self.engine.core),
                id: self.id,
                name: self.name,
                report: self.report,
            }),
        }
    }
}

/// An owned script: the script stays loaded, and the JIT alive, while any clone of it exists.
///
/// Made by [`ScriptHandle::into_script`] (or [`Engine::add_owned_script`]). Lookups borrow the `Script`, so a
/// looked-up function cannot outlive the code: the clone it borrows keeps the script loaded and, through a
/// share of the engine's internals, the JIT alive — even after the [`Engine`] itself is dropped. Calling it
/// stays `unsafe` (the signature cannot be checked).
///
/// ```
/// use thinjit::jit::{Engine, EngineBuilder, Script};
/// struct MyJit {
///     engine: Engine,
///     scripts: Vec<Script>,
/// }
/// let mut jit = MyJit { engine: EngineBuilder::new().build().unwrap(), scripts: Vec::new() };
/// let script = jit.engine.add_owned_script("s", b"define i32 @seven() {\n ret i32 7\n}\n").unwrap();
/// jit.scripts.push(script);
/// let seven = jit.scripts[0].lookup::<extern "C" fn() -> i32>("seven").unwrap();
/// // SAFETY: `seven` is `i32 ()`, and the borrowed `Script` keeps it loaded.
/// assert_eq!(unsafe { seven.call() }, 7);
/// ```
#[derive(Clone)]
pub struct Script {
    inner: Arc<ScriptInner>,
}

struct ScriptInner {
    core: Arc<Core>,
    id: u64,
    name: String,
    report: ReportSlot,
}

impl Drop for ScriptInner {
    fn drop(&mut self) {
        // The last clone: unload. A failure here has no caller to go to; `Script::remove` reports it.
        let _ = self.core.remove_id(self.id, &self.name);
    }
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("id", &self.inner.id)
            .field("name", &self.inner.name)
            .finish()
    }
}

impl Script {
    /// The script's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The report (see [`ScriptHandle::report`]).
    pub fn report(&self) -> Option<ScriptReport> {
        self.inner
            .report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Looks up `name` as a function of type `F` (see [`Engine::lookup`]). The result borrows this `Script`,
    /// which keeps the script loaded and the JIT alive.
    pub fn lookup<F>(&self, name: &str) -> Result<JitFunction<'_, F>> {
        self.inner
            .core
            .lookup_function_address(name)
            .map(|address| JitFunction::new(address, self))
    }

    /// With tiering: which tier runs (see [`ScriptHandle::tier_report`]).
    pub fn tier_report(&self) -> Option<TierReport> {
        self.inner.core.tiering.as_ref()?.report(self.inner.id)
    }

    /// With tiering: waits for the promotion (see [`ScriptHandle::wait_for_promotion`]).
    pub fn wait_for_promotion(&self, timeout: Duration) -> Option<TierReport> {
        self.inner
            .core
            .tiering
            .as_ref()?
            .wait(self.inner.id, timeout)
    }

    /// Unloads the script now if this is the last clone (and reports a failure to remove it); otherwise only
    /// this clone goes and the script stays loaded for the others.
    pub fn remove(self) -> Result<()> {
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => {
                // Removing is idempotent: the drop that follows finds nothing left to remove.
                inner.core.remove_id(inner.id, &inner.name)
            }
            Err(_) => Ok(()),
        }
    }
}

impl Engine {
    /// [`Engine::add_script`], returning an owned [`Script`].
    pub fn add_owned_script(&self, name: &str, source: &[u8]) -> Result<Script> {
        self.add_script(name, source).map(ScriptHandle::into_script)
    }
}
