//! Tiered compilation (issue 16): tier 0 without import behind counted stubs, promotion in the background
//! with the script's own profile as call-edge hotness, an atomic switch, and every engine invariant across
//! the two tiers. No timing assertions: promotion is awaited with a generous bound.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use thinjit::jit::{Engine, EngineBuilder, Tier, TierReport, TieringConfig};
use thinjit::summary::{BuildOptions, Hotness, Summary};
use thinjit::Error;

use crate::common::helper_bitcode;

/// Long enough for a loaded machine; promotion normally takes milliseconds.
const PROMOTION_TIMEOUT: Duration = Duration::from_secs(120);

fn summary() -> Arc<Summary> {
    static S: OnceLock<Arc<Summary>> = OnceLock::new();
    S.get_or_init(|| Arc::new(Summary::build(&helper_bitcode(), &BuildOptions::default()).unwrap()))
        .clone()
}

host_callbacks!(tier_host);

fn tiered(threshold: u64) -> EngineBuilder {
    tier_host::register(EngineBuilder::new().summary(summary())).tiering(TieringConfig {
        threshold_calls: threshold,
        ..TieringConfig::default()
    })
}

/// A hot loop over a small helper, a never-taken branch to another one, and script state (`@calls`).
const LOOP_SCRIPT: &str = r#"
declare i32 @rt_square_lookup(i32)
declare i64 @rt_counter_get()

@calls = internal global i64 0

define i64 @sum_squares(i32 %n, i32 %rare) {
entry:
  %c = load i64, ptr @calls
  %c1 = add i64 %c, 1
  store i64 %c1, ptr @calls
  %r = icmp ne i32 %rare, 0
  br i1 %r, label %rarely, label %start
rarely:
  %g = call i64 @rt_counter_get()
  ret i64 %g
start:
  br label %loop
loop:
  %i = phi i32 [ 0, %start ], [ %i1, %loop ]
  %acc = phi i64 [ 0, %start ], [ %acc1, %loop ]
  %s = call i32 @rt_square_lookup(i32 %i)
  %s64 = sext i32 %s to i64
  %acc1 = add i64 %acc, %s64
  %i1 = add i32 %i, 1
  %done = icmp sge i32 %i1, %n
  br i1 %done, label %exit, label %loop
exit:
  ret i64 %acc1
}

define i64 @calls_so_far() {
  %c = load i64, ptr @calls
  ret i64 %c
}
"#;

fn expected_sum(n: i32) -> i64 {
    (0..n.max(1)).map(|i| i64::from((i & 63) * (i & 63))).sum()
}

type SumSquares = extern "C" fn(i32, i32) -> i64;

fn wait_tier1(report: Option<TierReport>) -> TierReport {
    let report = report.expect("tiered script");
    assert_eq!(report.error, None);
    assert_eq!(report.tier, Tier::One, "{report:#?}");
    report
}

#[test]
fn a_script_called_once_never_imports_anything() {
    let engine = tiered(1000).build().unwrap();
    let script = engine.add_script("once", LOOP_SCRIPT.as_bytes()).unwrap();
    let f = script.lookup::<SumSquares>("sum_squares").unwrap();
    // SAFETY: the signature matches the script's definition.
    assert_eq!(unsafe { f.call(100, 0) }, expected_sum(100));
    let report = script.report().unwrap();
    assert!(report.import.is_none(), "tier 0 plans no import");
    // Without a promotion request nothing is compiled again: the wait runs out with tier 0.
    let tier = script
        .wait_for_promotion(Duration::from_millis(300))
        .unwrap();
    assert_eq!(tier.tier, Tier::Zero);
    assert!(tier.promotion.is_none() && tier.import.is_none());
    let entry = tier
        .entries
        .iter()
        .find(|e| e.name == "sum_squares")
        .unwrap();
    assert_eq!(entry.calls, 1);
    // The loop's helper site ran 100 times, the rare one never.
    let counts: Vec<(String, u64)> = tier
        .sites
        .iter()
        .map(|s| (s.callee.clone(), s.count))
        .collect();
    assert!(
        counts.contains(&("rt_square_lookup".into(), 100)),
        "{counts:?}"
    );
    assert!(counts.contains(&("rt_counter_get".into(), 0)), "{counts:?}");
}

#[test]
fn hot_script_is_promoted_and_stays_correct_while_four_threads_call_it() {
    let threshold = 500;
    let engine = tiered(threshold).build().unwrap();
    let script = engine.add_script("hot", LOOP_SCRIPT.as_bytes()).unwrap();
    let f = script.lookup::<SumSquares>("sum_squares").unwrap();
    let per_thread = 3000;
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                for k in 0..per_thread {
                    let n = 1 + ((k * 7 + t) % 200);
                    // SAFETY: signature matches; the script outlives the scope.
                    assert_eq!(unsafe { f.call(n, 0) }, expected_sum(n), "n = {n}");
                }
            });
        }
    });
    let report = wait_tier1(script.wait_for_promotion(PROMOTION_TIMEOUT));
    let promotion = report.promotion.as_ref().unwrap();
    assert!(
        promotion.reason.contains("sum_squares") && promotion.reason.contains("500"),
        "{}",
        promotion.reason
    );
    // Promoted within the threshold: the snapshot was taken once the count reached it.
    let entry = report
        .entries
        .iter()
        .find(|e| e.name == "sum_squares")
        .unwrap();
    assert!(entry.calls >= threshold, "{entry:?}");
    // Tier 1 runs and gives the same results.
    for n in [1, 63, 64, 200, 1000] {
        // SAFETY: as above.
        assert_eq!(unsafe { f.call(n, 0) }, expected_sum(n));
    }
    let hot: Vec<_> = report
        .sites_with(Hotness::Critical)
        .chain(report.sites_with(Hotness::Hot))
        .collect();
    assert!(
        hot.iter().any(|s| s.callee == "rt_square_lookup"),
        "{:#?}",
        report.sites
    );
    assert!(report.imported("rt_square_lookup"));
}

#[test]
fn never_executed_site_is_not_imported_while_the_same_helper_behind_a_hot_site_is() {
    // `WrappedValueCompare` (103 instructions) is over the plain limit of 100: imported only as a hot edge
    // (limit x import-hot-multiplier). `rt_counter_get` (2) is imported by a plan without profile, never by
    // one that saw its only site unexecuted (import-cold-multiplier 0).
    let cold = r#"
declare i32 @WrappedValueCompare(ptr, ptr)
declare i64 @rt_counter_get()
define i32 @run(i32 %rare) {
  %r = icmp ne i32 %rare, 0
  br i1 %r, label %rarely, label %common
rarely:
  %c = call i32 @WrappedValueCompare(ptr null, ptr null)
  %g = call i64 @rt_counter_get()
  %g32 = trunc i64 %g to i32
  %s = add i32 %c, %g32
  ret i32 %s
common:
  ret i32 7
}
"#;
    let hot = r#"
declare i32 @WrappedValueCompare(ptr, ptr)
define i32 @run_hot(i32 %rare) {
  %c = call i32 @WrappedValueCompare(ptr null, ptr null)
  %s = add i32 %c, 7
  ret i32 %s
}
"#;
    let engine = tiered(2000).build().unwrap();
    let a = engine.add_script("cold", cold.as_bytes()).unwrap();
    let b = engine.add_script("hot", hot.as_bytes()).unwrap();
    for (script, entry) in [(&a, "run"), (&b, "run_hot")] {
        let run = script.lookup::<extern "C" fn(i32) -> i32>(entry).unwrap();
        for _ in 0..2500 {
            // SAFETY: signature matches.
            assert_eq!(unsafe { run.call(0) }, 7);
        }
    }
    let cold = wait_tier1(a.wait_for_promotion(PROMOTION_TIMEOUT));
    let hot = wait_tier1(b.wait_for_promotion(PROMOTION_TIMEOUT));

    assert!(
        cold.sites.iter().all(|s| s.hotness == Hotness::Cold),
        "{:#?}",
        cold.sites
    );
    assert!(!cold.imported("WrappedValueCompare"));
    assert!(!cold.imported("rt_counter_get"));
    assert_eq!(
        cold.not_imported_because_of_profile,
        vec!["rt_counter_get".to_owned()]
    );
    assert!(cold.imported_because_of_profile.is_empty());

    assert!(
        hot.sites.iter().all(|s| s.hotness >= Hotness::Hot),
        "{:#?}",
        hot.sites
    );
    assert!(hot.imported("WrappedValueCompare"));
    assert_eq!(
        hot.imported_because_of_profile,
        vec!["WrappedValueCompare".to_owned()]
    );

    // Both still compute the same after the switch, the rare path included.
    for (script, entry) in [(&a, "run"), (&b, "run_hot")] {
        let run = script.lookup::<extern "C" fn(i32) -> i32>(entry).unwrap();
        // SAFETY: signature matches.
        assert_eq!(unsafe { run.call(0) }, 7);
    }
    let run = a.lookup::<extern "C" fn(i32) -> i32>("run").unwrap();
    let get = engine
        .lookup::<extern "C" fn() -> i64>("rt_counter_get")
        .unwrap();
    // SAFETY: signatures match the helpers and the script.
    unsafe { assert_eq!(run.call(1), get.call() as i32) };
}

#[test]
fn script_state_and_helper_globals_are_one_instance_across_tiers_and_initializers_run_once() {
    let script = r#"
declare i64 @rt_counter_increment()
@runs = internal global i64 0
@llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 65535, ptr @init, ptr null }]
define internal void @init() {
  %v = load i64, ptr @runs
  %v1 = add i64 %v, 1
  store i64 %v1, ptr @runs
  ret void
}
define i64 @bump() {
  %r = call i64 @rt_counter_increment()
  ret i64 %r
}
define i64 @ctor_runs() {
  %v = load i64, ptr @runs
  ret i64 %v
}
"#;
    let engine = tiered(100).build().unwrap();
    let s = engine.add_script("state", script.as_bytes()).unwrap();
    let bump = s.lookup::<extern "C" fn() -> i64>("bump").unwrap();
    let runs = s.lookup::<extern "C" fn() -> i64>("ctor_runs").unwrap();
    let get = engine
        .lookup::<extern "C" fn() -> i64>("rt_counter_get")
        .unwrap();
    // SAFETY: signatures match.
    let start = unsafe { get.call() };
    let mut last = start;
    for _ in 0..150 {
        // SAFETY: as above.
        last = unsafe { bump.call() };
    }
    let report = wait_tier1(s.wait_for_promotion(PROMOTION_TIMEOUT));
    assert!(report.imported("rt_counter_increment"));
    for _ in 0..50 {
        // SAFETY: as above.
        let next = unsafe { bump.call() };
        assert_eq!(next, last + 1, "tier 1 increments the one counter");
        last = next;
    }
    // SAFETY: as above.
    unsafe {
        assert_eq!(get.call(), start + 200, "the helpers see every increment");
        assert_eq!(
            runs.call(),
            1,
            "the constructor ran once, tier 1 shares its state"
        );
    }
    assert!(engine.take_reported_errors().is_empty());
}

#[test]
fn removal_during_promotion_is_safe() {
    let engine = tiered(1).build().unwrap();
    for i in 0..20 {
        let s = engine
            .add_script(&format!("s{i}"), LOOP_SCRIPT.as_bytes())
            .unwrap();
        let f = s.lookup::<SumSquares>("sum_squares").unwrap();
        // SAFETY: signature matches. The first call requests promotion; the removal races it.
        assert_eq!(unsafe { f.call(10, 0) }, expected_sum(10));
        s.remove().unwrap();
    }
    // Owned scripts too: the last clone dropped while its promotion may be compiling.
    for i in 0..5 {
        let ir = LOOP_SCRIPT
            .replace("sum_squares", &format!("owned_sum{i}"))
            .replace("calls_so_far", &format!("owned_calls{i}"));
        let owned = engine
            .add_owned_script(&format!("owned{i}"), ir.as_bytes())
            .unwrap();
        let f = owned
            .lookup::<SumSquares>(&format!("owned_sum{i}"))
            .unwrap();
        // SAFETY: signature matches.
        assert_eq!(unsafe { f.call(10, 0) }, expected_sum(10));
        drop(owned);
    }
    assert_eq!(engine.script_count(), 0);
    // The engine still works, and promotions still happen.
    let s = engine.add_script("after", LOOP_SCRIPT.as_bytes()).unwrap();
    let f = s.lookup::<SumSquares>("sum_squares").unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { f.call(10, 0) }, expected_sum(10));
    wait_tier1(s.wait_for_promotion(PROMOTION_TIMEOUT));
    // SAFETY: as above.
    assert_eq!(unsafe { f.call(10, 0) }, expected_sum(10));
    // Dropping the engine with a promotion queued is safe too.
    let last = LOOP_SCRIPT
        .replace("sum_squares", "last_sum")
        .replace("calls_so_far", "last_calls");
    let s = engine.add_script("last", last.as_bytes()).unwrap();
    let f = s.lookup::<SumSquares>("last_sum").unwrap();
    // SAFETY: as above.
    unsafe { f.call(3, 0) };
    drop(engine);
}

/// Overwrites the shard of `name` in the summary's bytes (its checksum now fails).
fn damage_shard(s: &Summary, name: &str) -> Vec<u8> {
    let f = s.index().function(name).unwrap();
    let r = f.shard.unwrap();
    let mut bytes = s.to_bytes();
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    let area = 36 + u64_at(12) + u64_at(20);
    let start = area + r.offset as usize;
    for x in &mut bytes[start + 4..start + r.len as usize] {
        *x ^= 0x5A;
    }
    bytes
}

#[test]
fn a_tier1_failure_leaves_tier0_running_and_is_reported() {
    let damaged = Summary::from_bytes(
        damage_shard(&summary(), "rt_square_lookup"),
        "damaged.thinjit",
    )
    .unwrap();
    let engine = tier_host::register(EngineBuilder::new().summary(Arc::new(damaged)))
        .tiering(TieringConfig {
            threshold_calls: 10,
            ..TieringConfig::default()
        })
        .build()
        .unwrap();
    let s = engine
        .add_script("bad-tier1", LOOP_SCRIPT.as_bytes())
        .unwrap();
    let f = s.lookup::<SumSquares>("sum_squares").unwrap();
    for _ in 0..20 {
        // SAFETY: signature matches.
        assert_eq!(unsafe { f.call(70, 0) }, expected_sum(70));
    }
    let report = s.wait_for_promotion(PROMOTION_TIMEOUT).unwrap();
    assert_eq!(report.tier, Tier::Zero);
    let error = report.error.expect("the tier-1 error");
    assert!(
        error.contains("rt_square_lookup") && error.contains("damaged.thinjit"),
        "{error}"
    );
    // SAFETY: as above.
    assert_eq!(unsafe { f.call(70, 0) }, expected_sum(70));
    s.remove().unwrap();
}

#[test]
fn scripts_a_stub_cannot_forward_run_untiered_and_say_why() {
    let engine = tiered(10).build().unwrap();
    let s = engine
        .add_script(
            "variadic",
            b"define i32 @first(i32 %n, ...) {\n ret i32 %n\n}\n",
        )
        .unwrap();
    let report = s.tier_report().unwrap();
    assert_eq!(report.tier, Tier::Untiered);
    assert!(report.untiered.unwrap().contains("variadic"));
    let f = s.lookup::<extern "C" fn(i32) -> i32>("first").unwrap();
    // SAFETY: a variadic callee called with its fixed argument only.
    assert_eq!(unsafe { f.call(5) }, 5);
}

#[test]
fn tiering_configuration_errors_are_typed() {
    for builder in [
        tiered(10).lazy(true),
        tiered(0),
        tiered(10).strategy(thinjit::jit::Strategy::FullLink),
    ] {
        match builder.build() {
            Err(Error::Config { message }) => assert!(
                message.contains("tiering") || message.contains("tier"),
                "{message}"
            ),
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }
}

fn _assert_engine_is_send_sync(e: &Engine) -> &(dyn Send + Sync) {
    e
}
