//! The strategies benchmark: import strategies side by side on small, huge and real helper libraries.
//!
//! In: [`Workload`]s — the bundled helpers with five scripts, synthetic libraries of 1k–100k functions, and
//! real C libraries (zlib, SQLite) compiled from crates.io sources — and a list of [`Strategy`]s. Out: a
//! [`BenchReport`] (markdown, CSV, SVG) with per-script import / O3 / materialize times, object sizes, hot-loop
//! run times, peak RSS and the semantic checks of every strategy.
//!
//! The flow: [`prepare_library`] builds (or loads from `cache_dir`) the library's summary, then
//! [`measure`] compiles each script with one strategy into a fresh LLJIT holding the helper runtime once,
//! runs it, and checks the runtime's globals and initializers. `benches/strategies.rs` runs every strategy in
//! its own child process for clean peak-RSS numbers and writes the report; `tests/it/bench_harness.rs` runs a
//! small configuration.
//!
//! ```no_run
//! use thinjit_cli::bench::{self, MeasureOptions, Strategy};
//! let cache = std::path::Path::new("target/thinjit-bench/cache");
//! let workload = bench::workload::helpers_workload(0.1);
//! let lib = bench::prepare_library(&workload, cache).unwrap();
//! let outcome = bench::measure(&lib, &workload.scripts, Strategy::parse("summary@100").unwrap(),
//!                              &MeasureOptions::default());
//! assert!(outcome.all_correct());
//! ```

pub mod reallib;
pub mod report;
mod run;
pub mod strategy;
pub mod workload;

use std::path::{Path, PathBuf};

pub use report::{BenchReport, Check, Row, StrategyOutcome, Target, Verdict};
pub use run::{
    check_entry_signature, host_event_count, measure, peak_rss_kib, Driver, JitEntry,
    MeasureOptions, Runtime,
};
pub use strategy::{
    compile_script, import_script, optimize_script, CompiledScript, ImportedScript,
    PreparedLibrary, Strategy,
};
pub use workload::{LibrarySource, Script, Workload};

use thinjit::summary::{BuildOptions, Summary};
use thinjit::{Error, Result};

/// Where a library's summary is cached: `cache_dir/<library>.summary`.
pub fn summary_path(cache_dir: &Path, library: &str) -> PathBuf {
    cache_dir.join(format!("{library}.summary"))
}

/// Builds the summary of `workload`'s library (or loads it from `cache_dir` when it is newer than every input
/// and readable by this thinjit) and wraps it for measurement.
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
    // A cached summary this thinjit cannot read (an older format) is rebuilt like a stale one.
    let cached = if fresh {
        Summary::load(&path).ok()
    } else {
        None
    };
    let summary = match cached {
        Some(summary) => summary,
        None => {
            let summary = Summary::build(&inputs, &BuildOptions::default())?;
            summary.write(&path)?;
            summary
        }
    };
    let mut lib = PreparedLibrary::new(&workload.library, summary)?;
    let object = runtime_object_path(cache_dir, &workload.library);
    if !newer_than(&object, &path) {
        run::write_runtime_object(&lib, &object)?;
    }
    lib.runtime_object = Some(object);
    Ok(lib)
}

/// Loads a library [`prepare_library`] prepared in `cache_dir` (what a child process does).
pub fn load_prepared(library: &str, cache_dir: &Path) -> Result<PreparedLibrary> {
    let path = summary_path(cache_dir, library);
    let mut lib = PreparedLibrary::new(library, Summary::load(&path)?)?;
    let object = runtime_object_path(cache_dir, library);
    lib.runtime_object = newer_than(&object, &path).then_some(object);
    Ok(lib)
}

/// Where the native object of a library's resident runtime is cached.
fn runtime_object_path(cache_dir: &Path, library: &str) -> PathBuf {
    cache_dir.join(format!("{library}.runtime.o"))
}

/// `true` when `a` exists and was modified no earlier than `b`.
fn newer_than(a: &Path, b: &Path) -> bool {
    let time = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((time(a), time(b)), (Some(a), Some(b)) if a >= b)
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
