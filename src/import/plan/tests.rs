//! Planner tests on hand-made summary indexes (no LLVM).

use proptest::prelude::*;

use super::*;
use crate::summary::{CallEdge, FunctionAttributes, VariableSummary};

fn func(name: &str, size: u32) -> FunctionSummary {
    FunctionSummary {
        name: name.into(),
        original_name: None,
        linkage: Linkage::External,
        original_linkage: Linkage::External,
        instruction_count: size,
        attributes: FunctionAttributes::default(),
        calls: Vec::new(),
        refs: Vec::new(),
        locals: Vec::new(),
        not_eligible: Vec::new(),
        shard: None,
    }
}

fn calls(mut f: FunctionSummary, callees: &[(&str, Hotness)]) -> FunctionSummary {
    f.calls = callees
        .iter()
        .map(|(c, h)| CallEdge {
            callee: (*c).into(),
            count: 1,
            hotness: *h,
        })
        .collect();
    f
}

fn call(f: FunctionSummary, callees: &[&str]) -> FunctionSummary {
    let edges: Vec<(&str, Hotness)> = callees.iter().map(|c| (*c, Hotness::Unknown)).collect();
    calls(f, &edges)
}

fn var(name: &str, constant: bool) -> VariableSummary {
    VariableSummary {
        name: name.into(),
        original_name: None,
        linkage: Linkage::External,
        constant,
        thread_local: false,
        size: 8,
        importable_initializer: constant,
        refs: Vec::new(),
    }
}

fn index(functions: Vec<FunctionSummary>, variables: Vec<VariableSummary>) -> SummaryIndex {
    let mut index = SummaryIndex {
        functions,
        variables,
        initializers: Vec::new(),
    };
    index.canonicalize();
    index
}

fn script(declared: &[&str]) -> ScriptSymbols {
    declared
        .iter()
        .fold(ScriptSymbols::new(), |s, d| s.declare(d))
        .define("script_main", Linkage::External)
}

fn reason<'p>(p: &'p ImportPlan, name: &str) -> Option<&'p Reason> {
    p.considered(name).expect(name).decision.reason()
}

#[test]
fn threshold_is_inclusive_at_the_limit() {
    let idx = index(vec![func("fits", 100), func("big", 101)], vec![]);
    let p = plan(
        &idx,
        &script(&["fits", "big"]),
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    );
    assert_eq!(p.function_names(), vec!["fits"]);
    assert_eq!(
        reason(&p, "big"),
        Some(&Reason::OverThreshold {
            size: 101,
            threshold: 100,
            depth: 1
        })
    );
    let higher = ImportConfig {
        import_instr_limit: 101,
        ..ImportConfig::default()
    };
    assert_eq!(
        plan(&idx, &script(&["big"]), &higher, RuntimeMode::JitResident).function_names(),
        vec!["big"]
    );
}

#[test]
fn evolution_factor_decays_per_level() {
    // Thresholds 100 -> 70 -> 49 -> 34 (34.3 truncated, as LLVM stores an unsigned).
    let idx = index(
        vec![
            call(func("a", 10), &["b"]),
            call(func("b", 70), &["c"]),
            call(func("c", 49), &["d"]),
            func("d", 35),
        ],
        vec![],
    );
    let p = plan(
        &idx,
        &script(&["a"]),
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    );
    assert_eq!(p.function_names(), vec!["a", "b", "c"]);
    assert_eq!(
        reason(&p, "d"),
        Some(&Reason::OverThreshold {
            size: 35,
            threshold: 34,
            depth: 4
        })
    );
    let c = p.considered("c").unwrap();
    assert_eq!((c.threshold, c.depth), (49, 3));
    let flat = ImportConfig {
        import_instr_evolution_factor: 1.0,
        ..ImportConfig::default()
    };
    assert_eq!(
        plan(&idx, &script(&["a"]), &flat, RuntimeMode::JitResident).function_names(),
        vec!["a", "b", "c", "d"]
    );
}

#[test]
fn failed_at_higher_threshold_is_not_retried_lower() {
    let idx = index(
        vec![call(func("a", 10), &["big"]), func("big", 150)],
        vec![],
    );
    let p = plan(
        &idx,
        &script(&["a", "big"]),
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    );
    assert_eq!(p.function_names(), vec!["a"]);
    let big = p.considered("big").unwrap();
    assert_eq!((big.threshold, big.depth), (100, 1));
}

#[test]
fn imported_at_lower_threshold_is_revisited_higher() {
    // `p -> q -> c` reaches c at 49 first (stack order), whose callee d (40) fails at 34; `a -> c` then
    // reaches c at 70, so c is pushed again and d is retried at 49 and imported.
    let idx = index(
        vec![
            call(func("a", 5), &["c"]),
            call(func("p", 5), &["q"]),
            call(func("q", 5), &["c"]),
            call(func("c", 30), &["d"]),
            func("d", 40),
        ],
        vec![],
    );
    let p = plan(
        &idx,
        &script(&["a", "p"]),
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    );
    assert_eq!(p.function_names(), vec!["a", "c", "d", "p", "q"]);
    let d = p.considered("d").unwrap();
    assert_eq!(d.threshold, 49);
    assert_eq!(p.considered("c").unwrap().threshold, 70);
}

#[test]
fn noinline_alwaysinline_and_force() {
    let mut no = func("no", 5);
    no.attributes.noinline = true;
    let mut always = func("always", 500);
    always.attributes.alwaysinline = true;
    let idx = index(vec![no, always], vec![]);
    let s = script(&["no", "always"]);
    let p = plan(&idx, &s, &ImportConfig::default(), RuntimeMode::JitResident);
    assert_eq!(p.function_names(), vec!["always"]);
    assert_eq!(reason(&p, "no"), Some(&Reason::NoInline));

    let strict = ImportConfig {
        always_import_alwaysinline: false,
        ..ImportConfig::default()
    };
    let p = plan(&idx, &s, &strict, RuntimeMode::JitResident);
    assert!(p.functions.is_empty());
    assert!(matches!(
        reason(&p, "always"),
        Some(Reason::OverThreshold { size: 500, .. })
    ));

    let force = ImportConfig {
        force_import_all: true,
        ..ImportConfig::default()
    };
    assert_eq!(
        plan(&idx, &s, &force, RuntimeMode::JitResident).function_names(),
        vec!["always", "no"]
    );
}

#[test]
fn interposable_not_eligible_and_missing() {
    let mut weak = func("weak", 5);
    weak.linkage = Linkage::WeakAny;
    weak.not_eligible = vec![NotEligible::Interposable];
    let mut va = func("va", 5);
    va.not_eligible = vec![NotEligible::VaStart];
    let mut asm = func("asm", 5);
    asm.not_eligible = vec![NotEligible::InlineAsm];
    let idx = index(vec![weak, va, asm], vec![]);
    let p = plan(
        &idx,
        &script(&["weak", "va", "asm", "printf", "llvm.memcpy.p0.p0.i64"]),
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    );
    assert!(p.functions.is_empty());
    assert_eq!(reason(&p, "weak"), Some(&Reason::Interposable));
    assert_eq!(
        reason(&p, "va"),
        Some(&Reason::NotEligible(NotEligible::VaStart))
    );
    assert_eq!(
        reason(&p, "asm"),
        Some(&Reason::NotEligible(NotEligible::InlineAsm))
    );
    assert_eq!(reason(&p, "printf"), Some(&Reason::NotInSummary));
    assert!(p.considered("llvm.memcpy.p0.p0.i64").is_none());
}

#[test]
fn hot_and_cold_edges() {
    let idx = index(
        vec![
            calls(
                func("a", 5),
                &[("hot_big", Hotness::Hot), ("cold_small", Hotness::Cold)],
            ),
            call(func("hot_big", 600), &["next"]),
            func("cold_small", 1),
            func("next", 70),
        ],
        vec![],
    );
    let p = plan(
        &idx,
        &script(&["a"]),
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    );
    // hot: 70 * 10 = 700 >= 600; its callees get a's threshold * hot evolution factor 1.0 = 70.
    assert_eq!(p.function_names(), vec!["a", "hot_big", "next"]);
    assert_eq!(p.considered("hot_big").unwrap().threshold, 700);
    assert_eq!(
        reason(&p, "cold_small"),
        Some(&Reason::OverThreshold {
            size: 1,
            threshold: 0,
            depth: 2
        })
    );
}

#[test]
fn script_definitions_are_never_imported_and_clashes_are_listed() {
    let idx = index(
        vec![call(func("a", 5), &["script_main", "b"]), func("b", 5)],
        vec![var("table", true)],
    );
    let s = script(&["a"])
        .define("b", Linkage::Internal)
        .define("table", Linkage::External);
    let p = plan(&idx, &s, &ImportConfig::default(), RuntimeMode::JitResident);
    assert_eq!(p.function_names(), vec!["a"]);
    assert_eq!(reason(&p, "script_main"), Some(&Reason::DefinedByScript));
    assert_eq!(reason(&p, "b"), Some(&Reason::DefinedByScript));
    // `b` is internal to the script: no clash; `table` is an external definition the helpers also have.
    assert_eq!(s.clashes(&idx), vec!["table".to_owned()]);
}

#[test]
fn allow_deny_and_cap() {
    let idx = index(
        vec![call(func("a", 30), &["b"]), func("b", 30), func("c", 30)],
        vec![],
    );
    let s = script(&["a", "c"]);
    let mut deny = ImportConfig::default();
    deny.deny.insert("b".into());
    let p = plan(&idx, &s, &deny, RuntimeMode::JitResident);
    assert_eq!(p.function_names(), vec!["a", "c"]);
    assert_eq!(reason(&p, "b"), Some(&Reason::Denied));

    let mut allow = ImportConfig::default();
    allow.allow.insert("c".into());
    assert_eq!(
        plan(&idx, &s, &allow, RuntimeMode::JitResident).function_names(),
        vec!["c"]
    );

    let cap = ImportConfig {
        max_total_instructions: Some(60),
        ..ImportConfig::default()
    };
    let p = plan(&idx, &s, &cap, RuntimeMode::JitResident);
    // Roots first in name order (a, c), then a's callee b no longer fits.
    assert_eq!(p.function_names(), vec!["a", "c"]);
    assert_eq!(
        reason(&p, "b"),
        Some(&Reason::TotalCapReached { cap: 60, size: 30 })
    );
    assert_eq!(p.imported_instructions(), 60);
}

#[test]
fn constants_are_imported_and_mutables_stay_declarations() {
    let mut reader = func("reader", 5);
    reader.refs = vec!["counter".into(), "ptrs".into(), "tls".into()];
    let mut ptrs = var("ptrs", true);
    ptrs.refs = vec!["squares".into()];
    let mut tls = var("tls", false);
    tls.thread_local = true;
    let idx = index(
        vec![reader],
        vec![var("counter", false), ptrs, var("squares", true), tls],
    );
    let p = plan(
        &idx,
        &script(&["reader", "counter"]),
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    );
    assert_eq!(p.variable_names(), vec!["ptrs", "squares"]);
    assert_eq!(reason(&p, "counter"), Some(&Reason::Mutable));
    assert_eq!(reason(&p, "tls"), Some(&Reason::Mutable));
}

fn promoted(mut f: FunctionSummary, original: &str) -> FunctionSummary {
    f.original_name = Some(original.into());
    f.linkage = Linkage::External;
    f.original_linkage = Linkage::Internal;
    f
}

#[test]
fn host_native_copies_static_helpers_and_refuses_static_state() {
    let mut clamp = promoted(func("clamp.llvm.1", 8), "clamp");
    clamp.attributes.noinline = true;
    let mut add = call(func("add", 4), &["clamp.llvm.1"]);
    add.locals = vec!["clamp.llvm.1".into()];
    let mut crc = func("crc", 20);
    crc.refs = vec!["table.llvm.1".into()];
    crc.locals = vec!["table.llvm.1".into()];
    let mut table = var("table.llvm.1", true);
    table.original_name = Some("table".into());
    let mut next_id = func("next_id", 4);
    next_id.refs = vec!["id.llvm.1".into()];
    next_id.locals = vec!["id.llvm.1".into()];
    let mut id = var("id.llvm.1", false);
    id.original_name = Some("id".into());
    let idx = index(vec![clamp, add, crc, next_id], vec![table, id]);
    let s = script(&["add", "crc", "next_id"]);

    let jit = plan(&idx, &s, &ImportConfig::default(), RuntimeMode::JitResident);
    assert_eq!(jit.function_names(), vec!["add", "crc", "next_id"]);
    assert_eq!(reason(&jit, "clamp.llvm.1"), Some(&Reason::NoInline));
    assert_eq!(jit.variable_names(), vec!["table.llvm.1"]);
    assert_eq!(reason(&jit, "id.llvm.1"), Some(&Reason::Mutable));

    let p = plan(&idx, &s, &ImportConfig::default(), RuntimeMode::HostNative);
    assert_eq!(p.function_names(), vec!["add", "clamp.llvm.1", "crc"]);
    assert!(p.functions[1].local_copy);
    assert!(!p.functions[0].local_copy);
    assert_eq!(p.variable_names(), vec!["table.llvm.1"]);
    assert!(p.variables[0].local_copy);
    assert_eq!(
        reason(&p, "next_id"),
        Some(&Reason::NotEligible(NotEligible::LocalState(
            "id.llvm.1".into()
        )))
    );
}

#[test]
fn plan_is_deterministic() {
    let idx = index(
        vec![
            call(func("a", 10), &["b", "c"]),
            call(func("b", 60), &["c", "d"]),
            func("c", 40),
            func("d", 20),
        ],
        vec![var("k", true)],
    );
    let s = script(&["a", "d", "k"]);
    let first = plan(&idx, &s, &ImportConfig::default(), RuntimeMode::JitResident);
    for _ in 0..5 {
        assert_eq!(
            plan(&idx, &s, &ImportConfig::default(), RuntimeMode::JitResident),
            first
        );
    }
}

fn arb_index() -> impl Strategy<Value = (SummaryIndex, ScriptSymbols)> {
    let n = 12usize;
    let hotness = prop_oneof![
        Just(Hotness::Unknown),
        Just(Hotness::None),
        Just(Hotness::Cold)
    ];
    let edge = (0..n, hotness);
    let function = (
        1u32..200,
        prop::collection::vec(edge, 0..4),
        0u8..20,
        prop::collection::vec(0..n, 0..2),
    );
    (
        prop::collection::vec(function, n),
        prop::collection::vec(0..n + 3, 1..5),
        prop::collection::vec(0..n, 0..3),
    )
        .prop_map(move |(functions, declared, defined)| {
            let name = |i: usize| format!("f{i:02}");
            let functions = functions
                .into_iter()
                .enumerate()
                .map(|(i, (size, edges, flag, refs))| {
                    let mut f = func(&name(i), size);
                    f.calls = edges
                        .into_iter()
                        .map(|(c, hotness)| CallEdge {
                            callee: name(c),
                            count: 1,
                            hotness,
                        })
                        .collect();
                    f.calls.sort_by(|a, b| a.callee.cmp(&b.callee));
                    f.calls.dedup_by(|a, b| a.callee == b.callee);
                    f.refs = refs.into_iter().map(|r| format!("v{r:02}")).collect();
                    match flag {
                        0 => f.attributes.noinline = true,
                        1 => f.attributes.alwaysinline = true,
                        2 => f.linkage = Linkage::LinkOnceAny,
                        3 => f.not_eligible = vec![NotEligible::InlineAsm],
                        _ => {}
                    }
                    f
                })
                .collect();
            let variables = (0..n)
                .map(|i| var(&format!("v{i:02}"), i % 2 == 0))
                .collect();
            let mut s = ScriptSymbols::new();
            for d in declared {
                s = s.declare(&name(d));
            }
            for d in defined {
                s = s.define(&name(d), Linkage::External);
            }
            (index(functions, variables), s)
        })
}

proptest! {
    #[test]
    fn prop_deterministic((idx, s) in arb_index()) {
        let c = ImportConfig::default();
        prop_assert_eq!(plan(&idx, &s, &c, RuntimeMode::JitResident), plan(&idx, &s, &c, RuntimeMode::JitResident));
    }

    #[test]
    fn prop_higher_limit_never_imports_less((idx, s) in arb_index(), lo in 0u32..150, extra in 0u32..150) {
        let low = ImportConfig { import_instr_limit: lo, ..ImportConfig::default() };
        let high = ImportConfig { import_instr_limit: lo + extra, ..ImportConfig::default() };
        let a: BTreeSet<String> = plan(&idx, &s, &low, RuntimeMode::JitResident).functions.into_iter().map(|f| f.name).collect();
        let b: BTreeSet<String> = plan(&idx, &s, &high, RuntimeMode::JitResident).functions.into_iter().map(|f| f.name).collect();
        prop_assert!(a.is_subset(&b), "{:?} not within {:?}", a, b);
    }

    #[test]
    fn prop_imports_are_eligible_and_not_script_defined((idx, s) in arb_index(), limit in 0u32..300) {
        let c = ImportConfig { import_instr_limit: limit, ..ImportConfig::default() };
        let p = plan(&idx, &s, &c, RuntimeMode::JitResident);
        for f in &p.functions {
            let summary = idx.function(&f.name).unwrap();
            prop_assert!(summary.is_eligible(), "{} not eligible", f.name);
            prop_assert!(!summary.linkage.is_interposable());
            prop_assert!(!summary.attributes.noinline);
            prop_assert!(summary.attributes.alwaysinline || summary.instruction_count <= f.threshold);
            prop_assert!(!s.defines(&f.name), "{} is defined by the script", f.name);
        }
        for v in &p.variables {
            prop_assert!(idx.variable(&v.name).unwrap().constant);
            prop_assert!(!s.defines(&v.name));
        }
    }
}

#[test]
fn allow_list_restricts_functions_not_the_constants_they_read() {
    let mut reader = func("reader", 5);
    reader.refs = vec!["table".into(), "secret".into()];
    let idx = index(
        vec![reader, func("other", 5)],
        vec![var("table", true), var("secret", true)],
    );
    let mut config = ImportConfig::default();
    config.allow.insert("reader".into());
    config.deny.insert("secret".into());
    let p = plan(
        &idx,
        &script(&["reader", "other"]),
        &config,
        RuntimeMode::JitResident,
    );
    assert_eq!(p.function_names(), vec!["reader"]);
    assert_eq!(reason(&p, "other"), Some(&Reason::Denied));
    assert_eq!(p.variable_names(), vec!["table"]);
    assert_eq!(reason(&p, "secret"), Some(&Reason::Denied));
}
