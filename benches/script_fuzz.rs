//! The script fuzzer's longer run (issue 15): `llvm-stress` modules through `thinjit run --no-call` in child
//! processes, findings re-run with `--isolate` ([`thinjit_cli::script_fuzz`]).
//!
//! `cargo bench --bench script_fuzz` (release). `THINJIT_FUZZ_SEEDS=A..B` (default `0..500`),
//! `THINJIT_FUZZ_SIZE` (default 100). Findings are kept in `target/thinjit-script-fuzz/`. Prints the report
//! (the figures in `docs/robustness.md` come from here).

use std::path::Path;
use std::time::Duration;

use thinjit::summary::{BuildOptions, Summary};
use thinjit_cli::script_fuzz::{self, Config};

fn main() {
    let seeds = std::env::var("THINJIT_FUZZ_SEEDS").unwrap_or_else(|_| "0..500".into());
    let (a, b) = seeds.split_once("..").expect("THINJIT_FUZZ_SEEDS=A..B");
    let seeds = a.parse().expect("seed")..b.parse().expect("seed");
    let size = std::env::var("THINJIT_FUZZ_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let dir = root.join("target/thinjit-script-fuzz");
    std::fs::create_dir_all(&dir).expect("directory");
    let summary = dir.join("helpers.thinsum");
    Summary::build(
        &thinjit_cli::bundled::bitcode_files(),
        &BuildOptions::default(),
    )
    .and_then(|s| s.write(&summary))
    .expect("summary");
    let config = Config {
        thinjit: env!("CARGO_BIN_EXE_thinjit").into(),
        summary,
        llvm_stress: Path::new(env!("THINJIT_LLVM_BIN")).join("llvm-stress"),
        seeds,
        size,
        timeout: Duration::from_secs(60),
        dir,
    };
    let report = script_fuzz::run(&config).expect("fuzzer");
    println!(
        "executions: {}, added: {}, refused: {}, findings: {}, time: {:.1} s",
        report.executions,
        report.added,
        report.refused.iter().map(|(_, n)| n).sum::<u64>(),
        report.findings.len(),
        report.elapsed.as_secs_f64()
    );
    for (message, n) in &report.refused {
        println!("refused ×{n}: {message}");
    }
    for f in &report.findings {
        println!(
            "finding: seed {} size {}: in-process {:?}; isolated {:?}; {}",
            f.seed,
            f.size,
            f.outcome,
            f.isolated,
            f.module.display()
        );
    }
}
