//! Isolated compilation (issue 15): per-script cost of optimizing and compiling in a warm `thinjit-worker`
//! process against doing it in-process, for the seed script and a larger one, JIT-resident over the bundled
//! helpers.
//!
//! `cargo bench --bench isolate` (release). `THINJIT_BENCH_ITERS` sets the iterations (default 300). Each
//! iteration adds the script (import, O3, codegen, link), looks its entry up and removes it; the two engines
//! alternate so that machine noise hits both. Prints medians and the difference (the figures in
//! `docs/robustness.md` come from here).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use thinjit::jit::{Engine, EngineBuilder, Isolation};
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

fn once(engine: &Engine, name: &str, script: &[u8], entry: &str) -> Duration {
    let start = Instant::now();
    let handle = engine.add_script(name, script).expect("add");
    engine.lookup_address(entry).expect("lookup");
    let elapsed = start.elapsed();
    handle.remove().expect("remove");
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let iters: usize = std::env::var("THINJIT_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
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
        ("mix", "benches/scripts/mix.ll", "main"),
    ];
    let in_process = engine(&summary, false);
    let isolated = engine(&summary, true);
    println!("| script | in-process | isolated (warm worker) | added |");
    println!("|---|---:|---:|---:|");
    for (name, path, entry) in scripts {
        let source = std::fs::read(root.join(path)).expect("script");
        // Warm both (pooled target machines, the worker's target machine).
        for _ in 0..10 {
            once(&in_process, name, &source, entry);
            once(&isolated, name, &source, entry);
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..iters {
            a.push(once(&in_process, name, &source, entry));
            b.push(once(&isolated, name, &source, entry));
        }
        let (a, b) = (median(a), median(b));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| {name} | {:.3} ms | {:.3} ms | {:+.3} ms |",
            ms(a),
            ms(b),
            ms(b) - ms(a)
        );
    }
}
