//! The per-script pipeline: every script goes through the same named stages, each timed and each able to
//! write what it produced ([`EngineBuilder::save_temps`]).
//!
//! In: a script's bytes and name. Out: a loaded script (its object linked into the JIT under its own resource
//! tracker) and a [`ScriptReport`] with one time per [`Stage`].
//!
//! | stage | what it does | save-temps file |
//! |---|---|---|
//! | `parse` | bitcode or textual IR → a module in the script's own context | `<script>.00-parse.bc` |
//! | `verify` | LLVM's verifier (the script is untrusted input), target check, triple and data layout defaults, helper redefinitions refused | `<script>.01-verify.bc` |
//! | `plan` | the script's symbols and (summary strategy) the import plan | `<script>.02-plan.bc` (+ `.json`: the plan) |
//! | `import` | runtime preparation (structors out, `atexit` redirected, own dso handle, shared definitions internal), then the strategy's import; verified (the shards are a second input) | `<script>.03-import.bc` |
//! | `optimize` | the [`crate::optimize`] pipeline | `<script>.04-optimize.bc` |
//! | `codegen` | the object file, on the caller's thread | `<script>.05-codegen.o` |
//! | `link` | JITLink under the script's tracker, dso key, static constructors | `<script>.06-link.txt` (symbol addresses) |
//!
//! Lazy mode runs `parse` and `verify` in [`Engine::add_script`] and `plan`, `import` and `optimize` inside
//! ORC's IR transform when a symbol is first looked up; ORC then compiles and links (not timed separately).
//!
//! A module is verified once per trust boundary: after parsing (the script) and after import when helper code
//! was linked in (the shards); optimization and code generation run on IR the pipeline knows to be valid.
//!
//! A dry run ([`Engine::dry_run_script`](super::Engine::dry_run_script), `thinjit plan`) runs the eager stages up
//! to `optimize` through the same functions and adds nothing to the JIT.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::builder::{RuntimeMode, Strategy};
use super::cache::CachedScript;
use super::engine::{Core, Loading, Registered};
use super::runtime;
use crate::cache::{CacheKey, CacheOutcome, ScriptCache};
use crate::import::{self, ImportConfig, ImportPlan, ImportReport};
use crate::llvm::{CodeGenOpt, Context, Linkage, Module, TargetMachine};
use crate::optimize::OptLevel;
use crate::summary::Summary;
use crate::{Error, Result};

/// The stages of the per-script pipeline, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Bytes → module.
    Parse,
    /// The verifier, the target check, helper redefinitions.
    Verify,
    /// The import plan.
    Plan,
    /// Runtime preparation and the strategy's import.
    Import,
    /// The optimization pipeline.
    Optimize,
    /// Module → object file.
    Codegen,
    /// Object → JIT (and static constructors).
    Link,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 7] = [
        Stage::Parse,
        Stage::Verify,
        Stage::Plan,
        Stage::Import,
        Stage::Optimize,
        Stage::Codegen,
        Stage::Link,
    ];

    /// The stage's name, as in save-temps file names and `--time` output.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Verify => "verify",
            Stage::Plan => "plan",
            Stage::Import => "import",
            Stage::Optimize => "optimize",
            Stage::Codegen => "codegen",
            Stage::Link => "link",
        }
    }

    /// The file name save-temps gives this stage's output for `script` (`<script>.<NN>-<stage>.<ext>`, the
    /// script's name reduced to its file name with unusual characters replaced).
    pub fn temp_file_name(self, script: &str) -> String {
        let ext = match self {
            Stage::Codegen => "o",
            Stage::Link => "txt",
            _ => "bc",
        };
        format!(
            "{}.{:02}-{}.{ext}",
            temp_stem(script),
            self as usize,
            self.name()
        )
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn temp_stem(script: &str) -> String {
    let base = Path::new(script)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| script.to_owned());
    let stem: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.is_empty() {
        "script".into()
    } else {
        stem
    }
}

/// Time spent in each stage of adding one script (zero for stages that did not run: the import stages of a
/// cached script, codegen and link in lazy mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScriptTimes {
    /// Bytes → module.
    pub parse: Duration,
    /// Verifier, target check, redefinition check.
    pub verify: Duration,
    /// The import plan.
    pub plan: Duration,
    /// Runtime preparation and importing helper bodies.
    pub import: Duration,
    /// The optimization pipeline.
    pub optimize: Duration,
    /// Code generation.
    pub codegen: Duration,
    /// Linking into the JIT and running static constructors.
    pub link: Duration,
}

impl ScriptTimes {
    /// The time of `stage`.
    pub fn get(&self, stage: Stage) -> Duration {
        match stage {
            Stage::Parse => self.parse,
            Stage::Verify => self.verify,
            Stage::Plan => self.plan,
            Stage::Import => self.import,
            Stage::Optimize => self.optimize,
            Stage::Codegen => self.codegen,
            Stage::Link => self.link,
        }
    }

    fn slot(&mut self, stage: Stage) -> &mut Duration {
        match stage {
            Stage::Parse => &mut self.parse,
            Stage::Verify => &mut self.verify,
            Stage::Plan => &mut self.plan,
            Stage::Import => &mut self.import,
            Stage::Optimize => &mut self.optimize,
            Stage::Codegen => &mut self.codegen,
            Stage::Link => &mut self.link,
        }
    }

    /// Code generation plus linking (what ORC's materialization does).
    pub fn materialize(&self) -> Duration {
        self.codegen + self.link
    }

    /// The sum of all stages.
    pub fn total(&self) -> Duration {
        Stage::ALL.iter().map(|s| self.get(*s)).sum()
    }
}

/// What happened to one script: stage times, what it defines, and (if asked for) its optimized IR.
#[derive(Clone, Debug, Default)]
pub struct ScriptReport {
    /// The script's name (as given to [`Engine::add_script`](super::Engine::add_script)).
    pub name: String,
    /// The strategy used.
    pub strategy: Strategy,
    /// Stage times.
    pub times: ScriptTimes,
    /// Symbols the script defines (what its ORC materialization unit claims).
    pub defined: Vec<String>,
    /// What the import pass did and why (summary strategy with a summary).
    pub import: Option<ImportReport>,
    /// The module after import and optimization, when
    /// [`EngineBuilder::keep_optimized_ir`](super::EngineBuilder::keep_optimized_ir) is set.
    pub optimized_ir: Option<String>,
    /// Size in bytes of the script's object file (eager mode; `None` when ORC compiled it lazily).
    pub object_size: Option<usize>,
    /// With a cache ([`EngineBuilder::cache`](super::EngineBuilder::cache)): whether the object came from it
    /// (import, optimization and code generation skipped; `import` is the report of the compile that made it).
    /// `None` without a cache.
    pub cache: Option<CacheOutcome>,
    /// Files written by save-temps, in stage order.
    pub temps: Vec<PathBuf>,
    /// With isolated compilation ([`EngineBuilder::isolate_codegen`](super::EngineBuilder::isolate_codegen)):
    /// where the time of the worker round trip went. `None` otherwise.
    pub isolated: Option<super::isolate::IsolatedTimes>,
}

impl ScriptReport {
    /// `true` when the script was added from the compiled-script cache.
    pub fn from_cache(&self) -> bool {
        self.cache.is_some_and(CacheOutcome::is_hit)
    }
}

/// A script's report is shared between the handle and, in lazy mode, the IR transform.
pub(super) type ReportSlot = Arc<Mutex<Option<ScriptReport>>>;

/// A script waiting for ORC to materialize it (lazy mode).
pub(super) struct Pending {
    /// The script's id in the engine.
    pub id: u64,
    pub name: String,
    pub slot: ReportSlot,
    pub times: ScriptTimes,
    pub temps: Vec<PathBuf>,
    /// The key of the script's own atexit registry.
    pub dso_key: u64,
}

/// One script's way through the stages: times and save-temps files.
struct Run<'p> {
    pipeline: &'p Pipeline,
    name: String,
    times: ScriptTimes,
    temps: Vec<PathBuf>,
}

impl<'p> Run<'p> {
    /// Runs `f` as `stage` (timed).
    fn stage<T>(&mut self, stage: Stage, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let start = Instant::now();
        let out = f();
        *self.times.slot(stage) += start.elapsed();
        out
    }

    /// With save-temps, writes `module` as `stage`'s file.
    fn save_module(&mut self, stage: Stage, module: &Module<'_>) -> Result<()> {
        if self.pipeline.save_temps.is_none() {
            return Ok(());
        }
        // LLVM's bitcode writer recurses on nested types: a module nested past the limit is not written (the
        // verify stage refuses it).
        let nesting = module.nesting();
        let limit = crate::llvm::facts::MAX_NESTING;
        if nesting.types > limit || nesting.constants > limit {
            return Ok(());
        }
        self.save(stage, &module.write_bitcode())
    }

    fn save(&mut self, stage: Stage, bytes: &[u8]) -> Result<()> {
        let Some(dir) = &self.pipeline.save_temps else {
            return Ok(());
        };
        let path = dir.join(stage.temp_file_name(&self.name));
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
        self.temps.push(path);
        Ok(())
    }
}

/// The stages' configuration, shared with ORC's IR transform (lazy mode).
pub(super) struct Pipeline {
    pub strategy: Strategy,
    pub opt_level: OptLevel,
    pub import_config: ImportConfig,
    /// Where the helper runtime lives: what imports are planned for.
    pub mode: RuntimeMode,
    pub keep_optimized_ir: bool,
    pub save_temps: Option<PathBuf>,
    pub summary: Option<Arc<Summary>>,
    /// The helper library's bitcode (full-link strategies).
    pub library: Option<Arc<Vec<u8>>>,
    /// Host target machines for optimization and code generation, reused (a `TargetMachine` is not `Sync`).
    pub machines: Mutex<Vec<TargetMachine>>,
    /// Lazy scripts by module identity.
    pub pending: Mutex<HashMap<usize, Pending>>,
    /// Typed errors of lazy scripts whose stages failed inside ORC's IR transform (ORC only carries text): the
    /// lookup that made ORC materialize the script returns them.
    pub transform_failures: Mutex<Vec<Error>>,
    /// Lazy scripts ORC has compiled (or is compiling), by module identity: a code generation failure names
    /// the module, and the engine removes its script.
    pub materializing: Mutex<HashMap<usize, u64>>,
    /// Worker processes that optimize and compile scripts (isolated compilation), if enabled.
    pub isolation: Option<super::isolate::Pool>,
    /// Whether scripts go through the pre-codegen target check.
    pub target_check: bool,
    /// Contexts eager scripts are compiled in, reused a bounded number of times (parsed shards are copied).
    pub contexts: super::contexts::ContextPool,
}

impl Pipeline {
    /// Runs `f` with a host target machine from the pool (made on first use; one per concurrent user).
    pub(super) fn with_machine<T>(&self, f: impl FnOnce(&TargetMachine) -> Result<T>) -> Result<T> {
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

    fn run(&self, name: &str) -> Run<'_> {
        Run {
            pipeline: self,
            name: name.to_owned(),
            times: ScriptTimes::default(),
            temps: Vec::new(),
        }
    }

    /// The plan stage: the summary strategy's import plan (`None` for the other strategies).
    fn plan(&self, module: &Module<'_>) -> Result<Option<ImportPlan>> {
        match (self.strategy, &self.summary) {
            (Strategy::Summary, Some(summary)) => {
                import::plan_for(module, &**summary, &self.import_config, self.mode).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The import stage's strategy arm: brings helper code into `module` as the strategy says. A new strategy
    /// is a new arm here.
    fn import(
        &self,
        module: &mut Module<'_>,
        plan: Option<&ImportPlan>,
    ) -> Result<Option<ImportReport>> {
        let report = match (self.strategy, &self.summary, plan) {
            (Strategy::Summary, Some(summary), Some(plan)) => {
                Some(import::import_planned(module, &**summary, plan)?)
            }
            (Strategy::FullLink, _, _) => {
                self.full_link(module)?;
                None
            }
            (Strategy::FullLinkInternalize, _, _) => {
                self.full_link_internalize(module)?;
                None
            }
            (Strategy::LlvmImporter, _, _) => {
                let library = self.library.as_deref().ok_or_else(|| Error::Config {
                    message: "the llvm-importer strategy needs a summary or a helper library"
                        .into(),
                })?;
                let name = module.name();
                let imported =
                    import::import_with_llvm_verified(module, library, &self.import_config, true)?;
                Some(imported.to_report(&name))
            }
            _ => None,
        };
        Ok(report)
    }

    /// The optimize stage.
    fn optimize(&self, module: &mut Module<'_>) -> Result<Option<String>> {
        if self.isolation.is_some() {
            // Isolated compilation: the worker optimizes, with code generation.
            return Ok(None);
        }
        let level = self.opt_level;
        self.with_machine(|tm| crate::optimize::optimize_verified(module, tm, level))?;
        Ok(self.keep_optimized_ir.then(|| module.print()))
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
        runtime::drop_structors(&mut library);
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

    /// Plan, import (with the import-stage check that the script's definitions did not change, and the
    /// post-import verification) and optimize: the stages eager and lazy mode share.
    fn plan_import_optimize(
        &self,
        run: &mut Run<'_>,
        module: &mut Module<'_>,
    ) -> Result<(Option<ImportReport>, Option<String>)> {
        let plan = run.stage(Stage::Plan, || self.plan(module))?;
        run.save_module(Stage::Plan, module)?;
        if let (Some(plan), Some(dir)) = (&plan, &self.save_temps) {
            let path = dir.join(format!("{}.02-plan.json", temp_stem(&run.name)));
            let json = serde_json::to_vec_pretty(plan).map_err(|e| Error::Import {
                module: run.name.clone(),
                message: format!("cannot encode the plan: {e}"),
            })?;
            std::fs::write(&path, json).map_err(|e| Error::io(&path, e))?;
        }
        let before = module.defined_symbols();
        let report = run.stage(Stage::Import, || {
            let report = self.import(module, plan.as_ref())?;
            if report.is_none() && self.strategy != Strategy::None {
                // Whole-library strategies linked a second input: verify it once here.
                module.verify()?;
            }
            Ok(report)
        })?;
        run.save_module(Stage::Import, module)?;
        let optimized_ir = run.stage(Stage::Optimize, || self.optimize(module))?;
        run.save_module(Stage::Optimize, module)?;
        let after = module.defined_symbols();
        if after != before {
            return Err(Error::Import {
                module: run.name.clone(),
                message: format!(
                    "import and optimization changed the script's definitions ({before:?} -> {after:?})"
                ),
            });
        }
        Ok((report, optimized_ir))
    }

    /// The IR transform as ORC sees it: on failure the typed error is kept for the lookup that triggered the
    /// materialization and ORC gets its text.
    pub fn transform(&self, module: &mut Module<'_>) -> std::result::Result<(), String> {
        self.transform_typed(module).map_err(|error| {
            let text = error.to_string();
            self.transform_failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(error);
            text
        })
    }

    /// The IR transform body: runs plan, import and optimize on modules registered as pending, passes every
    /// other module through.
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
        let mut run = self.run(&pending.name);
        run.times = pending.times;
        run.temps = pending.temps;
        let (import, optimized_ir) = self.plan_import_optimize(&mut run, module)?;
        // Constructors a whole-library link brought along cannot run from here: dropped (lazy mode).
        runtime::drop_structors(module);
        runtime::redirect_atexit(module);
        runtime::localize_dso_handle(module, pending.dso_key);
        let defined = module.defined_symbols();
        *pending.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(ScriptReport {
            name: pending.name,
            strategy: self.strategy,
            times: run.times,
            defined: defined.into_iter().collect(),
            import,
            optimized_ir,
            object_size: None,
            cache: None,
            temps: run.temps,
            isolated: None,
        });
        Ok(())
    }
}

impl Core {
    /// Adds a script: parse → verify → plan → import → optimize → codegen → link (eager), or parse → verify
    /// now and the rest when ORC materializes it (lazy). A failed add leaves nothing of the script in the JIT.
    pub(super) fn add_script_untiered(&self, name: &str, source: &[u8]) -> Result<Registered> {
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
        let pipeline = &*self.pipeline;
        let mut run = pipeline.run(name);
        // Eager scripts are compiled in a pooled context (their modules are gone before it is given back);
        // a lazy script's context goes to ORC with the module.
        let pooled = (!self.lazy).then(|| pipeline.contexts.take());
        let fresh;
        let ctx: &Context = match &pooled {
            Some(p) => &p.ctx,
            None => {
                fresh = Context::new();
                &fresh
            }
        };
        let module = run.stage(Stage::Parse, || Module::parse(ctx, source, name))?;
        let registered = self.add_module(name, ScriptModule::Owned(module), run, cached, tag)?;
        if let Some(p) = pooled {
            pipeline.contexts.give_back(p);
        }
        Ok(registered)
    }

    /// Adds a script module of the caller's context, compiled where it lives (eager engines only; never
    /// cached): see [`super::Engine::add_script_module_in_place`].
    pub(super) fn add_module_in_place(&self, module: &mut Module<'_>) -> Result<Registered> {
        let name = module.name();
        if self.lazy {
            return Err(Error::Config {
                message: format!(
                    "script `{name}`: a lazy engine hands modules to ORC in a context of their own; add a module \
                     of the caller's context eagerly (lazy(false)) or copy it with add_script_module"
                ),
            });
        }
        let run = self.pipeline.run(&name);
        self.add_module(&name, ScriptModule::InPlace(module), run, None, None)
    }

    /// Saves the parsed module, then the verify stage: LLVM's verifier (the script is untrusted input), the
    /// target check, triple and data layout defaults, helper redefinitions refused. Returns what the script
    /// defines.
    fn verify_stage(
        &self,
        run: &mut Run<'_>,
        module: &mut Module<'_>,
        name: &str,
    ) -> Result<BTreeSet<String>> {
        run.save_module(Stage::Parse, module)?;
        let defined = run.stage(Stage::Verify, || {
            module.verify()?;
            self.check_target(module, name)?;
            if module.triple().is_empty() {
                module.set_triple(&self.jit.triple());
            }
            if module.data_layout().is_empty() {
                module.set_data_layout(&self.jit.data_layout());
            }
            let defined = module.defined_symbols();
            self.refuse_helper_redefinition(name, defined.iter())?;
            let check = self.pipeline.target_check;
            super::checks::script(module, name, &self.target, &self.helper_symbols, check)?;
            Ok(defined)
        })?;
        run.save_module(Stage::Verify, module)?;
        Ok(defined)
    }

    /// The eager stages between verify and code generation: runtime preparation (part of the import stage:
    /// structors out, atexit redirected, own dso handle), plan, import, optimize, then the runtime preparation
    /// of what a whole-library link brought along. Returns the import report and the optimized IR (if kept).
    fn eager_stages(
        &self,
        run: &mut Run<'_>,
        module: &mut Module<'_>,
        prepared: &mut runtime::ScriptRuntime,
    ) -> Result<(Option<ImportReport>, Option<String>)> {
        run.stage(Stage::Import, || {
            prepared.prepare(module);
            Ok(())
        })?;
        let (import, optimized_ir) = self.pipeline.plan_import_optimize(run, module)?;
        run.stage(Stage::Import, || {
            // Strategies that link whole libraries bring their static constructors along.
            prepared.prepare_linked(module);
            Ok(())
        })?;
        Ok((import, optimized_ir))
    }

    /// A dry run: the stages an eager add runs before code generation (parse, verify, plan, import, optimize),
    /// on the code path [`Core::add_script_untiered`] takes (same stage functions, timers, save-temps files,
    /// context pool, a script registry key and tracker of its own), then nothing is compiled or added to the
    /// JIT. With isolated compilation, optimization runs in the worker with code generation: not here.
    pub(super) fn dry_run(&self, name: &str, source: &[u8]) -> Result<ScriptReport> {
        let pipeline = &*self.pipeline;
        let mut run = pipeline.run(name);
        let pooled = pipeline.contexts.take();
        let mut module = run.stage(Stage::Parse, || Module::parse(&pooled.ctx, source, name))?;
        let defined = self.verify_stage(&mut run, &mut module, name)?;
        // As an add: the script's own registry key (its dso handle) and tracker; dropped unused, which
        // leaves nothing in the JIT.
        let loading = Loading::new(self, name);
        let mut prepared = runtime::ScriptRuntime::new(None, loading.key());
        let (import, optimized_ir) = self.eager_stages(&mut run, &mut module, &mut prepared)?;
        drop(loading);
        drop(module);
        pipeline.contexts.give_back(pooled);
        Ok(ScriptReport {
            name: name.to_owned(),
            strategy: pipeline.strategy,
            times: run.times,
            defined: defined.into_iter().collect(),
            import,
            optimized_ir,
            object_size: None,
            cache: None,
            temps: run.temps,
            isolated: None,
        })
    }

    /// The stages after parsing, on a module the engine parsed or one of the caller's context.
    fn add_module(
        &self,
        name: &str,
        mut script: ScriptModule<'_, '_>,
        mut run: Run<'_>,
        cached: Option<(Arc<ScriptCache>, CacheKey)>,
        tag: Option<String>,
    ) -> Result<Registered> {
        let pipeline = &*self.pipeline;
        let module = script.module();
        let defined = self.verify_stage(&mut run, module, name)?;

        let mut loading = Loading::new(self, name);
        let mut prepared = runtime::ScriptRuntime::new(tag.clone(), loading.key());
        if self.lazy {
            run.stage(Stage::Import, || {
                prepared.prepare(module);
                Ok(())
            })?;
            let slot: ReportSlot = Arc::default();
            let key = module.identity();
            pipeline
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
                        times: run.times,
                        temps: std::mem::take(&mut run.temps),
                        dso_key: loading.key(),
                    },
                );
            loading.pending = Some(key);
            let ScriptModule::Owned(owned) = script else {
                return Err(Error::Config {
                    message: format!(
                        "script `{name}`: a lazy engine needs the script in a context of its own"
                    ),
                });
            };
            self.jit
                .add_module_verified(owned, loading.tracker.as_ref())
                .map_err(|f| self.script_error(name, format!("adding script `{name}`"), f))?;
            self.run_script_ctors(name, &prepared.structors)?;
            return loading.commit(
                defined.into_iter().collect(),
                prepared.structors.dtors().to_vec(),
                slot,
            );
        }

        let (import, mut optimized_ir) = self.eager_stages(&mut run, module, &mut prepared)?;
        // Code generation on this thread with a pooled target machine.
        let mut isolated = None;
        let object = match &pipeline.isolation {
            // Optimization and code generation in a worker process (the codegen stage's time includes both;
            // the optimize stage's is the worker's own measure).
            Some(pool) => {
                let (level, keep) = (pipeline.opt_level, pipeline.keep_optimized_ir);
                let compiled = run.stage(Stage::Codegen, || {
                    pool.compile(module, name, &self.target, level, keep, &defined)
                })?;
                (run.times.optimize, optimized_ir) = (compiled.optimize, compiled.optimized_ir);
                isolated = Some(compiled.times);
                compiled.object
            }
            None => run.stage(Stage::Codegen, || {
                pipeline.with_machine(|tm| tm.emit_object_verified(module))
            })?,
        };
        run.save(Stage::Codegen, &object)?;
        drop(script);
        let after = defined.iter().cloned().collect::<Vec<_>>();
        // JITLink (thread-safe), the dso key, the static constructors.
        let dso_handle = prepared.exported_dso_handle();
        run.stage(Stage::Link, || {
            self.jit
                .add_object_file(&object, name, loading.tracker.as_ref())
                .map_err(|f| self.script_error(name, format!("adding script `{name}`"), f))?;
            if let Some(first) = after.first() {
                self.jit
                    .lookup(first)
                    .map_err(|f| self.script_error(name, format!("linking script `{name}`"), f))?;
            }
            if let Some(handle) = &dso_handle {
                self.jit
                    .write_dso_key(handle, loading.key())
                    .map_err(|f| self.script_error(name, format!("script `{name}`"), f))?;
            }
            self.run_script_ctors(name, &prepared.structors)
        })?;
        if pipeline.save_temps.is_some() {
            let mut listing = String::new();
            for symbol in &after {
                if let Ok(address) = self.jit.lookup(symbol) {
                    listing.push_str(&format!("{address:#x} {symbol}\n"));
                }
            }
            run.save(Stage::Link, listing.as_bytes())?;
        }
        let object_len = object.len();
        let outcome = cached.as_ref().map(|(cache, key)| {
            let entry = CachedScript {
                defined: after.clone(),
                ctors: prepared.structors.ctors().to_vec(),
                dtors: prepared.structors.dtors().to_vec(),
                dso_handle,
                import: import.clone(),
                object,
            };
            // A failed disk write leaves the memory copy; the next process compiles again.
            let _ = cache.put(*key, &entry.encode());
            CacheOutcome::Miss
        });
        let report = ScriptReport {
            name: name.to_owned(),
            strategy: pipeline.strategy,
            times: run.times,
            defined: after.clone(),
            import,
            optimized_ir,
            object_size: Some(object_len),
            cache: outcome,
            temps: run.temps,
            isolated,
        };
        loading.commit(
            after,
            prepared.structors.dtors().to_vec(),
            Arc::new(Mutex::new(Some(report))),
        )
    }
}

/// How long the stages of the cached path took (only `link` runs).
pub(super) fn cached_times(link: Duration) -> ScriptTimes {
    ScriptTimes {
        link,
        ..ScriptTimes::default()
    }
}

/// A script module on its way through the pipeline: parsed by the engine into a context of its own, or the
/// caller's, compiled where it lives.
enum ScriptModule<'m, 'c> {
    Owned(Module<'c>),
    InPlace(&'m mut Module<'c>),
}

impl<'c> ScriptModule<'_, 'c> {
    fn module(&mut self) -> &mut Module<'c> {
        match self {
            ScriptModule::Owned(m) => m,
            ScriptModule::InPlace(m) => m,
        }
    }
}
