//! The script fuzzer's longer run (issue 15): generated modules through `thinjit run --no-call` in child
//! processes, eagerly and (every fourth module) lazily; findings re-run with `--isolate`
//! ([`thinjit_cli::script_fuzz`]).
//!
//! `cargo bench -p thinjit-cli --bench script_fuzz` (release). Environment:
//! - `THINJIT_FUZZ_GENERATOR=mixed|stress` (default `mixed`: intrinsics, target attributes, odd types, debug
//!   info, nesting, inline asm, some `llvm-stress` bodies; `stress`: `llvm-stress` only);
//! - `THINJIT_FUZZ_SEEDS=A..B` (default `0..1000`), `THINJIT_FUZZ_SIZE` (`llvm-stress -size`, default 100),
//!   `THINJIT_FUZZ_JOBS` (child processes at once, default 2).
//!
//! Findings are kept in `target/thinjit-script-fuzz/`. Prints executions per outcome class, the generator's
//! coverage and every finding (the figures in `docs/robustness.md` come from here).

use std::path::Path;
use std::time::Duration;

use thinjit::summary::{BuildOptions, Summary};
use thinjit_cli::script_fuzz::{self, Config, Generator};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.into())
}

fn main() {
    let generator = match env_or("THINJIT_FUZZ_GENERATOR", "mixed").as_str() {
        "stress" => Generator::Stress,
        "mixed" => Generator::Mixed,
        other => panic!("THINJIT_FUZZ_GENERATOR={other}: expected mixed or stress"),
    };
    let seeds = env_or("THINJIT_FUZZ_SEEDS", "0..1000");
    let (a, b) = seeds.split_once("..").expect("THINJIT_FUZZ_SEEDS=A..B");
    let seeds = a.parse().expect("seed")..b.parse().expect("seed");
    let size = env_or("THINJIT_FUZZ_SIZE", "100").parse().expect("size");
    let jobs = env_or("THINJIT_FUZZ_JOBS", "2").parse().expect("jobs");
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let dir = root.join("target/thinjit-script-fuzz");
    std::fs::create_dir_all(&dir).expect("directory");
    let summary = dir.join("helpers.thinsum");
    // With a precompiled runtime object: each child starts without compiling the helper library.
    let options = BuildOptions {
        object: Some(thinjit::summary::ObjectTarget::host()),
        ..BuildOptions::default()
    };
    Summary::build(&thinjit_cli::bundled::bitcode_files(), &options)
        .and_then(|s| s.write(&summary))
        .expect("summary");
    let config = Config {
        thinjit: env!("CARGO_BIN_EXE_thinjit").into(),
        summary,
        llvm_stress: Path::new(env!("THINJIT_LLVM_BIN")).join("llvm-stress"),
        generator,
        seeds: seeds.clone(),
        size,
        lazy_every: 4,
        jobs,
        timeout: Duration::from_secs(60),
        dir: dir.join("modules"),
    };
    println!(
        "script fuzzer: generator {generator:?}, seeds {seeds:?}, llvm-stress size {size}, {jobs} jobs, every 4th \
         module also lazily; each execution is one `thinjit run --no-call` child process"
    );
    let report = script_fuzz::run(&config).expect("fuzzer");
    if let Some((known, covered, signatures, excluded)) = report.catalog {
        println!(
            "intrinsic catalog: {known} intrinsics known to LLVM, {covered} callable ({signatures} signatures), \
             {excluded} left out (no verifiable call)"
        );
    }
    println!(
        "executions: {} ({} lazy), added: {}, refused: {}, findings: {}, invalid generated modules: {}, time: {:.1} s",
        report.executions,
        report.lazy_executions,
        report.added,
        report.refused.iter().map(|(_, n)| n).sum::<u64>(),
        report.findings.len(),
        report.invalid.len(),
        report.elapsed.as_secs_f64()
    );
    let mut left_out: std::collections::BTreeMap<String, u64> = Default::default();
    for (name, _) in &report.catalog_excluded {
        let family = name.split('.').take(2).collect::<Vec<_>>().join(".");
        *left_out.entry(family).or_default() += 1;
    }
    println!("left out of the catalog, by family: {left_out:?}");
    for (class, n) in &report.classes {
        println!("class {class}: {n}");
    }
    for (kind, n) in &report.kinds {
        println!("modules with {kind}: {n}");
    }
    for (message, n) in &report.refused {
        println!("refused ×{n}: {message}");
    }
    for (seed, message) in &report.invalid {
        println!("invalid (generator bug): seed {seed}: {message}");
    }
    for f in &report.findings {
        println!(
            "finding: seed {} size {}{}: in-process {:?}; isolated {:?}; {}",
            f.seed,
            f.size,
            if f.lazy { " (lazy)" } else { "" },
            f.outcome,
            f.isolated,
            f.module.display()
        );
    }
}
