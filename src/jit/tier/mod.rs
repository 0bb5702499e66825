//! Tiered compilation: run a script at once without import, import and inline what its own profile shows hot.
//!
//! In: an engine built with [`EngineBuilder::tiering`](super::EngineBuilder::tiering) and script modules. Out:
//! per script a [`TierReport`] (which tier runs, when and why it was promoted, the hot and never-executed call
//! sites, and what the profile changed in the import plan).
//!
//! **Tier 0** ([`Engine::add_script`](super::Engine::add_script)): no import, a cheap pipeline
//! ([`TierZeroOpt`]), and instrumentation:
//! - every entry (a function the script defines with external linkage) `f` becomes a redirectable stub: `@f`
//!   loads the current target from a per-entry slot (`load atomic ptr, acquire`) and `musttail`-calls it. Its
//!   body is renamed `f.tj0.<id>`; the slot first points at a counting thunk `f.tjc.<id>` that bumps the
//!   entry's call counter and, when the count equals [`TieringConfig::threshold_calls`], asks the engine's
//!   background compile thread to promote the script;
//! - every call site that reaches a helper the summary defines bumps its own counter.
//!
//!   Counters and slots are host memory owned by the engine (their addresses are constants in the code);
//!   counters use relaxed loads and stores (a lost update under contention only blurs the profile).
//! - the script's mutable globals get external names (`g.tj.<id>` for internal ones) so that tier 1 shares
//!   the one instance: state survives the switch.
//!
//! **Promotion** (on the engine's `thinjit-tier` thread): the script's original IR is compiled again — the
//! call-site counts become call-edge hotness for the planner ([`crate::import::import_profiled`]): a site
//! executed at least [`TieringConfig::hot_site_calls`] times is `Hot` (threshold × `import-hot-multiplier`),
//! at least [`TieringConfig::critical_site_calls`] times `Critical` (× `import-critical-multiplier`), a site
//! never executed is `Cold` (× `import-cold-multiplier`, 0 by default: not imported, and the site is marked
//! `noinline` so a helper imported for a hot site is not inlined there either), as LLVM's importer treats a
//! PGO profile. Then the engine's pipeline (O3), code generation under the script's second resource tracker,
//! and each slot is switched with one release store to the tier-1 body `f.tj1.<id>`. A call already inside
//! tier 0 finishes there; the next call through the stub runs tier 1. Tier-0 code stays loaded until the
//! script is removed (its functions may still be on some thread's stack, and its globals are the script's
//! state); the cost is memory only.
//!
//! **Invariants**: tier 1 declares the script's mutable globals (one instance), drops its static
//! constructors (they ran once, from tier 0), routes `__cxa_atexit` to the script's own registry, and defines
//! exactly the tier-1 bodies before and after import and optimization (no MaterializationResponsibility
//! errors). A tier-1 failure (import, optimization, code generation, linking) leaves tier 0 running and is
//! reported in [`TierReport::error`]. Removing a script during its promotion is safe: the install step checks
//! under the script's lock whether it was removed.
//!
//! Scripts that cannot be tiered (a variadic entry, aliases, no entry at all) are compiled as without
//! tiering, and [`TierReport::untiered`] says why.

mod prepare;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::engine::{Core, Loading, Registered};
use super::pipeline::{Pipeline, ScriptReport, ScriptTimes};
use super::runtime::internalize_shared_definitions;
use super::Strategy;
use crate::import::ImportReport;
use crate::llvm::orc::{LlJit, ResourceTracker};
use crate::llvm::{CodeGenOpt, Context, Module, TargetMachine};
use crate::optimize::OptLevel;
use crate::summary::Hotness;
use crate::{Error, Result};

pub(super) use worker::Worker;

/// How tier 0 is compiled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TierZeroOpt {
    /// `default<O0>` and the fast instruction selector: the quickest to compile.
    #[default]
    O0,
    /// `mem2reg,instcombine,simplifycfg` and `-O1` code generation: values in registers, a little slower to
    /// compile.
    Light,
    /// `default<O1>` and `-O1` code generation.
    O1,
}

impl TierZeroOpt {
    fn pipeline(self) -> &'static str {
        match self {
            TierZeroOpt::O0 => "default<O0>",
            TierZeroOpt::Light => "mem2reg,instcombine<no-verify-fixpoint>,simplifycfg",
            TierZeroOpt::O1 => "default<O1>",
        }
    }

    fn codegen(self) -> CodeGenOpt {
        match self {
            TierZeroOpt::O0 => CodeGenOpt::None,
            TierZeroOpt::Light | TierZeroOpt::O1 => CodeGenOpt::Less,
        }
    }
}

impl std::str::FromStr for TierZeroOpt {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "O0" | "o0" => Ok(TierZeroOpt::O0),
            "light" => Ok(TierZeroOpt::Light),
            "O1" | "o1" => Ok(TierZeroOpt::O1),
            other => Err(format!(
                "unknown tier-0 level `{other}` (expected O0, light or O1)"
            )),
        }
    }
}

/// The knobs of tiered compilation ([`EngineBuilder::tiering`](super::EngineBuilder::tiering)).
///
/// ```
/// use thinjit::jit::{EngineBuilder, TieringConfig};
/// let engine = EngineBuilder::new()
///     .tiering(TieringConfig { threshold_calls: 500, ..TieringConfig::default() })
///     .build()
///     .unwrap();
/// let script = engine
///     .add_script("inc", b"define i32 @inc(i32 %x) {\n %y = add i32 %x, 1\n ret i32 %y\n}\n")
///     .unwrap();
/// let inc = script.lookup::<extern "C" fn(i32) -> i32>("inc").unwrap();
/// // SAFETY: `inc` has this signature and its script is loaded.
/// assert_eq!(unsafe { inc.call(41) }, 42);
/// assert_eq!(script.tier_report().unwrap().tier, thinjit::jit::Tier::Zero);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TieringConfig {
    /// An entry called this many times (through its stub) promotes its script to tier 1. At least 1.
    pub threshold_calls: u64,
    /// A helper call site executed at least this many times before promotion is a hot edge.
    pub hot_site_calls: u64,
    /// A helper call site executed at least this many times before promotion is a critical edge.
    pub critical_site_calls: u64,
    /// How tier 0 is compiled.
    pub tier0: TierZeroOpt,
}

impl Default for TieringConfig {
    /// Promote after 1,000 calls; hot sites from 1,000 executions, critical from 100,000; tier 0 at O0.
    fn default() -> Self {
        TieringConfig {
            threshold_calls: 1000,
            hot_site_calls: 1000,
            critical_site_calls: 100_000,
            tier0: TierZeroOpt::O0,
        }
    }
}

impl TieringConfig {
    /// Checks the thresholds.
    pub fn validate(&self) -> Result<()> {
        if self.threshold_calls == 0 {
            return Err(Error::Config {
                message: "tiering: threshold_calls must be at least 1".into(),
            });
        }
        if self.critical_site_calls < self.hot_site_calls {
            return Err(Error::Config {
                message: format!(
                    "tiering: critical_site_calls ({}) is below hot_site_calls ({})",
                    self.critical_site_calls, self.hot_site_calls
                ),
            });
        }
        Ok(())
    }

    /// The call-edge hotness of a site executed `count` times before promotion.
    pub fn classify(&self, count: u64) -> Hotness {
        if count == 0 {
            Hotness::Cold
        } else if count >= self.critical_site_calls {
            Hotness::Critical
        } else if count >= self.hot_site_calls {
            Hotness::Hot
        } else {
            Hotness::None
        }
    }
}

/// Which code a script's stubs run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Compiled without import, instrumented.
    #[default]
    Zero,
    /// Recompiled in the background with the profile as call-edge hotness; the stubs point here.
    One,
    /// Not tiered: compiled as without tiering (see [`TierReport::untiered`]).
    Untiered,
}

/// One entry's calls through its stub (counted in tier 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryProfile {
    pub name: String,
    pub calls: u64,
}

/// One call site that reaches a helper the summary defines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteProfile {
    /// The script function containing the call.
    pub function: String,
    /// Its position among that function's helper call sites (0-based, in instruction order).
    pub ordinal: u32,
    pub callee: String,
    /// Times executed in tier 0 (when the snapshot was taken).
    pub count: u64,
    /// The hotness given to this edge at promotion (`Unknown` before).
    pub hotness: Hotness,
}

/// How a script was promoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promotion {
    /// From `add_script` returning to the promotion request.
    pub requested_after: Duration,
    /// From `add_script` returning to the stubs' switch.
    pub switched_after: Duration,
    /// Why: the entry that crossed the threshold.
    pub reason: String,
    /// Tier-1 stage times (parse, import, optimize, materialize).
    pub times: ScriptTimes,
    /// Tier-1 object size in bytes.
    pub object_size: usize,
}

/// Per script: which tier runs and why, the profile, and what it changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TierReport {
    pub tier: Tier,
    /// Why the script is not tiered (with [`Tier::Untiered`]).
    pub untiered: Option<String>,
    /// Calls per entry: live counts in tier 0, the snapshot taken at promotion afterwards.
    pub entries: Vec<EntryProfile>,
    /// Helper call sites: live counts in tier 0, the snapshot (and hotness) taken at promotion afterwards.
    pub sites: Vec<SiteProfile>,
    /// Set once the stubs point at tier 1.
    pub promotion: Option<Promotion>,
    /// Tier 1's import report (the plan made with the profile).
    pub import: Option<ImportReport>,
    /// Helpers tier 1 imported that a plan without the profile would not have (hot and critical edges).
    pub imported_because_of_profile: Vec<String>,
    /// Helpers a plan without the profile would have imported that tier 1 did not (never-executed edges).
    pub not_imported_because_of_profile: Vec<String>,
    /// A failed tier-1 compile: tier 0 keeps running.
    pub error: Option<String>,
}

impl TierReport {
    /// The sites given `hotness` at promotion.
    pub fn sites_with(&self, hotness: Hotness) -> impl Iterator<Item = &SiteProfile> {
        self.sites.iter().filter(move |s| s.hotness == hotness)
    }

    /// `true` when tier 1 imported `helper`.
    pub fn imported(&self, helper: &str) -> bool {
        self.import
            .as_ref()
            .is_some_and(|r| r.imported_functions().contains(&helper))
    }
}

/// A helper call site of tier 0, as recorded when it was instrumented.
#[derive(Clone, Debug)]
struct Site {
    function: String,
    ordinal: u32,
    callee: String,
}

/// Progress of a tiered script, under its lock.
#[derive(Default)]
struct State {
    removed: bool,
    promoting: bool,
    /// The tier-1 code.
    tier1: Option<ResourceTracker>,
    report: TierReport,
    requested: Option<Instant>,
}

/// A tiered script: its source for tier 1, its counters and slots (read and written by its JIT'd code), and
/// its progress.
pub(super) struct Tiered {
    id: u64,
    name: String,
    token: u64,
    source: Vec<u8>,
    /// Entry names (the stubs' names), in slot order.
    entries: Vec<String>,
    /// Mutable globals: name in the source → name tier 0 exports.
    globals: Vec<(String, String)>,
    sites: Vec<Site>,
    /// `entries.len()` entry counters, then one per site.
    counters: Box<[AtomicU64]>,
    /// The current target of each entry's stub.
    slots: Box<[AtomicU64]>,
    /// The script's atexit registry key (its dso handle).
    dso_key: u64,
    added: Instant,
    state: Mutex<State>,
    done: Condvar,
}

impl Tiered {
    fn counter_address(&self, i: usize) -> u64 {
        &self.counters[i] as *const AtomicU64 as u64
    }

    fn slot_address(&self, i: usize) -> u64 {
        &self.slots[i] as *const AtomicU64 as u64
    }

    /// Entry and site counts now.
    fn snapshot(&self) -> (Vec<EntryProfile>, Vec<SiteProfile>) {
        let n = self.entries.len();
        let entries = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, name)| EntryProfile {
                name: name.clone(),
                calls: self.counters[i].load(Ordering::Relaxed),
            })
            .collect();
        let sites = self
            .sites
            .iter()
            .enumerate()
            .map(|(i, s)| SiteProfile {
                function: s.function.clone(),
                ordinal: s.ordinal,
                callee: s.callee.clone(),
                count: self.counters[n + i].load(Ordering::Relaxed),
                hotness: Hotness::Unknown,
            })
            .collect();
        (entries, sites)
    }

    fn report(&self) -> TierReport {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut report = state.report.clone();
        if report.promotion.is_none() {
            let (entries, sites) = self.snapshot();
            report.entries = entries;
            report.sites = sites;
        }
        report
    }
}

/// What the JIT'd counting thunks call when an entry reaches the threshold: tokens → the engine's queue.
type Registry = Mutex<HashMap<u64, (Sender<worker::Job>, u64)>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// Called by JIT'd code (C ABI) when an entry's count reaches the threshold: queues the script's promotion.
/// Never panics (it runs on the script's thread, inside JIT'd code).
extern "C" fn request_promotion(token: u64) {
    let target = registry().lock().ok().and_then(|r| r.get(&token).cloned());
    if let Some((queue, id)) = target {
        let _ = queue.send(worker::Job::Promote(id));
    }
}

/// The engine's tiering state: configuration, tiered scripts, the background thread, tier-0 target machines.
pub(super) struct Tiering {
    config: TieringConfig,
    scripts: Arc<Mutex<HashMap<u64, Arc<Tiered>>>>,
    worker: Worker,
    machines: Mutex<Vec<TargetMachine>>,
}

impl Tiering {
    /// Starts the background compile thread.
    pub(super) fn start(
        config: TieringConfig,
        jit: Arc<LlJit>,
        pipeline: Arc<Pipeline>,
        strategy: Strategy,
    ) -> Result<Self> {
        config.validate()?;
        if !matches!(strategy, Strategy::Summary | Strategy::None) {
            return Err(Error::Config {
                message: format!(
                    "tiering compiles tier 1 with summary import (or none); the {strategy} strategy cannot be tiered"
                ),
            });
        }
        let scripts: Arc<Mutex<HashMap<u64, Arc<Tiered>>>> = Arc::default();
        let worker = Worker::start(config.clone(), jit, pipeline, Arc::clone(&scripts))?;
        Ok(Tiering {
            config,
            scripts,
            worker,
            machines: Mutex::new(Vec::new()),
        })
    }

    fn with_machine<T>(&self, f: impl FnOnce(&TargetMachine) -> Result<T>) -> Result<T> {
        let machine = match self.machines.lock().ok().and_then(|mut m| m.pop()) {
            Some(tm) => tm,
            None => TargetMachine::host(self.config.tier0.codegen())?,
        };
        let result = f(&machine);
        if let Ok(mut m) = self.machines.lock() {
            m.push(machine);
        }
        result
    }

    /// The script's report, if it is tiered.
    pub(super) fn report(&self, id: u64) -> Option<TierReport> {
        let script = self.scripts.lock().ok()?.get(&id).cloned()?;
        Some(script.report())
    }

    /// Waits until the script's promotion finished (switched or failed) or `timeout` passed.
    pub(super) fn wait(&self, id: u64, timeout: Duration) -> Option<TierReport> {
        let script = self.scripts.lock().ok()?.get(&id).cloned()?;
        let deadline = Instant::now() + timeout;
        let mut state = script.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.report.promotion.is_none()
            && state.report.error.is_none()
            && state.report.tier != Tier::Untiered
            && !state.removed
        {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = match script.done.wait_timeout(state, deadline - now) {
                Ok((s, _)) => s,
                Err(e) => e.into_inner().0,
            };
        }
        drop(state);
        Some(script.report())
    }

    /// Forgets a script being removed (after its destructors ran, before its tier-0 code goes): a promotion
    /// in flight will not install, and the tier-1 code is removed.
    pub(super) fn remove(&self, id: u64) -> Result<()> {
        let script = self.scripts.lock().ok().and_then(|mut s| s.remove(&id));
        let Some(script) = script else {
            return Ok(());
        };
        if let Ok(mut r) = registry().lock() {
            r.remove(&script.token);
        }
        let tier1 = {
            let mut state = script.state.lock().unwrap_or_else(|e| e.into_inner());
            state.removed = true;
            state.tier1.take()
        };
        script.done.notify_all();
        match tier1 {
            Some(tracker) => tracker.remove().map_err(|source| Error::Jit {
                context: format!("removing tier 1 of script `{}`", script.name),
                source,
            }),
            None => Ok(()),
        }
    }

    /// Stops the background thread (engine drop), after which no promotion installs.
    pub(super) fn shutdown(&self) {
        if let Ok(mut scripts) = self.scripts.lock() {
            if let Ok(mut r) = registry().lock() {
                for s in scripts.values() {
                    r.remove(&s.token);
                }
            }
            for s in scripts.values() {
                s.state.lock().unwrap_or_else(|e| e.into_inner()).removed = true;
            }
            scripts.clear();
        }
        self.worker.stop();
    }
}

impl Core {
    /// Adds a script: through the pipeline ([`Core::add_script_untiered`]), or with tiering, as tier 0.
    pub(super) fn add_script(&self, name: &str, source: &[u8]) -> Result<Registered> {
        match &self.tiering {
            Some(tiering) => self.add_tiered_script(tiering, name, source),
            None => self.add_script_untiered(name, source),
        }
    }

    /// Tier 0 now, tier 1 when an entry gets hot.
    fn add_tiered_script(
        &self,
        tiering: &Tiering,
        name: &str,
        source: &[u8],
    ) -> Result<Registered> {
        let start = Instant::now();
        let ctx = Context::new();
        let mut module = Module::parse(&ctx, source, name)?;
        module.verify()?;
        self.check_target(&module, name)?;
        if module.triple().is_empty() {
            module.set_triple(&self.jit.triple());
        }
        if module.data_layout().is_empty() {
            module.set_data_layout(&self.jit.data_layout());
        }
        let summary = self.pipeline.summary.as_deref();
        let sites = prepare::collect_sites(&module, summary.map(|s| s.index()));
        if let Err(why) = prepare::entries(&module) {
            {
                drop(module);
                drop(ctx);
                let registered = self.add_script_untiered(name, source)?;
                let report = Arc::new(Tiered::untiered(registered.id, name, why));
                if let Ok(mut s) = tiering.scripts.lock() {
                    s.insert(registered.id, report);
                }
                return Ok(registered);
            }
        }
        let mut times = ScriptTimes {
            parse: start.elapsed(),
            ..ScriptTimes::default()
        };
        let defined = module.defined_symbols();
        self.refuse_helper_redefinition(name, defined.iter())?;

        let loading = Loading::new(self, name);
        let id = loading.id;
        let structors = crate::jit::runtime::take_structors(&mut module);
        crate::jit::runtime::redirect_atexit(&mut module);
        crate::jit::runtime::localize_dso_handle(&mut module, loading.key());
        internalize_shared_definitions(&module);
        // Entries after structor extraction: a local constructor became an external function to be run.
        let entries = prepare::entries(&module).map_err(|why| Error::Import {
            module: name.to_owned(),
            message: why,
        })?;
        let entry_names: Vec<String> = entries.iter().map(|f| f.name()).collect();

        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        let counters: Box<[AtomicU64]> = (0..entries.len() + sites.len())
            .map(|_| AtomicU64::new(0))
            .collect();
        let slots: Box<[AtomicU64]> = entries.iter().map(|_| AtomicU64::new(0)).collect();
        let mut tiered = Tiered {
            id,
            name: name.to_owned(),
            token,
            source: source.to_vec(),
            entries: entry_names,
            globals: Vec::new(),
            sites: sites
                .iter()
                .map(|s| Site {
                    function: s.function.clone(),
                    ordinal: s.ordinal,
                    callee: s.callee.clone(),
                })
                .collect(),
            counters,
            slots,
            dso_key: loading.key(),
            added: Instant::now(),
            state: Mutex::new(State::default()),
            done: Condvar::new(),
        };
        let cells = prepare::Cells {
            entry_counters: (0..entries.len())
                .map(|i| tiered.counter_address(i))
                .collect(),
            site_counters: (0..sites.len())
                .map(|i| tiered.counter_address(entries.len() + i))
                .collect(),
            slots: (0..entries.len()).map(|i| tiered.slot_address(i)).collect(),
            threshold: tiering.config.threshold_calls,
            notify: request_promotion as extern "C" fn(u64) as usize as u64,
            token,
        };
        tiered.globals = prepare::tier0(&module, id, &entries, &sites, &cells)?;
        drop(entries);
        drop(sites);

        let start = Instant::now();
        let pipeline = tiering.config.tier0.pipeline();
        let object = tiering.with_machine(|tm| {
            module.run_passes(pipeline, Some(tm), &crate::llvm::PassOptions::default())?;
            module.verify()?;
            times.optimize = start.elapsed();
            let start = Instant::now();
            let object = tm.emit_object(&module);
            times.codegen = start.elapsed();
            object
        })?;
        let after = module.defined_symbols();
        drop(module);
        drop(ctx);

        let start = Instant::now();
        self.jit
            .add_object_file(&object, name, loading.tracker.as_ref())
            .map_err(|f| self.script_error(name, format!("adding script `{name}`"), f))?;
        // The stubs go to the counting thunks until promotion.
        for (i, entry) in tiered.entries.iter().enumerate() {
            let thunk = prepare::thunk_name(entry, id);
            let address = self
                .jit
                .lookup(&thunk)
                .map_err(|f| self.script_error(name, format!("linking script `{name}`"), f))?;
            tiered.slots[i].store(address, Ordering::Release);
        }
        times.link = start.elapsed();
        let report = ScriptReport {
            name: name.to_owned(),
            strategy: self.pipeline.strategy,
            times,
            defined: after.iter().cloned().collect(),
            import: None,
            optimized_ir: None,
            object_size: Some(object.len()),
            cache: None,
            temps: Vec::new(),
            isolated: None,
        };
        // Registered before the constructors run: one of them may already cross the threshold.
        let tiered = Arc::new(tiered);
        tiering
            .scripts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::clone(&tiered));
        registry()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token, (tiering.worker.queue(), id));
        let committed = self.run_script_ctors(name, &structors).and_then(|()| {
            loading.commit(
                after.into_iter().collect(),
                structors.dtors().to_vec(),
                Arc::new(Mutex::new(Some(report))),
            )
        });
        if committed.is_err() {
            let _ = tiering.remove(id);
        }
        committed
    }
}

impl Tiered {
    /// The record of a script compiled without tiering, and why.
    fn untiered(id: u64, name: &str, why: String) -> Self {
        Tiered {
            id,
            name: name.to_owned(),
            token: 0,
            source: Vec::new(),
            entries: Vec::new(),
            globals: Vec::new(),
            sites: Vec::new(),
            counters: Box::new([]),
            slots: Box::new([]),
            dso_key: 0,
            added: Instant::now(),
            state: Mutex::new(State {
                report: TierReport {
                    tier: Tier::Untiered,
                    untiered: Some(why),
                    ..TierReport::default()
                },
                ..State::default()
            }),
            done: Condvar::new(),
        }
    }
}

/// The planner's view of a profile: per helper, the hottest of its sites.
fn callee_hotness(sites: &[SiteProfile]) -> BTreeMap<String, Hotness> {
    let mut out: BTreeMap<String, Hotness> = BTreeMap::new();
    for s in sites {
        let h = out.entry(s.callee.clone()).or_insert(s.hotness);
        *h = (*h).max(s.hotness);
    }
    out
}

/// Tier 1 is built at the engine's level.
fn tier1_level(pipeline: &Pipeline) -> OptLevel {
    pipeline.opt_level
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_are_classified_by_their_count() {
        let c = TieringConfig {
            hot_site_calls: 10,
            critical_site_calls: 100,
            ..TieringConfig::default()
        };
        assert_eq!(c.classify(0), Hotness::Cold);
        assert_eq!(c.classify(9), Hotness::None);
        assert_eq!(c.classify(10), Hotness::Hot);
        assert_eq!(c.classify(99), Hotness::Hot);
        assert_eq!(c.classify(100), Hotness::Critical);
    }

    #[test]
    fn thresholds_are_validated() {
        TieringConfig::default().validate().unwrap();
        let zero = TieringConfig {
            threshold_calls: 0,
            ..TieringConfig::default()
        };
        assert!(matches!(zero.validate(), Err(Error::Config { .. })));
        let inverted = TieringConfig {
            hot_site_calls: 10,
            critical_site_calls: 5,
            ..TieringConfig::default()
        };
        assert!(matches!(inverted.validate(), Err(Error::Config { .. })));
    }

    #[test]
    fn the_hottest_site_of_a_helper_decides_its_edge() {
        let site = |callee: &str, hotness| SiteProfile {
            function: "f".into(),
            ordinal: 0,
            callee: callee.into(),
            count: 0,
            hotness,
        };
        let h = callee_hotness(&[
            site("a", Hotness::Cold),
            site("a", Hotness::Hot),
            site("b", Hotness::Cold),
            site("c", Hotness::None),
            site("c", Hotness::Critical),
        ]);
        assert_eq!(h["a"], Hotness::Hot);
        assert_eq!(h["b"], Hotness::Cold);
        assert_eq!(h["c"], Hotness::Critical);
    }
}
