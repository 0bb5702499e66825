//! Start-up and caching (issues 9, 17): JIT-resident engine start-up from the summary's shared runtime (mapped
//! by the system loader) vs its precompiled runtime object (linked by JITLink), interleaved in one run; the
//! object vs the library bitcode; and per-script latency on a compiled-script cache hit vs a miss.
//!
//! Libraries: the bundled helpers; SQLite (the amalgamation vendored by the `libsqlite3-sys` crate, found in
//! cargo's registry the way the strategies bench finds it, compiled with LLVM 19's clang `-O2 -fPIC
//! -emit-llvm`; set `THINJIT_SQLITE_C` to point at another `sqlite3.c`); and a generated library of 10,000
//! functions ([`thinjit_cli::synth`]). Summaries (with their runtime objects and shared runtimes,
//! `precompute-summary --shared-runtime`) are built once into `target/thinjit-startup-bench/` and reused.
//!
//! `cargo bench --bench startup` (release). `THINJIT_BENCH_LIBS=helpers,sqlite,synth10k` picks libraries;
//! `THINJIT_BENCH_ITERS` the iterations of the fast cases. Prints markdown tables (medians; the figures in
//! `docs/startup.md` come from here).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use thinjit::cache::ScriptCache;
use thinjit::jit::{Engine, EngineBuilder, RuntimeSource, StartupTimes};
use thinjit::summary::{BuildOptions, ObjectTarget, Summary};
use thinjit_cli::bench::with_bundled_host;

fn work_dir() -> PathBuf {
    let dir =
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("target/thinjit-startup-bench");
    std::fs::create_dir_all(&dir).expect("bench directory");
    dir
}

fn helper_inputs() -> Vec<PathBuf> {
    let dir = Path::new(env!("THINJIT_HELPERS_BC_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("helpers bitcode dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "bc"))
        .collect();
    files.sort();
    files
}

/// `sqlite3.c` from `THINJIT_SQLITE_C`, or the newest `libsqlite3-sys-*` in cargo's registry.
fn find_sqlite() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("THINJIT_SQLITE_C") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(home.join("registry/src"))
        .ok()?
        .filter_map(|e| e.ok())
        .flat_map(|index| std::fs::read_dir(index.path()).into_iter().flatten())
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("libsqlite3-sys-")
        })
        .map(|e| e.path().join("sqlite3/sqlite3.c"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop()
}

/// SQLite's bitcode (compiled once).
fn sqlite_bitcode(dir: &Path) -> Option<PathBuf> {
    let src = find_sqlite()?;
    let bc = dir.join("sqlite3.bc");
    if bc.exists() {
        return Some(bc);
    }
    eprintln!("compiling {} to bitcode", src.display());
    let clang = Path::new(env!("THINJIT_LLVM_BIN")).join("clang");
    let status = Command::new(clang)
        .args(["-O2", "-fPIC", "-emit-llvm", "-c", "-w"])
        .args([
            "-DSQLITE_THREADSAFE=0",
            "-DSQLITE_OMIT_LOAD_EXTENSION",
            "-DSQLITE_DEFAULT_MEMSTATUS=0",
        ])
        .arg(format!("-I{}", src.parent()?.display()))
        .arg(&src)
        .arg("-o")
        .arg(&bc)
        .status()
        .ok()?;
    status.success().then_some(bc)
}

/// A summary with a host runtime object, built from `inputs` once and cached in `path`.
fn summary(path: &Path, inputs: &[PathBuf]) -> Arc<Summary> {
    if let Ok(s) = Summary::load(path) {
        if s.runtime_object().is_some_and(|o| o.shared.is_some()) {
            return Arc::new(s);
        }
    }
    let start = Instant::now();
    let built = Summary::build(
        inputs,
        &BuildOptions {
            object: Some(ObjectTarget::host()),
            shared_runtime: true,
            ..BuildOptions::default()
        },
    )
    .expect("summary build");
    built.write(path).expect("write summary");
    eprintln!(
        "built {} in {:.1} s",
        path.display(),
        start.elapsed().as_secs_f64()
    );
    Arc::new(Summary::load(path).expect("load summary"))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn iters() -> usize {
    std::env::var("THINJIT_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

/// How the engine gets the runtime in.
#[derive(Clone, Copy)]
enum Via {
    /// The shared runtime, mapped by the system loader.
    Shared,
    /// The runtime object, linked by JITLink.
    Object,
    /// The library bitcode, compiled.
    Bitcode,
}

/// One engine's start-up stage times.
fn start(summary: &Arc<Summary>, from: Via) -> (StartupTimes, RuntimeSource) {
    let engine = with_bundled_host(EngineBuilder::new().summary(Arc::clone(summary)))
        .runtime_object(!matches!(from, Via::Bitcode))
        .shared_runtime(matches!(from, Via::Shared))
        .build()
        .expect("engine");
    let report = engine.startup_report();
    (report.times, report.runtime)
}

/// Median of each stage over `runs`.
fn medians(runs: &[StartupTimes]) -> StartupTimes {
    let pick = |f: fn(&StartupTimes) -> Duration| median(runs.iter().map(f).collect());
    StartupTimes {
        jit: pick(|t| t.jit),
        load: pick(|t| t.load),
        materialize: pick(|t| t.materialize),
        initializers: pick(|t| t.initializers),
        total: pick(|t| t.total),
    }
}

/// Median start-up stage times over `n` engines of each kind in `kinds`, started in turn (interleaved).
fn startup(summary: &Arc<Summary>, kinds: &[Via], n: usize) -> Vec<(StartupTimes, RuntimeSource)> {
    let mut runs = vec![Vec::new(); kinds.len()];
    let mut sources = vec![RuntimeSource::None; kinds.len()];
    for _ in 0..n {
        for (k, from) in kinds.iter().enumerate() {
            let (times, source) = start(summary, *from);
            runs[k].push(times);
            sources[k] = source;
        }
    }
    runs.iter()
        .zip(sources)
        .map(|(r, s)| (medians(r), s))
        .collect()
}

/// Median latency of `add_script` (the script is removed after each add) for a miss, a memory hit and a disk
/// hit.
fn script_latency(summary: &Arc<Summary>, file: &str, n: usize) -> [Duration; 3] {
    let source = std::fs::read(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .join("examples/scripts")
            .join(file),
    )
    .expect("example script");
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = |cache: ScriptCache| -> Engine {
        with_bundled_host(EngineBuilder::new().summary(Arc::clone(summary)))
            .cache(cache)
            .build()
            .expect("engine")
    };
    let time_add = |engine: &Engine| {
        let start = Instant::now();
        let h = engine.add_script(file, &source).expect("add script");
        let took = start.elapsed();
        h.remove().expect("remove");
        took
    };
    // Miss: a fresh memory cache every time (the add compiles and stores).
    let mut miss = Vec::new();
    let mut memory = Vec::new();
    let mut disk = Vec::new();
    for _ in 0..n {
        let e = engine(ScriptCache::in_memory(1 << 30));
        miss.push(time_add(&e));
        memory.push(time_add(&e));
    }
    let _ = time_add(&engine(
        ScriptCache::on_disk(dir.path(), 1 << 30, 1 << 30).expect("cache"),
    ));
    for _ in 0..n {
        let e = engine(ScriptCache::on_disk(dir.path(), 1 << 30, 1 << 30).expect("cache"));
        disk.push(time_add(&e));
    }
    [median(miss), median(memory), median(disk)]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let dir = work_dir();
    let wanted =
        std::env::var("THINJIT_BENCH_LIBS").unwrap_or_else(|_| "helpers,sqlite,synth10k".into());
    let wanted: Vec<&str> = if quick {
        vec!["helpers"]
    } else {
        wanted.split(',').collect()
    };
    let n = if quick { 2 } else { iters() };

    let mut libraries: Vec<(String, Arc<Summary>)> = Vec::new();
    for name in wanted {
        match name {
            "helpers" => libraries.push((
                "bundled helpers".into(),
                summary(&dir.join("helpers.thinjit"), &helper_inputs()),
            )),
            "sqlite" => match sqlite_bitcode(&dir) {
                Some(bc) => libraries.push((
                    "SQLite 3 amalgamation".into(),
                    summary(&dir.join("sqlite.thinjit"), &[bc]),
                )),
                None => eprintln!("SQLite sources not found (set THINJIT_SQLITE_C): skipped"),
            },
            "synth10k" => {
                let ll = dir.join("synth-10k.ll");
                if !ll.exists() {
                    std::fs::write(&ll, thinjit_cli::synth::generate_library(10_000, 7))
                        .expect("write synth library");
                }
                libraries.push((
                    "synth, 10,000 functions".into(),
                    summary(&dir.join("synth-10k.thinjit"), &[ll]),
                ));
            }
            other => eprintln!("unknown library `{other}` skipped"),
        }
    }

    println!(
        "## Engine start-up, JIT-resident: shared runtime (system loader) vs runtime object (JITLink), \
         interleaved, median of {n} each"
    );
    println!();
    println!("| library | functions | object | shared object | JITLink total (ms) | shared total (ms) | JITLink ÷ shared | shared: jit | load | map + bind + define | initializers |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, summary) in &libraries {
        let functions = summary.index().functions.len();
        let object = summary.runtime_object().expect("runtime object");
        let shared_len = object.shared.as_ref().map_or(0, |s| s.image.len);
        let both = startup(summary, &[Via::Object, Via::Shared], n);
        let ((jitlink, source_j), (shared, source_s)) = (both[0], both[1]);
        assert_eq!(source_j, RuntimeSource::Object, "{name}");
        assert_eq!(source_s, RuntimeSource::SharedObject, "{name}");
        println!(
            "| {name} | {functions} | {:.0} KB | {:.0} KB | {:.2} | **{:.2}** | {:.1}× | {:.2} | {:.2} | {:.2} | {:.2} |",
            object.object.len as f64 / 1024.0,
            shared_len as f64 / 1024.0,
            ms(jitlink.total),
            ms(shared.total),
            ms(jitlink.total) / ms(shared.total),
            ms(shared.jit),
            ms(shared.load),
            ms(shared.materialize),
            ms(shared.initializers),
        );
    }
    println!();

    println!("## Engine start-up, JIT-resident: runtime object vs bitcode (median; object: {n} runs, bitcode: fewer for large libraries)");
    println!();
    println!("| library | functions | bitcode | object | from | total (ms) | jit (ms) | load (ms) | materialize (ms) | initializers (ms) | speed-up |");
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for (name, summary) in &libraries {
        let functions = summary.index().functions.len();
        let bitcode_len = summary.header().library.len;
        let object_len = summary.runtime_object().map_or(0, |o| o.object.len);
        let (from_object, source_o) = startup(summary, &[Via::Object], n)[0];
        let slow_n = if functions > 1000 { n.clamp(1, 3) } else { n };
        let (from_bitcode, source_b) = startup(summary, &[Via::Bitcode], slow_n)[0];
        for (times, source, speedup) in [
            (
                from_object,
                source_o,
                Some(ms(from_bitcode.total) / ms(from_object.total)),
            ),
            (from_bitcode, source_b, None),
        ] {
            println!(
                "| {name} | {functions} | {:.0} KB | {:.0} KB | {source} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                bitcode_len as f64 / 1024.0,
                object_len as f64 / 1024.0,
                ms(times.total),
                ms(times.jit),
                ms(times.load),
                ms(times.materialize),
                ms(times.initializers),
                speedup.map_or(String::new(), |s| format!("{s:.1}×")),
            );
        }
    }

    if let Some((_, helpers)) = libraries.iter().find(|(n, _)| n == "bundled helpers") {
        println!();
        println!("## Per-script latency of `add_script` (median of {n}), bundled helpers, O3");
        println!();
        println!("| script | miss: import + O3 + codegen + store (ms) | memory hit (ms) | disk hit (ms) | speed-up (memory hit) |");
        println!("|---|---:|---:|---:|---:|");
        for file in [
            "seed.ll",
            "arith_loop.ll",
            "strings.ll",
            "table.ll",
            "mix.ll",
        ] {
            let [miss, memory, disk] = script_latency(helpers, file, n);
            println!(
                "| {file} | {:.2} | {:.3} | {:.3} | {:.0}× |",
                ms(miss),
                ms(memory),
                ms(disk),
                ms(miss) / ms(memory)
            );
        }
    }
}
