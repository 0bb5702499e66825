//! `thinjit demo`: the README's main job. Builds the bundled helpers' summary if it is missing, then runs the
//! seed's example and richer scripts (`examples/scripts/*.ll`) in both runtime modes, printing each result,
//! what was imported and why, and per-stage times. JIT-resident mode ends by showing the helper library's
//! static constructor and destructor each ran once.

use crate::errors::outln;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use thinjit::import::{Decision, ImportConfig, SymbolKind};
use thinjit::jit::Strategy;
use thinjit::summary::{BuildOptions, ObjectTarget, Summary};
use thinjit_cli::bench;

use super::host::{self, Ret};
use super::run::{self, Mode};

/// Arguments of `thinjit demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The summary of the bundled helpers (built here when missing or unreadable).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../summaries/helpers.thinjit"))]
    summary: PathBuf,
    /// The directory of example scripts.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/scripts"))]
    scripts: PathBuf,
    /// The native helper library for host-native mode.
    #[arg(long, value_name = "PATH", default_value = env!("THINJIT_HELPERS_SO"))]
    shared_library: PathBuf,
    /// Import and optimize inside ORC's IR transform.
    #[arg(long)]
    lazy: bool,
    /// Print the full import report of every script.
    #[arg(long)]
    verbose: bool,
    /// Skip the side-by-side comparison of import strategies at the end.
    #[arg(long)]
    no_compare: bool,
    #[command(flatten)]
    startup: run::StartupArgs,
}

/// The demo's scripts and their entries.
const SCRIPTS: &[(&str, &str, &str)] = &[
    ("seed.ll", "f_WRAPPED", "the seed's example: box 23333"),
    (
        "arith_loop.ll",
        "sum_of_squares_WRAPPED",
        "boxed arithmetic loop: sum of i*i, i = 1..100",
    ),
    (
        "strings.ll",
        "label_WRAPPED",
        "string building through the intern table",
    ),
    (
        "table.ll",
        "table_main",
        "constant tables: squares and CRC-32",
    ),
    (
        "mix.ll",
        "mix_main",
        "counter, static callee, chain, alwaysinline, big helper, C++ exception",
    ),
];

/// Loads the summary, building it from the bundled helpers' bitcode when it is missing or unreadable.
fn summary(path: &Path) -> anyhow::Result<Summary> {
    if let Ok(s) = Summary::load(path) {
        return Ok(s);
    }
    let dir = Path::new(env!("THINJIT_HELPERS_BC_DIR"));
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "bc"))
        .collect();
    inputs.sort();
    eprintln!(
        "building {} from {} helper modules",
        path.display(),
        inputs.len()
    );
    let options = BuildOptions {
        object: Some(ObjectTarget::host()),
        ..BuildOptions::default()
    };
    let built = Summary::build(&inputs, &options)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    built.write(path)?;
    Ok(Summary::load(path)?)
}

/// Runs `thinjit demo`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let summary = Arc::new(summary(&args.summary)?);
    outln!(
        "summary {}: {} functions, {} variables, {} initializers",
        args.summary.display(),
        summary.index().functions.len(),
        summary.index().variables.len(),
        summary.index().initializers.len()
    )?;
    for mode in [Mode::JitResident, Mode::HostNative] {
        outln!()?;
        outln!("=== {} ===", RuntimeModeName(mode))?;
        let ctor = host::EVENTS[1].load(Ordering::SeqCst);
        let dtor = host::EVENTS[2].load(Ordering::SeqCst);
        let start = Instant::now();
        let engine = run::engine(
            Arc::clone(&summary),
            mode,
            Strategy::Summary,
            &args.shared_library,
            args.lazy,
            ImportConfig::default(),
            &args.startup,
            &run::HostArgs::default(),
            None,
        )?;
        outln!(
            "engine ready in {:.2} ms (initializers run: {:?})",
            start.elapsed().as_secs_f64() * 1e3,
            engine.initializers()
        )?;
        run::print_startup(&engine)?;
        for (file, entry, what) in SCRIPTS {
            let path = args.scripts.join(file);
            outln!()?;
            outln!("--- {file}: {what}")?;
            let handle = engine
                .add_script_file(&path)
                .with_context(|| format!("adding {}", path.display()))?;
            let result = host::call_entry(&engine, entry, Ret::Auto)?;
            outln!("{entry}() = {result}")?;
            let report = handle.report().context("script not materialized")?;
            if let Some(import) = &report.import {
                if args.verbose {
                    outln!("{import}")?;
                } else {
                    let imported: Vec<String> = import
                        .entries
                        .iter()
                        .filter(|e| e.decision.is_imported())
                        .map(|e| {
                            if e.local_copy {
                                format!("{} (private copy)", e.name)
                            } else {
                                e.name.clone()
                            }
                        })
                        .collect();
                    outln!("imported: {}", imported.join(", "))?;
                    if let Some(ir) = &report.optimized_ir {
                        let (inlined, called): (Vec<&str>, Vec<&str>) = import
                            .entries
                            .iter()
                            .filter(|e| e.decision.is_imported() && e.kind == SymbolKind::Function)
                            .map(|e| e.name.as_str())
                            .partition(|name| !calls(ir, name));
                        outln!("inlined by O3: {}", list(&inlined))?;
                        if !called.is_empty() {
                            outln!("imported but still called: {}", list(&called))?;
                        }
                    }
                    for e in &import.entries {
                        if let Decision::NotImported(reason) = &e.decision {
                            outln!("  not imported: {}: {reason}", e.name)?;
                        }
                        if let Some(why) = &e.not_inlinable {
                            outln!("  cannot inline {}: {why}", e.name)?;
                        }
                    }
                }
            }
            run::print_times(&report, None)?;
            run::print_cache(&report)?;
        }
        drop(engine);
        if mode == Mode::JitResident {
            outln!()?;
            outln!(
                "helper static constructor ran {} time(s); destructor ran {} time(s) when the engine dropped",
                host::EVENTS[1].load(Ordering::SeqCst) - ctor,
                host::EVENTS[2].load(Ordering::SeqCst) - dtor
            )?;
        }
    }
    if !args.no_compare {
        compare_strategies()?;
    }
    Ok(())
}

/// `true` when the optimized IR still calls `name` (directly, in any function it defines).
fn calls(ir: &str, name: &str) -> bool {
    let quoted = format!("@\"{name}\"(");
    let plain = format!("@{name}(");
    ir.lines()
        .filter(|l| l.contains("call ") || l.contains("invoke "))
        .any(|l| l.contains(&plain) || l.contains(&quoted))
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(", ")
    }
}

/// The quick mode of `cargo bench --bench strategies`: every import strategy on the bundled helpers, side by
/// side, with the semantic checks (one instance of each global, initializers once).
fn compare_strategies() -> anyhow::Result<()> {
    outln!()?;
    outln!("=== import strategies side by side (bundled helpers, quick mode) ===")?;
    let cache = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .join("target/thinjit-demo/bench-cache");
    let workload = bench::workload_by_name("helpers", 0.05, &bench::workspace_manifest(), &cache)?;
    let prepared = bench::prepare_library(&workload, &cache)?;
    let options = bench::MeasureOptions {
        repetitions: 2,
        compile_repetitions: 2,
        semantic_checks: true,
        keep_ir: false,
        save_temps: None,
    };
    let mut report = bench::BenchReport {
        date: bench::utc_now(),
        machine: bench::machine_description(),
        llvm: thinjit::llvm::llvm_version(),
        mode: "quick (thinjit demo)".into(),
        graded: true,
        outcomes: Vec::new(),
        differences: Vec::new(),
    };
    for strategy in bench::StrategySpec::all() {
        report.outcomes.push(bench::measure(
            &prepared,
            &workload.scripts,
            strategy,
            &bench::Host::bundled(),
            &options,
        ));
    }
    bench::add_differences(&mut report, &prepared, &workload.scripts);
    report.fill_expected_from_none();
    outln!("{}", report.markdown())?;
    outln!("(full run on every library: cargo bench --bench strategies; see the README for how to read it)")?;
    Ok(())
}

struct RuntimeModeName(Mode);

impl std::fmt::Display for RuntimeModeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Mode::JitResident => {
                "JIT-resident: the promoted helper library is JIT'd once into the engine"
            }
            Mode::HostNative => "host-native: the helpers are native code in a shared library",
        })
    }
}
