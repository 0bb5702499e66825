//! Import cost against helper libraries of growing size (issues 5 and 17).
//!
//! First table (issue 17): cost per imported function. A `flat` library (each root imports exactly itself), scripts
//! calling 1, 10 and 40 roots, libraries of 1k and 100k functions (`THINJIT_BENCH_PER_FUNCTION_SIZES`): per
//! imported function, the medians of parse, link, parse + link and the whole import in a fresh context; the
//! link stage alone with one `Linker` per shard against one for all (same shards, same process); and parse and
//! parse + link in one context reused across scripts with its module cache (what the engine's eager path does);
//! and the same shards read alone in a fresh context, as written (only the metadata kinds they attach) and
//! with LLVM's whole kind table, interleaved.
//! `THINJIT_BENCH_ONLY_PER_FUNCTION=1` stops after it; `THINJIT_BENCH_SKIP_PER_FUNCTION=1` skips it.
//!
//! Second table (issue 5): plan + import time per script for a script that imports a handful of helpers, against
//! generated libraries of 1k, 10k and 100k functions. Two libraries per size: `chain`, generated here with exact
//! sizes so every script imports the same 9 functions whatever the library size, and `synth`
//! ([`thinjit_cli::synth`], shaped like a real runtime; the script calls 3 random helpers, so what gets imported
//! varies with the library).
//!
//! `cargo bench --bench import` (release). Sizes can be overridden with `THINJIT_BENCH_SIZES=1000,10000`;
//! iterations with `THINJIT_BENCH_ITERS`.
//!
//! Measured (release, 2 cores shared with other jobs, LLVM 19.1.7, 200 iterations), per imported function, µs:
//!
//! | library functions | imported | parse + link (fresh context) | link: a Linker per shard | link: one Linker | parse + link (reused context) |
//! |---:|---:|---:|---:|---:|---:|
//! | 1,000 | 1 | 40.7 | 7.3 | 7.1 | 14.0 |
//! | 1,000 | 10 | 36.5 | 8.6 | 6.6 | 14.4 |
//! | 1,000 | 40 | 38.4 | 14.3 | 6.9 | 14.9 |
//! | 100,000 | 1 | 40.9 | 7.4 | 7.2 | 14.2 |
//! | 100,000 | 10 | 38.1 | 8.8 | 6.8 | 15.5 |
//! | 100,000 | 40 | 38.7 | 14.6 | 7.3 | 16.0 |
//!
//! Per script (second table): the same 9 imports cost 465, 472 and 484 µs against 1k, 10k and 100k functions
//! (flat, 1.04×); of that, parsing the 9 shards ~340 µs and linking ~90 µs. See docs/performance.md.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use thinjit::import::{import, plan, script_symbols, ImportConfig};
use thinjit::jit::RuntimeMode;
use thinjit::llvm::{Context, Module};
use thinjit::summary::{BuildOptions, Summary};
use thinjit_cli::synth;

/// A library of `n` functions `lib_<i>`: even ones have 10 instructions, odd ones 60, and each calls the next.
/// From a root `lib_<k>` (k even) LLVM's thresholds 100 -> 70 -> 49 -> 34 import `lib_k`, `lib_k+1` and
/// `lib_k+2` and refuse `lib_k+3`: three imports per root.
fn generate_library(n: usize) -> String {
    let mut s = String::with_capacity(n * 400);
    s.push_str("target datalayout = \"e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128\"\n");
    s.push_str("target triple = \"x86_64-pc-linux-gnu\"\n\n");
    for i in 0..n {
        let next = (i + 1) % n;
        let size = if i % 2 == 0 { 10 } else { 60 };
        writeln!(s, "define i32 @lib_{i}(i32 %x) {{").unwrap();
        writeln!(s, "  %c = call i32 @lib_{next}(i32 %x)").unwrap();
        let mut v = "%c".to_owned();
        for k in 0..size - 2 {
            writeln!(s, "  %a{k} = add i32 {v}, {}", k + i).unwrap();
            v = format!("%a{k}");
        }
        writeln!(s, "  ret i32 {v}\n}}\n").unwrap();
    }
    s
}

/// A library of `n` functions `lib_<i>` where every even function (12 instructions) calls the next odd one
/// (150 instructions, over the evolved threshold of 70): a root `lib_<k>` (k even) imports exactly itself, so a
/// script calling `r` roots imports `r` functions whatever the library size.
fn generate_flat_library(n: usize) -> String {
    let mut s = String::with_capacity(n * 1000);
    s.push_str("target datalayout = \"e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128\"\n");
    s.push_str("target triple = \"x86_64-pc-linux-gnu\"\n\n");
    for i in 0..n {
        let next = (i + 1) % n;
        let size = if i % 2 == 0 { 12 } else { 150 };
        writeln!(s, "define i32 @lib_{i}(i32 %x) {{").unwrap();
        if i % 2 == 0 {
            writeln!(s, "  %c = call i32 @lib_{next}(i32 %x)").unwrap();
        } else {
            writeln!(s, "  %c = add i32 %x, 1").unwrap();
        }
        let mut v = "%c".to_owned();
        for k in 0..size - 2 {
            writeln!(s, "  %a{k} = add i32 {v}, {}", k + i).unwrap();
            v = format!("%a{k}");
        }
        writeln!(s, "  ret i32 {v}\n}}\n").unwrap();
    }
    s
}

/// A script calling `roots` helpers spread over the library.
fn generate_script(n: usize, roots: usize) -> String {
    let mut s = String::new();
    let picks: Vec<usize> = (0..roots).map(|r| (r * n / roots) & !1).collect();
    for p in &picks {
        writeln!(s, "declare i32 @lib_{p}(i32)").unwrap();
    }
    s.push_str("\ndefine i32 @script(i32 %x) {\n");
    let mut v = "%x".to_owned();
    for (k, p) in picks.iter().enumerate() {
        writeln!(s, "  %r{k} = call i32 @lib_{p}(i32 {v})").unwrap();
        v = format!("%r{k}");
    }
    writeln!(s, "  ret i32 {v}\n}}").unwrap();
    s
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

/// Measures one (library, script) pair and prints a table row.
fn measure(kind: &str, n: usize, library: String, script: &str, iters: usize, dir: &Path) {
    let config = ImportConfig::default();
    let lib = dir.join(format!("{kind}_{n}.ll"));
    std::fs::write(&lib, library).expect("write library");
    let t = Instant::now();
    let built = Summary::build(&[lib], &BuildOptions::default()).expect("build summary");
    let build_time = t.elapsed();
    let file = dir.join(format!("{kind}_{n}.thinjit"));
    built.write(&file).expect("write summary");
    drop(built);
    let t = Instant::now();
    let summary = Summary::load(&file).expect("load summary");
    let load_time = t.elapsed();

    let mut plan_times = Vec::with_capacity(iters);
    let mut import_times = Vec::with_capacity(iters);
    let mut stages: [Vec<Duration>; 5] = Default::default();
    let mut imported = 0;
    for _ in 0..iters {
        let ctx = Context::new();
        let mut m = Module::parse_ir(&ctx, script.as_bytes(), "script").expect("parse script");
        let t = Instant::now();
        let p = plan(
            summary.index(),
            &script_symbols(&m),
            &config,
            RuntimeMode::JitResident,
        );
        plan_times.push(t.elapsed());
        let t = Instant::now();
        let report = import(&mut m, &summary, &config, RuntimeMode::JitResident).expect("import");
        import_times.push(t.elapsed());
        imported = report.totals.imported_functions;
        assert_eq!(imported, p.functions.len());
        let t = report.times;
        for (k, d) in [t.verify, t.plan, t.parse_shards, t.link, t.stamp]
            .into_iter()
            .enumerate()
        {
            stages[k].push(d);
        }
    }
    plan_times.sort();
    import_times.sort();
    let breakdown: Vec<String> = stages
        .iter_mut()
        .map(|v| {
            v.sort();
            us(percentile(v, 0.5))
        })
        .collect();
    println!(
        "| {kind} | {n} | {:.2} | {:.2} | {imported} | {} | {} | {} | {} |",
        build_time.as_secs_f64(),
        load_time.as_secs_f64() * 1e3,
        us(percentile(&plan_times, 0.5)),
        us(percentile(&import_times, 0.5)),
        us(percentile(&import_times, 0.9)),
        breakdown.join(" / "),
    );
}

/// Per-imported-function cost: scripts importing 1, 10 and 40 functions from a `flat` library of `n`
/// functions; prints (parse + link) ÷ imported and the whole import ÷ imported (medians).
fn per_function(n: usize, iters: usize, dir: &Path) {
    let lib = dir.join(format!("flat_{n}.ll"));
    std::fs::write(&lib, generate_flat_library(n)).expect("write library");
    let built = Summary::build(&[lib], &BuildOptions::default()).expect("build summary");
    let file = dir.join(format!("flat_{n}.thinjit"));
    built.write(&file).expect("write summary");
    drop(built);
    let summary = Summary::load(&file).expect("load summary");
    let config = ImportConfig::default();
    for roots in [1usize, 10, 40] {
        let script = generate_script(n, roots);
        let mut parse_link = Vec::with_capacity(iters);
        let mut whole = Vec::with_capacity(iters);
        let mut parse = Vec::with_capacity(iters);
        let mut link = Vec::with_capacity(iters);
        let mut imported = 0;
        for _ in 0..iters {
            let ctx = Context::new();
            let mut m = Module::parse_ir(&ctx, script.as_bytes(), "script").expect("parse script");
            let t = Instant::now();
            let report =
                import(&mut m, &summary, &config, RuntimeMode::JitResident).expect("import");
            whole.push(t.elapsed());
            imported = report.totals.imported_functions;
            parse.push(report.times.parse_shards);
            link.push(report.times.link);
            parse_link.push(report.times.parse_shards + report.times.link);
        }
        assert_eq!(imported, roots, "each root imports exactly itself");
        // The same scripts in one context reused across scripts, with its module cache (the engine's eager
        // path): shards are parsed on first use and copied after that.
        let mut parse_reused = Vec::with_capacity(iters);
        let mut parse_link_reused = Vec::with_capacity(iters);
        let reused = Context::new();
        reused.enable_module_cache();
        for _ in 0..iters {
            let mut m =
                Module::parse_ir(&reused, script.as_bytes(), "script").expect("parse script");
            let report =
                import(&mut m, &summary, &config, RuntimeMode::JitResident).expect("import");
            parse_reused.push(report.times.parse_shards);
            parse_link_reused.push(report.times.parse_shards + report.times.link);
        }
        assert_eq!(reused.module_cache_stats().misses, roots as u64);
        // Link stage alone, side by side: one `Linker` per shard (LLVMLinkModules2) against one for all.
        let planned: Vec<String> = {
            let ctx = Context::new();
            let m = Module::parse_ir(&ctx, script.as_bytes(), "script").expect("parse script");
            plan(
                summary.index(),
                &script_symbols(&m),
                &config,
                RuntimeMode::JitResident,
            )
            .functions
            .into_iter()
            .map(|f| f.name)
            .collect()
        };
        let mut each = Vec::with_capacity(iters);
        let mut all = Vec::with_capacity(iters);
        for i in 0..iters * 2 {
            let ctx = Context::new();
            let mut m = Module::parse_ir(&ctx, script.as_bytes(), "script").expect("parse script");
            let shards: Vec<Module<'_>> = planned
                .iter()
                .map(|name| {
                    let f = summary.index().function(name).expect("planned function");
                    Module::parse_bitcode(&ctx, summary.shard(f).expect("shard"), name)
                        .expect("parse")
                })
                .collect();
            let t = Instant::now();
            if i % 2 == 0 {
                for shard in shards {
                    m.link_in(shard).expect("link");
                }
                each.push(t.elapsed());
            } else {
                m.link_in_all(shards).expect("link");
                all.push(t.elapsed());
            }
        }
        // Reading the same shards alone in a fresh context, as written (only the metadata kinds they
        // attach) and with LLVM's whole kind table (as shards were written before), interleaved.
        let untrimmed: Vec<Vec<u8>> = planned
            .iter()
            .map(|name| {
                let f = summary.index().function(name).expect("planned function");
                let ctx = Context::new();
                let m = Module::parse_bitcode(&ctx, summary.shard(f).expect("shard"), name)
                    .expect("parse");
                m.write_bitcode()
            })
            .collect();
        let mut read_trimmed = Vec::with_capacity(iters);
        let mut read_full = Vec::with_capacity(iters);
        for i in 0..iters * 2 {
            let ctx = Context::new();
            let t = Instant::now();
            for (k, name) in planned.iter().enumerate() {
                let bytes = if i % 2 == 0 {
                    summary
                        .shard(summary.index().function(name).expect("planned"))
                        .expect("shard")
                } else {
                    &untrimmed[k][..]
                };
                drop(Module::parse_bitcode(&ctx, bytes, name).expect("parse"));
            }
            if i % 2 == 0 {
                read_trimmed.push(t.elapsed());
            } else {
                read_full.push(t.elapsed());
            }
        }
        read_trimmed.sort();
        read_full.sort();
        each.sort();
        all.sort();
        for v in [
            &mut parse_link,
            &mut whole,
            &mut parse,
            &mut link,
            &mut parse_reused,
            &mut parse_link_reused,
        ] {
            v.sort();
        }
        let per = |v: &[Duration]| us(percentile(v, 0.5) / imported as u32);
        println!(
            "| {n} | {imported} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            per(&parse),
            per(&link),
            per(&parse_link),
            per(&whole),
            per(&each),
            per(&all),
            per(&parse_reused),
            per(&parse_link_reused),
            per(&read_full),
            per(&read_trimmed),
        );
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::var("THINJIT_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000]);
    let iters: usize = std::env::var("THINJIT_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::TempDir::new().expect("temp dir");
    if std::env::var_os("THINJIT_BENCH_SKIP_PER_FUNCTION").is_none() {
        let per_sizes: Vec<usize> = std::env::var("THINJIT_BENCH_PER_FUNCTION_SIZES")
            .ok()
            .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![1_000, 100_000]);
        println!("Per imported function (medians, µs; goal: parse + link ≤ 25 µs, flat in library size)\n");
        println!(
            "| library functions | imported | parse | link | parse + link | whole import | link: a Linker per shard | link: one Linker | parse, reused context | parse + link, reused context | read alone: LLVM's kind table | read alone: shard's kinds |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for &n in &per_sizes {
            per_function(n, iters, dir.path());
        }
        println!();
    }
    if std::env::var_os("THINJIT_BENCH_ONLY_PER_FUNCTION").is_some() {
        return;
    }
    println!(
        "| library | functions | summary build (s) | summary load (ms) | imported | plan median (µs) | import median (µs) | import p90 (µs) | verify / plan / parse / link / stamp medians (µs) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for &n in &sizes {
        measure(
            "chain",
            n,
            generate_library(n),
            &generate_script(n, 3),
            iters,
            dir.path(),
        );
        measure(
            "synth",
            n,
            synth::generate_library(n, 1),
            &synth::generate_script(n, 3, 1),
            iters,
            dir.path(),
        );
    }
}
