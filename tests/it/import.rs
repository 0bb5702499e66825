//! The import pass (issue 5) on the bundled helpers and on `.ll` fixtures: what gets imported, what O3 makes
//! of it, what the report says, and typed errors on bad input.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use thinjit::import::{import, plan, script_symbols, Decision, ImportConfig, Reason, ShardSource};
use thinjit::jit::RuntimeMode;
use thinjit::llvm::{CodeGenOpt, Context, Linkage, Module, TargetMachine};
use thinjit::optimize::{optimize, OptLevel};
use thinjit::summary::{BuildOptions, FunctionSummary, NotEligible, Summary, SummaryIndex};
use thinjit::Error;

use crate::common;

/// The import pass into `m` from `source` with the default configuration, for a JIT-resident runtime.
fn import_default<S: ShardSource + ?Sized>(
    m: &mut Module<'_>,
    source: &S,
) -> thinjit::import::ImportReport {
    import(
        m,
        source,
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    )
    .unwrap()
}

fn helpers() -> &'static Summary {
    static S: OnceLock<Summary> = OnceLock::new();
    S.get_or_init(|| Summary::build(&common::helper_bitcode(), &BuildOptions::default()).unwrap())
}

fn tm() -> TargetMachine {
    TargetMachine::host(CodeGenOpt::Default).unwrap()
}

/// Names of the functions `caller` calls directly.
fn callees(m: &Module<'_>, caller: &str) -> Vec<String> {
    m.function(caller)
        .unwrap_or_else(|| panic!("no function {caller}"))
        .instructions()
        .filter_map(|i| i.called_function())
        .map(|f| f.name())
        .collect()
}

fn reason(report: &thinjit::import::ImportReport, name: &str) -> Reason {
    report
        .entry(name)
        .unwrap_or_else(|| panic!("{name} not in report:\n{report}"))
        .decision
        .reason()
        .unwrap_or_else(|| panic!("{name} imported:\n{report}"))
        .clone()
}

/// A script calling each `(name, signature)` helper from its own exported function `call_<name>`.
const RT_SCRIPT: &str = r#"
declare i32 @rt_noinline_add(i32, i32)
declare i64 @rt_big_checksum(ptr, i64)
declare i64 @rt_counter_increment()
declare i32 @rt_square_lookup(i32)
declare i32 @rt_sum_varargs(i32, ...)
declare i64 @rt_asm_barrier(i64)
declare i32 @rt_weak_hook(i32)
declare i32 @rt_dispatch(ptr, i32)
declare i32 @rt_tls_enter()
declare i32 @rt_clamp_add(i32, i32)
declare i64 @rt_next_object_id()
declare i32 @rt_chain_a(i32)
declare void @host_only_function()

define i32 @call_noinline(i32 %a) {
  %r = call i32 @rt_noinline_add(i32 %a, i32 1)
  ret i32 %r
}
define i64 @call_big(ptr %p, i64 %n) {
  %r = call i64 @rt_big_checksum(ptr %p, i64 %n)
  ret i64 %r
}
define i64 @call_counter() {
  %r = call i64 @rt_counter_increment()
  ret i64 %r
}
define i32 @square7() {
  %r = call i32 @rt_square_lookup(i32 7)
  ret i32 %r
}
define i32 @call_varargs() {
  %r = call i32 (i32, ...) @rt_sum_varargs(i32 2, i32 3, i32 4)
  ret i32 %r
}
define i64 @call_asm(i64 %x) {
  %r = call i64 @rt_asm_barrier(i64 %x)
  ret i64 %r
}
define i32 @call_weak(i32 %x) {
  %r = call i32 @rt_weak_hook(i32 %x)
  ret i32 %r
}
define i32 @call_dispatch(ptr %p, i32 %n) {
  %r = call i32 @rt_dispatch(ptr %p, i32 %n)
  ret i32 %r
}
define i32 @call_tls() {
  %r = call i32 @rt_tls_enter()
  ret i32 %r
}
define i32 @call_clamp(i32 %a, i32 %b) {
  %r = call i32 @rt_clamp_add(i32 %a, i32 %b)
  ret i32 %r
}
define i64 @call_next_id() {
  %r = call i64 @rt_next_object_id()
  ret i64 %r
}
define i32 @call_chain(i32 %x) {
  %r = call i32 @rt_chain_a(i32 %x)
  call void @host_only_function()
  ret i32 %r
}
"#;

#[test]
fn seed_script_inlines_create_wrapped_value_after_o3() {
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, common::SEED_SCRIPT.as_bytes(), "seed").unwrap();
    let before = m.defined_symbols();
    let report = import_default(&mut m, helpers());
    assert!(
        report
            .entry("CreateWrappedValueFromInt")
            .unwrap()
            .decision
            .is_imported(),
        "{report}"
    );
    let imported = m.function("CreateWrappedValueFromInt").unwrap();
    assert_eq!(imported.linkage(), Linkage::AvailableExternally);
    assert_eq!(m.defined_symbols(), before);
    // The script's functions got the helpers' target attributes, so the inliner accepts the helper.
    assert!(report.stamped.contains(&"f_WRAPPED".to_owned()), "{report}");
    assert!(m
        .function("f_WRAPPED")
        .unwrap()
        .string_attribute("target-features")
        .is_some());
    assert_eq!(
        report
            .entry("CreateWrappedValueFromInt")
            .unwrap()
            .not_inlinable,
        None
    );

    optimize(&mut m, &tm(), OptLevel::O3).unwrap();
    let calls = callees(&m, "f_WRAPPED");
    assert!(
        !calls.contains(&"CreateWrappedValueFromInt".to_owned()),
        "still calls the helper: {calls:?}\n{}",
        m.print()
    );
    assert_eq!(m.defined_symbols(), before);
}

#[test]
fn noinline_stays_a_call_and_big_checksum_obeys_the_limit() {
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, RT_SCRIPT.as_bytes(), "rt").unwrap();
    let report = import_default(&mut m, helpers());
    assert_eq!(reason(&report, "rt_noinline_add"), Reason::NoInline);
    let big = helpers().index().function("rt_big_checksum").unwrap();
    assert_eq!(
        reason(&report, "rt_big_checksum"),
        Reason::OverThreshold {
            size: big.instruction_count,
            threshold: 100,
            depth: 1
        }
    );
    assert!(m.function("rt_big_checksum").unwrap().is_declaration());
    optimize(&mut m, &tm(), OptLevel::O3).unwrap();
    assert!(callees(&m, "call_noinline").contains(&"rt_noinline_add".to_owned()));

    // At a limit that fits it, the big helper is imported.
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, RT_SCRIPT.as_bytes(), "rt").unwrap();
    let config = ImportConfig {
        import_instr_limit: big.instruction_count,
        ..ImportConfig::default()
    };
    let report = import(&mut m, helpers(), &config, RuntimeMode::JitResident).unwrap();
    assert!(report
        .entry("rt_big_checksum")
        .unwrap()
        .decision
        .is_imported());
    assert_eq!(
        m.function("rt_big_checksum").unwrap().linkage(),
        Linkage::AvailableExternally
    );
}

#[test]
fn mutable_globals_stay_declarations_and_constant_tables_fold() {
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, RT_SCRIPT.as_bytes(), "rt").unwrap();
    let before = m.defined_symbols();
    let report = import_default(&mut m, helpers());
    assert!(report
        .entry("rt_counter_increment")
        .unwrap()
        .decision
        .is_imported());
    assert_eq!(reason(&report, "rt_shared_counter"), Reason::Mutable);
    assert!(m.global("rt_shared_counter").unwrap().is_declaration());
    let squares = m.global("rt_squares").unwrap();
    assert!(!squares.is_declaration() && squares.is_constant());
    assert_eq!(squares.linkage(), Linkage::AvailableExternally);
    assert!(report.imported_variables().contains(&"rt_squares"));

    optimize(&mut m, &tm(), OptLevel::O3).unwrap();
    let square7 = m.function("square7").unwrap();
    let body: Vec<String> = square7.instructions().map(|i| i.print()).collect();
    assert_eq!(body.len(), 1, "{body:?}");
    assert!(body[0].contains("ret i32 49"), "{body:?}");
    // The counter is still the one instance: a load/store of the external global.
    let counter = m.global("rt_shared_counter").unwrap();
    assert!(counter.is_declaration());
    assert_eq!(m.defined_symbols(), before);
}

#[test]
fn not_eligible_helpers_are_reported_with_their_reason() {
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, RT_SCRIPT.as_bytes(), "rt").unwrap();
    let report = import_default(&mut m, helpers());
    assert_eq!(
        reason(&report, "rt_sum_varargs"),
        Reason::NotEligible(NotEligible::VaStart)
    );
    assert_eq!(
        reason(&report, "rt_asm_barrier"),
        Reason::NotEligible(NotEligible::InlineAsm)
    );
    assert_eq!(reason(&report, "rt_weak_hook"), Reason::Interposable);
    assert_eq!(
        reason(&report, "rt_dispatch"),
        Reason::NotEligible(NotEligible::BlockAddress)
    );
    assert_eq!(
        reason(&report, "rt_tls_enter"),
        Reason::NotEligible(NotEligible::ThreadLocal)
    );
    assert_eq!(reason(&report, "host_only_function"), Reason::NotInSummary);
    for name in [
        "rt_sum_varargs",
        "rt_asm_barrier",
        "rt_weak_hook",
        "rt_dispatch",
    ] {
        assert!(m.function(name).unwrap().is_declaration(), "{name}");
    }
    let text = report.to_string();
    assert!(
        text.contains("not eligible: variadic (calls va_start)"),
        "{text}"
    );
    assert!(text.contains("interposable"), "{text}");
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["entries"].as_array().unwrap().len() >= 10);
    assert!(json["times"]["link"].is_object());
}

#[test]
fn evolution_factor_decides_a_chain_of_fixture_helpers() {
    let lib = [
        common::fixture("conformance/evolution_lib_a.ll"),
        common::fixture("conformance/evolution_lib_b.ll"),
    ];
    let summary = Summary::build(&lib, &BuildOptions::default()).unwrap();
    let sizes: Vec<u32> = ["chain_a", "chain_b", "chain_c", "chain_d"]
        .iter()
        .map(|n| summary.index().function(n).unwrap().instruction_count)
        .collect();
    assert_eq!(sizes, vec![10, 70, 49, 35]);
    let script = std::fs::read(common::fixture("conformance/evolution_script.ll")).unwrap();

    // 100 -> 70 -> 49 -> 34: chain_d (35) misses by one instruction.
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, &script, "evolution").unwrap();
    let report = import_default(&mut m, &summary);
    assert_eq!(
        report.imported_functions(),
        vec!["chain_a", "chain_b", "chain_c"]
    );
    assert_eq!(
        reason(&report, "chain_d"),
        Reason::OverThreshold {
            size: 35,
            threshold: 34,
            depth: 4
        }
    );
    assert!(m.function("chain_d").unwrap().is_declaration());
    m.verify().unwrap();

    // Without decay the whole chain fits.
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, &script, "evolution").unwrap();
    let flat = ImportConfig {
        import_instr_evolution_factor: 1.0,
        ..ImportConfig::default()
    };
    let report = import(&mut m, &summary, &flat, RuntimeMode::JitResident).unwrap();
    assert_eq!(
        report.imported_functions(),
        vec!["chain_a", "chain_b", "chain_c", "chain_d"]
    );
}

#[test]
fn bundled_chain_is_imported_transitively() {
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, RT_SCRIPT.as_bytes(), "rt").unwrap();
    let report = import_default(&mut m, helpers());
    for name in ["rt_chain_a", "rt_chain_b", "rt_chain_c"] {
        let e = report.entry(name).unwrap();
        assert!(e.decision.is_imported(), "{name}: {report}");
    }
    assert_eq!(report.entry("rt_chain_c").unwrap().depth, 3);
    assert_eq!(report.entry("rt_chain_c").unwrap().threshold, 49);
}

#[test]
fn script_definitions_are_unchanged_by_import_and_o3() {
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, RT_SCRIPT.as_bytes(), "rt").unwrap();
    let before = m.defined_symbols();
    let names: BTreeSet<String> = before.iter().cloned().collect();
    assert!(
        names.contains("call_chain") && names.len() == 12,
        "{names:?}"
    );
    let report = import_default(&mut m, helpers());
    assert!(report.totals.imported_functions >= 5, "{report}");
    assert_eq!(m.defined_symbols(), before);
    optimize(&mut m, &tm(), OptLevel::O3).unwrap();
    assert_eq!(m.defined_symbols(), before);
    // Every imported body that O3 did not inline is gone (EliminateAvailableExternally), not exported.
    for f in m.functions() {
        assert_ne!(f.linkage(), Linkage::AvailableExternally, "{}", f.name());
    }
}

#[test]
fn host_native_copies_static_helpers_and_refuses_static_state() {
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, RT_SCRIPT.as_bytes(), "rt").unwrap();
    let before = m.defined_symbols();
    let report = import(
        &mut m,
        helpers(),
        &ImportConfig::default(),
        RuntimeMode::HostNative,
    )
    .unwrap();
    assert!(report.entry("rt_clamp_add").unwrap().decision.is_imported());
    let copy = report
        .entries
        .iter()
        .find(|e| e.name.starts_with("clamp_small.llvm."))
        .unwrap_or_else(|| panic!("no copy of clamp_small:\n{report}"));
    assert!(copy.decision.is_imported() && copy.local_copy);
    assert_eq!(m.function(&copy.name).unwrap().linkage(), Linkage::Internal);
    match reason(&report, "rt_next_object_id") {
        Reason::NotEligible(NotEligible::LocalState(name)) => {
            assert!(name.starts_with("rt_next_id"), "{name}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(m.defined_symbols(), before);
    optimize(&mut m, &tm(), OptLevel::O3).unwrap();
    assert_eq!(m.defined_symbols(), before);
    // No promoted name survives as an external reference: the native binary would not have it.
    for f in m.functions() {
        if f.name().contains(".llvm.") {
            assert!(
                !f.is_declaration(),
                "{} is an unresolvable declaration",
                f.name()
            );
        }
    }
}

#[test]
fn script_defining_a_helper_symbol_is_an_error() {
    let ctx = Context::new();
    let text = r#"
define ptr @CreateWrappedValueFromInt(i32 %x) {
  ret ptr null
}
"#;
    let mut m = Module::parse_ir(&ctx, text.as_bytes(), "clash").unwrap();
    match import(
        &mut m,
        helpers(),
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    ) {
        Err(Error::DuplicateDefinition {
            symbol,
            first,
            second,
            ..
        }) => {
            assert_eq!(symbol, "CreateWrappedValueFromInt");
            assert_eq!(first.as_deref(), Some("the helper library"));
            assert!(second.contains("clash"), "{second}");
        }
        other => panic!("{other:?}"),
    }
    // An internal definition with that name is the script's own business: no clash, nothing imported.
    let text = r#"
define internal ptr @CreateWrappedValueFromInt(i32 %x) {
  ret ptr null
}
define ptr @entry() {
  %r = call ptr @CreateWrappedValueFromInt(i32 1)
  ret ptr %r
}
"#;
    let mut m = Module::parse_ir(&ctx, text.as_bytes(), "local").unwrap();
    let report = import_default(&mut m, helpers());
    assert_eq!(report.totals.imported_functions, 0, "{report}");
    assert_eq!(
        m.function("CreateWrappedValueFromInt").unwrap().linkage(),
        Linkage::Internal
    );
}

#[test]
fn invalid_script_ir_is_a_verify_error() {
    let ctx = Context::new();
    let text = r#"
declare ptr @CreateWrappedValueFromInt(i32)
define i32 @f() {
  %a = add i32 %b, 1
  %b = add i32 1, 1
  ret i32 %a
}
"#;
    let mut m = Module::parse_ir(&ctx, text.as_bytes(), "invalid").unwrap();
    match import(
        &mut m,
        helpers(),
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    ) {
        Err(Error::Verify { message, .. }) => {
            assert!(message.contains("dominate"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn damaged_shard_is_a_summary_error() {
    let s = helpers();
    let f = s.index().function("CreateWrappedValueFromInt").unwrap();
    let shard = s.shard(f).unwrap().to_vec();
    let mut bytes = s.to_bytes();
    let at = bytes
        .windows(shard.len())
        .position(|w| w == shard.as_slice())
        .unwrap();
    bytes[at + shard.len() / 2] ^= 0x5a;
    let damaged = Summary::from_bytes(bytes, "damaged.thinjit").unwrap();
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, common::SEED_SCRIPT.as_bytes(), "seed").unwrap();
    let before = m.print();
    match import(
        &mut m,
        &damaged,
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    ) {
        Err(Error::Summary { message, .. }) => assert!(message.contains("damaged"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        m.print(),
        before,
        "a failed import must leave the script alone"
    );
}

/// A shard source whose bytes pass any checksum but are not bitcode LLVM can read.
struct Truncated<'a>(&'a Summary);

impl ShardSource for Truncated<'_> {
    fn index(&self) -> &SummaryIndex {
        self.0.index()
    }
    fn shard(&self, f: &FunctionSummary) -> thinjit::Result<&[u8]> {
        let bytes = self.0.shard(f)?;
        Ok(&bytes[..bytes.len() / 3])
    }
    fn triple(&self) -> &str {
        ShardSource::triple(self.0)
    }
}

#[test]
fn unreadable_shard_is_a_parse_error() {
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, common::SEED_SCRIPT.as_bytes(), "seed").unwrap();
    match import(
        &mut m,
        &Truncated(helpers()),
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    ) {
        Err(Error::Parse { what, .. }) => {
            assert!(what.contains("CreateWrappedValueFromInt"), "{what}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn mismatched_triple_is_an_error() {
    let ctx = Context::new();
    let text = format!(
        "target triple = \"aarch64-unknown-linux-gnu\"\n{}",
        common::SEED_SCRIPT
    );
    let mut m = Module::parse_ir(&ctx, text.as_bytes(), "arm").unwrap();
    match import(
        &mut m,
        helpers(),
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    ) {
        Err(Error::Summary { message, .. }) => assert!(message.contains("triple"), "{message}"),
        other => panic!("{other:?}"),
    }
    // Another vendor field is the same target.
    let text = format!(
        "target triple = \"x86_64-unknown-linux-gnu\"\n{}",
        common::SEED_SCRIPT
    );
    let mut m = Module::parse_ir(&ctx, text.as_bytes(), "vendor").unwrap();
    import_default(&mut m, helpers());
}

#[test]
fn importing_twice_is_harmless() {
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, common::SEED_SCRIPT.as_bytes(), "seed").unwrap();
    let before = m.defined_symbols();
    let first = import_default(&mut m, helpers());
    assert!(first.totals.imported_functions >= 1);
    let second = import_default(&mut m, helpers());
    assert_eq!(second.totals.imported_functions, 0, "{second}");
    // The imported body counts as the script's now: it is neither re-imported nor a clash.
    assert!(
        second.entry("CreateWrappedValueFromInt").is_none(),
        "{second}"
    );
    assert_eq!(
        m.function("CreateWrappedValueFromInt").unwrap().linkage(),
        Linkage::AvailableExternally
    );
    assert_eq!(m.defined_symbols(), before);
    m.verify().unwrap();
}

#[test]
fn cold_call_sites_in_the_script_are_cold_edges() {
    let text = r#"
declare i32 @rt_hot_add(i32, i32)
declare i32 @rt_square_lookup(i32)
define i32 @on_error(i32 %x) {
  %a = call i32 @rt_hot_add(i32 %x, i32 1) #0
  %b = call i32 @rt_square_lookup(i32 %a) #0
  %c = call i32 @rt_square_lookup(i32 %b)
  ret i32 %c
}
attributes #0 = { cold }
"#;
    let ctx = Context::new();
    let m = Module::parse_ir(&ctx, text.as_bytes(), "cold").unwrap();
    let p = plan(
        helpers().index(),
        &script_symbols(&m),
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    );
    // Only cold calls: threshold 100 * import-cold-multiplier (0).
    assert!(matches!(
        p.considered("rt_hot_add").unwrap().decision.reason(),
        Some(Reason::OverThreshold { threshold: 0, .. })
    ));
    // One ordinary call outweighs the cold one.
    assert!(p
        .considered("rt_square_lookup")
        .unwrap()
        .decision
        .is_imported());
}

#[test]
fn plan_from_module_symbols_matches_import() {
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, RT_SCRIPT.as_bytes(), "rt").unwrap();
    let symbols = script_symbols(&m);
    assert!(symbols.declared.contains_key("rt_chain_a"));
    assert!(symbols.defined.contains_key("call_chain"));
    let p = plan(
        helpers().index(),
        &symbols,
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    );
    let report = import_default(&mut m, helpers());
    assert_eq!(report.imported_functions(), p.function_names());
    for e in &report.entries {
        if let Decision::Imported = e.decision {
            assert!(p.considered(&e.name).unwrap().decision.is_imported());
        }
    }
    assert!(report.times.parse_shards > std::time::Duration::ZERO);
}

#[test]
fn thinjit_plan_cli_prints_the_report_and_saves_temps() {
    let dir = tempfile::TempDir::new().unwrap();
    let summary_path = dir.path().join("helpers.thinjit");
    helpers().write(&summary_path).unwrap();
    let script = dir.path().join("seed.ll");
    std::fs::write(&script, common::SEED_SCRIPT).unwrap();
    let temps = dir.path().join("temps");
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_thinjit"))
            .arg("plan")
            .arg(&script)
            .arg("--summary")
            .arg(&summary_path)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let table = run(&["--save-temps", temps.to_str().unwrap()]);
    assert!(table.contains("CreateWrappedValueFromInt"), "{table}");
    assert!(table.contains("imported"), "{table}");
    assert!(table.contains("times:"), "{table}");
    // The engine's save-temps names: `<script>.<NN>-<stage>.bc`.
    let stage = |file: &str| {
        let ctx = Context::new();
        let bytes = std::fs::read(temps.join(file)).unwrap();
        let m = Module::parse(&ctx, &bytes, file).unwrap();
        m.verify().unwrap();
        m.print()
    };
    let before = stage("seed.ll.00-parse.bc");
    let imported = stage("seed.ll.03-import.bc");
    let o3 = stage("seed.ll.04-optimize.bc");
    assert!(before.contains("declare ptr @CreateWrappedValueFromInt"));
    assert!(imported.contains("define available_externally ptr @CreateWrappedValueFromInt"));
    assert!(!o3.contains("call ptr @CreateWrappedValueFromInt"), "{o3}");

    let json: serde_json::Value =
        serde_json::from_str(&run(&["--json", "--import-instr-limit", "0"])).unwrap();
    let entries = json["entries"].as_array().unwrap();
    let seed = entries
        .iter()
        .find(|e| e["name"] == "CreateWrappedValueFromInt")
        .unwrap();
    assert_eq!(
        seed["decision"]["NotImported"]["OverThreshold"]["threshold"],
        0
    );

    // Bad configuration and a missing summary are errors with a message, not panics.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thinjit"))
        .args(["plan", script.to_str().unwrap(), "--summary"])
        .arg(dir.path().join("missing.thinjit"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thinjit"))
        .args(["plan", script.to_str().unwrap(), "--summary"])
        .arg(&summary_path)
        .args(["--import-instr-evolution-factor=-1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("import-instr-evolution-factor"));
}

/// Issue 14: `thinjit plan` runs the engine's own stages (`Engine::dry_run_script`), so its save-temps are the
/// files `thinjit run --save-temps` writes for the stages both run, byte for byte, in both runtime modes.
#[test]
fn thinjit_plan_save_temps_equal_thinjit_runs() {
    let dir = tempfile::TempDir::new().unwrap();
    let summary_path = dir.path().join("helpers.thinjit");
    helpers().write(&summary_path).unwrap();
    let script = dir.path().join("seed.ll");
    std::fs::write(&script, common::SEED_SCRIPT).unwrap();
    let thinjit = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_thinjit"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for (plan_mode, run_mode) in [
        (None, "jit-resident"),
        (Some("--host-native"), "host-native"),
    ] {
        let planned = dir.path().join(format!("plan-{run_mode}"));
        let ran = dir.path().join(format!("run-{run_mode}"));
        let mut plan_args = vec![
            "plan".as_ref(),
            script.as_os_str(),
            "--summary".as_ref(),
            summary_path.as_os_str(),
            "--save-temps".as_ref(),
            planned.as_os_str(),
        ];
        plan_args.extend(plan_mode.map(std::ffi::OsStr::new));
        thinjit(&plan_args);
        thinjit(&[
            "run".as_ref(),
            script.as_os_str(),
            "--summary".as_ref(),
            summary_path.as_os_str(),
            "--entry".as_ref(),
            "f_WRAPPED".as_ref(),
            "--mode".as_ref(),
            run_mode.as_ref(),
            "--save-temps".as_ref(),
            ran.as_os_str(),
        ]);
        let mut files: Vec<String> = std::fs::read_dir(&planned)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(
            files,
            [
                "seed.ll.00-parse.bc",
                "seed.ll.01-verify.bc",
                "seed.ll.02-plan.bc",
                "seed.ll.02-plan.json",
                "seed.ll.03-import.bc",
                "seed.ll.04-optimize.bc",
            ],
            "{run_mode}"
        );
        for file in &files {
            let a = std::fs::read(planned.join(file)).unwrap();
            let b = std::fs::read(ran.join(file)).unwrap();
            assert!(a == b, "{run_mode}: {file} differs between plan and run");
        }
        // `run` went on to code generation and linking.
        assert!(ran.join("seed.ll.05-codegen.o").exists());
        assert!(ran.join("seed.ll.06-link.txt").exists());
    }
}

#[test]
fn helper_that_cannot_be_inlined_is_flagged() {
    let dir = tempfile::TempDir::new().unwrap();
    let lib = dir.path().join("avx.ll");
    std::fs::write(
        &lib,
        r#"
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"

define i32 @baseline_add(i32 %x) #0 {
  %r = add i32 %x, 1
  ret i32 %r
}

define i32 @avx2_add(i32 %x) #1 {
  %r = add i32 %x, 2
  ret i32 %r
}

attributes #0 = { "target-cpu"="x86-64" "target-features"="+cx8,+sse2" }
attributes #1 = { "target-cpu"="x86-64" "target-features"="+avx2,+cx8,+sse2" }
"#,
    )
    .unwrap();
    let summary = Summary::build(&[lib], &BuildOptions::default()).unwrap();
    let script = r#"
target triple = "x86_64-pc-linux-gnu"
declare i32 @baseline_add(i32)
declare i32 @avx2_add(i32)
define i32 @entry(i32 %x) #0 {
  %a = call i32 @baseline_add(i32 %x)
  %b = call i32 @avx2_add(i32 %a)
  ret i32 %b
}
attributes #0 = { "target-cpu"="x86-64" "target-features"="+cx8,+sse2" }
"#;
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, script.as_bytes(), "avx").unwrap();
    let report = import_default(&mut m, &summary);
    assert_eq!(
        report.imported_functions(),
        vec!["avx2_add", "baseline_add"]
    );
    assert_eq!(report.entry("baseline_add").unwrap().not_inlinable, None);
    let why = report
        .entry("avx2_add")
        .unwrap()
        .not_inlinable
        .clone()
        .unwrap();
    assert!(why.contains("+avx2"), "{why}");
    assert!(report.to_string().contains("cannot be inlined"), "{report}");
    // The script already had target attributes: nothing was stamped over them.
    assert!(report.stamped.is_empty());
    // LLVM agrees: O3 inlines the baseline helper and keeps the call to the avx2 one.
    optimize(&mut m, &tm(), OptLevel::O3).unwrap();
    assert_eq!(callees(&m, "entry"), vec!["avx2_add".to_owned()]);
}

#[test]
fn every_opt_level_keeps_the_script_symbols() {
    let tm = tm();
    for level in [OptLevel::O0, OptLevel::O1, OptLevel::O2, OptLevel::O3] {
        let ctx = Context::new();
        let mut m = Module::parse_ir(&ctx, RT_SCRIPT.as_bytes(), "rt").unwrap();
        let before = m.defined_symbols();
        import_default(&mut m, helpers());
        optimize(&mut m, &tm, level).unwrap();
        assert_eq!(m.defined_symbols(), before, "{}", level.pipeline());
        // The module still compiles to an object for the JIT.
        assert!(!tm.emit_object(&m).unwrap().is_empty());
    }
}

/// Serves the real index with one hand-made shard for `CreateWrappedValueFromInt`.
struct Crafted<'a> {
    summary: &'a Summary,
    shard: Vec<u8>,
}

impl ShardSource for Crafted<'_> {
    fn index(&self) -> &SummaryIndex {
        self.summary.index()
    }
    fn shard(&self, f: &FunctionSummary) -> thinjit::Result<&[u8]> {
        if f.name == "CreateWrappedValueFromInt" {
            Ok(&self.shard)
        } else {
            self.summary.shard(f)
        }
    }
    fn triple(&self) -> &str {
        ShardSource::triple(self.summary)
    }
}

#[test]
fn shard_initializers_never_reach_the_script() {
    let ctx = Context::new();
    let shard_ir = r#"
@llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 65535, ptr @helper_init, ptr null }]
@llvm.used = appending global [1 x ptr] [ptr @CreateWrappedValueFromInt], section "llvm.metadata"
declare void @helper_init()
declare ptr @rt_alloc(i64)
define ptr @CreateWrappedValueFromInt(i32 %v) {
  %p = call ptr @rt_alloc(i64 16)
  store i32 %v, ptr %p
  ret ptr %p
}
"#;
    let shard = Module::parse_ir(&ctx, shard_ir.as_bytes(), "crafted")
        .unwrap()
        .write_bitcode();
    let source = Crafted {
        summary: helpers(),
        shard,
    };
    let mut m = Module::parse_ir(&ctx, common::SEED_SCRIPT.as_bytes(), "seed").unwrap();
    let report = import_default(&mut m, &source);
    assert!(report
        .entry("CreateWrappedValueFromInt")
        .unwrap()
        .decision
        .is_imported());
    assert!(m.global("llvm.global_ctors").is_none(), "{}", m.print());
    assert!(m.global("llvm.used").is_none());
    assert_eq!(
        m.function("CreateWrappedValueFromInt").unwrap().linkage(),
        Linkage::AvailableExternally
    );
}

#[test]
fn imported_modules_are_inlined_before_the_main_pipeline() {
    use thinjit::optimize::pipeline_for;
    let summary = helpers();
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, common::SEED_SCRIPT.as_bytes(), "seed.ll").unwrap();
    assert_eq!(
        pipeline_for(&m, OptLevel::O3),
        "default<O3>",
        "nothing imported yet"
    );
    import_default(&mut m, summary);
    assert_eq!(
        pipeline_for(&m, OptLevel::O3),
        "cgscc(inline),elim-avail-extern,globaldce,default<O3>"
    );
    assert_eq!(pipeline_for(&m, OptLevel::O0), "default<O0>");
    let tm = TargetMachine::host(CodeGenOpt::Aggressive).unwrap();
    optimize(&mut m, &tm, OptLevel::O3).unwrap();
    assert!(!m.print().contains("call ptr @CreateWrappedValueFromInt"));
    assert!(
        m.functions()
            .all(|f| f.linkage() != Linkage::AvailableExternally || f.is_declaration()),
        "imported bodies are dropped"
    );
}
