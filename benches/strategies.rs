//! `cargo bench --bench strategies [-- --quick] [--libraries a,b] [--strategies x,y] [--scale F]
//! [--repetitions N] [--compile-repetitions N] [--interleave] [--in-process] [--out DIR] [--save-temps DIR]`: every engine strategy
//! side by side —
//! none, the full links, thinjit's summary at three limits and LLVM's own importer — on the bundled helpers,
//! synthetic libraries and real C libraries, each measured through `jit::Engine`. Each library × strategy runs
//! in its own child process (clean peak RSS). `--interleave`: each library's strategies run in one child
//! process instead, their compiles interleaved (every repetition compiles each script once per strategy, in
//! rotating order), so machine noise falls on all of them alike — the fair way to compare compile times (the
//! thinjit ÷ llvm-importer table) on a busy machine; peak RSS is then the shared process's. Writes `report.md`, `report.csv`, `compile-latency.svg` and
//! `report.json` to `target/thinjit-bench/` and prints the markdown to stdout; progress goes to stderr. Unknown
//! libraries or strategies are errors (exit code 1) before anything runs. `--render report.json` writes the tables
//! of an earlier run again, measuring nothing. `--save-temps DIR` writes every compile's per-stage files (as
//! `thinjit run --save-temps`) under `DIR/<strategy>/`.

use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "usage: cargo bench -p thinjit-cli --bench strategies -- [--quick] [--libraries a,b] \
[--strategies x,y] [--scale F] [--repetitions N] [--compile-repetitions N] [--interleave] [--in-process] \
[--out DIR] [--save-temps DIR] [--render report.json]
libraries: helpers, zlib, sqlite, synth-<n> (synth-1k, synth-10k, synth-100k)
strategies: none, full-link, full-link-internalize, summary@<limit>, llvm-importer@<limit>";

use anyhow::{anyhow, bail, Context as _, Result};
use thinjit_cli::bench::{self, BenchReport, Host, MeasureOptions, StrategyOutcome, StrategySpec};

#[derive(Clone)]
struct Args {
    quick: bool,
    libraries: Vec<String>,
    strategies: Vec<StrategySpec>,
    scale: f64,
    repetitions: usize,
    compile_repetitions: usize,
    isolate: bool,
    interleave: bool,
    out: PathBuf,
    child: Option<(String, String)>,
    /// `--child-all LIB S1,S2,...`: the interleaved measurement of one library (internal).
    child_all: Option<(String, String)>,
    render: Option<PathBuf>,
    save_temps: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        quick: false,
        libraries: Vec::new(),
        strategies: StrategySpec::all(),
        scale: 1.0,
        repetitions: 3,
        compile_repetitions: 3,
        isolate: true,
        interleave: false,
        out: Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("target/thinjit-bench"),
        child: None,
        child_all: None,
        render: None,
        save_temps: None,
    };
    let mut scale = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |what: &str| it.next().with_context(|| format!("{what} needs a value"));
        match a.as_str() {
            "--quick" => args.quick = true,
            "--libraries" => {
                args.libraries = value("--libraries")?
                    .split(',')
                    .map(str::to_owned)
                    .collect()
            }
            "--strategies" => {
                args.strategies = value("--strategies")?
                    .split(',')
                    .map(|s| StrategySpec::parse(s).map_err(anyhow::Error::msg))
                    .collect::<Result<_>>()?
            }
            "--scale" => scale = Some(value("--scale")?.parse()?),
            "--repetitions" => args.repetitions = value("--repetitions")?.parse()?,
            "--compile-repetitions" => {
                args.compile_repetitions = value("--compile-repetitions")?.parse()?
            }
            "--in-process" => args.isolate = false,
            "--interleave" => args.interleave = true,
            "--render" => args.render = Some(PathBuf::from(value("--render")?)),
            "--out" => args.out = PathBuf::from(value("--out")?),
            "--save-temps" => args.save_temps = Some(PathBuf::from(value("--save-temps")?)),
            "--child" => {
                let lib = value("--child")?;
                let strategy = value("--child")?;
                args.child = Some((lib, strategy));
            }
            "--child-all" => {
                let lib = value("--child-all")?;
                let strategies = value("--child-all")?;
                args.child_all = Some((lib, strategies));
            }
            // cargo bench passes `--bench`.
            "--bench" => {}
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other if other.starts_with('-') => bail!("unknown option `{other}`"),
            // libtest-style filters are ignored.
            _ => {}
        }
    }
    if args.libraries.is_empty() {
        let list = if args.quick {
            bench::QUICK_LIBRARIES
        } else {
            bench::ALL_LIBRARIES
        };
        args.libraries = list.iter().map(|s| s.to_string()).collect();
    }
    for lib in &args.libraries {
        bench::check_library_name(lib).map_err(anyhow::Error::msg)?;
    }
    args.scale = scale.unwrap_or(if args.quick { 0.05 } else { 1.0 });
    if args.quick {
        args.repetitions = args.repetitions.min(2);
        args.compile_repetitions = args.compile_repetitions.min(2);
    }
    Ok(args)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let cache = args.out.join("cache");
    if let Some((lib, strategy)) = &args.child {
        return child(&args, &cache, lib, strategy);
    }
    if let Some((lib, strategies)) = &args.child_all {
        return child_all(&args, &cache, lib, strategies);
    }
    if let Some(json) = &args.render {
        // Renders the tables of an earlier run again (report.json) into --out, measuring nothing.
        let report: BenchReport = serde_json::from_slice(&std::fs::read(json)?)
            .with_context(|| format!("{} is not a strategies report", json.display()))?;
        return write_report(&args, &report);
    }
    let mut report = BenchReport {
        date: bench::utc_now(),
        machine: bench::machine_description(),
        llvm: thinjit::llvm::llvm_version(),
        mode: format!(
            "{}{}",
            if args.quick { "quick mode" } else { "full run" },
            if args.interleave {
                ", strategies interleaved in one process per library"
            } else {
                ""
            }
        ),
        graded: true,
        outcomes: Vec::new(),
        differences: Vec::new(),
    };
    for lib in &args.libraries {
        eprintln!(
            "[strategies] {lib}: preparing (summary build, cached in {})",
            cache.display()
        );
        let t = std::time::Instant::now();
        let prepared =
            bench::workload_by_name(lib, args.scale, &bench::workspace_manifest(), &cache)
                .and_then(|w| Ok((bench::prepare_library(&w, &cache)?, w)));
        let (prepared, workload) = match prepared {
            Ok(p) => p,
            Err(e) => {
                // A library that cannot be had (no network for crates.io, say) is reported, not fatal.
                eprintln!("[strategies] {lib}: cannot prepare: {e}");
                for s in &args.strategies {
                    report.outcomes.push(StrategyOutcome {
                        library: lib.clone(),
                        strategy: s.label(),
                        error: Some(format!("preparing the library: {e}")),
                        ..StrategyOutcome::default()
                    });
                }
                continue;
            }
        };
        eprintln!(
            "[strategies] {lib}: {} functions, {} KiB promoted bitcode, prepared in {:.1} s",
            prepared.functions,
            prepared.bitcode_bytes / 1024,
            t.elapsed().as_secs_f64()
        );
        if args.interleave {
            let t = std::time::Instant::now();
            let outcomes = if args.isolate {
                run_child_all(&args, lib).unwrap_or_else(|e| {
                    args.strategies
                        .iter()
                        .map(|s| failed_child(lib, prepared.functions, *s, &e))
                        .collect()
                })
            } else {
                bench::measure_interleaved(
                    &prepared,
                    &workload.scripts,
                    &args.strategies,
                    &Host::bundled(),
                    &options(&args),
                )
            };
            eprintln!(
                "[strategies] {lib}: {} strategies interleaved, {:.1} s",
                outcomes.len(),
                t.elapsed().as_secs_f64()
            );
            report.outcomes.extend(outcomes);
            bench::add_differences(&mut report, &prepared, &workload.scripts);
            continue;
        }
        for s in &args.strategies {
            let t = std::time::Instant::now();
            // A whole-library link of a big library costs seconds per compile: time it once.
            let mut args_for = args.clone();
            args_for.compile_repetitions =
                bench::compile_repetitions_for(*s, prepared.functions, args.compile_repetitions);
            let args = &args_for;
            let outcome = if args.isolate {
                run_child(args, lib, *s)
                    .unwrap_or_else(|e| failed_child(lib, prepared.functions, *s, &e))
            } else {
                bench::measure(
                    &prepared,
                    &workload.scripts,
                    *s,
                    &Host::bundled(),
                    &options(args),
                )
            };
            eprintln!(
                "[strategies] {lib} / {}: mean compile {} ms, {:.1} s{}",
                s.label(),
                outcome
                    .mean_compile_ms()
                    .map_or("-".into(), |m| format!("{m:.2}")),
                t.elapsed().as_secs_f64(),
                outcome
                    .error
                    .as_deref()
                    .map_or(String::new(), |e| format!(" — error: {e}"))
            );
            report.outcomes.push(outcome);
        }
        bench::add_differences(&mut report, &prepared, &workload.scripts);
    }
    report.fill_expected_from_none();
    write_report(&args, &report)
}

/// Writes report.md, report.csv, report.json and compile-latency.svg to `--out` and prints the markdown and CSV.
fn write_report(args: &Args, report: &BenchReport) -> Result<()> {
    std::fs::create_dir_all(&args.out)?;
    let md = report.markdown();
    std::fs::write(args.out.join("report.md"), &md)?;
    std::fs::write(args.out.join("report.csv"), report.csv())?;
    std::fs::write(args.out.join("compile-latency.svg"), report.svg())?;
    std::fs::write(
        args.out.join("report.json"),
        serde_json::to_string_pretty(report)?,
    )?;
    println!("{md}");
    println!("CSV:\n{}", report.csv());
    eprintln!(
        "[strategies] wrote report.md, report.csv, report.json, compile-latency.svg to {}",
        args.out.display()
    );
    Ok(())
}

fn options(args: &Args) -> MeasureOptions {
    MeasureOptions {
        repetitions: args.repetitions,
        compile_repetitions: args.compile_repetitions,
        semantic_checks: true,
        keep_ir: false,
        save_temps: args.save_temps.clone(),
    }
}

/// A child process of this binary measuring `what` (`--child LIB STRATEGY` or `--child-all LIB STRATEGIES`)
/// with this run's options.
fn child_command(args: &Args, what: [&str; 3]) -> Result<Command> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(what)
        .args(["--scale", &args.scale.to_string()])
        .args(["--repetitions", &args.repetitions.to_string()])
        .args([
            "--compile-repetitions",
            &args.compile_repetitions.to_string(),
        ])
        .arg("--out")
        .arg(&args.out);
    if let Some(dir) = &args.save_temps {
        cmd.arg("--save-temps").arg(dir);
    }
    Ok(cmd)
}

/// The outcome of `strategy` on `lib` when its child process failed: the error, nothing measured.
fn failed_child(
    lib: &str,
    library_functions: usize,
    strategy: StrategySpec,
    e: &anyhow::Error,
) -> StrategyOutcome {
    StrategyOutcome {
        library: lib.to_owned(),
        library_functions,
        strategy: strategy.label(),
        error: Some(format!("{e:#}")),
        isolated: true,
        ..StrategyOutcome::default()
    }
}

/// Runs one library × strategy in a child process of this binary and reads its JSON outcome.
fn run_child(args: &Args, lib: &str, strategy: StrategySpec) -> Result<StrategyOutcome> {
    let mut cmd = child_command(args, ["--child", lib, &strategy.label()])?;
    let stdout =
        bench::child_stdout(&mut cmd).map_err(|e| anyhow!("child process failed ({e})"))?;
    let mut outcome: StrategyOutcome =
        serde_json::from_slice(&stdout).context("child process output is not an outcome")?;
    outcome.isolated = true;
    Ok(outcome)
}

/// Runs one library's strategies interleaved in a child process of this binary and reads their outcomes.
fn run_child_all(args: &Args, lib: &str) -> Result<Vec<StrategyOutcome>> {
    let labels: Vec<String> = args.strategies.iter().map(|s| s.label()).collect();
    let mut cmd = child_command(args, ["--child-all", lib, &labels.join(",")])?;
    let stdout =
        bench::child_stdout(&mut cmd).map_err(|e| anyhow!("child process failed ({e})"))?;
    let outcomes: Vec<StrategyOutcome> =
        serde_json::from_slice(&stdout).context("child process output is not outcomes")?;
    Ok(outcomes)
}

fn child_all(args: &Args, cache: &Path, lib: &str, strategies: &str) -> Result<()> {
    let specs = strategies
        .split(',')
        .map(|s| StrategySpec::parse(s).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    let workload = bench::workload_by_name(lib, args.scale, &bench::workspace_manifest(), cache)?;
    let t = std::time::Instant::now();
    let prepared = bench::load_prepared(lib, cache)?;
    let load = t.elapsed().as_secs_f64() * 1e3;
    let mut outcomes = bench::measure_interleaved(
        &prepared,
        &workload.scripts,
        &specs,
        &Host::bundled(),
        &options(args),
    );
    for outcome in &mut outcomes {
        outcome.setup_ms += load;
    }
    println!("{}", serde_json::to_string(&outcomes)?);
    Ok(())
}

fn child(args: &Args, cache: &Path, lib: &str, strategy: &str) -> Result<()> {
    let strategy = StrategySpec::parse(strategy).map_err(anyhow::Error::msg)?;
    let workload = bench::workload_by_name(lib, args.scale, &bench::workspace_manifest(), cache)?;
    let t = std::time::Instant::now();
    let prepared = bench::load_prepared(lib, cache)?;
    let load = t.elapsed();
    let mut outcome = bench::measure(
        &prepared,
        &workload.scripts,
        strategy,
        &Host::bundled(),
        &options(args),
    );
    outcome.setup_ms += load.as_secs_f64() * 1e3;
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}
