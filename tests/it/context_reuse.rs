//! Contexts reused across eager scripts (issue 17): helper shards parsed in a context are copied for the
//! next scripts compiled in it, each context is dropped after `SCRIPTS_PER_CONTEXT` scripts, and a reused
//! context imports and inlines exactly what a fresh one does.

use std::sync::{Arc, OnceLock};

use thinjit::import::{import, ImportConfig};
use thinjit::jit::RuntimeMode;
use thinjit::jit::{EngineBuilder, SCRIPTS_PER_CONTEXT};
use thinjit::llvm::{Context, Module};
use thinjit::summary::{BuildOptions, Summary};

use crate::common::{helper_bitcode, SEED_SCRIPT};

fn summary() -> Arc<Summary> {
    static S: OnceLock<Arc<Summary>> = OnceLock::new();
    S.get_or_init(|| Arc::new(Summary::build(&helper_bitcode(), &BuildOptions::default()).unwrap()))
        .clone()
}

const SCRIPT: &str = r#"
declare ptr @CreateWrappedValueFromInt(i32)
declare ptr @WrappedValueAdd(ptr, ptr)
declare i32 @WrappedValueGetInt(ptr)
define i32 @reuse_N(i32 %x) {
  %a = call ptr @CreateWrappedValueFromInt(i32 %x)
  %b = call ptr @CreateWrappedValueFromInt(i32 7)
  %c = call ptr @WrappedValueAdd(ptr %a, ptr %b)
  %r = call i32 @WrappedValueGetInt(ptr %c)
  ret i32 %r
}
"#;

host_callbacks!(reuse_host);

#[test]
fn eager_scripts_copy_shards_from_a_reused_context_and_drop_it_after_the_bound() {
    let engine = reuse_host::register(EngineBuilder::new().summary(summary()))
        .keep_optimized_ir(true)
        .build()
        .unwrap();
    let n = 2 * SCRIPTS_PER_CONTEXT as usize + 50;
    let mut first_ir: Option<String> = None;
    let mut imported_first: Option<Vec<String>> = None;
    let mut per_script = 0u64;
    for k in 1..=n {
        let text = SCRIPT.replace('N', &k.to_string());
        let h = engine.add_script("reuse", text.as_bytes()).unwrap();
        let f = h
            .lookup::<extern "C" fn(i32) -> i32>(&format!("reuse_{k}"))
            .unwrap();
        // SAFETY: the script defines `i32 reuse_k(i32)` and stays loaded while `f` is used.
        assert_eq!(unsafe { f.call(k as i32) }, k as i32 + 7);
        let report = h.report().unwrap();
        let import = report.import.expect("an import report");
        per_script = import.totals.imported_functions as u64;
        let imported: Vec<String> = import
            .entries
            .iter()
            .filter(|e| e.decision == thinjit::import::Decision::Imported)
            .map(|e| e.name.clone())
            .collect();
        // Same decisions and the same optimized code (up to the script's number) in every context.
        let ir = report
            .optimized_ir
            .expect("optimized IR")
            .replace(&format!("reuse_{k}"), "reuse_K");
        assert!(
            !ir.contains("call ptr @CreateWrappedValueFromInt"),
            "script {k}: the helper is inlined\n{ir}"
        );
        match (&imported_first, &first_ir) {
            (Some(i), Some(first)) => {
                assert_eq!(&imported, i, "script {k}");
                let body = |s: &str| s[s.find("define").unwrap()..].to_owned();
                assert_eq!(body(&ir), body(first), "script {k}");
            }
            _ => {
                imported_first = Some(imported);
                first_ir = Some(ir);
            }
        }
        h.remove().unwrap();
    }
    let reuse = engine.context_reuse();
    assert_eq!(reuse.scripts, n as u64);
    assert_eq!(
        reuse.contexts_created, 3,
        "{n} scripts on one thread: a context per {SCRIPTS_PER_CONTEXT}"
    );
    assert!(per_script >= 3, "{per_script}");
    // Each context parses every shard once (the script's two calls of one helper share it) and copies after.
    assert!(
        reuse.shards_parsed <= 3 * per_script,
        "parsed {} shards",
        reuse.shards_parsed
    );
    assert!(
        reuse.shards_copied >= (n as u64 - 3) * per_script,
        "copied {} shards",
        reuse.shards_copied
    );
}

#[test]
fn a_cached_context_imports_what_a_fresh_one_does() {
    let summary = summary();
    let config = ImportConfig::default();
    let reused = Context::new();
    reused.enable_module_cache();
    for round in 0..3 {
        let fresh = Context::new();
        let mut a = Module::parse_ir(&fresh, SEED_SCRIPT.as_bytes(), "seed.ll").unwrap();
        let mut b = Module::parse_ir(&reused, SEED_SCRIPT.as_bytes(), "seed.ll").unwrap();
        let ra = import(&mut a, &*summary, &config, RuntimeMode::JitResident).unwrap();
        let rb = import(&mut b, &*summary, &config, RuntimeMode::JitResident).unwrap();
        assert_eq!(ra.entries, rb.entries, "round {round}");
        assert_eq!(a.print(), b.print(), "round {round}");
        let stats = reused.module_cache_stats();
        assert_eq!(stats.misses, ra.totals.imported_functions as u64);
        assert_eq!(
            stats.hits,
            round * ra.totals.imported_functions as u64,
            "round {round}"
        );
        assert_eq!(stats.modules, ra.totals.imported_functions);
    }
    assert_eq!(
        Context::new().module_cache_stats(),
        Default::default(),
        "off unless enabled"
    );
}
