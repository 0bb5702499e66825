//! The strategies benchmark harness (issue #7), run on a small configuration: the bundled helpers, few
//! iterations. Every strategy's scripts must return the right results; the semantic-check columns must show
//! `full-link-internalize` broken (private copies of the helper globals and initializers) and every other
//! strategy fine. Timings are reported by `cargo bench --bench strategies`, never asserted.

use thinjit_cli::bench::{self, workload, MeasureOptions, Strategy, Verdict};

#[test]
fn reference_results_match_native_runs() {
    // Values printed by the scripts compiled natively with clang-19 against the helper library.
    assert_eq!(workload::expected_seed(1000), 23_333_000);
    assert_eq!(workload::expected_arith(1000), 499_500);
    assert_eq!(workload::expected_strings(1000), 4840);
    assert_eq!(workload::expected_strings(7), 28);
    assert_eq!(workload::expected_tables(1000), 2_147_486_519_048);
    assert_eq!(workload::expected_tables(7), 16_924_055_795);
    assert_eq!(workload::expected_mix(1000), 3_288_415_733_958_690_482);
    assert_eq!(workload::expected_mix(7), -2_822_014_933_932_094_326);
    assert_eq!(workload::expected_accessors(1000), 1_306_700);
    assert_eq!(workload::expected_accessors(7), 133);
}

#[test]
fn every_strategy_runs_the_helper_scripts_and_only_internalize_breaks_semantics() {
    let cache = tempfile::TempDir::new().unwrap();
    let wl = workload::helpers_workload(0.01);
    assert_eq!(wl.scripts.len(), 6);
    let lib = bench::prepare_library(&wl, cache.path()).unwrap();
    assert!(lib.functions > 20, "{} functions", lib.functions);
    let options = MeasureOptions {
        repetitions: 1,
        compile_repetitions: 2,
        semantic_checks: true,
    };
    for strategy in Strategy::all() {
        let outcome = bench::measure(&lib, &wl.scripts, strategy, &options);
        let label = strategy.label();
        assert!(outcome.error.is_none(), "{label}: {:?}", outcome.error);
        assert_eq!(outcome.rows.len(), 6, "{label}");
        for row in &outcome.rows {
            assert_eq!(row.error, None, "{label} {}", row.script);
            assert_eq!(row.result, row.expected, "{label} {}", row.script);
            assert!(row.object_bytes > 0, "{label} {}", row.script);
        }
        let broken = strategy == Strategy::FullLinkInternalize;
        let expect = if broken { Verdict::Broken } else { Verdict::Ok };
        assert_eq!(
            outcome.one_instance.verdict, expect,
            "{label}: {}",
            outcome.one_instance.detail
        );
        assert_eq!(
            outcome.init_once.verdict, expect,
            "{label}: {}",
            outcome.init_once.detail
        );
        eprintln!(
            "{label}: mean compile {:?} ms; {} / {}",
            outcome.mean_compile_ms(),
            outcome.one_instance.detail,
            outcome.init_once.detail
        );
    }
}
