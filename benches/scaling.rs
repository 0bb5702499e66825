//! Scripts compiled per second with 1, 2 and 4 threads on one engine (issue 17's "cores" goal: 2 threads ≥
//! 1.8× one thread on a 2-core machine).
//!
//! One JIT-resident engine over the bundled helpers, eager mode (import + O3 + codegen on the calling thread,
//! then JITLink). Each thread adds the six bundled workload scripts in turn, each copy with its own symbol
//! names (prepared before timing), and removes it again. Per thread count: scripts/s over the whole run,
//! the speed-up over one thread, and the median per-script stage times, which show where added threads wait
//! (a stage that grows with the thread count is serialized somewhere, or the cores are taken), the CPU time the
//! compiling threads used per script and how many cores they kept busy (their CPU time ÷ wall time: with N
//! threads on an idle machine, N cores unless a lock serializes them). Repeated `THINJIT_BENCH_REPEATS` times
//! (default 3), thread counts interleaved; medians reported.
//!
//! `cargo bench --bench scaling` (release). `THINJIT_BENCH_SCRIPTS` scripts per thread (default 120),
//! `THINJIT_BENCH_THREADS=1,2,4`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use thinjit::jit::{Engine, EngineBuilder, ScriptTimes};
use thinjit::llvm::{Context, Linkage, Module};
use thinjit::summary::{BuildOptions, Summary};
use thinjit_cli::bench::workload::helper_scripts;

extern "C" fn host_log(_msg: *const libc::c_char) {}
extern "C" fn host_event(_code: i32) {}

fn engine(summary: Arc<Summary>) -> Engine {
    EngineBuilder::new()
        .summary(summary)
        .host_symbol("thinjit_host_alloc", libc::malloc as *const () as u64)
        .host_symbol("thinjit_host_free", libc::free as *const () as u64)
        .host_symbol("thinjit_host_log", host_log as *const () as u64)
        .host_symbol("thinjit_host_event", host_event as *const () as u64)
        .build()
        .expect("engine")
}

/// `ir` with every external definition renamed `<name>.<tag>` (textual IR).
fn renamed(ir: &str, tag: &str) -> String {
    let ctx = Context::new();
    let m = Module::parse_ir(&ctx, ir.as_bytes(), "script").expect("parse");
    for f in m.functions().filter(|f| !f.is_declaration()) {
        if !f.linkage().is_local() {
            f.set_name(&format!("{}.{tag}", f.name()));
        }
    }
    for g in m.globals().filter(|g| !g.is_declaration()) {
        if !g.linkage().is_local()
            && !g.name().starts_with("llvm.")
            && g.linkage() != Linkage::Appending
        {
            g.set_name(&format!("{}.{tag}", g.name()));
        }
    }
    m.print()
}

struct Run {
    scripts_per_second: f64,
    times: Vec<ScriptTimes>,
    /// CPU time the compiling threads used, per script.
    cpu_per_script: Duration,
    /// CPU time of the compiling threads ÷ wall time: how many cores they kept busy.
    busy_cores: f64,
}

fn run(
    engine: &Engine,
    threads: usize,
    per_thread: usize,
    sources: &[Vec<(String, String)>],
) -> Run {
    let start = Instant::now();
    let per_thread_results: Vec<(Vec<ScriptTimes>, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let sources = &sources[t];
                s.spawn(move || {
                    let cpu = cpu_time::ThreadTime::now();
                    let mut times = Vec::with_capacity(per_thread);
                    for (name, ir) in sources.iter().take(per_thread) {
                        let h = engine.add_script(name, ir.as_bytes()).expect("add script");
                        times.push(h.report().expect("report").times);
                        h.remove().expect("remove");
                    }
                    (times, cpu.elapsed())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let elapsed = start.elapsed();
    let cpu: Duration = per_thread_results.iter().map(|(_, c)| *c).sum();
    let times: Vec<ScriptTimes> = per_thread_results
        .into_iter()
        .flat_map(|(t, _)| t)
        .collect();
    Run {
        scripts_per_second: times.len() as f64 / elapsed.as_secs_f64(),
        cpu_per_script: cpu / times.len().max(1) as u32,
        busy_cores: cpu.as_secs_f64() / elapsed.as_secs_f64(),
        times,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let per_thread = env("THINJIT_BENCH_SCRIPTS", 120);
    let repeats = env("THINJIT_BENCH_REPEATS", 3);
    let thread_counts: Vec<usize> = std::env::var("THINJIT_BENCH_THREADS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 4]);
    let max_threads = thread_counts.iter().copied().max().unwrap_or(1);
    let bc = thinjit_cli::bundled::bitcode_files();
    let summary = Arc::new(Summary::build(&bc, &BuildOptions::default()).expect("summary"));
    let scripts = helper_scripts(0.01);
    // Per thread, `per_thread` scripts cycling through the bundled ones, each with its own names.
    let sources: Vec<Vec<(String, String)>> = (0..max_threads)
        .map(|t| {
            (0..per_thread)
                .map(|k| {
                    let s = &scripts[k % scripts.len()];
                    (s.name.clone(), renamed(&s.ir, &format!("t{t}k{k}")))
                })
                .collect()
        })
        .collect();
    let engine = engine(summary);
    // Warm-up: the runtime, target machines, allocator pools.
    run(&engine, max_threads, per_thread.min(12), &sources);

    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); thread_counts.len()];
    let mut times: Vec<Vec<ScriptTimes>> = vec![Vec::new(); thread_counts.len()];
    let mut cpu: Vec<Vec<Duration>> = vec![Vec::new(); thread_counts.len()];
    let mut busy: Vec<Vec<f64>> = vec![Vec::new(); thread_counts.len()];
    for _ in 0..repeats {
        for (i, &t) in thread_counts.iter().enumerate() {
            let r = run(&engine, t, per_thread, &sources);
            rates[i].push(r.scripts_per_second);
            cpu[i].push(r.cpu_per_script);
            busy[i].push(r.busy_cores);
            times[i].extend(r.times);
        }
    }
    println!(
        "Scripts compiled per second (eager, JIT-resident, bundled helper workloads, {per_thread} scripts per thread, median of {repeats}; {} cores)\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| threads | scripts/s | × one thread | busy cores | CPU per script (ms) | parse + verify (ms) | plan + import (ms) | optimize (ms) | codegen (ms) | link (ms) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let base = median_f(rates[0].clone());
    for (i, &t) in thread_counts.iter().enumerate() {
        let rate = median_f(rates[i].clone());
        let stage = |f: fn(&ScriptTimes) -> Duration| ms(median(times[i].iter().map(f).collect()));
        println!(
            "| {t} | {rate:.1} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} |",
            rate / base,
            median_f(busy[i].clone()),
            ms(median(cpu[i].clone())),
            stage(|s| s.parse + s.verify),
            stage(|s| s.plan + s.import),
            stage(|s| s.optimize),
            stage(|s| s.codegen),
            stage(|s| s.link),
        );
    }
}
