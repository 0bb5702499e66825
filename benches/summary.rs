//! Summary build and load times on generated helper libraries (1k, 10k, 100k functions), then the build step
//! on multi-input libraries: one-shot from per-input files, the same code pre-linked into one module, per-input
//! partials, and their merge.
//!
//! A hand-timed harness that prints two tables: `cargo bench --bench summary`.
//!
//! Synthetic table: `THINJIT_BENCH_SIZES` is a comma-separated list of sizes (default `1000,10000,100000`; empty
//! skips the table), `THINJIT_BENCH_SKIP_100K=1` drops the largest. Build time covers parsing the `.ll`,
//! promotion, analysis and shard extraction on all cores; load time is `Summary::load` of the written file
//! (median of repeated loads).
//!
//! Distributed table, per library (the bundled helpers, zlib from `benches/reallib`, and PostgreSQL 15's server
//! bitcode when available): wall and CPU time (user + system of the whole process) of `Summary::build` over
//! the per-input files, of `Summary::build` over the same files linked first by `llvm-link` (not timed), of
//! `Summary::build_partials` (every input on the rayon pool), and of loading the written partials plus
//! `Summary::merge`. Variants are interleaved, `THINJIT_BENCH_ROUNDS` rounds (default 3; 1 for PostgreSQL),
//! medians reported. PostgreSQL: `THINJIT_BENCH_POSTGRES=fetch` runs `scripts/fetch-postgres-bitcode.sh`
//! (`apt-get download postgresql-15` + `dpkg -x` into a cache, nothing installed), a path uses that bitcode
//! directory, and otherwise the script's default cache is used when it is there; `THINJIT_BENCH_POSTGRES=off`
//! skips it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cpu_time::ProcessTime;
use thinjit::summary::{BuildOptions, Summary};
use thinjit_cli::bench::reallib;
use thinjit_cli::synth;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    synthetic();
    distributed();
}

fn synthetic() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let sizes: Vec<usize> = match std::env::var("THINJIT_BENCH_SIZES") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => {
            let mut v = vec![1_000, 10_000, 100_000];
            if std::env::var_os("THINJIT_BENCH_SKIP_100K").is_some() {
                v.pop();
            }
            v
        }
    };
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "threads: {}  (rayon default pool)",
        rayon::current_num_threads()
    );
    println!(
        "{:>9} {:>10} {:>10} {:>12} {:>12} {:>11} {:>12}",
        "functions", "build", "importable", "shard bytes", "file bytes", "load", "shard+check"
    );
    for n in sizes {
        let lib = dir.path().join(format!("synth-{n}.ll"));
        std::fs::write(&lib, synth::generate_library(n, 42)).expect("write library");
        let runs = if n <= 1_000 { 3 } else { 1 };
        let mut build_times = Vec::new();
        let mut summary = None;
        for _ in 0..runs {
            let t = Instant::now();
            let s = Summary::build(std::slice::from_ref(&lib), &BuildOptions::default())
                .expect("build");
            build_times.push(t.elapsed());
            summary = Some(s);
        }
        let summary = summary.expect("built");
        let path = dir.path().join(format!("synth-{n}.thinjit"));
        summary.write(&path).expect("write summary");
        let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let shard_bytes: u64 = summary
            .index()
            .functions
            .iter()
            .filter_map(|f| f.shard.map(|r| r.len))
            .sum();
        let importable = summary
            .index()
            .functions
            .iter()
            .filter(|f| f.is_eligible())
            .count();
        drop(summary);

        let mut load_times = Vec::new();
        let mut shard_times = Vec::new();
        for _ in 0..21 {
            let t = Instant::now();
            let s = Summary::load(&path).expect("load");
            load_times.push(t.elapsed());
            let f = s
                .index()
                .function(&synth::function_name(0))
                .expect("function 0");
            let t = Instant::now();
            let bytes = s.shard(f).expect("shard");
            shard_times.push(t.elapsed());
            assert!(!bytes.is_empty());
        }
        println!(
            "{:>9} {:>9.2}s {:>10} {:>12} {:>12} {:>9.2}ms {:>10.1}µs",
            n,
            median(build_times).as_secs_f64(),
            importable,
            shard_bytes,
            file_bytes,
            median(load_times).as_secs_f64() * 1e3,
            median(shard_times).as_secs_f64() * 1e6,
        );
    }
}

/// Wall and CPU time of one run.
#[derive(Clone, Copy)]
struct Timed {
    wall: Duration,
    cpu: Duration,
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Timed) {
    let (t, c) = (Instant::now(), ProcessTime::now());
    let out = f();
    (
        out,
        Timed {
            wall: t.elapsed(),
            cpu: c.elapsed(),
        },
    )
}

fn median_timed(v: &[Timed]) -> Timed {
    Timed {
        wall: median(v.iter().map(|t| t.wall).collect()),
        cpu: median(v.iter().map(|t| t.cpu).collect()),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// PostgreSQL 15's server bitcode directory, fetched or found as the module documentation says.
fn postgres_bitcode() -> Option<PathBuf> {
    let setting = std::env::var("THINJIT_BENCH_POSTGRES").unwrap_or_default();
    if setting == "off" {
        return None;
    }
    if !setting.is_empty() && setting != "fetch" {
        return Some(PathBuf::from(setting));
    }
    let script = workspace_root().join("scripts/fetch-postgres-bitcode.sh");
    if setting != "fetch" {
        // The script's default cache, if an earlier run filled it.
        let base = std::env::var_os("THINJIT_CACHE")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("thinjit"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/thinjit"))
            })?;
        let dir = base.join("postgres-15/root/usr/lib/postgresql/15/lib/bitcode/postgres");
        if base.join("postgres-15/complete").exists() {
            return Some(dir);
        }
        println!(
            "PostgreSQL 15: bitcode not fetched; run `{}` (apt-get download + dpkg -x into a cache, nothing \
             installed) or set THINJIT_BENCH_POSTGRES=fetch",
            script.display()
        );
        return None;
    }
    println!("PostgreSQL 15: fetching with {}", script.display());
    match Command::new("bash").arg(&script).output() {
        Ok(out) if out.status.success() => Some(PathBuf::from(
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        )),
        Ok(out) => {
            println!(
                "PostgreSQL 15: fetch failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
        Err(e) => {
            println!("PostgreSQL 15: cannot run {}: {e}", script.display());
            None
        }
    }
}

fn distributed() {
    let cache = workspace_root().join("target/bench-cache");
    let mut libraries: Vec<(String, Vec<PathBuf>, usize)> = Vec::new();
    let rounds: usize = std::env::var("THINJIT_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let helpers_dir = Path::new(env!("THINJIT_HELPERS_BC_DIR"));
    let mut helpers: Vec<PathBuf> = std::fs::read_dir(helpers_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    helpers.retain(|p| p.extension().is_some_and(|e| e == "bc"));
    helpers.sort();
    libraries.push(("helpers".into(), helpers, rounds));
    let manifest = workspace_root().join("Cargo.toml");
    match reallib::locate_crate(&manifest, reallib::ZLIB.crate_name)
        .and_then(|root| reallib::compile_bitcode(&reallib::ZLIB, &root, &cache))
    {
        Ok(files) => libraries.push(("zlib".into(), files, rounds)),
        Err(e) => println!("zlib: skipped ({e})"),
    }
    if let Some(dir) = postgres_bitcode() {
        libraries.push(("postgres-15".into(), vec![dir], 1));
    }

    println!();
    println!(
        "build step over per-input files; threads: {} (rayon pool); wall / CPU (user+sys), median",
        rayon::current_num_threads()
    );
    println!(
        "{:<12} {:>6} {:>9} {:>17} {:>17} {:>17} {:>17} {:>12}",
        "library",
        "inputs",
        "functions",
        "one-shot",
        "pre-linked",
        "partials",
        "load+merge",
        "merge/1-shot"
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let llvm_link = Path::new(env!("THINJIT_LLVM_BIN")).join("llvm-link");
    let mut notes = Vec::new();
    for (name, inputs, rounds) in libraries {
        let opts = BuildOptions::default();
        let Ok((first, report)) = Summary::build_reported(&inputs, &opts) else {
            println!("{name}: build failed");
            continue;
        };
        let picked: Vec<PathBuf> = report.picked.iter().map(|p| p.path.clone()).collect();
        let functions = first.index().functions.len();
        drop(first);
        let linked = tmp.path().join(format!("{name}-linked.bc"));
        let ok = Command::new(&llvm_link)
            .args(&picked)
            .arg("-o")
            .arg(&linked)
            .status()
            .is_ok_and(|s| s.success());
        let parts_dir = tmp.path().join(format!("{name}-parts"));
        std::fs::create_dir_all(&parts_dir).expect("parts dir");
        let (mut one_shot, mut pre_linked, mut partials, mut merge) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut redone = (0usize, 0usize, 0usize);
        for round in 0..rounds {
            let (s, t) = timed(|| Summary::build(&picked, &opts).expect("one-shot"));
            one_shot.push(t);
            let one = s.to_bytes();
            drop(s);
            if ok {
                let (s, t) = timed(|| {
                    Summary::build(std::slice::from_ref(&linked), &opts).expect("pre-linked")
                });
                pre_linked.push(t);
                drop(s);
            }
            let (parts, t) = timed(|| Summary::build_partials(&picked, &opts).expect("partials"));
            partials.push(t);
            let files: Vec<PathBuf> = parts
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let f = parts_dir.join(format!("{i}.thinjit-part"));
                    p.write(&f).expect("write partial");
                    f
                })
                .collect();
            drop(parts);
            let (merged, t) = timed(|| {
                let loaded: Vec<Summary> = files
                    .iter()
                    .map(|f| Summary::load(f).expect("load"))
                    .collect();
                Summary::merge(&loaded, &opts).expect("merge")
            });
            merge.push(t);
            assert!(
                merged.to_bytes() == one,
                "{name}: merge differs from the one-shot build"
            );
            if round == 0 {
                redone = redone_shards(&files, &merged);
            }
        }
        let show = |v: &[Timed]| -> String {
            if v.is_empty() {
                return "-".into();
            }
            let t = median_timed(v);
            format!("{:.2}s / {:.2}s", t.wall.as_secs_f64(), t.cpu.as_secs_f64())
        };
        let ratio =
            median_timed(&merge).wall.as_secs_f64() / median_timed(&one_shot).wall.as_secs_f64();
        println!(
            "{:<12} {:>6} {:>9} {:>17} {:>17} {:>17} {:>17} {:>12.3}",
            name,
            picked.len(),
            functions,
            show(&one_shot),
            show(&pre_linked),
            show(&partials),
            show(&merge),
            ratio
        );
        notes.push(format!(
            "{name}: merge extracted {} of {} shards again (constants from other inputs), from {} inputs",
            redone.0, redone.1, redone.2
        ));
    }
    for n in notes {
        println!("{n}");
    }
}

/// How many of `merged`'s shards differ from the ones their partial holds, of how many, and in how many inputs.
fn redone_shards(files: &[PathBuf], merged: &Summary) -> (usize, usize, usize) {
    let (mut redone, mut inputs) = (0, 0);
    for f in files {
        let p = Summary::load(f).expect("load");
        let mut here = 0;
        for g in p.index().functions.iter().filter(|g| g.shard.is_some()) {
            let Some(m) = merged.index().function(&g.name) else {
                continue;
            };
            if m.shard.is_some()
                && m.linkage == g.linkage
                && p.shard(g).ok() != merged.shard(m).ok()
            {
                here += 1;
            }
        }
        redone += here;
        inputs += usize::from(here > 0);
    }
    let total = merged
        .index()
        .functions
        .iter()
        .filter(|f| f.shard.is_some())
        .count();
    (redone, total, inputs)
}
