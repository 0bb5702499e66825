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
//! use thinjit::bench::{self, MeasureOptions, Strategy};
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
pub use run::{check_entry_signature, host_event_count, measure, peak_rss_kib, MeasureOptions};
pub use strategy::{compile_script, CompiledScript, PreparedLibrary, Strategy};
pub use workload::{LibrarySource, Script, Workload};

use crate::summary::{BuildOptions, Summary};
use crate::{Error, Result};

/// Where a library's summary is cached: `cache_dir/<library>.summary`.
pub fn summary_path(cache_dir: &Path, library: &str) -> PathBuf {
    cache_dir.join(format!("{library}.summary"))
}

/// Builds the summary of `workload`'s library (or loads it from `cache_dir` when it is newer than every input)
/// and wraps it for measurement.
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
    let summary = if fresh {
        Summary::load(&path)?
    } else {
        let summary = Summary::build(&inputs, &BuildOptions::default())?;
        summary.write(&path)?;
        summary
    };
    PreparedLibrary::new(&workload.library, summary)
}

/// Loads an already prepared library's summary from `cache_dir` (what a child process does).
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
