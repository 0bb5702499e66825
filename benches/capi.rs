//! The C API's overhead (issue 12): `thinjit_import` on the seed script against the Rust API's
//! `thinjit::import::import` on the same module, with the bundled helpers' summary. The C path adds the
//! handle-table checks, `catch_unwind`, borrowing the caller's context and module, and building the C report
//! (its strings); the import itself is the same code.
//!
//! `cargo bench -p thinjit-cli --bench capi` (release). Iterations with `THINJIT_BENCH_ITERS` (default
//! 3000). The two paths run interleaved (Rust, C, Rust, C, ...) on fresh clones of one module so that noise
//! from other jobs hits both alike; prints the median and 90th percentile of each and the ratio of medians.
//! Also times `thinjit_optimize` against `thinjit::import::optimize` on the imported module.
//!
//! Measured: see `docs/capi.md` ("Overhead").

use std::time::{Duration, Instant};

use thinjit::import::{import, ImportConfig};
use thinjit::jit::RuntimeMode;
use thinjit::llvm::{CodeGenOpt, Context, Module, TargetMachine};
use thinjit::optimize::{optimize, OptLevel};
use thinjit::summary::{BuildOptions, Summary};

const SEED: &str = r#"
declare ptr @CreateWrappedValueFromInt(i32) local_unnamed_addr

define noundef i32 @f_() local_unnamed_addr {
  ret i32 23333
}

define ptr @f_WRAPPED(ptr nocapture readnone %0, ptr nocapture readnone %1) local_unnamed_addr {
  %3 = tail call ptr @CreateWrappedValueFromInt(i32 23333)
  ret ptr %3
}
"#;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Runs `rust` and `c` interleaved `iters` times each (after `iters / 10` warm-up rounds); returns their samples.
fn interleaved(
    iters: usize,
    mut rust: impl FnMut() -> Duration,
    mut c: impl FnMut() -> Duration,
) -> (Vec<Duration>, Vec<Duration>) {
    for _ in 0..iters / 10 {
        rust();
        c();
    }
    let mut r = Vec::with_capacity(iters);
    let mut k = Vec::with_capacity(iters);
    for i in 0..iters {
        // Alternate which goes first, so neither always runs on a warmer cache.
        if i % 2 == 0 {
            r.push(rust());
            k.push(c());
        } else {
            k.push(c());
            r.push(rust());
        }
    }
    (r, k)
}

fn row(what: &str, mut rust: Vec<Duration>, mut c: Vec<Duration>) {
    let (rm, rp) = (percentile(&mut rust, 0.5), percentile(&mut rust, 0.9));
    let (cm, cp) = (percentile(&mut c, 0.5), percentile(&mut c, 0.9));
    println!(
        "| {what} | {:.1} | {:.1} | {:.1} | {:.1} | {:.3} |",
        micros(rm),
        micros(rp),
        micros(cm),
        micros(cp),
        cm.as_secs_f64() / rm.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let iters: usize = std::env::var("THINJIT_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let summary = Summary::build(
        &thinjit_cli::bundled::bitcode_files(),
        &BuildOptions::default(),
    )
    .expect("build the bundled helpers' summary");
    let bytes = summary.to_bytes();
    let mut handle = std::ptr::null_mut();
    // SAFETY: valid buffer, name and out-pointer.
    let err = unsafe {
        thinjit_capi::thinjit_summary_load_from_memory(
            bytes.as_ptr().cast(),
            bytes.len(),
            c"helpers".as_ptr(),
            &mut handle,
        )
    };
    assert!(err.is_null());

    let ctx = Context::new();
    let mut template = Module::parse_ir(&ctx, SEED.as_bytes(), "seed").unwrap();
    template.set_triple(&thinjit::llvm::host_triple());
    let config = ImportConfig::default();

    let rust_import = || {
        let mut m = template.clone_module();
        let t = Instant::now();
        let report = import(&mut m, &summary, &config, RuntimeMode::JitResident).unwrap();
        let d = t.elapsed();
        assert_eq!(report.totals.imported_functions, 2);
        d
    };
    let c_import = || {
        let m = template.clone_module();
        let mut report = std::ptr::null_mut();
        let t = Instant::now();
        // SAFETY: a live module used only here; a live summary handle; a valid out-pointer.
        let err = unsafe {
            thinjit_capi::thinjit_import(m.as_raw(), handle, std::ptr::null_mut(), &mut report)
        };
        let d = t.elapsed();
        assert!(err.is_null());
        // SAFETY: the report handle just returned.
        unsafe { thinjit_capi::thinjit_report_dispose(report) };
        d
    };
    println!(
        "C API vs Rust API, seed script, bundled helpers, {iters} iterations each (interleaved)"
    );
    println!();
    println!("| operation | Rust median (µs) | Rust p90 (µs) | C median (µs) | C p90 (µs) | C / Rust (medians) |");
    println!("|---|---:|---:|---:|---:|---:|");
    let (r, c) = interleaved(iters, rust_import, c_import);
    row("import", r, c);

    // Optimize: the same imported module, through each API.
    let mut imported = template.clone_module();
    import(&mut imported, &summary, &config, RuntimeMode::JitResident).unwrap();
    let tm = TargetMachine::host(CodeGenOpt::Aggressive).unwrap();
    let opt_iters = (iters / 5).max(50);
    let rust_opt = || {
        let mut m = imported.clone_module();
        let t = Instant::now();
        optimize(&mut m, &tm, OptLevel::O3).unwrap();
        t.elapsed()
    };
    let c_opt = || {
        let m = imported.clone_module();
        let t = Instant::now();
        // SAFETY: a live module used only here.
        let err = unsafe { thinjit_capi::thinjit_optimize(m.as_raw(), 3, std::ptr::null_mut()) };
        let d = t.elapsed();
        assert!(err.is_null());
        d
    };
    let (r, c) = interleaved(opt_iters, rust_opt, c_opt);
    row("optimize (O3)", r, c);
    // SAFETY: the handle made above; nothing uses it any more.
    unsafe { thinjit_capi::thinjit_summary_dispose(handle) };
}
