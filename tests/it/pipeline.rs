//! The per-script pipeline (issue 14, items 1 and 4): named, timed stages, save-temps, one triple matcher,
//! owned script handles (issue 13, item 5).

use std::sync::{Arc, OnceLock};

use thinjit::jit::RuntimeMode;
use thinjit::jit::{Engine, EngineBuilder, Script, Stage};
use thinjit::llvm::{same_target, Context, Module};
use thinjit::summary::{BuildOptions, Summary};
use thinjit::Error;

use crate::common::{helper_bitcode, SEED_SCRIPT};

fn summary() -> Arc<Summary> {
    static S: OnceLock<Arc<Summary>> = OnceLock::new();
    S.get_or_init(|| Arc::new(Summary::build(&helper_bitcode(), &BuildOptions::default()).unwrap()))
        .clone()
}

host_callbacks!(pipeline_host);

fn engine_with_temps(dir: &std::path::Path, lazy: bool) -> Engine {
    pipeline_host::register(
        EngineBuilder::new()
            .runtime_mode(RuntimeMode::JitResident)
            .summary(summary())
            .save_temps(dir)
            .lazy(lazy),
    )
    .build()
    .unwrap()
}

/// Parses and verifies a save-temps bitcode file, returning its text.
fn stage_module(path: &std::path::Path) -> String {
    let ctx = Context::new();
    let bytes = std::fs::read(path).unwrap();
    let m = Module::parse(&ctx, &bytes, &path.display().to_string()).unwrap();
    m.verify()
        .unwrap_or_else(|e| panic!("{} does not verify: {e}", path.display()));
    m.print()
}

#[test]
fn save_temps_writes_one_verified_file_per_stage() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with_temps(dir.path(), false);
    let script = engine.add_script("seed", SEED_SCRIPT.as_bytes()).unwrap();
    let report = script.report().unwrap();
    let names = temp_names(&report);
    assert_eq!(
        names,
        [
            "seed.00-parse.bc",
            "seed.01-verify.bc",
            "seed.02-plan.bc",
            "seed.03-import.bc",
            "seed.04-optimize.bc",
            "seed.05-codegen.o",
            "seed.06-link.txt",
        ]
    );
    for stage in Stage::ALL {
        assert_eq!(
            names[stage as usize],
            stage.temp_file_name("seed"),
            "{stage}"
        );
    }
    // Every module stage parses and verifies, and shows what its stage did.
    let parsed = stage_module(&report.temps[0]);
    assert!(parsed.contains("declare ptr @CreateWrappedValueFromInt"));
    for path in &report.temps[1..3] {
        stage_module(path);
    }
    let imported = stage_module(&report.temps[3]);
    assert!(
        imported.contains("define available_externally ptr @CreateWrappedValueFromInt"),
        "{imported}"
    );
    let optimized = stage_module(&report.temps[4]);
    assert!(
        !optimized.contains("call ptr @CreateWrappedValueFromInt"),
        "{optimized}"
    );
    let object = std::fs::read(&report.temps[5]).unwrap();
    assert_eq!(&object[..4], b"\x7fELF");
    assert_eq!(Some(object.len()), report.object_size);
    let linked = std::fs::read_to_string(&report.temps[6]).unwrap();
    assert!(linked.contains(" f_WRAPPED\n"), "{linked}");
    // The plan itself, as JSON.
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("seed.02-plan.json")).unwrap())
            .unwrap();
    assert!(plan["functions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "CreateWrappedValueFromInt"));

    // Every stage ran and was timed.
    for stage in Stage::ALL {
        assert!(
            !report.times.get(stage).is_zero(),
            "{stage} was not timed: {:?}",
            report.times
        );
    }
    assert_eq!(
        report.times.total(),
        Stage::ALL.iter().map(|s| report.times.get(*s)).sum()
    );
}

#[test]
fn lazy_mode_saves_the_stages_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with_temps(dir.path(), true);
    let script = engine
        .add_script("lazy-seed", SEED_SCRIPT.as_bytes())
        .unwrap();
    assert!(script.report().is_none(), "not materialized yet");
    script
        .lookup::<extern "C" fn(*mut libc::c_void, *mut libc::c_void) -> *mut libc::c_void>(
            "f_WRAPPED",
        )
        .unwrap();
    let report = script.report().unwrap();
    let names = temp_names(&report);
    assert_eq!(
        names,
        [
            "lazy-seed.00-parse.bc",
            "lazy-seed.01-verify.bc",
            "lazy-seed.02-plan.bc",
            "lazy-seed.03-import.bc",
            "lazy-seed.04-optimize.bc",
        ]
    );
    for path in &report.temps {
        stage_module(path);
    }
}

/// Issue 14: `summary/mod.rs` and the engine disagreed on `x86_64-linux-gnu` vs `x86_64-pc-linux-gnu`.
#[test]
fn one_triple_matcher_for_summaries_and_scripts() {
    for (a, b, same) in [
        ("x86_64-pc-linux-gnu", "x86_64-unknown-linux-gnu", true),
        ("x86_64-linux-gnu", "x86_64-pc-linux-gnu", true),
        ("x86_64-linux-gnu", "x86_64-unknown-linux-gnu", true),
        ("x86_64-pc-linux-gnu", "x86_64-pc-linux-musl", false),
        ("x86_64-pc-linux-gnu", "aarch64-unknown-linux-gnu", false),
        ("x86_64-linux-gnu", "x86_64-apple-darwin", false),
    ] {
        assert_eq!(same_target(a, b), same, "{a} vs {b}");
        assert_eq!(same_target(b, a), same, "{b} vs {a}");
    }
    // The summary and the engine answer the same way.
    let s = summary();
    s.check_target("x86_64-linux-gnu", "").unwrap();
    assert!(s.check_target("aarch64-linux-gnu", "").is_err());
    let engine = EngineBuilder::new().build().unwrap();
    let script =
        "target triple = \"x86_64-linux-gnu\"\ndefine i32 @short_triple() {\n  ret i32 1\n}\n";
    engine.add_script("short", script.as_bytes()).unwrap();
    let other =
        "target triple = \"aarch64-linux-gnu\"\ndefine i32 @other_triple() {\n  ret i32 1\n}\n";
    assert!(matches!(
        engine.add_script("other", other.as_bytes()),
        Err(Error::Target { .. })
    ));
}

/// A host keeps scripts in its own struct (issue 13, item 5: this did not compile with `ScriptHandle<'_>`).
struct MyJit {
    engine: Engine,
    scripts: Vec<Script>,
}

fn assert_send_sync<T: Send + Sync + Clone>() {}

#[test]
fn issue13_owned_scripts_live_in_the_hosts_struct() {
    assert_send_sync::<Script>();
    let mut jit = MyJit {
        engine: EngineBuilder::new().build().unwrap(),
        scripts: Vec::new(),
    };
    for i in 0..3 {
        let source = format!("define i32 @owned_{i}() {{\n  ret i32 {i}\n}}\n");
        let script = jit
            .engine
            .add_owned_script(&format!("s{i}"), source.as_bytes())
            .unwrap();
        jit.scripts.push(script);
    }
    // A clone sent to another thread keeps working.
    let clone = jit.scripts[2].clone();
    let from_thread = std::thread::spawn(move || {
        let f = clone.lookup::<extern "C" fn() -> i32>("owned_2").unwrap();
        // SAFETY: `i32 ()`; the clone keeps the script loaded.
        unsafe { f.call() }
    })
    .join()
    .unwrap();
    assert_eq!(from_thread, 2);
    assert_eq!(jit.engine.script_count(), 3);
    // Dropping the last clone unloads the script.
    jit.scripts.remove(0);
    assert_eq!(jit.engine.script_count(), 2);
    assert!(matches!(
        jit.engine.lookup_address("owned_0"),
        Err(Error::UndefinedSymbol { .. })
    ));
    // Explicit removal of one of two clones leaves it loaded for the other.
    let second = jit.scripts[0].clone();
    second.remove().unwrap();
    assert!(jit.engine.lookup_address("owned_1").is_ok());
    // A script outlives the engine: the JIT stays alive while it is held.
    let MyJit { engine, scripts } = jit;
    drop(engine);
    let f = scripts[1]
        .lookup::<extern "C" fn() -> i32>("owned_2")
        .unwrap();
    // SAFETY: `i32 ()`; `scripts[1]` keeps the script and the JIT alive.
    assert_eq!(unsafe { f.call() }, 2);
    drop(scripts);
}

/// Issue 14: a module is verified once per trust boundary — the script after parsing, the script with the
/// linked helper code after import — not again before optimization, code generation, or when nothing came in.
#[test]
fn each_add_verifies_once_per_trust_boundary() {
    use thinjit::jit::Strategy;
    use thinjit::llvm::modules_verified_on_this_thread;

    const NO_HELPERS: &str = "define i64 @main() {\n  ret i64 7\n}\n";
    let engine = |strategy: Strategy, lazy: bool| {
        pipeline_host::register(
            EngineBuilder::new()
                .runtime_mode(RuntimeMode::JitResident)
                .summary(summary())
                .strategy(strategy)
                .lazy(lazy),
        )
        .build()
        .unwrap()
    };
    // Verifier runs for one add plus the lookup of `entry` (where a lazy engine imports and compiles).
    let verifications = |engine: &Engine, name: &str, source: &str, entry: &str| {
        let before = modules_verified_on_this_thread();
        engine.add_script(name, source.as_bytes()).unwrap();
        let added = modules_verified_on_this_thread() - before;
        engine.lookup_address(entry).unwrap();
        (added, modules_verified_on_this_thread() - before)
    };

    let eager = engine(Strategy::Summary, false);
    // The script after parsing, then script + shards after import.
    assert_eq!(
        verifications(&eager, "seed", SEED_SCRIPT, "f_WRAPPED"),
        (2, 2)
    );
    // Nothing to import: the script only.
    assert_eq!(verifications(&eager, "plain", NO_HELPERS, "main"), (1, 1));

    let none = engine(Strategy::None, false);
    assert_eq!(
        verifications(&none, "seed", SEED_SCRIPT, "f_WRAPPED"),
        (1, 1)
    );

    // Lazy: the script when added, script + shards inside ORC's transform at the first lookup.
    let lazy = engine(Strategy::Summary, true);
    assert_eq!(
        verifications(&lazy, "seed", SEED_SCRIPT, "f_WRAPPED"),
        (1, 2)
    );
    assert_eq!(verifications(&lazy, "plain", NO_HELPERS, "main"), (1, 1));
}

/// Issue 14: a dry run goes through the stages an add runs before code generation, with the add's save-temps
/// names and report, and leaves nothing in the JIT.
#[test]
fn dry_run_runs_the_stages_before_codegen_and_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with_temps(dir.path(), false);
    let report = engine
        .dry_run_script("seed", SEED_SCRIPT.as_bytes())
        .unwrap();
    let names = temp_names(&report);
    assert_eq!(
        names,
        [
            "seed.00-parse.bc",
            "seed.01-verify.bc",
            "seed.02-plan.bc",
            "seed.03-import.bc",
            "seed.04-optimize.bc",
        ]
    );
    let import = report.import.as_ref().unwrap();
    assert!(import
        .imported_functions()
        .contains(&"CreateWrappedValueFromInt"));
    assert!(report.times.optimize > std::time::Duration::ZERO);
    assert_eq!(report.times.codegen, std::time::Duration::ZERO);
    assert_eq!(report.object_size, None);
    assert_eq!(engine.script_count(), 0);
    assert!(matches!(
        engine.lookup_address("f_WRAPPED"),
        Err(Error::UndefinedSymbol { .. })
    ));
    // The same script added afterwards imports the same helpers.
    let script = engine.add_script("seed", SEED_SCRIPT.as_bytes()).unwrap();
    assert_eq!(
        script
            .report()
            .unwrap()
            .import
            .unwrap()
            .imported_functions(),
        import.imported_functions()
    );
}

/// The file names of a report's save-temps files, in stage order.
fn temp_names(report: &thinjit::jit::ScriptReport) -> Vec<String> {
    report
        .temps
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}
