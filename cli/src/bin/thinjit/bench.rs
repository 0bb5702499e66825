//! `thinjit bench --summary S SCRIPT... [--entry NAME] [--args A,B] [--host-library PATH] [--strategies ...]
//! [--repetitions N]`: the strategies benchmark on a JIT author's own runtime and scripts. Every strategy is an
//! engine strategy; for each, in its own child process (clean peak RSS), an engine over the summary compiles every
//! script `--repetitions` times in-process (min and median of each stage), then runs its entry. Prints the
//! markdown report and writes `report.md`, `report.csv`, `report.json` and `compile-latency.svg` to `--out`.
//! A user's library gets numbers, not verdicts: the project's targets are graded only for its own workloads
//! (`cargo bench --bench strategies`).
//!
//! Errors — a missing or unreadable file, an unknown strategy, a script that does not define the entry with as
//! many `i64` parameters as `--args` gives — exit non-zero before anything is measured; a strategy that fails
//! on a script, or computes another result than `none`, is reported in the table and makes the exit code
//! non-zero too.

use crate::errors::outln;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};
use thinjit::llvm::{Context, Module};
use thinjit::summary::Summary;
use thinjit_cli::bench::{
    self, BenchReport, Host, MeasureOptions, PreparedLibrary, Script, StrategyOutcome, StrategySpec,
};

/// Arguments of `thinjit bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The runtime's summary file (made by `precompute-summary`).
    #[arg(long)]
    summary: PathBuf,
    /// Script modules (`.ll` or `.bc`), each defining the entry.
    #[arg(required = true, value_name = "SCRIPT")]
    scripts: Vec<PathBuf>,
    /// The function each script defines and the benchmark calls: `i64 NAME(i64, ...)`, one parameter per
    /// `--args` value.
    #[arg(long, default_value = "bench_main")]
    entry: String,
    /// The entry's arguments (64-bit integers, comma-separated; at most 4).
    #[arg(
        long,
        value_delimiter = ',',
        allow_hyphen_values = true,
        default_value = "1000"
    )]
    args: Vec<i64>,
    /// A shared library defining host callbacks the runtime calls (repeatable).
    #[arg(long = "host-library", value_name = "PATH")]
    host_libraries: Vec<PathBuf>,
    /// Also provide the bundled sample helpers' host callbacks (`thinjit_host_alloc`, `_free`, `_log`, `_event`).
    #[arg(long)]
    bundled_callbacks: bool,
    /// Strategies, comma-separated: none, summary[@N], llvm-importer[@N], full-link, full-link-internalize.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "none,summary,llvm-importer,full-link,full-link-internalize"
    )]
    strategies: Vec<String>,
    /// Times each script is compiled (min and median of each stage are reported).
    #[arg(long, value_name = "N", default_value_t = 5)]
    repetitions: usize,
    /// Timed runs of each entry (the fastest is reported).
    #[arg(long, value_name = "N", default_value_t = 3)]
    runs: usize,
    /// Where the report files go (created if missing).
    #[arg(long, value_name = "DIR", default_value = "thinjit-bench")]
    out: PathBuf,
    /// Measure every strategy in this process (peak RSS is then this process's, over all strategies).
    #[arg(long)]
    in_process: bool,
    /// Measure only this strategy and print its outcome as JSON (what the child processes do).
    #[arg(long, hide = true)]
    child: Option<String>,
}

/// The scripts, read and checked: each parses and defines the entry with the right arity.
fn load_scripts(args: &Args) -> anyhow::Result<Vec<Script>> {
    let mut scripts = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for path in &args.scripts {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read script {}", path.display()))?;
        let ctx = Context::new();
        let module = Module::parse(&ctx, &bytes, &path.display().to_string())
            .with_context(|| format!("script {}", path.display()))?;
        let ir = module.print();
        bench::check_entry_signature(&ir, &args.entry, args.args.len())
            .with_context(|| format!("script {}", path.display()))?;
        let name = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        if !names.insert(name.clone()) {
            bail!(
                "two scripts are named `{name}` ({}): rename one",
                path.display()
            );
        }
        scripts.push(Script {
            name,
            ir,
            iterations: args.args.first().copied().unwrap_or(0),
            entry: args.entry.clone(),
            args: args.args.clone(),
            expected: None,
            call_heavy: false,
        });
    }
    Ok(scripts)
}

fn library(args: &Args) -> anyhow::Result<PreparedLibrary> {
    let summary = Summary::load(&args.summary)
        .with_context(|| format!("cannot load summary {}", args.summary.display()))?;
    let name = args.summary.file_stem().map_or_else(
        || "library".to_owned(),
        |s| s.to_string_lossy().into_owned(),
    );
    Ok(PreparedLibrary::new(&name, summary)?)
}

fn host(args: &Args) -> anyhow::Result<Host> {
    for l in &args.host_libraries {
        if !l.exists() {
            bail!("host library {} does not exist", l.display());
        }
    }
    Ok(Host {
        bundled_callbacks: args.bundled_callbacks,
        libraries: args.host_libraries.clone(),
    })
}

fn options(args: &Args) -> MeasureOptions {
    MeasureOptions {
        repetitions: args.runs,
        compile_repetitions: args.repetitions,
        semantic_checks: false,
        keep_ir: false,
        save_temps: None,
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.repetitions == 0 {
        bail!("--repetitions must be at least 1");
    }
    if args.args.len() > 4 {
        bail!(
            "--args: the benchmark calls entries with at most 4 arguments, {} given",
            args.args.len()
        );
    }
    let strategies: Vec<StrategySpec> = args
        .strategies
        .iter()
        .map(|s| StrategySpec::parse(s).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()?;
    let lib = library(&args)?;
    let scripts = load_scripts(&args)?;
    let host = host(&args)?;

    if let Some(label) = &args.child {
        let spec = StrategySpec::parse(label).map_err(anyhow::Error::msg)?;
        let outcome = bench::measure(&lib, &scripts, spec, &host, &options(&args));
        outln!("{}", serde_json::to_string(&outcome)?)?;
        return Ok(());
    }

    let mut report = BenchReport {
        date: bench::utc_now(),
        machine: bench::machine_description(),
        llvm: thinjit::llvm::llvm_version(),
        mode: format!(
            "thinjit bench: {} scripts × {} compiles, entry `{}({})`",
            scripts.len(),
            args.repetitions,
            args.entry,
            args.args
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        graded: false,
        outcomes: Vec::new(),
        differences: Vec::new(),
    };
    for spec in &strategies {
        eprintln!("[bench] {} / {}", lib.name, spec.label());
        let outcome = if args.in_process {
            bench::measure(&lib, &scripts, *spec, &host, &options(&args))
        } else {
            run_child(&args, *spec).unwrap_or_else(|e| StrategyOutcome {
                library: lib.name.clone(),
                library_functions: lib.functions,
                strategy: spec.label(),
                error: Some(format!("{e:#}")),
                isolated: true,
                ..StrategyOutcome::default()
            })
        };
        report.outcomes.push(outcome);
    }
    report.fill_expected_from_none();
    bench::add_differences(&mut report, &lib, &scripts);

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let md = report.markdown();
    write(&args.out, "report.md", &md)?;
    write(&args.out, "report.csv", &report.csv())?;
    write(
        &args.out,
        "report.json",
        &serde_json::to_string_pretty(&report)?,
    )?;
    write(&args.out, "compile-latency.svg", &report.svg())?;
    outln!("{md}")?;
    eprintln!(
        "[bench] wrote report.md, report.csv, report.json, compile-latency.svg to {}",
        args.out.display()
    );

    let failed: Vec<String> = report
        .outcomes
        .iter()
        .filter(|o| !o.all_correct())
        .map(|o| o.strategy.clone())
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} failed or computed another result than `none` (see the table): {}",
            if failed.len() == 1 {
                "a strategy"
            } else {
                "strategies"
            },
            failed.join(", ")
        );
    }
    Ok(())
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Measures one strategy in a child process of this binary (clean peak RSS) and reads its JSON outcome.
fn run_child(args: &Args, spec: StrategySpec) -> anyhow::Result<StrategyOutcome> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("bench")
        .arg("--summary")
        .arg(&args.summary)
        .args(["--entry", &args.entry])
        .args(["--repetitions", &args.repetitions.to_string()])
        .args(["--runs", &args.runs.to_string()])
        .args(["--child", &spec.label()]);
    if !args.args.is_empty() {
        let list: Vec<String> = args.args.iter().map(i64::to_string).collect();
        cmd.arg(format!("--args={}", list.join(",")));
    }
    for l in &args.host_libraries {
        cmd.arg("--host-library").arg(l);
    }
    if args.bundled_callbacks {
        cmd.arg("--bundled-callbacks");
    }
    cmd.args(&args.scripts);
    let stdout = thinjit_cli::bench::child_stdout(&mut cmd).map_err(|e| {
        anyhow::anyhow!("the child process measuring {} failed ({e})", spec.label())
    })?;
    let mut outcome: StrategyOutcome =
        serde_json::from_slice(&stdout).context("the child process's output is not an outcome")?;
    outcome.isolated = true;
    Ok(outcome)
}
