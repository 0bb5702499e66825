//! Per-script compile latency, stage by stage, `none` against `summary` (issue 17's "against no import"
//! goal), with optimize/codegen variants measured side by side in one process.
//!
//! For every script of the chosen workloads (default: the bundled helpers and `synth-1k`; override with
//! `THINJIT_BENCH_WORKLOADS=helpers,synth-10k,sqlite`), each iteration parses the script into a fresh context
//! and runs, for each variant in turn (interleaved, so machine noise hits all of them alike): import (summary
//! variants), optimize, code generation to an object. Prints per-stage medians, the compile total and the
//! ratio to `none`. Every summary variant must leave exactly the same helper calls behind as the baseline
//! (`summary`, today's pipeline): a variant that buys speed by inlining less aborts the bench.
//!
//! Compile stages are timed in CPU time of the compiling thread (see [`Cpu`]), run times in wall time.
//!
//! `cargo bench --bench pipeline` (release). `THINJIT_BENCH_ITERS` (default 30).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use thinjit::import::{self, ImportConfig};
use thinjit::jit::RuntimeMode;
use thinjit::jit::Strategy;
use thinjit::llvm::{CodeGenOpt, Context, Linkage, Module, PassOptions, TargetMachine};
use thinjit::optimize::{optimize, OptLevel};
use thinjit::summary::Summary;
use thinjit_cli::bench::{self, PreparedLibrary, StrategySpec, Workload};

fn cache() -> std::path::PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join("target/thinjit-bench/cache")
}

/// One way to compile a script.
struct Variant {
    name: &'static str,
    import: bool,
    /// `None`: [`optimize`] (what the engine runs).
    pipeline: Option<&'static str>,
    /// Run `default<O3>` on the script before the import (then `pipeline` after it).
    pre_o3: bool,
    codegen: CodeGenOpt,
    /// Build the code generation pipeline for this module alone (LLVM's C API, what the engine did before its
    /// target machines reused one).
    fresh_codegen: bool,
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "none",
        import: false,
        pipeline: None,
        pre_o3: false,
        codegen: CodeGenOpt::Aggressive,
        fresh_codegen: false,
    },
    Variant {
        name: "summary",
        import: true,
        pipeline: None,
        pre_o3: false,
        codegen: CodeGenOpt::Aggressive,
        fresh_codegen: false,
    },
    Variant {
        name: "summary, codegen O2",
        import: true,
        pipeline: None,
        pre_o3: false,
        codegen: CodeGenOpt::Default,
        fresh_codegen: false,
    },
    Variant {
        name: "O3 first, inline + light",
        import: true,
        pipeline: Some("cgscc(inline),elim-avail-extern,globaldce,function(sroa,early-cse,instcombine,simplifycfg)"),
        pre_o3: true,
        codegen: CodeGenOpt::Aggressive,
        fresh_codegen: false,
    },
    Variant {
        name: "O3 first, inline + medium",
        import: true,
        pipeline: Some("cgscc(inline),elim-avail-extern,globaldce,function(sroa,early-cse<memssa>,instcombine,simplifycfg,gvn,dse,instcombine,simplifycfg)"),
        pre_o3: true,
        codegen: CodeGenOpt::Aggressive,
        fresh_codegen: false,
    },
    Variant {
        name: "none, codegen pipeline per module",
        import: false,
        pipeline: None,
        pre_o3: false,
        codegen: CodeGenOpt::Aggressive,
        fresh_codegen: true,
    },
    Variant {
        name: "summary, codegen pipeline per module",
        import: true,
        pipeline: None,
        pre_o3: false,
        codegen: CodeGenOpt::Aggressive,
        fresh_codegen: true,
    },
];

#[derive(Default)]
struct Times {
    import: Vec<Duration>,
    optimize: Vec<Duration>,
    codegen: Vec<Duration>,
    verify: Vec<Duration>,
    total: Vec<Duration>,
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`): on a machine shared with other jobs, time
/// spent waiting for a core does not count.
#[derive(Clone, Copy)]
struct Cpu(cpu_time::ThreadTime);

impl Cpu {
    fn now() -> Cpu {
        Cpu(cpu_time::ThreadTime::now())
    }

    fn elapsed(self) -> Duration {
        self.0.elapsed()
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// Helper functions still called from the optimized module (promoted names without their hash).
fn helper_calls(m: &Module<'_>, summary: &Summary) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in m.functions().filter(|f| !f.is_declaration()) {
        for inst in f.instructions() {
            if let Some(callee) = inst.called_function() {
                let name = callee.name();
                if summary.index().function(&name).is_some() {
                    out.insert(name.split(".llvm.").next().unwrap_or(&name).to_owned());
                }
            }
        }
    }
    out
}

/// Compiles `ir` with variant `v` (import, optimize) and returns the optimized module.
fn compile<'c>(
    ctx: &'c Context,
    ir: &str,
    name: &str,
    v: &Variant,
    tm: &TargetMachine,
    summary: &Summary,
) -> Module<'c> {
    let mut m = Module::parse_ir(ctx, ir.as_bytes(), name).expect("parse");
    if v.pre_o3 {
        m.set_triple(tm.triple());
        m.set_data_layout(&tm.data_layout());
        m.run_passes("default<O3>", Some(tm), &PassOptions::default())
            .expect("O3");
    }
    if v.import {
        import::import(
            &mut m,
            summary,
            &ImportConfig::default(),
            RuntimeMode::JitResident,
        )
        .expect("import");
    }
    match v.pipeline {
        None => optimize(&mut m, tm, OptLevel::O3).expect("optimize"),
        Some(p) => m
            .run_passes(p, Some(tm), &PassOptions::default())
            .expect("passes"),
    }
    m
}

/// Run time of each variant's code (median of 5 calls of `bench_main(iterations)`), checked against the
/// script's expected result. Each variant's object (its own code generation) is added to one engine holding the
/// helper runtime once.
fn run_times(
    lib: &PreparedLibrary,
    script: &thinjit_cli::bench::workload::Script,
    machines: &[TargetMachine],
) -> Vec<Duration> {
    let engine = bench::engine_builder(
        lib,
        StrategySpec::new(Strategy::None),
        &bench::Host::bundled(),
    )
    .build()
    .expect("engine");
    let mut out = Vec::new();
    let mut first: Option<i64> = None;
    for (k, v) in VARIANTS.iter().enumerate() {
        let entry = format!("bench_main.v{k}");
        let ir = script
            .ir
            .replace("@bench_main(", &format!("@{entry}("))
            .replace("@script_main(", &format!("@script_main.v{k}("));
        let ctx = Context::new();
        let m = compile(&ctx, &ir, &script.name, v, &machines[k], &lib.summary);
        // Every variant's copy lives in the one JIT: only the renamed entry stays external.
        for f in m
            .functions()
            .filter(|f| !f.is_declaration() && f.name() != entry)
        {
            f.set_linkage(Linkage::Internal);
        }
        for g in m
            .globals()
            .filter(|g| !g.is_declaration() && !g.name().starts_with("llvm."))
        {
            g.set_linkage(Linkage::Internal);
        }
        let object = machines[k].emit_object(&m).expect("codegen");
        let handle = engine
            .add_object(&format!("{}.v{k}", script.name), &object)
            .expect("add object");
        let f = handle
            .lookup::<extern "C" fn(i64) -> i64>(&entry)
            .expect("entry");
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            // SAFETY: every bundled script's entry is `i64 bench_main(i64)`; `handle` keeps the code loaded.
            let r = unsafe { f.call(script.iterations) };
            times.push(t.elapsed());
            match (script.expected, first) {
                (Some(e), _) => assert_eq!(r, e, "{}: variant `{}`", script.name, v.name),
                (None, Some(f)) => assert_eq!(r, f, "{}: variant `{}`", script.name, v.name),
                (None, None) => first = Some(r),
            }
        }
        out.push(median(&mut times));
    }
    out
}

fn run_workload(workload: &Workload, lib: &PreparedLibrary, iters: usize) {
    let summary = &lib.summary;
    let machines: Vec<TargetMachine> = VARIANTS
        .iter()
        .map(|v| TargetMachine::host(v.codegen).expect("target machine"))
        .collect();
    let config = ImportConfig::default();
    for script in &workload.scripts {
        let mut times: Vec<Times> = VARIANTS.iter().map(|_| Times::default()).collect();
        let mut left: Vec<Option<BTreeSet<String>>> = vec![None; VARIANTS.len()];
        for _ in 0..iters {
            for (k, v) in VARIANTS.iter().enumerate() {
                let tm = &machines[k];
                let ctx = Context::new();
                let mut m =
                    Module::parse_ir(&ctx, script.ir.as_bytes(), &script.name).expect("parse");
                let t = Cpu::now();
                m.verify().expect("verify");
                times[k].verify.push(t.elapsed());
                let start = Cpu::now();
                let mut t_pre = Duration::ZERO;
                if v.pre_o3 {
                    let t = Cpu::now();
                    m.set_triple(tm.triple());
                    m.set_data_layout(&tm.data_layout());
                    m.run_passes("default<O3>", Some(tm), &PassOptions::default())
                        .expect("O3");
                    t_pre = t.elapsed();
                }
                if v.import {
                    import::import(&mut m, &**summary, &config, RuntimeMode::JitResident)
                        .expect("import");
                }
                let t_import = start.elapsed() - t_pre;
                let t = Cpu::now();
                match v.pipeline {
                    None => optimize(&mut m, tm, OptLevel::O3).expect("optimize"),
                    Some(p) => {
                        if m.triple().is_empty() {
                            m.set_triple(tm.triple());
                        }
                        if m.data_layout().is_empty() {
                            m.set_data_layout(&tm.data_layout());
                        }
                        m.run_passes(p, Some(tm), &PassOptions::default())
                            .expect("passes")
                    }
                }
                let t_opt = t.elapsed() + t_pre;
                let t = Cpu::now();
                let object = if v.fresh_codegen {
                    tm.emit_object_fresh_pipeline(&m)
                } else {
                    tm.emit_object(&m)
                }
                .expect("codegen");
                let t_cg = t.elapsed();
                assert!(!object.is_empty());
                times[k].import.push(t_import);
                times[k].optimize.push(t_opt);
                times[k].codegen.push(t_cg);
                times[k].total.push(start.elapsed());
                if v.import && left[k].is_none() {
                    left[k] = Some(helper_calls(&m, summary));
                }
            }
        }
        let baseline = left[1].clone();
        for (k, v) in VARIANTS.iter().enumerate() {
            if v.import {
                assert_eq!(
                    left[k], baseline,
                    "{}/{}: variant `{}` inlines a different set",
                    workload.library, script.name, v.name
                );
            }
        }
        let runs = run_times(lib, script, &machines);
        let none_total = median(&mut times[0].total);
        for (k, v) in VARIANTS.iter().enumerate() {
            let t = &mut times[k];
            let total = median(&mut t.total);
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {} |",
                workload.library,
                script.name,
                v.name,
                ms(median(&mut t.verify)),
                ms(median(&mut t.import)),
                ms(median(&mut t.optimize)),
                ms(median(&mut t.codegen)),
                ms(total),
                total.as_secs_f64() / none_total.as_secs_f64(),
                ms(runs[k]),
            );
        }
    }
}

fn main() {
    let iters: usize = std::env::var("THINJIT_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let scale: f64 = std::env::var("THINJIT_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.1);
    let names =
        std::env::var("THINJIT_BENCH_WORKLOADS").unwrap_or_else(|_| "helpers,synth-1k".into());
    println!("| library | script | variant | verify (ms) | import (ms) | optimize (ms) | codegen (ms) | compile (ms) | ÷ none | run (ms) |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for name in names.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let workload = bench::workload_by_name(name, scale, &bench::workspace_manifest(), &cache())
            .expect("workload");
        let lib = bench::prepare_library(&workload, &cache()).expect("summary");
        run_workload(&workload, &lib, iters);
    }
}
