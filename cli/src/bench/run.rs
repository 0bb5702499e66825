//! Measuring one library × strategy: an [`Engine`] built with [`EngineBuilder`] — the code users run — compiles
//! every script several times, runs its entry, and the helper runtime's semantics are checked.
//!
//! In: a [`PreparedLibrary`], its [`Script`]s, a [`StrategySpec`], the [`Host`] (the bundled helpers' callbacks,
//! or a user's own host library). Out: a [`StrategyOutcome`] with per-script stage times (min and median over
//! the compiles), object sizes, run times and results, what was imported, peak RSS, and the two semantic checks
//! (one instance of each mutable helper global; initializers once).
//!
//! Nothing here compiles, imports or links: every script goes through [`Engine::add_script`] (the engine's own
//! per-script pipeline and stage timers), the runtime is the engine's JIT-resident runtime (the summary's
//! precompiled object when it has one), and the entry is called through [`ScriptHandle::lookup`].

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::report::{Check, Row, StageStat, StrategyOutcome, Verdict};
use super::strategy::StrategySpec;
use super::workload::Script;
use super::PreparedLibrary;
use thinjit::jit::{Engine, EngineBuilder, OptLevel, ScriptHandle, ScriptReport, Stage, Strategy};
use thinjit::llvm::{Context, Module};
use thinjit::{Error, Result};

/// How many times each script is compiled and its entry run, and whether to run the semantic checks.
#[derive(Clone, Debug)]
pub struct MeasureOptions {
    /// Timed runs of each script's entry (the fastest is reported).
    pub repetitions: usize,
    /// Times each script is compiled (added to the engine, then removed before the next compile); every stage
    /// is reported as the minimum and the median over them.
    pub compile_repetitions: usize,
    /// One instance / initializers once (bundled helpers only: they need the bundled counter and intern table).
    pub semantic_checks: bool,
    /// Keep each script's optimized IR in its row (what the engine compiled; for tests).
    pub keep_ir: bool,
    /// The engine's save-temps: every stage's output of every compile, in `<dir>/<strategy label>/`.
    pub save_temps: Option<PathBuf>,
}

impl Default for MeasureOptions {
    fn default() -> Self {
        MeasureOptions {
            repetitions: 3,
            compile_repetitions: 3,
            semantic_checks: true,
            keep_ir: false,
            save_temps: None,
        }
    }
}

/// What the engine's JIT'd code may call besides the helper runtime.
#[derive(Clone, Debug, Default)]
pub struct Host {
    /// The bundled helpers' host callbacks (`thinjit_host_alloc`, `_free`, `_log`, `_event`), provided here.
    pub bundled_callbacks: bool,
    /// Shared libraries the engine resolves from (a user's own host callbacks, `--host-library`).
    pub libraries: Vec<PathBuf>,
}

impl Host {
    /// The host of the bundled workloads.
    pub fn bundled() -> Host {
        Host {
            bundled_callbacks: true,
            libraries: Vec::new(),
        }
    }
}

/// Event code the bundled intern table's constructor reports (`THINJIT_EVENT_INTERN_CTOR`).
const EVENT_INTERN_CTOR: i32 = 1;

thread_local! {
    // Per thread: an engine runs its runtime's constructors, and a script's, on the thread that builds it or
    // adds the script, so tests measuring in parallel do not see each other's events.
    static HOST_EVENTS: [Cell<i32>; 8] = const { [const { Cell::new(0) }; 8] };
}

extern "C" fn host_event(code: i32) {
    if let Ok(i) = usize::try_from(code) {
        HOST_EVENTS.with(|e| {
            if let Some(c) = e.get(i) {
                c.set(c.get() + 1)
            }
        });
    }
}

extern "C" fn host_log(_message: *const libc::c_char) {}

#[allow(unsafe_code)]
extern "C" fn host_alloc(size: usize) -> *mut libc::c_void {
    // SAFETY: plain malloc of at least one byte.
    unsafe { libc::malloc(size.max(1)) }
}

#[allow(unsafe_code)]
extern "C" fn host_free(p: *mut libc::c_void) {
    // SAFETY: `p` came from `host_alloc` (or is null), as the bundled helpers' contract says.
    unsafe { libc::free(p) }
}

/// `builder` with the bundled helpers' host callbacks registered (`thinjit_host_alloc`, `_free`, `_log`,
/// `_event`; events are counted per thread, see [`host_event_count`]).
pub fn with_bundled_host(builder: EngineBuilder) -> EngineBuilder {
    builder
        .host_symbol("thinjit_host_alloc", host_alloc as *const () as u64)
        .host_symbol("thinjit_host_free", host_free as *const () as u64)
        .host_symbol("thinjit_host_log", host_log as *const () as u64)
        .host_symbol("thinjit_host_event", host_event as *const () as u64)
}

/// How many times the helper runtime reported event `code` to the host on this thread.
pub fn host_event_count(code: i32) -> i32 {
    usize::try_from(code)
        .ok()
        .map_or(0, |i| HOST_EVENTS.with(|e| e.get(i).map_or(0, Cell::get)))
}

/// Peak resident set size of this process so far (`VmHWM` in `/proc/self/status`), KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The engine configuration the harness measures `spec` with: the library's summary (JIT-resident, its runtime
/// object when it has one), O3, the host's symbols. A user's [`EngineBuilder`] with the same calls compiles the
/// same code.
pub fn engine_builder(lib: &PreparedLibrary, spec: StrategySpec, host: &Host) -> EngineBuilder {
    let mut builder = EngineBuilder::new()
        .summary(Arc::clone(&lib.summary))
        .opt_level(OptLevel::O3);
    if host.bundled_callbacks {
        builder = with_bundled_host(builder);
    }
    for library in &host.libraries {
        builder = builder.shared_library(library);
    }
    spec.configure(builder)
}

/// Checks that `ir` defines `entry` as `i64 @entry(i64, ...)` with `arity` parameters, the signature the harness
/// calls it with. The error names the entry and what is wrong.
pub fn check_entry_signature(ir: &str, entry: &str, arity: usize) -> Result<()> {
    let bad = |why: &str| Error::InvalidEntry {
        symbol: entry.to_owned(),
        reason: format!(
            "the benchmark entry must be defined as `i64 @{entry}({})`: {why}",
            vec!["i64"; arity].join(", ")
        ),
    };
    let ctx = Context::new();
    let module = Module::parse(&ctx, ir.as_bytes(), entry)?;
    let f = module
        .function(entry)
        .filter(|f| !f.is_declaration())
        .ok_or_else(|| bad("the script does not define it"))?;
    // The printed definition line: `define [attrs] i64 @entry(i64 %0, ...)`.
    let text = module.print();
    let needle = format!("@{}(", f.name());
    let line = text
        .lines()
        .find(|l| l.starts_with("define") && l.contains(&needle))
        .ok_or_else(|| bad("no definition"))?;
    let (head, rest) = line
        .split_once(&needle)
        .ok_or_else(|| bad("no definition"))?;
    if head.split_whitespace().last() != Some("i64") {
        return Err(bad("its return type is not i64"));
    }
    let params = rest.split(')').next().unwrap_or("").trim();
    let params: Vec<&str> = if params.is_empty() {
        Vec::new()
    } else {
        params.split(',').map(str::trim).collect()
    };
    if params.len() != arity {
        return Err(bad(&format!(
            "it takes {} parameter(s), {arity} argument(s) given",
            params.len()
        )));
    }
    if params
        .iter()
        .any(|p| p.split_whitespace().next() != Some("i64"))
    {
        return Err(bad("a parameter is not i64"));
    }
    Ok(())
}

/// Calls `entry(args)` `repetitions` times; returns the last result and the fastest run in milliseconds.
///
/// The one place the harness calls JIT'd code (as a host program does; the library itself never does).
#[allow(unsafe_code)]
fn run_entry(
    handle: &ScriptHandle<'_>,
    entry: &str,
    args: &[i64],
    repetitions: usize,
) -> Result<(i64, f64)> {
    let mut fastest = f64::MAX;
    let mut result = 0;
    let mut time = |f: &mut dyn FnMut() -> i64| {
        for _ in 0..repetitions.max(1) {
            let t = Instant::now();
            result = f();
            fastest = fastest.min(ms(t.elapsed()));
        }
    };
    type F0 = extern "C" fn() -> i64;
    type F1 = extern "C" fn(i64) -> i64;
    type F2 = extern "C" fn(i64, i64) -> i64;
    type F3 = extern "C" fn(i64, i64, i64) -> i64;
    type F4 = extern "C" fn(i64, i64, i64, i64) -> i64;
    // SAFETY (every call below): `check_entry_signature` verified that the script defines `entry` as
    // `i64 (i64 × args.len())`, the function type used; the handle keeps the script loaded during the calls.
    match *args {
        [] => {
            let f = handle.lookup::<F0>(entry)?;
            time(&mut || unsafe { f.call() })
        }
        [a] => {
            let f = handle.lookup::<F1>(entry)?;
            time(&mut || unsafe { f.call(a) })
        }
        [a, b] => {
            let f = handle.lookup::<F2>(entry)?;
            time(&mut || unsafe { f.call(a, b) })
        }
        [a, b, c] => {
            let f = handle.lookup::<F3>(entry)?;
            time(&mut || unsafe { f.call(a, b, c) })
        }
        [a, b, c, d] => {
            let f = handle.lookup::<F4>(entry)?;
            time(&mut || unsafe { f.call(a, b, c, d) })
        }
        _ => {
            return Err(Error::Config {
                message: format!(
                    "the benchmark calls entries with at most 4 arguments, {} given",
                    args.len()
                ),
            })
        }
    }
    Ok((result, fastest))
}

/// Calls a zero-argument `i64` function of the helper runtime (a host's own view of helper state).
#[allow(unsafe_code)]
fn call_runtime(engine: &Engine, name: &str) -> Result<i64> {
    let f = engine.lookup::<extern "C" fn() -> i64>(name)?;
    // SAFETY: only used with the bundled `rt_counter_get`, which is `int64_t rt_counter_get(void)`; the engine
    // keeps the runtime loaded during the call.
    Ok(unsafe { f.call() })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A script's stage times as the engine measured them, by the engine's stage names, in pipeline order.
pub fn stage_times(report: &ScriptReport) -> Vec<(&'static str, Duration)> {
    Stage::ALL
        .iter()
        .map(|&stage| (stage.name(), report.times.get(stage)))
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Min and median of each stage, and of the whole compile, over the compiles of one script.
fn stage_stats(reports: &[ScriptReport]) -> (Vec<StageStat>, f64, f64) {
    let mut stages: Vec<StageStat> = Vec::new();
    if let Some(first) = reports.first() {
        for (i, (name, _)) in stage_times(first).into_iter().enumerate() {
            let v: Vec<f64> = reports.iter().map(|r| ms(stage_times(r)[i].1)).collect();
            stages.push(StageStat {
                stage: name.to_owned(),
                min_ms: v.iter().copied().fold(f64::MAX, f64::min),
                median_ms: median(v),
            });
        }
    }
    let totals: Vec<f64> = reports.iter().map(|r| ms(r.times.total())).collect();
    let min = totals.iter().copied().fold(f64::MAX, f64::min);
    (stages, min, median(totals))
}

/// The compiles of one script in one engine so far: each compile's report, the last compile's handle, or the
/// error that stopped them.
#[derive(Default)]
struct Compiles<'e> {
    reports: Vec<ScriptReport>,
    last: Option<ScriptHandle<'e>>,
    error: Option<String>,
}

impl<'e> Compiles<'e> {
    /// Compiles `script` once more in `engine`; unless `keep`, removes it again.
    fn compile(&mut self, engine: &'e Engine, script: &Script, keep: bool) {
        if self.error.is_some() {
            return;
        }
        let handle = match engine.add_script(&script.name, script.ir.as_bytes()) {
            Ok(h) => h,
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        };
        if let Some(report) = handle.report() {
            self.reports.push(report);
        }
        if keep {
            self.last = Some(handle);
        } else if let Err(e) = handle.remove() {
            self.error = Some(e.to_string());
        }
    }
}

/// A row for `script` before any compile: its expectations, or the error of a bad entry signature.
fn new_row(script: &Script) -> (Row, bool) {
    let mut row = Row {
        script: script.name.clone(),
        iterations: script.iterations,
        expected: script.expected,
        call_heavy: script.call_heavy,
        ..Row::default()
    };
    let ok = match check_entry_signature(&script.ir, &script.entry, script.args.len()) {
        Ok(()) => true,
        Err(e) => {
            row.error = Some(e.to_string());
            false
        }
    };
    (row, ok)
}

/// How many times `spec` compiles each script when `requested` compiles were asked for: once for a whole-library
/// link (`full-link`, `full-link-internalize`) of a library of 1000 functions or more, which costs seconds per
/// compile; `requested` otherwise.
pub fn compile_repetitions_for(
    spec: StrategySpec,
    library_functions: usize,
    requested: usize,
) -> usize {
    let whole_link = matches!(
        spec.strategy,
        Strategy::FullLink | Strategy::FullLinkInternalize
    );
    if whole_link && library_functions >= 1000 {
        1
    } else {
        requested.max(1)
    }
}

/// Compiles `script` `compile_repetitions` times in `engine` (each compile but the last removed again), then
/// runs the last one's entry `repetitions` times.
fn measure_script(
    engine: &Engine,
    spec: StrategySpec,
    library_functions: usize,
    script: &Script,
    options: &MeasureOptions,
) -> Row {
    let (row, ok) = new_row(script);
    if !ok {
        return row;
    }
    let n = options.compile_repetitions.max(1);
    let mut compiles = Compiles::default();
    for rep in 0..n {
        compiles.compile(engine, script, rep + 1 == n);
    }
    finish_row(row, compiles, spec, library_functions, script, options)
}

/// Fills `row` from a script's compiles: stage statistics, object size, what was imported; then runs the last
/// compile's entry and removes it.
fn finish_row(
    mut row: Row,
    compiles: Compiles<'_>,
    spec: StrategySpec,
    library_functions: usize,
    script: &Script,
    options: &MeasureOptions,
) -> Row {
    if let Some(e) = compiles.error {
        row.error = Some(e);
        if let Some(handle) = compiles.last {
            let _ = handle.remove();
        }
        return row;
    }
    let reports = compiles.reports;
    let (stages, min, med) = stage_stats(&reports);
    row.stages = stages;
    row.compile_ms = min;
    row.median_compile_ms = med;
    row.compile_samples_ms = reports.iter().map(|r| ms(r.times.total())).collect();
    if let Some(report) = reports.last() {
        row.object_bytes = report.object_size.unwrap_or(0);
        if let Some(import) = &report.import {
            row.imported_functions = import
                .imported_functions()
                .into_iter()
                .map(str::to_owned)
                .collect();
            row.imported_variables = import
                .imported_variables()
                .into_iter()
                .map(str::to_owned)
                .collect();
        }
        row.linked_functions = match spec.strategy {
            Strategy::FullLink | Strategy::FullLinkInternalize => library_functions,
            _ => row.imported_functions.len(),
        };
        if options.keep_ir {
            row.optimized_ir = report.optimized_ir.clone();
        }
    }
    if let Some(handle) = compiles.last {
        match run_entry(&handle, &script.entry, &script.args, options.repetitions) {
            Ok((result, fastest)) => {
                row.result = Some(result);
                row.run_ms = Some(fastest);
            }
            Err(e) => row.error = Some(e.to_string()),
        }
        if let Err(e) = handle.remove() {
            row.error.get_or_insert(e.to_string());
        }
    }
    row
}

/// [`measure`] for several strategies in one process, their compiles interleaved: every repetition compiles
/// each script once per strategy, in turn, so machine noise (another process, frequency changes) falls on
/// every strategy alike and the ratios between them are fair. Each strategy has its own engine, built before
/// the first compile; the semantic checks run per engine afterwards. Peak RSS is the shared process's.
pub fn measure_interleaved(
    lib: &PreparedLibrary,
    scripts: &[Script],
    specs: &[StrategySpec],
    host: &Host,
    options: &MeasureOptions,
) -> Vec<StrategyOutcome> {
    let mut outcomes = Vec::with_capacity(specs.len());
    let mut engines = Vec::with_capacity(specs.len());
    // Initializer events each engine's start-up caused (the semantic check counts from there).
    let mut ctor_events = Vec::with_capacity(specs.len());
    for &spec in specs {
        let mut outcome = StrategyOutcome {
            library: lib.name.clone(),
            library_functions: lib.functions,
            strategy: spec.label(),
            interleaved: true,
            ..StrategyOutcome::default()
        };
        let before = host_event_count(EVENT_INTERN_CTOR);
        let t = Instant::now();
        let mut builder = engine_builder(lib, spec, host).keep_optimized_ir(options.keep_ir);
        if let Some(dir) = &options.save_temps {
            builder = builder.save_temps(dir.join(spec.label()));
        }
        match builder.build() {
            Ok(engine) => engines.push(Some(engine)),
            Err(e) => {
                outcome.error = Some(e.to_string());
                engines.push(None);
            }
        }
        outcome.setup_ms = ms(t.elapsed());
        ctor_events.push(host_event_count(EVENT_INTERN_CTOR) - before);
        outcomes.push(outcome);
    }
    let n = options.compile_repetitions.max(1);
    // Strategies timed fewer times (whole-library links of big libraries) compile in the last repetitions.
    let wanted: Vec<usize> = specs
        .iter()
        .map(|s| compile_repetitions_for(*s, lib.functions, n))
        .collect();
    for script in scripts {
        let (row, ok) = new_row(script);
        let mut compiles: Vec<Compiles<'_>> = specs.iter().map(|_| Compiles::default()).collect();
        if ok {
            let k = specs.len();
            for rep in 0..n {
                // The order rotates, so no strategy always compiles right after another one.
                for j in 0..k {
                    let i = (rep + j) % k;
                    if rep + wanted[i] < n {
                        continue;
                    }
                    if let Some(engine) = &engines[i] {
                        compiles[i].compile(engine, script, rep + 1 == n);
                    }
                }
            }
        }
        for (i, c) in compiles.into_iter().enumerate() {
            if engines[i].is_some() {
                let row = finish_row(row.clone(), c, specs[i], lib.functions, script, options);
                outcomes[i].rows.push(row);
            }
        }
    }
    let checks = options.semantic_checks
        && lib
            .summary
            .index()
            .function("rt_counter_increment")
            .is_some();
    for (i, engine) in engines.into_iter().enumerate() {
        if let (true, Some(engine)) = (checks, &engine) {
            outcomes[i].one_instance = check_one_instance(engine);
            let before = host_event_count(EVENT_INTERN_CTOR) - ctor_events[i];
            outcomes[i].init_once = check_init_once(engine, before);
        }
    }
    let rss = peak_rss_kib();
    for outcome in &mut outcomes {
        outcome.peak_rss_kib = rss;
    }
    outcomes
}

/// Builds the engine for `spec` and measures every script in it, then (bundled helpers) the semantic checks.
/// Failures of single scripts are recorded in their rows; a failure to build the engine in the outcome's `error`.
pub fn measure(
    lib: &PreparedLibrary,
    scripts: &[Script],
    spec: StrategySpec,
    host: &Host,
    options: &MeasureOptions,
) -> StrategyOutcome {
    let mut outcome = StrategyOutcome {
        library: lib.name.clone(),
        library_functions: lib.functions,
        strategy: spec.label(),
        ..StrategyOutcome::default()
    };
    let ctor_events_before = host_event_count(EVENT_INTERN_CTOR);
    let t = Instant::now();
    let mut builder = engine_builder(lib, spec, host).keep_optimized_ir(options.keep_ir);
    if let Some(dir) = &options.save_temps {
        builder = builder.save_temps(dir.join(spec.label()));
    }
    let engine = match builder.build() {
        Ok(engine) => engine,
        Err(e) => {
            outcome.error = Some(e.to_string());
            return outcome;
        }
    };
    outcome.setup_ms = ms(t.elapsed());
    for script in scripts {
        outcome.rows.push(measure_script(
            &engine,
            spec,
            lib.functions,
            script,
            options,
        ));
    }
    if options.semantic_checks
        && lib
            .summary
            .index()
            .function("rt_counter_increment")
            .is_some()
    {
        outcome.one_instance = check_one_instance(&engine);
        outcome.init_once = check_init_once(&engine, ctor_events_before);
    }
    drop(engine);
    outcome.peak_rss_kib = peak_rss_kib();
    outcome
}

/// Gives every external definition of `ir` a `.<suffix>` so several copies of one script live in one engine.
/// Returns the new IR and the renamed entry.
fn rename_definitions(ir: &str, entry: &str, suffix: &str) -> Result<(String, String)> {
    let ctx = Context::new();
    let module = Module::parse_ir(&ctx, ir.as_bytes(), suffix)?;
    for f in module.functions() {
        if !f.is_declaration() && !f.linkage().is_local() {
            f.set_name(&format!("{}.{suffix}", f.name()));
        }
    }
    Ok((module.print(), format!("{entry}.{suffix}")))
}

/// Adds a renamed copy of a bundled check script and calls its `bench_main(n)`; the copy stays loaded.
fn run_copy<'e>(
    engine: &'e Engine,
    name: &str,
    ir: &str,
    n: i64,
    keep: &mut Vec<ScriptHandle<'e>>,
) -> Result<i64> {
    let (ir, entry) = rename_definitions(ir, super::workload::ENTRY, name)?;
    let handle = engine.add_script(name, ir.as_bytes())?;
    let (result, _) = run_entry(&handle, &entry, &[n], 1)?;
    keep.push(handle);
    Ok(result)
}

/// Two copies of `counter.ll` bump `rt_shared_counter` 3 and 4 times; the host (the runtime's own
/// `rt_counter_get`) must see one counter at +7.
fn check_one_instance(engine: &Engine) -> Check {
    let mut keep = Vec::new();
    let result = (|| -> Result<Check> {
        let base = call_runtime(engine, "rt_counter_get")?;
        let counter = super::workload::bundled::COUNTER;
        let a = run_copy(engine, "counter_a", counter, 3, &mut keep)? - base;
        let b = run_copy(engine, "counter_b", counter, 4, &mut keep)? - base;
        let host = call_runtime(engine, "rt_counter_get")? - base;
        let detail =
            format!("script A saw {a}, script B saw {b}, host saw {host} (one counter: 3, 7, 7)");
        let verdict = if (a, b, host) == (3, 7, 7) {
            Verdict::Ok
        } else {
            Verdict::Broken
        };
        Ok(Check { verdict, detail })
    })();
    for h in keep {
        let _ = h.remove();
    }
    result.unwrap_or_else(|e| Check {
        verdict: Verdict::Broken,
        detail: format!("check failed: {e}"),
    })
}

/// `initonce.ll` must see the intern table constructed exactly once and live; the host must have seen the
/// constructor run exactly once since the engine was built.
fn check_init_once(engine: &Engine, ctor_events_before: i32) -> Check {
    let mut keep = Vec::new();
    let result = (|| -> Result<Check> {
        let r = run_copy(
            engine,
            "initonce",
            super::workload::bundled::INITONCE,
            1,
            &mut keep,
        )?;
        let runs = host_event_count(EVENT_INTERN_CTOR) - ctor_events_before;
        let (seen, live) = (r / 10, r % 10 == 1);
        let detail = format!(
            "constructor ran {runs} time(s) in one engine; the script saw {seen} run(s), table live: {live}"
        );
        let verdict = if runs == 1 && seen == 1 && live {
            Verdict::Ok
        } else {
            Verdict::Broken
        };
        Ok(Check { verdict, detail })
    })();
    for h in keep {
        let _ = h.remove();
    }
    result.unwrap_or_else(|e| Check {
        verdict: Verdict::Broken,
        detail: format!("check failed: {e}"),
    })
}
