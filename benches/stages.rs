//! Criterion micro-benchmarks of each stage of thinjit's per-script path, with inputs prepared outside the
//! timed region: load summary, plan, import, O3, materialize. On the bundled helpers (script `arith`) and a
//! synthetic 10k-function library (a script calling 3 helpers). `cargo bench --bench stages`.
//!
//! Summaries are built once into `target/thinjit-bench/cache` (shared with `benches/strategies.rs`).

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use thinjit::import::{self, ImportConfig};
use thinjit::llvm::{CodeGenOpt, Context, Module, TargetMachine};
use thinjit::summary::Summary;
use thinjit_cli::bench::{self, PreparedLibrary, Runtime, Strategy, Workload};

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
    let tm = TargetMachine::host(CodeGenOpt::Default).expect("target machine");
    let strategy = Strategy::Summary {
        import_instr_limit: 100,
    };
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
            b.iter(|| import::plan(lib.summary.index(), &symbols, &config))
        });

        group.bench_function("import", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let ctx = Context::new();
                    let mut m =
                        Module::parse_ir(&ctx, script.ir.as_bytes(), &script.name).expect("parse");
                    let t = Instant::now();
                    import::import(&mut m, &lib.summary, &config).expect("import");
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
                    let mut imported =
                        bench::import_script(&ctx, &script.name, &script.ir, strategy, &lib, &tm)
                            .expect("import");
                    total += bench::optimize_script(&mut imported.module, &tm).expect("O3");
                }
                total
            })
        });

        let mut rt = Runtime::new(&lib).expect("runtime");
        let mut k = 0usize;
        group.bench_function("materialize", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    k += 1;
                    // A fresh name per copy: every copy stays loaded in the one JIT.
                    let ir = script
                        .ir
                        .replace("@bench_main(", &format!("@bench_main.m{k}("))
                        .replace("@script_main(", &format!("@script_main.m{k}("));
                    let ctx = Context::new();
                    let compiled =
                        bench::compile_script(&ctx, &script.name, &ir, strategy, &lib, &tm)
                            .expect("compile");
                    let (_, elapsed) = rt
                        .add_script(compiled.module, &format!("bench_main.m{k}"))
                        .expect("materialize");
                    total += elapsed;
                }
                total
            })
        });
        group.finish();
    }
}

criterion_group!(benches, stages);
criterion_main!(benches);
