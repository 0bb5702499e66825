//! `thinjit run SCRIPT --summary S`: builds an engine, adds the script (import → O3 → ORC), calls the entry and
//! prints its result, the import report and (with `--time`) the stage times. Always prints how the engine
//! started (precompiled runtime object or bitcode, stage times) and, with `--cache-dir`, whether the script
//! came from the compiled-script cache.

use crate::errors::outln;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use thinjit::cache::CacheOutcome;
use thinjit::import::{ImportConfig, ImportReport, InlineOutcome};
use thinjit::jit::RuntimeMode;
use thinjit::jit::{Engine, EngineBuilder, ScriptReport, Stage, Strategy};
use thinjit::llvm::{Context, Module};
use thinjit::summary::Summary;

use super::host::{self, Ret};

/// Where the helper runtime lives (`--mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The summary's promoted helper library is JIT'd once into the engine.
    JitResident,
    /// The helpers are native code in a shared library (`--shared-library`).
    HostNative,
}

impl From<Mode> for RuntimeMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::JitResident => RuntimeMode::JitResident,
            Mode::HostNative => RuntimeMode::HostNative,
        }
    }
}

/// Arguments of `thinjit run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The script module (`.ll` or `.bc`).
    script: PathBuf,
    /// The summary file made by `precompute-summary`.
    #[arg(long)]
    summary: PathBuf,
    /// The function to call.
    #[arg(long, default_value = "main")]
    entry: String,
    /// The entry's return type (`auto`: `*_WRAPPED` returns a boxed value, anything else an i64).
    #[arg(long, value_enum, default_value_t = Ret::Auto)]
    ret: Ret,
    /// How helper bodies get into the script: none, summary, llvm-importer (LLVM's own importer), full-link or
    /// full-link-internalize.
    #[arg(long, default_value = "summary")]
    strategy: Strategy,
    /// Where the helper runtime lives.
    #[arg(long, value_enum, default_value_t = Mode::JitResident)]
    mode: Mode,
    /// The native helper library (host-native mode).
    #[arg(long, value_name = "PATH", default_value = env!("THINJIT_HELPERS_SO"))]
    shared_library: PathBuf,
    #[command(flatten)]
    host: HostArgs,
    /// Import and optimize inside ORC's IR transform, at the first lookup.
    #[arg(long)]
    lazy: bool,
    /// Only import callees with at most N instructions (`import-instr-limit`).
    #[arg(long, value_name = "N", default_value_t = 100)]
    import_instr_limit: u32,
    /// Print per-stage times.
    #[arg(long)]
    time: bool,
    /// Add the script (import, optimization, code generation, linking) and stop: call nothing. Prints the
    /// symbols it defines. (What the script fuzzer runs.)
    #[arg(long)]
    no_call: bool,
    /// With --no-call: also look up NAME (repeatable), which compiles a lazily added script, and print its
    /// address; calls nothing.
    #[arg(long, value_name = "NAME", requires = "no_call")]
    lookup: Vec<String>,
    /// Write what each pipeline stage produced into DIR: `<script>.<NN>-<stage>.bc` after parse, verify,
    /// plan, import and optimize, `.o` after codegen, `.txt` (symbol addresses) after link.
    #[arg(long, value_name = "DIR")]
    save_temps: Option<PathBuf>,
    #[command(flatten)]
    startup: StartupArgs,
}

/// Where a user runtime's host callbacks come from (both modes): shared libraries and, opt-in, this process.
#[derive(Debug, Default, clap::Args)]
pub struct HostArgs {
    /// A shared library defining host callbacks the runtime calls (repeatable; searched in order, after the
    /// built-in `thinjit_host_*` callbacks).
    #[arg(long = "host-library", value_name = "PATH")]
    pub host_libraries: Vec<PathBuf>,
    /// Also resolve host callbacks from this process's own symbols (and libraries it loaded, e.g. with
    /// LD_PRELOAD).
    #[arg(long)]
    pub process_symbols: bool,
}

/// Start-up and caching options shared by `run` and `demo`.
#[derive(Debug, clap::Args)]
pub struct StartupArgs {
    /// Cache compiled scripts in DIR (shared by runs and processes; created if missing).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Size bound of the cache directory, in MiB (least recently used entries are evicted).
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub cache_size: u64,
    /// Compile the library bitcode at start-up even when the summary has a usable runtime object.
    #[arg(long)]
    pub no_runtime_object: bool,
    /// Optimize and compile scripts in a `thinjit-worker` helper process: an LLVM crash, abort or hang is an
    /// error, not the end of this process.
    #[arg(long)]
    pub isolate: bool,
    /// Time limit per script with --isolate, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub isolate_timeout: f64,
}

/// Prints how the engine started.
pub fn print_startup(engine: &Engine) -> std::io::Result<()> {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let r = engine.startup_report();
    let t = &r.times;
    outln!(
        "engine: started in {:.2} ms; runtime: {} ({} bytes); jit {:.2} ms, load {:.2} ms, materialize {:.2} ms, initializers {:.2} ms",
        ms(t.total),
        r.runtime,
        r.runtime_bytes,
        ms(t.jit),
        ms(t.load),
        ms(t.materialize),
        ms(t.initializers)
    )?;
    if let Some(notice) = &r.notice {
        outln!("notice: {notice}")?;
    }
    Ok(())
}

/// Prints whether a script came from the cache (when there is one).
pub fn print_cache(report: &ScriptReport) -> std::io::Result<()> {
    match report.cache {
        Some(CacheOutcome::MemoryHit) => {
            outln!("cache: hit (memory): import, optimization and code generation skipped")?
        }
        Some(CacheOutcome::DiskHit) => {
            outln!("cache: hit (disk): import, optimization and code generation skipped")?
        }
        Some(CacheOutcome::Miss) => outln!("cache: miss (compiled and stored)")?,
        None => {}
    }
    Ok(())
}

/// Builds an engine for `mode` over `summary`; `host` adds where the runtime's host callbacks come from.
#[allow(clippy::too_many_arguments)]
pub fn engine(
    summary: Arc<Summary>,
    mode: Mode,
    strategy: Strategy,
    shared_library: &std::path::Path,
    lazy: bool,
    config: ImportConfig,
    startup: &StartupArgs,
    host: &HostArgs,
    save_temps: Option<&std::path::Path>,
) -> anyhow::Result<Engine> {
    let mut builder = EngineBuilder::new()
        .summary(summary)
        .import_config(config)
        .runtime_mode(mode.into())
        .strategy(strategy)
        .lazy(lazy)
        .keep_optimized_ir(true)
        .runtime_object(!startup.no_runtime_object);
    if let Some(dir) = save_temps {
        builder = builder.save_temps(dir);
    }
    if let Some(dir) = &startup.cache_dir {
        let bytes = startup.cache_size.saturating_mul(1 << 20);
        builder = builder.cache_dir(dir, bytes, bytes);
    }
    if startup.isolate {
        let limit = std::time::Duration::try_from_secs_f64(startup.isolate_timeout)
            .map_err(|e| anyhow::anyhow!("--isolate-timeout {}: {e}", startup.isolate_timeout))?;
        builder = builder.isolate_codegen(thinjit::jit::Isolation::new().timeout(limit));
    }
    for library in &host.host_libraries {
        // An absolute path: the dynamic loader searches its library path for a name without a slash.
        let path = std::fs::canonicalize(library)
            .with_context(|| format!("host library {}", library.display()))?;
        builder = builder.shared_library(path);
    }
    builder = builder.process_symbols(host.process_symbols);
    builder = match mode {
        Mode::JitResident => host::register(builder),
        Mode::HostNative => builder.shared_library(shared_library),
    };
    builder.build().map_err(|e| {
        let hint = matches!(e, thinjit::Error::RuntimeUnresolvedSymbols { .. });
        anyhow::Error::new(e).context(if hint {
            "starting the engine (a host callback the summary's runtime calls may need --host-library PATH or \
             --process-symbols)"
        } else {
            "starting the engine"
        })
    })
}

/// Prints stage times.
pub fn print_times(report: &ScriptReport, engine_ms: Option<f64>) -> std::io::Result<()> {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let t = &report.times;
    if let Some(engine_ms) = engine_ms {
        outln!("engine: built in {engine_ms:.2} ms")?;
    }
    let stages: Vec<String> = Stage::ALL
        .iter()
        .map(|s| format!("{s} {:.2} ms", ms(t.get(*s))))
        .collect();
    outln!(
        "times: {} (total {:.2} ms)",
        stages.join(", "),
        ms(t.total())
    )
}

/// Runs `thinjit run`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let summary = Arc::new(
        Summary::load(&args.summary)
            .with_context(|| format!("loading the summary {}", args.summary.display()))?,
    );
    let config = ImportConfig {
        import_instr_limit: args.import_instr_limit,
        ..ImportConfig::default()
    };
    let start = Instant::now();
    let engine = engine(
        summary,
        args.mode,
        args.strategy,
        &args.shared_library,
        args.lazy,
        config,
        &args.startup,
        &args.host,
        args.save_temps.as_deref(),
    )?;
    print_startup(&engine)?;
    let engine_ms = start.elapsed().as_secs_f64() * 1e3;
    let handle = engine
        .add_script_file(&args.script)
        .with_context(|| format!("adding the script {}", args.script.display()))?;
    if args.no_call {
        for name in &args.lookup {
            let address = engine.lookup_address(name).with_context(|| {
                format!(
                    "looking up `{name}` of the script {}",
                    args.script.display()
                )
            })?;
            outln!("{name}: {address:#x}")?;
        }
        let defined = handle.report().map(|r| r.defined.len()).unwrap_or(0);
        outln!("added: {defined} symbols defined")?;
        return Ok(());
    }
    let result = host::call_entry(&engine, &args.entry, args.ret).with_context(|| {
        format!(
            "calling `{}` of the script {}",
            args.entry,
            args.script.display()
        )
    })?;
    outln!("{}: {result}", args.entry)?;
    let report = handle
        .report()
        .context("the script was not materialized (is the entry defined by it?)")?;
    match &report.import {
        Some(import) => {
            outln!("{import}")?;
            if let Some(ir) = &report.optimized_ir {
                outln!("{}", inline_outcome(ir, import)?)?;
            }
        }
        None => outln!("no import report (strategy {})", report.strategy)?,
    }
    print_cache(&report)?;
    for path in &report.temps {
        outln!("save-temps: {}", path.display())?;
    }
    if args.time {
        print_times(&report, Some(engine_ms))?;
    }
    Ok(())
}

/// What O3 made of the import, read from the optimized script's IR.
pub fn inline_outcome(optimized_ir: &str, import: &ImportReport) -> anyhow::Result<InlineOutcome> {
    let ctx = Context::new();
    let module = Module::parse_ir(&ctx, optimized_ir.as_bytes(), "optimized script")?;
    Ok(InlineOutcome::of(&module, import))
}
