//! The strategies benchmark: import strategies side by side on small, huge and real helper libraries — or on a
//! JIT author's own runtime and scripts (`thinjit bench`).
//!
//! In: [`Workload`]s — the bundled helpers with six scripts, synthetic libraries of 1k–100k functions, real C
//! libraries (zlib, SQLite) compiled from crates.io sources, or a user's summary and scripts — and a list of
//! [`StrategySpec`]s, each an engine strategy. Out: a [`BenchReport`] (markdown, CSV, JSON, SVG) with per-script
//! stage times (min and median), object sizes, run times, peak RSS, what each importer imported, thinjit ÷
//! LLVM's importer, and the semantic checks of every strategy.
//!
//! The flow: [`prepare_library`] builds (or loads from `cache_dir`) the library's summary with its runtime object,
//! then [`measure`] builds a [`thinjit::jit::Engine`] with [`engine_builder`] — the same `EngineBuilder` a user
//! writes — adds each script to it several times, runs its entry, and checks the runtime's globals and
//! initializers. `benches/strategies.rs` and `thinjit bench` run every strategy in its own child process for
//! clean peak-RSS numbers; `tests/it/bench_harness.rs` runs small configurations.
//!
//! ```no_run
//! use thinjit_cli::bench::{self, Host, MeasureOptions, StrategySpec};
//! let cache = std::path::Path::new("target/thinjit-bench/cache");
//! let workload = bench::workload::helpers_workload(0.1);
//! let lib = bench::prepare_library(&workload, cache).unwrap();
//! let outcome = bench::measure(&lib, &workload.scripts, StrategySpec::parse("summary@100").unwrap(),
//!                              &Host::bundled(), &MeasureOptions::default());
//! assert!(outcome.all_correct());
//! ```

pub mod diff;
pub mod reallib;
pub mod report;
mod run;
pub mod strategy;
pub mod workload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use diff::{import_differences, ImportDifference};
pub use report::{BenchReport, Check, Row, StageStat, StrategyOutcome, Target, Verdict};
pub use run::{
    check_entry_signature, compile_repetitions_for, engine_builder, host_event_count, measure,
    measure_interleaved, peak_rss_kib, stage_times, with_bundled_host, Host, MeasureOptions,
};
pub use strategy::StrategySpec;
pub use workload::{LibrarySource, Script, Workload};

use thinjit::summary::{BuildOptions, ObjectTarget, Summary};
use thinjit::{Error, Result};

/// A helper library ready for measurement: its summary (index, shards, the promoted library with its ThinLTO
/// summary, and a runtime object for this host).
#[derive(Debug)]
pub struct PreparedLibrary {
    /// Library name (`helpers`, `zlib`, the summary file's stem for a user's library, ...).
    pub name: String,
    pub summary: Arc<Summary>,
    /// Number of function definitions in the library (the x axis of the latency plot).
    pub functions: usize,
    /// Size of the promoted library bitcode in bytes.
    pub bitcode_bytes: usize,
}

impl PreparedLibrary {
    /// Wraps a summary.
    pub fn new(name: &str, summary: Summary) -> Result<PreparedLibrary> {
        let functions = summary
            .index()
            .functions
            .iter()
            .filter(|f| {
                !f.not_eligible
                    .contains(&thinjit::summary::NotEligible::Declaration)
            })
            .count();
        let bitcode_bytes = summary.library_bitcode()?.len();
        Ok(PreparedLibrary {
            name: name.to_owned(),
            summary: Arc::new(summary),
            functions,
            bitcode_bytes,
        })
    }
}

/// Where a library's summary is cached: `cache_dir/<library>.summary`.
pub fn summary_path(cache_dir: &Path, library: &str) -> PathBuf {
    cache_dir.join(format!("{library}.summary"))
}

/// Builds the summary of `workload`'s library with a runtime object for this host (or loads it from
/// `cache_dir` when it is newer than every input and of this thinjit's format) and wraps it for measurement.
pub fn prepare_library(workload: &Workload, cache_dir: &Path) -> Result<PreparedLibrary> {
    std::fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
    let inputs = library_inputs(workload, cache_dir)?;
    let path = summary_path(cache_dir, &workload.library);
    let fresh = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .is_ok_and(|built| {
            inputs.iter().all(|i| {
                std::fs::metadata(i)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t <= built)
            })
        });
    // A cached summary of another format version (an older thinjit) is rebuilt.
    let cached = if fresh {
        Summary::load(&path).ok()
    } else {
        None
    };
    let summary = match cached {
        Some(summary) => summary,
        None => {
            let options = BuildOptions {
                object: Some(ObjectTarget::host()),
                ..BuildOptions::default()
            };
            let summary = Summary::build(&inputs, &options)?;
            summary.write(&path)?;
            summary
        }
    };
    PreparedLibrary::new(&workload.library, summary)
}

/// Loads a library [`prepare_library`] prepared in `cache_dir` (what a child process does).
pub fn load_prepared(library: &str, cache_dir: &Path) -> Result<PreparedLibrary> {
    PreparedLibrary::new(library, Summary::load(&summary_path(cache_dir, library))?)
}

/// The files the summary of `workload` is built from; synthetic libraries are written to `cache_dir` first.
fn library_inputs(workload: &Workload, cache_dir: &Path) -> Result<Vec<PathBuf>> {
    match &workload.source {
        LibrarySource::Bitcode(files) => Ok(files.clone()),
        LibrarySource::Synthetic { functions, seed } => {
            let path = cache_dir.join(format!("{}.ll", workload.library));
            if !path.exists() {
                let ir = crate::synth::generate_library(*functions, *seed);
                std::fs::write(&path, ir).map_err(|e| Error::io(&path, e))?;
            }
            Ok(vec![path])
        }
    }
}

/// The libraries a full run measures, smallest first.
pub const ALL_LIBRARIES: &[&str] = &[
    "helpers",
    "zlib",
    "synth-1k",
    "synth-10k",
    "sqlite",
    "synth-100k",
];

/// The libraries the quick mode (demo) measures.
pub const QUICK_LIBRARIES: &[&str] = &["helpers", "synth-1k", "zlib"];

/// Seed of the synthetic libraries.
pub const SYNTH_SEED: u64 = 7;

/// Checks that `name` is a workload [`workload_by_name`] knows; the error lists what is accepted (a summary file
/// is a user's library: `thinjit bench --summary`).
pub fn check_library_name(name: &str) -> std::result::Result<(), String> {
    if ["helpers", "zlib", "sqlite"].contains(&name)
        || workload::parse_synthetic_name(name).is_some()
    {
        return Ok(());
    }
    let hint = if name.ends_with(".thinjit") || name.ends_with(".summary") || name.contains('/') {
        " — to measure your own library, use `thinjit bench --summary FILE SCRIPT...`"
    } else {
        ""
    };
    Err(format!(
        "unknown benchmark library `{name}` (helpers, zlib, sqlite, synth-<n> or synth-<n>k){hint}"
    ))
}

/// The workload called `name` (`helpers`, `zlib`, `sqlite`, `synth-<n>[k]`) with `scale` × its default
/// iteration counts. Real libraries are located through `workspace_manifest` and compiled into `cache_dir`.
pub fn workload_by_name(
    name: &str,
    scale: f64,
    workspace_manifest: &Path,
    cache_dir: &Path,
) -> Result<Workload> {
    match name {
        "helpers" => Ok(workload::helpers_workload(scale)),
        "zlib" => reallib::workload(&reallib::ZLIB, workspace_manifest, cache_dir, scale),
        "sqlite" => reallib::workload(&reallib::SQLITE, workspace_manifest, cache_dir, scale),
        other => match workload::parse_synthetic_name(other) {
            Some(n) => Ok(workload::synthetic_workload(n, SYNTH_SEED, scale)),
            None => Err(Error::Config {
                message: format!(
                    "unknown benchmark library `{other}` (helpers, zlib, sqlite, synth-<n> or synth-<n>k)"
                ),
            }),
        },
    }
}

/// The workspace manifest thinjit was built from (locates the real libraries' crates).
pub fn workspace_manifest() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("Cargo.toml")
}

/// CPU model, logical cores and memory of this machine, from `/proc`.
pub fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0.0, |kib| kib as f64 / 1024.0 / 1024.0);
    format!("{model}, {cores} cores, {mem_gib:.0} GiB")
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Adds to `report` the import-list differences between thinjit (`summary@100`) and LLVM's importer
/// (`llvm-importer@100`) on each script of `lib`, when both were measured, with the reason for each.
pub fn add_differences(report: &mut BenchReport, lib: &PreparedLibrary, scripts: &[Script]) {
    let find = |strategy: &str| {
        report
            .outcomes
            .iter()
            .find(|o| o.library == lib.name && o.strategy == strategy)
    };
    let (Some(thinjit), Some(llvm)) = (find(report::THINJIT), find(report::LLVM_IMPORTER)) else {
        return;
    };
    let config = thinjit::import::ImportConfig::default();
    let mut found = Vec::new();
    for script in scripts {
        let row = |o: &StrategyOutcome| {
            o.rows
                .iter()
                .find(|r| r.script == script.name && r.error.is_none())
                .cloned()
        };
        let (Some(t), Some(l)) = (row(thinjit), row(llvm)) else {
            continue;
        };
        let lists = |r: &Row| (r.imported_functions.clone(), r.imported_variables.clone());
        let ((tf, tv), (lf, lv)) = (lists(&t), lists(&l));
        match import_differences(
            &lib.name,
            &lib.summary,
            &script.name,
            &script.ir,
            &config,
            diff::ImportLists {
                functions: &tf,
                variables: &tv,
            },
            diff::ImportLists {
                functions: &lf,
                variables: &lv,
            },
        ) {
            Ok(d) => found.extend(d),
            Err(e) => found.push(ImportDifference {
                library: lib.name.clone(),
                script: script.name.clone(),
                symbol: String::new(),
                kind: String::new(),
                imported_by: String::new(),
                reason: format!("could not compare: {e}"),
            }),
        }
    }
    report.differences.extend(found);
}

/// Runs a measuring child process and returns its standard output. A failure is its exit status and the last
/// five lines of its standard error, newest first.
pub fn child_stdout(cmd: &mut std::process::Command) -> std::result::Result<Vec<u8>, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {}: {e}", cmd.get_program().to_string_lossy()))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let tail: Vec<&str> = std::str::from_utf8(&out.stderr)
        .unwrap_or("(standard error is not UTF-8)")
        .lines()
        .rev()
        .take(5)
        .collect();
    Err(format!("{}: {}", out.status, tail.join(" / ")))
}
