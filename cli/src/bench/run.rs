//! Measuring one library × strategy: compile every script, JIT it into an LLJIT that holds the helper runtime
//! once, run its hot loop, and check the helper runtime's semantics.
//!
//! In: a [`PreparedLibrary`], its [`Script`]s, a [`Strategy`]. Out: a [`StrategyOutcome`] with per-script
//! times, object sizes, run times and results, peak RSS, and the two semantic checks (one instance of each
//! mutable helper global; initializers once).
//!
//! The helper runtime is JIT-resident: the summary's promoted library is added to the JIT once, its static
//! constructors run once and its `atexit` handlers go to a registry run before the JIT is dropped. Host
//! callbacks the bundled helpers expect (`thinjit_host_*`) are provided here; the constructor event is
//! counted, which is how "initializers once" is observed from the host.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use super::report::{Check, Row, StrategyOutcome, Verdict};
use super::strategy::{compile_script, PreparedLibrary, Strategy};
use super::workload::{Script, ENTRY};
use thinjit::llvm::orc::{LlJit, ResourceTracker};
use thinjit::llvm::resident::{
    support_ir, AtExitRegistry, ATEXIT_IMPL, CXA_ATEXIT, PERSONALITY_PIN_IR,
};
use thinjit::llvm::{CodeGenOpt, Context, Module, TargetMachine};
use thinjit::{Error, Result};

/// How many times each script is compiled and its hot loop run (the fastest of each stage is reported), and
/// whether to run the semantic checks.
#[derive(Clone, Debug)]
pub struct MeasureOptions {
    /// Timed runs of each script's hot loop.
    pub repetitions: usize,
    /// Times each script is compiled (from its IR, in a fresh context, added to the JIT under a new name).
    pub compile_repetitions: usize,
    pub semantic_checks: bool,
}

impl Default for MeasureOptions {
    fn default() -> Self {
        MeasureOptions {
            repetitions: 3,
            compile_repetitions: 3,
            semantic_checks: true,
        }
    }
}

/// Event code the bundled intern table's constructor reports (`THINJIT_EVENT_INTERN_CTOR`).
const EVENT_INTERN_CTOR: i32 = 1;
static HOST_EVENTS: [AtomicI32; 8] = [const { AtomicI32::new(0) }; 8];

extern "C" fn host_event(code: i32) {
    if let Some(c) = usize::try_from(code).ok().and_then(|i| HOST_EVENTS.get(i)) {
        c.fetch_add(1, Ordering::SeqCst);
    }
}

extern "C" fn host_log(_message: *const libc::c_char) {}

/// How many times the helper runtime reported event `code` to the host in this process.
pub fn host_event_count(code: i32) -> i32 {
    usize::try_from(code)
        .ok()
        .and_then(|i| HOST_EVENTS.get(i))
        .map_or(0, |c| c.load(Ordering::SeqCst))
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

fn jit_error(source: thinjit::OrcFailure) -> Error {
    Error::Jit {
        context: "benchmark runtime".into(),
        source,
    }
}

/// The C and C++ runtime libraries JIT'd helpers may call into.
const RUNTIME_LIBRARIES: &[&str] = &["libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1"];

/// An LLJIT holding the helper runtime once (JIT-resident: promoted library added and compiled, static
/// constructors run, `atexit` handlers redirected to a registry run on drop), and the scripts added to it.
#[derive(Debug)]
pub struct Runtime {
    // Field order is drop order: scripts' code goes before the JIT itself.
    trackers: Vec<ResourceTracker>,
    atexit: AtExitRegistry,
    dtors: Vec<String>,
    jit: LlJit,
}

impl Runtime {
    /// Creates the JIT and makes `lib`'s runtime resident in it.
    pub fn new(lib: &PreparedLibrary) -> Result<Runtime> {
        let jit = LlJit::new_host().map_err(jit_error)?;
        jit.define_absolute(&[
            (
                "thinjit_host_alloc",
                libc::malloc as *const () as usize as u64,
            ),
            ("thinjit_host_free", libc::free as *const () as usize as u64),
            ("thinjit_host_log", host_log as *const () as usize as u64),
            (
                "thinjit_host_event",
                host_event as *const () as usize as u64,
            ),
            (CXA_ATEXIT, AtExitRegistry::cxa_atexit_address()),
            (ATEXIT_IMPL, AtExitRegistry::atexit_impl_address()),
            (RESULT_CALLBACK, bench_result as *const () as usize as u64),
        ])
        .map_err(jit_error)?;
        for lib in RUNTIME_LIBRARIES {
            jit.add_shared_library(std::path::Path::new(lib))
                .map_err(jit_error)?;
        }
        // One registry for the runtime and every script: all handlers run when the runtime is dropped, while
        // the code they point to is still loaded.
        let atexit = AtExitRegistry::new();
        for (name, ir) in [
            ("thinjit-support", support_ir(atexit.key())),
            ("thinjit-personality", PERSONALITY_PIN_IR.to_owned()),
        ] {
            let ctx = Context::new();
            let m = Module::parse_ir(&ctx, ir.as_bytes(), name)?;
            jit.add_module(m, None).map_err(jit_error)?;
        }

        let ctx = Context::new();
        let (library, structors) = runtime_module(&ctx, lib)?;
        // Any external definition: looking it up compiles (or links) the whole library now, not in the first
        // script's materialization.
        let anchor = library
            .functions()
            .find(|f| !f.is_declaration() && !f.linkage().is_local())
            .map(|f| f.name());
        match &lib.runtime_object {
            Some(path) => {
                drop(library);
                let object = std::fs::read(path).map_err(|e| Error::io(path, e))?;
                jit.add_object_file(&object, &lib.name, None)
                    .map_err(jit_error)?;
            }
            None => jit.add_module(library, None).map_err(jit_error)?,
        }
        if let Some(anchor) = anchor {
            jit.lookup(&anchor).map_err(jit_error)?;
        }
        jit.run_structors(structors.ctors()).map_err(jit_error)?;
        Ok(Runtime {
            trackers: Vec::new(),
            atexit,
            dtors: structors.dtors().to_vec(),
            jit,
        })
    }

    /// Adds an optimized script under its own tracker, materializes it by looking up `entry`, runs its static
    /// constructors (only a script that carries private copies of helper state has any). Returns the entry
    /// and how long adding + materializing took.
    pub fn add_script(
        &mut self,
        mut module: Module<'_>,
        entry: &str,
    ) -> Result<(JitEntry, Duration)> {
        let structors = module.take_structors();
        module.redirect_atexit();
        let tracker = self.jit.create_tracker();
        let t = Instant::now();
        self.jit
            .add_module(module, Some(&tracker))
            .map_err(jit_error)?;
        self.jit.lookup(entry).map_err(jit_error)?;
        let elapsed = t.elapsed();
        self.trackers.push(tracker);
        self.jit
            .run_structors(structors.ctors())
            .map_err(jit_error)?;
        Ok((JitEntry(entry.to_owned()), elapsed))
    }

    /// Adds (and compiles) a driver that calls `entry(n)` and hands the result to the host: a `void()`
    /// function the safe layer can call, so the harness needs no raw function pointers.
    pub fn driver(&mut self, entry: &JitEntry, n: i64) -> Result<Driver> {
        let name = format!("{}.drive.{n}", entry.0);
        let ir = format!(
            "declare i64 @\"{e}\"(i64)\ndeclare void @{RESULT_CALLBACK}(i64)\n\
             define void @\"{name}\"() {{\n  %r = call i64 @\"{e}\"(i64 {n})\n  \
             call void @{RESULT_CALLBACK}(i64 %r)\n  ret void\n}}\n",
            e = entry.0
        );
        let ctx = Context::new();
        let module = Module::parse_ir(&ctx, ir.as_bytes(), &name)?;
        let tracker = self.jit.create_tracker();
        self.jit
            .add_module(module, Some(&tracker))
            .map_err(jit_error)?;
        self.jit.lookup(&name).map_err(jit_error)?;
        self.trackers.push(tracker);
        Ok(Driver { name })
    }

    /// Runs a driver: `entry(n)` on this thread. Returns what the entry returned.
    pub fn run(&self, driver: &Driver) -> Result<i64> {
        LAST_RESULT.with(|r| r.set(None));
        self.jit
            .run_structors(std::slice::from_ref(&driver.name))
            .map_err(jit_error)?;
        LAST_RESULT
            .with(|r| r.get())
            .ok_or_else(|| Error::InvalidEntry {
                symbol: driver.name.clone(),
                reason: "the benchmark driver returned no result".into(),
            })
    }

    fn call(&mut self, entry: &JitEntry, n: i64) -> Result<i64> {
        let driver = self.driver(entry, n)?;
        self.run(&driver)
    }
}

/// A compiled `void()` function calling a script's entry with a fixed argument ([`Runtime::driver`]).
#[derive(Clone, Debug)]
pub struct Driver {
    name: String,
}

/// The host callback drivers hand a script's result to.
const RESULT_CALLBACK: &str = "thinjit_bench_result";

thread_local! {
    static LAST_RESULT: std::cell::Cell<Option<i64>> = const { std::cell::Cell::new(None) };
}

extern "C" fn bench_result(value: i64) {
    LAST_RESULT.with(|r| r.set(Some(value)));
}

/// The promoted helper library as the runtime holds it: static constructors and destructors taken out (the
/// runtime runs them), `atexit` registrations redirected to the runtime's registry.
fn runtime_module<'ctx>(
    ctx: &'ctx Context,
    lib: &PreparedLibrary,
) -> Result<(Module<'ctx>, thinjit::llvm::resident::Structors)> {
    let mut library = Module::parse_bitcode(ctx, lib.summary.library_bitcode()?, &lib.name)?;
    let structors = library.take_structors();
    library.redirect_atexit();
    Ok((library, structors))
}

/// Compiles the runtime module of `lib` to a native object at `path` (for a JIT on this host), so that each
/// benchmark process links it instead of compiling the whole library again.
pub fn write_runtime_object(lib: &PreparedLibrary, path: &std::path::Path) -> Result<()> {
    let ctx = Context::new();
    let (library, _) = runtime_module(&ctx, lib)?;
    let tm = TargetMachine::host(CodeGenOpt::Default)?;
    let object = tm.emit_object(&library)?;
    std::fs::write(path, object).map_err(|e| Error::io(path, e))
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // atexit handlers (and the library's destructors) point into JIT'd code: run them while it is loaded.
        self.atexit.run();
        let _ = self.jit.run_structors(&self.dtors);
    }
}

/// A script's entry, materialized in a [`Runtime`].
#[derive(Clone, Debug)]
pub struct JitEntry(String);

/// Checks that `entry` is defined in `ir` as `i64 @entry(i64 ...)`, the signature the drivers call it with.
pub fn check_entry_signature(ir: &str, entry: &str) -> Result<()> {
    let needle = format!("@{entry}(");
    let bad = |why: &str| Error::InvalidEntry {
        symbol: entry.to_owned(),
        reason: format!("benchmark entry must be defined as `i64 @{entry}(i64)`: {why}"),
    };
    let line = ir
        .lines()
        .find(|l| l.trim_start().starts_with("define") && l.contains(&needle))
        .ok_or_else(|| bad("no definition"))?;
    let (head, rest) = line
        .split_once(&needle)
        .ok_or_else(|| bad("no definition"))?;
    if head.split_whitespace().last() != Some("i64") {
        return Err(bad("return type is not i64"));
    }
    let params = rest.split(')').next().unwrap_or("");
    let params: Vec<&str> = params.split(',').map(str::trim).collect();
    if params.len() != 1 || params[0].split_whitespace().next() != Some("i64") {
        return Err(bad("parameters are not (i64)"));
    }
    Ok(())
}

/// Gives every external definition of `ir` a `.<suffix>` so several scripts (or two copies of one) can live in
/// one JIT. Returns the new IR and the renamed entry.
fn rename_definitions(ir: &str, suffix: &str) -> Result<(String, String)> {
    let ctx = Context::new();
    let module = Module::parse_ir(&ctx, ir.as_bytes(), suffix)?;
    for f in module.functions() {
        if !f.is_declaration() && !f.linkage().is_local() {
            f.set_name(&format!("{}.{suffix}", f.name()));
        }
    }
    Ok((module.print(), format!("{ENTRY}.{suffix}")))
}

struct Measured {
    row: Row,
    entry: JitEntry,
}

fn compile_and_add(
    rt: &mut Runtime,
    lib: &PreparedLibrary,
    strategy: Strategy,
    tm: &TargetMachine,
    name: &str,
    ir: &str,
    suffix: &str,
) -> Result<Measured> {
    check_entry_signature(ir, ENTRY)?;
    let (ir, entry) = rename_definitions(ir, suffix)?;
    let ctx = Context::new();
    // The module name is unique in the runtime (internalized copies are renamed after it).
    let compiled = compile_script(&ctx, &format!("{name}.{suffix}"), &ir, strategy, lib, tm)?;
    let object_bytes = tm.emit_object(&compiled.module)?.len();
    let mut row = Row {
        script: name.to_owned(),
        import_ms: ms(compiled.import_time),
        optimize_ms: ms(compiled.optimize_time),
        linked_functions: compiled.linked_functions,
        copied_functions: compiled.defined_functions_after,
        object_bytes,
        ..Row::default()
    };
    let (entry, materialize) = rt.add_script(compiled.module, &entry)?;
    row.materialize_ms = ms(materialize);
    Ok(Measured { row, entry })
}

/// Compiles `script` `compile_repetitions` times (keeping the fastest time of each stage), then runs the last
/// copy's hot loop `repetitions` times (keeping the fastest run).
fn measure_script(
    rt: &mut Runtime,
    lib: &PreparedLibrary,
    strategy: Strategy,
    tm: &TargetMachine,
    script: &Script,
    k: usize,
    options: &MeasureOptions,
) -> Row {
    let mut best: Option<Row> = None;
    let mut entry = None;
    for rep in 0..options.compile_repetitions.max(1) {
        let suffix = format!("s{k}r{rep}");
        match compile_and_add(rt, lib, strategy, tm, &script.name, &script.ir, &suffix) {
            Ok(m) => {
                entry = Some(m.entry);
                best = Some(match best {
                    None => m.row,
                    Some(b) => Row {
                        import_ms: b.import_ms.min(m.row.import_ms),
                        optimize_ms: b.optimize_ms.min(m.row.optimize_ms),
                        materialize_ms: b.materialize_ms.min(m.row.materialize_ms),
                        ..m.row
                    },
                });
            }
            Err(e) => {
                return Row {
                    script: script.name.clone(),
                    error: Some(e.to_string()),
                    ..Row::default()
                }
            }
        }
    }
    let mut row = best.unwrap_or_default();
    if let Some(entry) = entry {
        let driver = match rt.driver(&entry, script.iterations) {
            Ok(d) => d,
            Err(e) => {
                row.error = Some(e.to_string());
                return row;
            }
        };
        let mut fastest = f64::MAX;
        for _ in 0..options.repetitions.max(1) {
            let t = Instant::now();
            let r = rt.run(&driver);
            fastest = fastest.min(ms(t.elapsed()));
            match r {
                Ok(v) => row.result = Some(v),
                Err(e) => {
                    row.error = Some(e.to_string());
                    return row;
                }
            }
        }
        row.run_ms = Some(fastest);
    }
    row
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Compiles, JITs and runs every script of `lib` with `strategy` in one fresh runtime, then runs the semantic
/// checks. Failures of single scripts are recorded in their rows; a failure to set up the runtime is recorded
/// in the outcome's `error`.
pub fn measure(
    lib: &PreparedLibrary,
    scripts: &[Script],
    strategy: Strategy,
    options: &MeasureOptions,
) -> StrategyOutcome {
    let mut outcome = StrategyOutcome {
        library: lib.name.clone(),
        library_functions: lib.functions,
        strategy: strategy.label(),
        ..StrategyOutcome::default()
    };
    let ctor_events_before = host_event_count(EVENT_INTERN_CTOR);
    let t = Instant::now();
    let tm = match TargetMachine::host(CodeGenOpt::Default) {
        Ok(tm) => tm,
        Err(e) => {
            outcome.error = Some(e.to_string());
            return outcome;
        }
    };
    let mut rt = match Runtime::new(lib) {
        Ok(rt) => rt,
        Err(e) => {
            outcome.error = Some(e.to_string());
            return outcome;
        }
    };
    outcome.setup_ms = ms(t.elapsed());

    for (k, script) in scripts.iter().enumerate() {
        let mut row = measure_script(&mut rt, lib, strategy, &tm, script, k, options);
        row.iterations = script.iterations;
        row.expected = script.expected;
        row.call_heavy = script.call_heavy;
        outcome.rows.push(row);
    }

    if options.semantic_checks
        && lib
            .summary
            .index()
            .function("rt_counter_increment")
            .is_some()
    {
        outcome.one_instance = check_one_instance(&mut rt, lib, strategy, &tm);
        outcome.init_once = check_init_once(&mut rt, lib, strategy, &tm, ctor_events_before);
    }
    drop(rt);
    outcome.peak_rss_kib = peak_rss_kib();
    outcome
}

/// The host's view of the shared counter: `rt_counter_get` of the resident runtime, called from a tiny
/// uninlined probe.
const HOST_PROBE: &str = r#"
declare i64 @rt_counter_get()
define i64 @bench_main(i64 %n) {
  %r = call i64 @rt_counter_get()
  ret i64 %r
}
"#;

fn run_once(
    rt: &mut Runtime,
    lib: &PreparedLibrary,
    strategy: Strategy,
    tm: &TargetMachine,
    name: &str,
    ir: &str,
    n: i64,
) -> Result<i64> {
    let measured = compile_and_add(rt, lib, strategy, tm, name, ir, name)?;
    rt.call(&measured.entry, n)
}

/// Two copies of `counter.ll` bump `rt_shared_counter` 3 and 4 times; the host must see one counter at +7.
fn check_one_instance(
    rt: &mut Runtime,
    lib: &PreparedLibrary,
    strategy: Strategy,
    tm: &TargetMachine,
) -> Check {
    let result = (|| -> Result<Check> {
        let base = run_once(rt, lib, Strategy::None, tm, "probe0", HOST_PROBE, 1)?;
        let a = run_once(
            rt,
            lib,
            strategy,
            tm,
            "counter_a",
            super::workload::bundled::COUNTER,
            3,
        )?;
        let b = run_once(
            rt,
            lib,
            strategy,
            tm,
            "counter_b",
            super::workload::bundled::COUNTER,
            4,
        )?;
        let host = run_once(rt, lib, Strategy::None, tm, "probe1", HOST_PROBE, 1)?;
        let (a, b, host) = (a - base, b - base, host - base);
        let detail =
            format!("script A saw {a}, script B saw {b}, host saw {host} (one counter: 3, 7, 7)");
        let verdict = if (a, b, host) == (3, 7, 7) {
            Verdict::Ok
        } else {
            Verdict::Broken
        };
        Ok(Check { verdict, detail })
    })();
    result.unwrap_or_else(|e| Check {
        verdict: Verdict::Broken,
        detail: format!("check failed: {e}"),
    })
}

/// `initonce.ll` must see the intern table constructed exactly once and live; the host must have seen the
/// constructor run exactly once in this runtime.
fn check_init_once(
    rt: &mut Runtime,
    lib: &PreparedLibrary,
    strategy: Strategy,
    tm: &TargetMachine,
    ctor_events_before: i32,
) -> Check {
    let result = (|| -> Result<Check> {
        let r = run_once(
            rt,
            lib,
            strategy,
            tm,
            "initonce",
            super::workload::bundled::INITONCE,
            1,
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
    result.unwrap_or_else(|e| Check {
        verdict: Verdict::Broken,
        detail: format!("check failed: {e}"),
    })
}
