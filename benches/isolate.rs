//! Isolated compilation (issue 15): per-script cost of optimizing and compiling in a warm `thinjit-worker`
//! process against doing it in-process, for the bundled bench scripts, JIT-resident over the bundled helpers,
//! with the isolated round trip broken down step by step.
//!
//! `cargo bench -p thinjit-cli --bench isolate` (release). `THINJIT_BENCH_ITERS` sets the iterations (default
//! 300); `THINJIT_BENCH_SCRIPTS=seed,mix` limits the scripts. Each iteration adds the script (parse, verify,
//! import, O3, codegen, link), looks its entry up and removes it, once in each engine; the two engines
//! alternate so that machine noise hits both. Prints, per script:
//! - wall time: the median of the whole add in both engines and of the optimize + codegen part (the part
//!   isolation replaces), with the difference;
//! - CPU time: the mean CPU the host process (all threads) and the worker process spent per add — the work
//!   isolation adds, whatever the machine's load (on a saturated machine the wall-time difference is mostly
//!   waiting for a CPU after each wake-up);
//! - the median of each step of the isolated round trip beside the in-process optimize and codegen.
//!
//! The figures in `docs/robustness.md` come from here.

use std::path::Path;

use cpu_time::ProcessTime;
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

/// The steps of an isolated compile, in the order they happen; the index of the in-process step that does
/// the same work, if any (0: optimize, 1: codegen).
type Step = (&'static str, Option<usize>, fn(&IsolatedTimes) -> Duration);
const STEPS: [Step; 10] = [
    ("host: write bitcode", None, |t| t.write_bitcode),
    ("host: encode request, take a worker", None, |t| t.send),
    ("worker: read + decode request", None, |t| t.worker_decode),
    ("worker: context + target machine", None, |t| t.worker_setup),
    ("worker: parse bitcode", None, |t| t.worker_parse),
    ("optimize", Some(0), |t| t.worker_optimize),
    ("codegen", Some(1), |t| t.worker_codegen),
    ("worker: IR text, symbols, free", None, |t| t.worker_other),
    ("socket write + wake-ups + reply + read", None, |t| {
        t.transfer
    }),
    ("host: decode response", None, |t| t.receive),
];

/// Time the thread at `path` (a `schedstat` file) has spent runnable but waiting for a CPU.
fn run_queue_wait(path: &str) -> Duration {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let waited = text
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(waited)
}

/// The `schedstat` files of this process's children (the worker).
fn children_schedstat() -> Vec<String> {
    let mut files = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        files.extend(
            children
                .split_whitespace()
                .map(|pid| format!("/proc/{pid}/schedstat")),
        );
    }
    files
}

fn waits(files: &[String]) -> Duration {
    files.iter().map(|f| run_queue_wait(f)).sum()
}

/// CPU time (user + system) the worker processes (this process's children) have used so far.
fn children_cpu() -> Duration {
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let mut ticks = 0u64;
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    for task in tasks.flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in children.split_whitespace() {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Fields after the command (which may hold spaces): state is field 3, utime 14, stime 15.
            if let Some((_, rest)) = stat.rsplit_once(')') {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let get = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
                ticks += get(11).unwrap_or(0) + get(12).unwrap_or(0);
            }
        }
    }
    Duration::from_secs_f64(ticks as f64 / ticks_per_second)
}

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
    let mut cpus = Vec::new();
    let mut queues = Vec::new();
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
        let (mut in_opt, mut in_codegen) = (Vec::new(), Vec::new());
        let mut steps: Vec<Vec<Duration>> = vec![Vec::new(); STEPS.len()];
        let mut sizes = (0, 0);
        let (mut cpu_a, mut cpu_b) = (Duration::ZERO, Duration::ZERO);
        let (mut wait_a, mut wait_w) = (Vec::new(), Vec::new());
        let host = "/proc/thread-self/schedstat";
        let worker_before = children_cpu();
        for _ in 0..iters {
            let waited = run_queue_wait(host);
            let cpu = ProcessTime::now();
            let (t, r) = once(&in_process, name, &source, entry);
            cpu_a += cpu.elapsed();
            wait_a.push(run_queue_wait(host).saturating_sub(waited));
            total_a.push(t);
            stage_a.push(r.times.optimize + r.times.codegen);
            in_opt.push(r.times.optimize);
            in_codegen.push(r.times.codegen);
            let workers = children_schedstat();
            let worker_waited = waits(&workers);
            let cpu = ProcessTime::now();
            let (t, r) = once(&isolated, name, &source, entry);
            cpu_b += cpu.elapsed();
            wait_w.push(waits(&workers).saturating_sub(worker_waited));
            total_b.push(t);
            // The codegen stage covers the whole round trip (the worker's optimize is inside it).
            stage_b.push(r.times.codegen);
            let iso = r.isolated.expect("isolated times");
            for (i, (_, _, get)) in STEPS.iter().enumerate() {
                steps[i].push(get(&iso));
            }
            sizes = (iso.bitcode_bytes, iso.object_bytes);
        }
        let worker_cpu = children_cpu().saturating_sub(worker_before);
        let n = iters as u32;
        cpus.push((name, cpu_a / n, cpu_b / n, worker_cpu / n));
        queues.push((name, median(wait_a), median(wait_w)));
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
        breakdowns.push((name, steps, sizes, [median(in_opt), median(in_codegen)]));
    }
    println!(
        "\nCPU time per add (mean; worker processes read from /proc, 10 ms ticks over all iterations)\n"
    );
    println!("| script | in-process: host | isolated: host | isolated: worker | isolated: total | added |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, a, b, w) in cpus {
        println!(
            "| {name} | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms | {:+.3} ms |",
            ms(a),
            ms(b),
            ms(w),
            ms(b + w),
            ms(b + w) - ms(a)
        );
    }
    println!(
        "\nRun-queue wait per add (median): time the compiling thread was runnable but without a CPU (the \
         machine's load; paid again after each wake-up)\n"
    );
    println!("| script | in-process: host thread | isolated: worker | difference |");
    println!("|---|---:|---:|---:|");
    for (name, a, w) in queues {
        println!(
            "| {name} | {:.3} ms | {:.3} ms | {:+.3} ms |",
            ms(a),
            ms(w),
            ms(w) - ms(a)
        );
    }
    for (name, steps, (bitcode, object), in_process) in breakdowns {
        println!(
            "\n{name}: the isolated round trip, median per step, beside the in-process steps that do the same \
             work ({bitcode} bytes of bitcode out, {object} bytes of object back)\n"
        );
        println!("| step | in-process | isolated |");
        println!("|---|---:|---:|");
        let mut sum = Duration::ZERO;
        for ((label, same, _), values) in STEPS.iter().zip(steps) {
            let m = median(values);
            sum += m;
            let here = same.map_or("".to_owned(), |i| format!("{:.3} ms", ms(in_process[i])));
            println!("| {label} | {here} | {:.3} ms |", ms(m));
        }
        println!(
            "| sum of medians | {:.3} ms | {:.3} ms |",
            ms(in_process[0] + in_process[1]),
            ms(sum)
        );
    }
}
