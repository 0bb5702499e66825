//! Criterion micro-benchmarks of each stage of thinjit's per-script path, with inputs prepared outside the
//! timed region: load summary, plan, import, O3 (the library's own stage functions), and the whole
//! `Engine::add_script` as the strategies harness measures it. On the bundled helpers (script `arith`) and a
//! synthetic 10k-function library (a script calling 3 helpers). `cargo bench --bench stages`.
//!
//! Summaries are built once into `target/thinjit-bench/cache` (shared with `benches/strategies.rs`).

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use thinjit::import::{self, ImportConfig};
use thinjit::jit::RuntimeMode;
use thinjit::llvm::{CodeGenOpt, Context, Module, TargetMachine};
use thinjit::optimize::{self, OptLevel};
use thinjit::summary::Summary;
use thinjit_cli::bench::{self, Host, PreparedLibrary, StrategySpec, Workload};

fn cache() -> std::path::PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("target/thinjit-bench/cache")
}

fn prepare(name: &str) -> (Workload, PreparedLibrary) {
    let workload = bench::workload_by_name(name, 0.01, &bench::workspace_manifest(), &cache())
        .expect("workload");
    let lib = bench::prepare_library(&workload, &cache()).expect("summary");
    (workload, lib)
}

fn stages(c: &mut Criterion) {
    let tm = TargetMachine::host(CodeGenOpt::Aggressive).expect("target machine");
    for name in ["helpers", "synth-10k"] {
        let (workload, lib) = prepare(name);
        let script = if name == "helpers" {
            workload.scripts.iter().find(|s| s.name == "arith")
        } else {
            workload.scripts.first()
        }
        .expect("script")
        .clone();
        let mut group = c.benchmark_group(format!("stages/{name}"));
        group.sample_size(20);

        let path = bench::summary_path(&cache(), name);
        group.bench_function("load summary", |b| {
            b.iter(|| Summary::load(&path).expect("load"))
        });

        let ctx = Context::new();
        let module = Module::parse_ir(&ctx, script.ir.as_bytes(), &script.name).expect("parse");
        let symbols = import::script_symbols(&module);
        let config = ImportConfig::default();
        group.bench_function("plan", |b| {
            b.iter(|| {
                import::plan(
                    lib.summary.index(),
                    &symbols,
                    &config,
                    RuntimeMode::JitResident,
                )
            })
        });

        group.bench_function("import", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let ctx = Context::new();
                    let mut m =
                        Module::parse_ir(&ctx, script.ir.as_bytes(), &script.name).expect("parse");
                    let t = Instant::now();
                    import::import(&mut m, &*lib.summary, &config, RuntimeMode::JitResident)
                        .expect("import");
                    total += t.elapsed();
                }
                total
            })
        });

        group.bench_function("O3", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let ctx = Context::new();
                    let mut m =
                        Module::parse_ir(&ctx, script.ir.as_bytes(), &script.name).expect("parse");
                    import::import(&mut m, &*lib.summary, &config, RuntimeMode::JitResident)
                        .expect("import");
                    let t = Instant::now();
                    optimize::optimize(&mut m, &tm, OptLevel::O3).expect("O3");
                    total += t.elapsed();
                }
                total
            })
        });

        // The whole per-script pipeline as the strategies harness measures it: add, then remove.
        let engine = bench::engine_builder(&lib, StrategySpec::summary(100), &Host::bundled())
            .build()
            .expect("engine");
        group.bench_function("Engine::add_script", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let handle = engine
                        .add_script(&script.name, script.ir.as_bytes())
                        .expect("add_script");
                    total += t.elapsed();
                    handle.remove().expect("remove");
                }
                total
            })
        });
        group.finish();
    }
}

criterion_group!(benches, stages);
criterion_main!(benches);
