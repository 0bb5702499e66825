//! Summary build and load times on generated helper libraries (1k, 10k, 100k functions).
//!
//! A hand-timed harness that prints a table: `cargo bench --bench summary`. Set `THINJIT_BENCH_SIZES` to a
//! comma-separated list to choose sizes (default `1000,10000,100000`), or `THINJIT_BENCH_SKIP_100K=1` to drop the
//! largest. Build time covers parsing the `.ll`, promotion, analysis and shard extraction on all cores; load time
//! is `Summary::load` of the written file (median of repeated loads).

use std::time::{Duration, Instant};

use thinjit::summary::{BuildOptions, Summary};
use thinjit_cli::synth;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
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
