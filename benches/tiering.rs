//! Tiered compilation (issue 16): a query engine's day — many scripts run once or twice, a few run millions
//! of times — under `none` (no import, O3), `summary` (import + O3 up front) and `tiered` (tier 0 at once,
//! tier 1 with the script's own profile in the background).
//!
//! Per mode: total wall time (compile + run, every script in order), time to first result per script
//! (add_script + lookup + first call: median, p90, max), the time spent in `add_script`, and for tiered the
//! promotions and their background compile time. Then the cost of the stubs: ns per call of a trivial
//! function called directly (untiered), through a tier-0 stub (counting thunk) and through a tier-1 stub.
//!
//! Two workloads (`THINJIT_TIERING_WORKLOAD`, default `helpers,zlib`): the bundled helpers, and zlib (libz-sys's
//! sources compiled with clang-19 by `thinjit_cli::bench::reallib`, summary cached under
//! `target/thinjit-bench/cache`).
//!
//! `cargo bench --bench tiering` (release). Knobs: `THINJIT_TIERING_COLD` scripts run once or twice (default
//! 300), `THINJIT_TIERING_HOT_CALLS` calls of each of the 3 hot scripts (default 1,000,000),
//! `THINJIT_TIERING_REPS` repetitions (default 3; medians are printed), `THINJIT_TIERING_MODES` (default
//! `none,summary,tiered`; also `tiered-light`, `tiered-o1` for the other tier-0 pipelines).
//! The figures in `docs/tiering.md` come from here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use thinjit::jit::{Engine, EngineBuilder, JitFunction, Strategy, TierZeroOpt, TieringConfig};
use thinjit::summary::{BuildOptions, Summary};
use thinjit_cli::bench::with_bundled_host;
use thinjit_cli::bench::workload::{self, bundled};
use thinjit_cli::bench::{self as harness, reallib};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// One query of the day: a script, how often it runs, its argument and result.
struct Query {
    name: String,
    ir: String,
    entry: String,
    n: i64,
    calls: usize,
    expected: i64,
}

/// A script as a template: (name, IR, reference result, `n` when it runs as a cold query).
type Template = (&'static str, &'static str, fn(i64) -> i64, i64);

/// The bundled scripts.
fn templates() -> Vec<Template> {
    vec![
        ("seed", bundled::SEED, workload::expected_seed, 200),
        ("arith", bundled::ARITH, workload::expected_arith, 200),
        ("strings", bundled::STRINGS, workload::expected_strings, 200),
        ("tables", bundled::TABLES, workload::expected_tables, 200),
        ("mix", bundled::MIX, workload::expected_mix, 200),
        (
            "accessors",
            bundled::ACCESSORS,
            workload::expected_accessors,
            200,
        ),
    ]
}

/// The zlib scripts of `reallib`: `checksum` (crc32 + adler32 over 16 bytes per iteration; n = 200 when
/// cold) and `roundtrip` (compress + uncompress 1 KiB per iteration; n = 1 when cold, so that zlib's own
/// deflate time does not drown the compile times the modes differ in).
fn zlib_templates() -> Vec<Template> {
    let ir = |name: &str| -> &'static str {
        reallib::zlib_scripts(1.0)
            .into_iter()
            .find(|s| s.name == name)
            .expect("zlib script")
            .ir
            .leak()
    };
    vec![
        (
            "checksum",
            ir("zlib-checksum"),
            reallib::expected_zlib_checksum,
            200,
        ),
        ("roundtrip", ir("zlib-roundtrip"), |n| n.max(1), 1),
    ]
}

/// A filter a query runs per row: a table lookup and a comparison of two (null, i.e. integer 0) values per
/// element. `WrappedValueCompare` (103 instructions) is over the plain import limit of 100: only a hot edge
/// imports it. Allocates nothing, so millions of calls do not grow the heap.
const FILTER: &str = r#"
declare i32 @rt_square_lookup(i32)
declare i32 @WrappedValueCompare(ptr, ptr)

define i64 @bench_main(i64 %n) {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]
  %acc = phi i64 [ 0, %entry ], [ %acc.next, %loop ]
  %i32 = trunc i64 %i to i32
  %sq = call i32 @rt_square_lookup(i32 %i32)
  %c = call i32 @WrappedValueCompare(ptr null, ptr null)
  %s = add i32 %sq, %c
  %se = sext i32 %s to i64
  %acc.next = add i64 %acc, %se
  %i.next = add i64 %i, 1
  %more = icmp ult i64 %i.next, %n
  br i1 %more, label %loop, label %exit
exit:
  ret i64 %acc.next
}
"#;

fn expected_filter(n: i64) -> i64 {
    (0..n.max(1)).map(|i| (i & 63) * (i & 63)).sum()
}

/// `cold` queries (cycling through `t`) run once or twice with a short input, and the 3 `hot` ones run
/// `hot_calls` times each with n = 16, placed early, in the middle and late in the day.
fn day(t: &[Template], hot: [Template; 3], cold: usize, hot_calls: usize) -> Vec<Query> {
    let make = |i: usize, (kind, ir, expected, _): Template, n: i64, calls: usize| {
        let entry = format!("q{i}_{kind}");
        Query {
            name: entry.clone(),
            ir: ir
                .replace("@bench_main", &format!("@{entry}"))
                .replace("@f_", &format!("@q{i}_f_")),
            entry,
            n,
            calls,
            expected: expected(n),
        }
    };
    let mut queries = Vec::new();
    let mut h = 0;
    for i in 0..cold {
        if h < hot.len() && i == (h * 2 + 1) * cold / 6 {
            queries.push(make(10_000 + h, hot[h], 16, hot_calls));
            h += 1;
        }
        let cold_template = t[i % t.len()];
        queries.push(make(i, cold_template, cold_template.3, 1 + i % 2));
    }
    while h < hot.len() {
        queries.push(make(10_000 + h, hot[h], 16, hot_calls));
        h += 1;
    }
    queries
}

#[derive(Default)]
struct DayResult {
    total: Duration,
    first: Vec<Duration>,
    add: Duration,
    promotions: usize,
    tier1_compile: Duration,
}

fn run_day(engine: &Engine, queries: &[Query]) -> DayResult {
    let mut result = DayResult::default();
    let mut handles = Vec::with_capacity(queries.len());
    let start = Instant::now();
    for q in queries {
        let t = Instant::now();
        let script = engine
            .add_script(&q.name, q.ir.as_bytes())
            .expect("add_script");
        result.add += t.elapsed();
        let f = script
            .lookup::<extern "C" fn(i64) -> i64>(&q.entry)
            .expect("lookup");
        // SAFETY: every bench script's entry is `i64 (i64)`.
        let r = unsafe { f.call(q.n) };
        result.first.push(t.elapsed());
        assert_eq!(r, q.expected, "{}", q.name);
        for _ in 1..q.calls {
            // SAFETY: as above.
            let r = unsafe { f.call(q.n) };
            assert_eq!(r, q.expected, "{}", q.name);
        }
        handles.push(script);
    }
    result.total = start.elapsed();
    for h in &handles {
        if let Some(report) = h.tier_report() {
            if let Some(p) = report.promotion {
                result.promotions += 1;
                result.tier1_compile += p.times.total();
            }
        }
    }
    result
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    percentile(&v, 0.5)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

fn builder(summary: &Arc<Summary>, mode: &str) -> EngineBuilder {
    let base = with_bundled_host(EngineBuilder::new().summary(Arc::clone(summary)));
    let tiered = |tier0| {
        base.clone().tiering(TieringConfig {
            tier0,
            ..TieringConfig::default()
        })
    };
    match mode {
        "none" => base.strategy(Strategy::None),
        "summary" => base.strategy(Strategy::Summary),
        "tiered" => tiered(TierZeroOpt::O0),
        "tiered-light" => tiered(TierZeroOpt::Light),
        "tiered-o1" => tiered(TierZeroOpt::O1),
        other => panic!("unknown mode {other}"),
    }
}

/// A trivial script `inc(x) = x + 1` named `name`, warmed up with 2,000 calls (which crosses the default
/// threshold); with `promote`, waits for the switch.
fn inc_script<'e>(engine: &'e Engine, name: &str, promote: bool) -> thinjit::jit::ScriptHandle<'e> {
    let ir = format!("define i64 @{name}(i64 %x) {{\n %y = add i64 %x, 1\n ret i64 %y\n}}\n");
    let script = engine.add_script(name, ir.as_bytes()).unwrap();
    let f = script.lookup::<extern "C" fn(i64) -> i64>(name).unwrap();
    let mut x = 0;
    for _ in 0..2000 {
        // SAFETY: `i64 (i64)`.
        x = unsafe { f.call(x) };
    }
    assert_eq!(x, 2000);
    if promote {
        script.wait_for_promotion(Duration::from_secs(60));
    }
    script
}

/// ns per call of `f` over `calls` calls.
fn per_call(f: &JitFunction<'_, extern "C" fn(i64) -> i64>, calls: u64) -> f64 {
    let start = Instant::now();
    let mut x = 0;
    for _ in 0..calls {
        // SAFETY: `i64 (i64)`, loaded while the borrowed handle lives.
        x = unsafe { f.call(std::hint::black_box(x)) };
    }
    let elapsed = start.elapsed();
    assert_eq!(x, calls as i64);
    elapsed.as_secs_f64() * 1e9 / calls as f64
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let cold = env_or("THINJIT_TIERING_COLD", 300);
    let hot_calls = env_or("THINJIT_TIERING_HOT_CALLS", 1_000_000);
    let reps = env_or("THINJIT_TIERING_REPS", 3).max(1);
    let modes: Vec<String> = std::env::var("THINJIT_TIERING_MODES")
        .unwrap_or_else(|_| "none,summary,tiered".into())
        .split(',')
        .map(str::to_owned)
        .collect();
    let workloads =
        std::env::var("THINJIT_TIERING_WORKLOAD").unwrap_or_else(|_| "helpers,zlib".into());
    let summary = Arc::new(
        Summary::build(
            &thinjit_cli::bundled::bitcode_files(),
            &BuildOptions::default(),
        )
        .expect("bundled summary"),
    );
    for name in workloads.split(',') {
        let (lib_summary, queries, described) = match name {
            "helpers" => {
                let t = templates();
                let filter: Template = ("filter", FILTER, expected_filter, 200);
                let hot = [t[5], t[3], filter];
                (
                    Arc::clone(&summary),
                    day(&t, hot, cold, hot_calls),
                    "bundled helpers; cold n = 200; hot: accessors, tables, filter",
                )
            }
            "zlib" => {
                let cache = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
                    .join("target/thinjit-bench/cache");
                let w =
                    harness::workload_by_name("zlib", 1.0, &harness::workspace_manifest(), &cache)
                        .expect("zlib workload (libz-sys sources, clang-19)");
                let lib = harness::prepare_library(&w, &cache).expect("zlib summary");
                let t = zlib_templates();
                (
                    lib.summary,
                    day(&t, [t[0]; 3], cold, hot_calls),
                    "zlib (libz-sys); cold: checksum n = 200, roundtrip n = 1; hot: 3 × checksum",
                )
            }
            other => panic!("unknown workload {other} (helpers, zlib)"),
        };
        day_table(
            &lib_summary,
            &queries,
            &modes,
            reps,
            cold,
            hot_calls,
            described,
        );
    }
    stub_cost(&summary);
}

/// Runs the day `reps` times per mode and prints one table row per mode.
fn day_table(
    summary: &Arc<Summary>,
    queries: &[Query],
    modes: &[String],
    reps: usize,
    cold: usize,
    hot_calls: usize,
    described: &str,
) {
    println!(
        "## A query engine's day: {cold} scripts run once or twice, 3 run {hot_calls} times (n = 16); \
         {described}; {reps} repetitions (medians)\n"
    );
    println!("| mode | total ms | first result µs: median | p90 | max | add_script ms (sum) | promoted | tier-1 compile ms (background) |");
    println!("|---|---|---|---|---|---|---|---|");
    for mode in modes {
        let mut results = Vec::new();
        for _ in 0..reps {
            let engine = builder(summary, mode).build().expect("engine");
            results.push(run_day(&engine, queries));
        }
        let mut firsts: Vec<Duration> = results.iter().flat_map(|r| r.first.clone()).collect();
        firsts.sort();
        println!(
            "| {mode} | {} | {} | {} | {} | {} | {} | {} |",
            ms(median(results.iter().map(|r| r.total).collect())),
            us(percentile(&firsts, 0.5)),
            us(percentile(&firsts, 0.9)),
            us(*firsts.last().unwrap_or(&Duration::ZERO)),
            ms(median(results.iter().map(|r| r.add).collect())),
            results[0].promotions,
            ms(median(results.iter().map(|r| r.tier1_compile).collect())),
        );
    }

    println!();
}

/// The cost of the stubs on a trivial function (bundled summary).
fn stub_cost(summary: &Arc<Summary>) {
    let calls = env_or("THINJIT_TIERING_STUB_CALLS", 20_000_000) as u64;
    println!("## Stub cost: `inc(x) = x + 1`, {calls} calls per run, best of 5 interleaved runs\n");
    let direct = builder(summary, "summary").build().unwrap();
    let tier0 = with_bundled_host(EngineBuilder::new().summary(Arc::clone(summary)))
        .tiering(TieringConfig {
            threshold_calls: u64::MAX,
            ..TieringConfig::default()
        })
        .build()
        .unwrap();
    let tier1 = builder(summary, "tiered").build().unwrap();
    let scripts = [
        (
            "direct (untiered, O3)",
            inc_script(&direct, "inc_direct", false),
            "inc_direct",
        ),
        (
            "tier-0 stub + counting thunk (O0 body)",
            inc_script(&tier0, "inc_tier0", false),
            "inc_tier0",
        ),
        (
            "tier-1 stub (after the switch, O3 body)",
            inc_script(&tier1, "inc_tier1", true),
            "inc_tier1",
        ),
    ];
    let functions: Vec<_> = scripts
        .iter()
        .map(|(_, s, name)| s.lookup::<extern "C" fn(i64) -> i64>(name).unwrap())
        .collect();
    let mut best = [f64::INFINITY; 3];
    for _ in 0..5 {
        for (i, f) in functions.iter().enumerate() {
            best[i] = best[i].min(per_call(f, calls));
        }
    }
    println!("| path | ns per call |");
    println!("|---|---|");
    for (i, (label, _, _)) in scripts.iter().enumerate() {
        println!("| {label} | {:.2} |", best[i]);
    }
}
