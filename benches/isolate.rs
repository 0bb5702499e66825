//! Isolated compilation (issue 15): per-script cost of optimizing and compiling in a warm `thinjit-worker`
//! process against doing it in-process, for the bundled bench scripts, JIT-resident over the bundled helpers,
//! with the isolated round trip broken down step by step.
//!
//! `cargo bench -p thinjit-cli --bench isolate` (release). `THINJIT_BENCH_ITERS` sets the iterations (default
//! 300); `THINJIT_BENCH_SCRIPTS=seed,mix` limits the scripts. Each iteration adds the script (parse, verify,
//! import, O3, codegen, link), looks its entry up and removes it, once in each engine; the two engines
//! alternate so that machine noise hits both. Prints, per script, the median of the whole add in both engines
//! and of the optimize + codegen part (the part isolation replaces), then the median of each step of the
//! isolated round trip (the figures in `docs/robustness.md` come from here).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use thinjit::jit::{Engine, EngineBuilder, IsolatedTimes, Isolation, ScriptReport};
use thinjit::summary::{BuildOptions, Summary};
use thinjit_cli::bench::with_bundled_host;

fn engine(summary: &Arc<Summary>, isolate: bool) -> Engine {
    let mut builder = with_bundled_host(EngineBuilder::new().summary(Arc::clone(summary)));
    if isolate {
        builder =
            builder.isolate_codegen(Isolation::new().worker(env!("CARGO_BIN_EXE_thinjit-worker")));
    }
    builder.build().expect("engine")
}

/// Adds, looks up and removes the script: the whole time and the script's report.
fn once(engine: &Engine, name: &str, script: &[u8], entry: &str) -> (Duration, ScriptReport) {
    let start = Instant::now();
    let handle = engine.add_script(name, script).expect("add");
    engine.lookup_address(entry).expect("lookup");
    let elapsed = start.elapsed();
    let report = handle.report().expect("report");
    handle.remove().expect("remove");
    (elapsed, report)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The steps of an isolated compile, in the order they happen.
const STEPS: [(&str, fn(&IsolatedTimes) -> Duration); 10] = [
    ("host: write bitcode", |t| t.write_bitcode),
    ("host: encode + pipe write", |t| t.send),
    ("worker: decode request", |t| t.worker_decode),
    ("worker: context + target machine", |t| t.worker_setup),
    ("worker: parse bitcode", |t| t.worker_parse),
    ("worker: optimize", |t| t.worker_optimize),
    ("worker: codegen", |t| t.worker_codegen),
    ("worker: other (IR text, symbols, free)", |t| t.worker_other),
    ("pipes + wake-ups + worker reply", |t| t.transfer),
    ("host: decode response", |t| t.receive),
];

fn main() {
    let iters: usize = std::env::var("THINJIT_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let only: Option<Vec<String>> = std::env::var("THINJIT_BENCH_SCRIPTS")
        .ok()
        .map(|s| s.split(',').map(str::to_owned).collect());
    let dir = Path::new(env!("THINJIT_HELPERS_BC_DIR"));
    let mut inputs: Vec<_> = std::fs::read_dir(dir)
        .expect("helpers")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "bc"))
        .collect();
    inputs.sort();
    let summary = Arc::new(Summary::build(&inputs, &BuildOptions::default()).expect("summary"));
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let scripts = [
        ("seed", "benches/scripts/seed.ll", "f_WRAPPED"),
        ("mix", "benches/scripts/mix.ll", "bench_main"),
    ];
    let in_process = engine(&summary, false);
    let isolated = engine(&summary, true);
    println!(
        "isolated compilation overhead: median of {iters} add + lookup + remove per script and engine, \
         alternating (one warm worker)\n"
    );
    let mut breakdowns = Vec::new();
    println!(
        "| script | in-process add | isolated add | added | in-process optimize + codegen | isolated \
         optimize + codegen stage | added |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, path, entry) in scripts {
        if only.as_ref().is_some_and(|o| !o.iter().any(|s| s == name)) {
            continue;
        }
        let source = std::fs::read(root.join(path)).expect("script");
        // Warm both (pooled contexts and target machines, the worker's caches).
        for _ in 0..10 {
            once(&in_process, name, &source, entry);
            once(&isolated, name, &source, entry);
        }
        let (mut total_a, mut total_b) = (Vec::new(), Vec::new());
        let (mut stage_a, mut stage_b) = (Vec::new(), Vec::new());
        let mut steps: Vec<Vec<Duration>> = vec![Vec::new(); STEPS.len()];
        let mut sizes = (0, 0);
        for _ in 0..iters {
            let (t, r) = once(&in_process, name, &source, entry);
            total_a.push(t);
            stage_a.push(r.times.optimize + r.times.codegen);
            let (t, r) = once(&isolated, name, &source, entry);
            total_b.push(t);
            // The codegen stage covers the whole round trip (the worker's optimize is inside it).
            stage_b.push(r.times.codegen);
            let iso = r.isolated.expect("isolated times");
            for (i, (_, get)) in STEPS.iter().enumerate() {
                steps[i].push(get(&iso));
            }
            sizes = (iso.bitcode_bytes, iso.object_bytes);
        }
        let (a, b) = (median(total_a), median(total_b));
        let (sa, sb) = (median(stage_a), median(stage_b));
        println!(
            "| {name} | {:.3} ms | {:.3} ms | {:+.3} ms | {:.3} ms | {:.3} ms | {:+.3} ms |",
            ms(a),
            ms(b),
            ms(b) - ms(a),
            ms(sa),
            ms(sb),
            ms(sb) - ms(sa),
        );
        breakdowns.push((name, steps, sizes));
    }
    for (name, steps, (bitcode, object)) in breakdowns {
        println!(
            "\n{name}: isolated round trip, median per step ({bitcode} bytes of bitcode out, {object} bytes \
             of object back)\n"
        );
        println!("| step | median |");
        println!("|---|---:|");
        for ((label, _), values) in STEPS.iter().zip(steps) {
            println!("| {label} | {:.3} ms |", ms(median(values)));
        }
    }
}
