//! The ORC engine (issue 6): helpers once, scripts many — one instance of every global, initializers once,
//! no MaterializationResponsibility errors, typed errors for bad input.

use std::sync::{Arc, Mutex, OnceLock};

use thinjit::import::Decision;
use thinjit::jit::RuntimeMode;
use thinjit::jit::{Engine, EngineBuilder, ScriptHandle, Strategy};
use thinjit::llvm::{Context, Module};
use thinjit::summary::{BuildOptions, Summary};
use thinjit::Error;

use crate::common::{helper_bitcode, helper_shared_library, rss_kib, SEED_SCRIPT};

/// The bundled helpers' summary, built once for all engine tests.
fn summary() -> Arc<Summary> {
    static S: OnceLock<Arc<Summary>> = OnceLock::new();
    S.get_or_init(|| Arc::new(Summary::build(&helper_bitcode(), &BuildOptions::default()).unwrap()))
        .clone()
}

fn summary_builder(mode: RuntimeMode) -> EngineBuilder {
    let builder = EngineBuilder::new()
        .runtime_mode(mode)
        .summary(summary())
        .keep_optimized_ir(true);
    match mode {
        RuntimeMode::JitResident => builder,
        RuntimeMode::HostNative => builder.shared_library(helper_shared_library()),
    }
}

const EVENT_CTOR: usize = 1;
const EVENT_DTOR: usize = 2;

/// The bundled helpers linked into one library module (bitcode).
pub fn linked_helper_library() -> Vec<u8> {
    let ctx = Context::new();
    let mut files = helper_bitcode().into_iter();
    let mut library = Module::parse_file(&ctx, &files.next().unwrap()).unwrap();
    for file in files {
        library
            .link_in(Module::parse_file(&ctx, &file).unwrap())
            .unwrap();
    }
    library.write_bitcode()
}

fn resident_builder() -> EngineBuilder {
    EngineBuilder::new()
        .runtime_mode(RuntimeMode::JitResident)
        .helper_library("helpers", linked_helper_library())
}

/// Host-native tests share the process-wide native helper library: serialize them.
static NATIVE: Mutex<()> = Mutex::new(());

fn native_builder() -> EngineBuilder {
    EngineBuilder::new()
        .runtime_mode(RuntimeMode::HostNative)
        .shared_library(helper_shared_library())
}

const COUNTER_SCRIPT: &str = r#"
declare i64 @rt_counter_increment()
define i64 @bump_NAME() {
  %r = call i64 @rt_counter_increment()
  ret i64 %r
}
"#;

fn counter_script(name: &str) -> String {
    COUNTER_SCRIPT.replace("NAME", name)
}

host_callbacks!(ctor_host);

#[test]
fn initializers_once_across_100_scripts_and_destructor_once_at_drop() {
    let engine = ctor_host::register(resident_builder()).build().unwrap();
    assert_eq!(ctor_host::events(EVENT_CTOR), 1, "constructor ran at build");
    assert_eq!(engine.initializers().len(), 1);
    let script = r#"
declare i32 @rt_intern_ctor_runs()
define i32 @runs_N() {
  %r = call i32 @rt_intern_ctor_runs()
  ret i32 %r
}
"#;
    for i in 0..100 {
        let h = engine
            .add_script(
                &format!("s{i}"),
                script.replace("_N", &format!("_{i}")).as_bytes(),
            )
            .unwrap();
        let f = h
            .lookup::<extern "C" fn() -> i32>(&format!("runs_{i}"))
            .unwrap();
        assert_eq!(unsafe { f.call() }, 1);
    }
    assert_eq!(ctor_host::events(EVENT_CTOR), 1);
    assert_eq!(ctor_host::events(EVENT_DTOR), 0);
    drop(engine);
    assert_eq!(
        ctor_host::events(EVENT_DTOR),
        1,
        "destructor ran exactly once at drop"
    );
    assert_eq!(ctor_host::events(EVENT_CTOR), 1);
}

host_callbacks!(counter_host);

#[test]
fn one_counter_instance_jit_resident() {
    let engine = counter_host::register(resident_builder()).build().unwrap();
    let (a, b) = add_counter_scripts(&engine);
    assert_eq!(
        assert_one_counter(&engine, &a, &b),
        0,
        "a fresh engine's counter"
    );
}

#[test]
fn one_counter_instance_host_native() {
    let _guard = NATIVE.lock().unwrap_or_else(|e| e.into_inner());
    let engine = native_builder().build().unwrap();
    let (a, b) = add_counter_scripts(&engine);
    assert_one_counter(&engine, &a, &b);
}

/// Two scripts bumping `rt_shared_counter` through `rt_counter_increment` (`bump_a`, `bump_b`).
fn add_counter_scripts(engine: &Engine) -> (ScriptHandle<'_>, ScriptHandle<'_>) {
    let a = engine
        .add_script("a", counter_script("a").as_bytes())
        .unwrap();
    let b = engine
        .add_script("b", counter_script("b").as_bytes())
        .unwrap();
    (a, b)
}

/// Both scripts and the host bump and read one counter; returns its value before the first bump.
fn assert_one_counter(engine: &Engine, a: &ScriptHandle<'_>, b: &ScriptHandle<'_>) -> i64 {
    let fa = a.lookup::<extern "C" fn() -> i64>("bump_a").unwrap();
    let fb = b.lookup::<extern "C" fn() -> i64>("bump_b").unwrap();
    let host_inc = engine
        .lookup::<extern "C" fn() -> i64>("rt_counter_increment")
        .unwrap();
    let host_get = engine
        .lookup::<extern "C" fn() -> i64>("rt_counter_get")
        .unwrap();
    // SAFETY: all four take nothing and return the counter (i64), as declared in the scripts and the helpers.
    unsafe {
        let start = host_get.call();
        assert_eq!(fa.call(), start + 1);
        assert_eq!(fb.call(), start + 2);
        assert_eq!(host_inc.call(), start + 3);
        assert_eq!(fa.call(), start + 4);
        assert_eq!(host_get.call(), start + 4);
        start
    }
}

host_callbacks!(exc_host);

#[test]
fn cxx_exception_caught_inside_jit_resident_helper() {
    let engine = exc_host::register(resident_builder()).build().unwrap();
    let script = r#"
declare i32 @rt_checked_div(i32, i32)
define i32 @div(i32 %a, i32 %b) {
  %r = call i32 @rt_checked_div(i32 %a, i32 %b)
  ret i32 %r
}
"#;
    let h = engine.add_script("div", script.as_bytes()).unwrap();
    let f = h.lookup::<extern "C" fn(i32, i32) -> i32>("div").unwrap();
    unsafe {
        assert_eq!(f.call(7, 2), 3);
        assert_eq!(f.call(1, 0), i32::MIN);
        assert_eq!(f.call(i32::MIN, -1), i32::MIN);
    }
}

#[test]
fn unresolved_symbol_is_a_typed_error_naming_it() {
    let engine = EngineBuilder::new().build().unwrap();
    let script = r#"
declare i32 @no_such_helper_anywhere(i32)
define i32 @uses_missing(i32 %x) {
  %r = call i32 @no_such_helper_anywhere(i32 %x)
  ret i32 %r
}
"#;
    match engine.add_script("missing", script.as_bytes()) {
        Err(Error::UnresolvedSymbols {
            script, symbols, ..
        }) => {
            assert_eq!(script, "missing");
            assert_eq!(symbols, ["no_such_helper_anywhere"]);
        }
        other => panic!("expected a symbol error, got {other:?}"),
    }
    // the engine is still usable
    let h = engine
        .add_script("ok", b"define i32 @fine() {\n ret i32 3\n}\n")
        .unwrap();
    assert_eq!(
        unsafe { h.lookup::<extern "C" fn() -> i32>("fine").unwrap().call() },
        3
    );
}

host_callbacks!(redef_host);

#[test]
fn script_redefining_a_helper_symbol_is_rejected() {
    let engine = redef_host::register(resident_builder()).build().unwrap();
    let script = "define i64 @rt_counter_get() {\n ret i64 0\n}\n";
    match engine.add_script("redef", script.as_bytes()) {
        Err(Error::DuplicateDefinition { symbol, first, .. }) => {
            assert_eq!(symbol, "rt_counter_get");
            assert_eq!(first.as_deref(), Some("the helper runtime"));
        }
        other => panic!("expected a symbol error, got {other:?}"),
    }
}

#[test]
fn invalid_ir_is_a_typed_error() {
    let engine = EngineBuilder::new().build().unwrap();
    let not_ir = engine.add_script("garbage", b"this is not IR");
    assert!(matches!(not_ir, Err(Error::Parse { .. })), "{not_ir:?}");
    // parses, but does not verify: the entry block returns a value of the wrong type
    let bad = "define i32 @bad() {\n  ret i64 1\n}\n";
    let err = engine.add_script("bad", bad.as_bytes()).unwrap_err();
    assert!(
        matches!(err, Error::Parse { .. } | Error::Verify { .. }),
        "{err:?}"
    );
    // verifier-only failure: a use that does not dominate its definition
    let undominated = "define i32 @u() {\nentry:\n  br label %next\nnext:\n  %a = add i32 %b, 1\n  %b = add i32 %a, 1\n  ret i32 %a\n}\n";
    let err = engine
        .add_script("undominated", undominated.as_bytes())
        .unwrap_err();
    assert!(matches!(err, Error::Verify { .. }), "{err:?}");
    // another target
    let other =
        "target triple = \"aarch64-unknown-linux-gnu\"\ndefine i32 @other() {\n  ret i32 1\n}\n";
    let err = engine.add_script("other", other.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("aarch64"), "{err:?}");
    // the vendor field does not matter
    let vendor =
        "target triple = \"x86_64-unknown-linux-gnu\"\ndefine i32 @vendor() {\n  ret i32 1\n}\n";
    engine.add_script("vendor", vendor.as_bytes()).unwrap();
}

#[test]
fn missing_entry_is_a_typed_error() {
    let engine = EngineBuilder::new().build().unwrap();
    let h = engine
        .add_script("one", b"define i32 @present() {\n ret i32 1\n}\n")
        .unwrap();
    match h.lookup::<extern "C" fn() -> i32>("absent_entry") {
        Err(Error::UndefinedSymbol { symbol }) => assert_eq!(symbol, "absent_entry"),
        other => panic!("expected a symbol error, got {other:?}"),
    }
}

#[test]
fn remove_unloads_a_script() {
    let engine = EngineBuilder::new().build().unwrap();
    let h = engine
        .add_script("one", b"define i32 @gone_soon() {\n ret i32 1\n}\n")
        .unwrap();
    assert!(engine.lookup_address("gone_soon").is_ok());
    engine.remove(h).unwrap();
    assert!(matches!(
        engine.lookup_address("gone_soon"),
        Err(Error::UndefinedSymbol { .. })
    ));
    assert_eq!(engine.script_count(), 0);
    // the name is free again
    let h = engine
        .add_script("two", b"define i32 @gone_soon() {\n ret i32 2\n}\n")
        .unwrap();
    assert_eq!(
        unsafe {
            h.lookup::<extern "C" fn() -> i32>("gone_soon")
                .unwrap()
                .call()
        },
        2
    );
}

#[test]
fn lazy_mode_prepares_inside_the_ir_transform() {
    let engine = EngineBuilder::new()
        .lazy(true)
        .keep_optimized_ir(true)
        .strategy(Strategy::None)
        .build()
        .unwrap();
    let script = "define i32 @lazy_sum() {\n  %a = add i32 40, 2\n  ret i32 %a\n}\n";
    let h = engine.add_script("lazy", script.as_bytes()).unwrap();
    assert!(h.report().is_none(), "nothing materialized yet");
    let f = h.lookup::<extern "C" fn() -> i32>("lazy_sum").unwrap();
    assert_eq!(unsafe { f.call() }, 42);
    let report = h.report().expect("the transform filled the report");
    assert!(report.optimized_ir.unwrap().contains("ret i32 42"));
    assert_eq!(report.defined, vec!["lazy_sum".to_owned()]);
}

fn _assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Engine>();
}

host_callbacks!(threads_host);

#[test]
fn eight_threads_add_and_run_fifty_scripts_each() {
    let engine = threads_host::register(resident_builder()).build().unwrap();
    let script = r#"
declare i32 @rt_clamp_add(i32, i32)
declare i32 @rt_square_lookup(i32)
define i32 @work_T_I(i32 %x) {
  %s = call i32 @rt_square_lookup(i32 %x)
  %r = call i32 @rt_clamp_add(i32 %s, i32 K)
  ret i32 %r
}
"#;
    std::thread::scope(|scope| {
        for t in 0..8 {
            let engine = &engine;
            scope.spawn(move || {
                for i in 0..50 {
                    let k: i32 = t * 50 + i;
                    let text = script
                        .replace("_T_I", &format!("_{t}_{i}"))
                        .replace("K", &k.to_string());
                    let h = engine
                        .add_script(&format!("t{t}s{i}"), text.as_bytes())
                        .unwrap();
                    let f = h
                        .lookup::<extern "C" fn(i32) -> i32>(&format!("work_{t}_{i}"))
                        .unwrap();
                    let x: i32 = i % 64;
                    let expected = (x * x + k).clamp(-1000, 1000);
                    assert_eq!(unsafe { f.call(x) }, expected, "thread {t} script {i}");
                    if i % 2 == 0 {
                        h.remove().unwrap();
                    }
                }
            });
        }
    });
    assert_eq!(engine.script_count(), 8 * 25);
}

host_callbacks!(soak_host);

#[test]
fn add_and_remove_1000_scripts_memory_stays_bounded() {
    // Real scripts: each imports and inlines helpers (its own LLVM context, its own tracker).
    let engine = soak_host::register(summary_builder(RuntimeMode::JitResident))
        .keep_optimized_ir(false)
        .build()
        .unwrap();
    let script = r#"
declare ptr @CreateWrappedValueFromInt(i32)
declare ptr @WrappedValueAdd(ptr, ptr)
declare i32 @WrappedValueGetInt(ptr)
define i32 @soak_N(i32 %x) {
  %a = call ptr @CreateWrappedValueFromInt(i32 %x)
  %b = call ptr @CreateWrappedValueFromInt(i32 N)
  %c = call ptr @WrappedValueAdd(ptr %a, ptr %b)
  %r = call i32 @WrappedValueGetInt(ptr %c)
  ret i32 %r
}
"#;
    let round = |count: usize| {
        for n in 1..=count {
            let text = script.replace('N', &n.to_string());
            let h = engine.add_script("soak", text.as_bytes()).unwrap();
            let f = h
                .lookup::<extern "C" fn(i32) -> i32>(&format!("soak_{n}"))
                .unwrap();
            assert_eq!(unsafe { f.call(2) }, 2 + n as i32);
            h.remove().unwrap();
        }
    };
    round(100); // warm-up: allocator pools, LLVM's one-time state
    let before = rss_kib();
    let start = std::time::Instant::now();
    round(1000);
    let after = rss_kib();
    eprintln!(
        "1000 x (add with imports + O3 + materialize + call + remove) in {:.2} s; RSS before {before} KiB, after {after} KiB",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(engine.script_count(), 0);
    assert!(engine.lookup_address("soak_1000").is_err());
    // Generous: other tests run in this process at the same time. Without `remove`, 1,000 scripts keep
    // their code, objects and symbol tables (the ORC probe measured ~12 MiB per 1,000 tiny scripts).
    assert!(
        after.saturating_sub(before) < 96 * 1024,
        "RSS grew by {} KiB",
        after - before
    );
}

/// `true` when the optimized IR still calls `callee` from `function`'s body.
fn body_calls(ir: &str, function: &str, callee: &str) -> bool {
    let start = ir
        .find(&format!("@{function}("))
        .and_then(|i| ir[..i].rfind("define").map(|d| (d, i)))
        .map(|(d, _)| d)
        .unwrap_or_else(|| panic!("{function} not in\n{ir}"));
    let end = ir[start..]
        .find("\n}")
        .map(|e| start + e)
        .unwrap_or(ir.len());
    ir[start..end].contains(&format!("@{callee}("))
}

fn seed_end_to_end(mode: RuntimeMode, engine: &Engine) {
    let h = engine.add_script("seed", SEED_SCRIPT.as_bytes()).unwrap();
    let report = h.report().unwrap();
    let import = report
        .import
        .as_ref()
        .expect("summary strategy reports imports");
    let entry = import
        .entry("CreateWrappedValueFromInt")
        .expect("considered");
    assert!(entry.decision.is_imported(), "{mode}: {entry:?}");
    let ir = report.optimized_ir.as_deref().unwrap();
    assert!(
        !body_calls(ir, "f_WRAPPED", "CreateWrappedValueFromInt"),
        "{mode}: CreateWrappedValueFromInt was not inlined:\n{ir}"
    );
    assert!(
        !ir.contains("available_externally"),
        "{mode}: O3 drops unused imported bodies:\n{ir}"
    );
    let f = h
        .lookup::<extern "C" fn(*mut libc::c_void, *mut libc::c_void) -> *mut libc::c_void>(
            "f_WRAPPED",
        )
        .unwrap();
    let get_int = engine
        .lookup::<extern "C" fn(*mut libc::c_void) -> i32>("WrappedValueGetInt")
        .unwrap();
    let get_tag = engine
        .lookup::<extern "C" fn(*mut libc::c_void) -> i32>("WrappedValueTag")
        .unwrap();
    unsafe {
        let v = f.call(std::ptr::null_mut(), std::ptr::null_mut());
        assert!(!v.is_null());
        assert_eq!(get_tag.call(v), 1, "WV_INT");
        assert_eq!(get_int.call(v), 23333);
    }
}

host_callbacks!(seed_host);

#[test]
fn seed_end_to_end_jit_resident() {
    let engine = seed_host::register(summary_builder(RuntimeMode::JitResident))
        .build()
        .unwrap();
    seed_end_to_end(RuntimeMode::JitResident, &engine);
}

#[test]
fn seed_end_to_end_host_native() {
    let _guard = NATIVE.lock().unwrap_or_else(|e| e.into_inner());
    let engine = summary_builder(RuntimeMode::HostNative).build().unwrap();
    seed_end_to_end(RuntimeMode::HostNative, &engine);
}

/// Two scripts that inline `rt_counter_increment` (so they touch `rt_shared_counter` directly) and the host's
/// own calls see one counter.
fn one_instance_with_imports(engine: &Engine) {
    let (a, b) = add_counter_scripts(engine);
    for h in [&a, &b] {
        let report = h.report().unwrap();
        let import = report.import.unwrap();
        assert!(import
            .entry("rt_counter_increment")
            .unwrap()
            .decision
            .is_imported());
        let ir = report.optimized_ir.unwrap();
        assert!(
            !ir.contains("call i64 @rt_counter_increment"),
            "inlined:\n{ir}"
        );
        assert!(
            ir.contains("@rt_shared_counter = external"),
            "one instance, declared:\n{ir}"
        );
    }
    assert_one_counter(engine, &a, &b);
}

host_callbacks!(instance_host);

#[test]
fn one_instance_with_imports_jit_resident() {
    let engine = instance_host::register(summary_builder(RuntimeMode::JitResident))
        .build()
        .unwrap();
    one_instance_with_imports(&engine);
}

#[test]
fn one_instance_with_imports_host_native() {
    let _guard = NATIVE.lock().unwrap_or_else(|e| e.into_inner());
    let engine = summary_builder(RuntimeMode::HostNative).build().unwrap();
    one_instance_with_imports(&engine);
}

const BIG_IMPORTS_SCRIPT: &str = r#"
declare ptr @CreateWrappedValueFromInt(i32)
declare ptr @CreateWrappedValueFromString(ptr)
declare ptr @WrappedValueAdd(ptr, ptr)
declare ptr @WrappedValueMul(ptr, ptr)
declare ptr @WrappedValueConcat(ptr, ptr)
declare i32 @WrappedValueGetInt(ptr)
declare i32 @WrappedValueCompare(ptr, ptr)
declare i64 @rt_always_inline_mix(i64)
declare i32 @rt_chain_a(i32)
declare i32 @rt_square_lookup(i32)
declare i32 @rt_clamp_add(i32, i32)
declare i64 @rt_big_checksum(ptr, i64)
@hello = private constant [6 x i8] c"hello\00"

define i32 @big_entry(i32 %x) {
  %a = call ptr @CreateWrappedValueFromInt(i32 %x)
  %b = call ptr @CreateWrappedValueFromInt(i32 3)
  %s = call ptr @WrappedValueAdd(ptr %a, ptr %b)
  %m = call ptr @WrappedValueMul(ptr %s, ptr %b)
  %r = call i32 @WrappedValueGetInt(ptr %m)
  %sq = call i32 @rt_square_lookup(i32 7)
  %t = add i32 %r, %sq
  ret i32 %t
}

; references many helpers; nothing calls it, so the imported code it pulled in is deleted by O3 only if unused
define internal i64 @unused_path(i32 %x) {
  %h = call ptr @CreateWrappedValueFromString(ptr @hello)
  %c = call ptr @WrappedValueConcat(ptr %h, ptr %h)
  %k = call i32 @WrappedValueCompare(ptr %c, ptr %h)
  %m = call i64 @rt_always_inline_mix(i64 42)
  %ch = call i32 @rt_chain_a(i32 %x)
  %cl = call i32 @rt_clamp_add(i32 %ch, i32 %k)
  %z = sext i32 %cl to i64
  %big = call i64 @rt_big_checksum(ptr @hello, i64 5)
  %s = add i64 %m, %z
  %t = add i64 %s, %big
  ret i64 %t
}
"#;

fn big_imports_in_transform(mode: RuntimeMode, engine: &Engine) {
    let h = engine
        .add_script("big", BIG_IMPORTS_SCRIPT.as_bytes())
        .unwrap();
    assert!(h.report().is_none(), "lazy: not materialized yet");
    let f = h.lookup::<extern "C" fn(i32) -> i32>("big_entry").unwrap();
    // (x + 3) * 3 + 49
    assert_eq!(unsafe { f.call(4) }, 21 + 49, "{mode}");
    let report = h.report().expect("materialized through the IR transform");
    let import = report.import.unwrap();
    let imported = import.imported_functions();
    assert!(imported.len() >= 6, "{mode}: {imported:?}");
    let ir = report.optimized_ir.unwrap();
    assert!(!ir.contains("available_externally"), "{mode}:\n{ir}");
    assert!(
        !ir.contains("unused_path"),
        "{mode}: O3 deleted the unused path:\n{ir}"
    );
    assert_eq!(report.defined, vec!["big_entry".to_owned()]);
    assert!(engine.take_reported_errors().is_empty());
}

host_callbacks!(lazy_host);

#[test]
fn ir_transform_path_large_imports_no_mr_error_jit_resident() {
    let engine = lazy_host::register(summary_builder(RuntimeMode::JitResident).lazy(true))
        .build()
        .unwrap();
    big_imports_in_transform(RuntimeMode::JitResident, &engine);
}

#[test]
fn ir_transform_path_large_imports_no_mr_error_host_native() {
    let _guard = NATIVE.lock().unwrap_or_else(|e| e.into_inner());
    let engine = summary_builder(RuntimeMode::HostNative)
        .lazy(true)
        .build()
        .unwrap();
    big_imports_in_transform(RuntimeMode::HostNative, &engine);
}

/// Issue 14: the runtime mode is the engine's, not an `ImportConfig` field: setting the import configuration
/// after the mode no longer resets it (it used to make the engine JIT-resident and plan resident imports).
#[test]
fn runtime_mode_survives_a_later_import_config() {
    use thinjit::import::ImportConfig;
    let _guard = NATIVE.lock().unwrap_or_else(|e| e.into_inner());
    let engine = summary_builder(RuntimeMode::HostNative)
        .import_config(ImportConfig {
            import_instr_limit: 150,
            ..ImportConfig::default()
        })
        .build()
        .unwrap();
    assert_eq!(engine.runtime_mode(), RuntimeMode::HostNative);
    let script = engine
        .add_script(
            "clamp",
            b"declare i32 @rt_clamp_add(i32, i32)\ndefine i32 @clamp_it(i32 %a) {\n  %r = call i32 @rt_clamp_add(i32 %a, i32 1)\n  ret i32 %r\n}\n",
        )
        .unwrap();
    let report = script.report().unwrap().import.unwrap();
    // Host-native planning: the `static` helper `rt_clamp_add` needs comes along as a private copy.
    let copy = report
        .entries
        .iter()
        .find(|e| e.name.starts_with("clamp_small.llvm."))
        .unwrap_or_else(|| panic!("no copy of clamp_small:\n{report}"));
    assert!(copy.decision.is_imported() && copy.local_copy, "{report}");
    let f = script
        .lookup::<extern "C" fn(i32) -> i32>("clamp_it")
        .unwrap();
    // SAFETY: `clamp_it` has this signature; the script is loaded.
    assert_eq!(unsafe { f.call(41) }, 42);
}

#[test]
fn cxx_exception_in_imported_helper_survives_script_removal_host_native() {
    let _guard = NATIVE.lock().unwrap_or_else(|e| e.into_inner());
    let engine = summary_builder(RuntimeMode::HostNative).build().unwrap();
    let script = r#"
declare i32 @rt_checked_div(i32, i32)
define i32 @div_N(i32 %a, i32 %b) {
  %r = call i32 @rt_checked_div(i32 %a, i32 %b)
  ret i32 %r
}
"#;
    // Each script carries its own landing pads; removing the first must not break the ones after it.
    for n in 0..5 {
        let h = engine
            .add_script(
                &format!("div{n}"),
                script.replace("_N", &format!("_{n}")).as_bytes(),
            )
            .unwrap();
        let f = h
            .lookup::<extern "C" fn(i32, i32) -> i32>(&format!("div_{n}"))
            .unwrap();
        unsafe {
            assert_eq!(f.call(9, 3), 3);
            assert_eq!(f.call(1, 0), i32::MIN);
        }
        h.remove().unwrap();
    }
}

#[test]
fn mismatched_summary_is_a_typed_error() {
    let dir = tempfile::TempDir::new().unwrap();
    let ll = dir.path().join("other_target.ll");
    std::fs::write(
        &ll,
        "target datalayout = \"e-m:e-i8:8:32-i16:16:32-i64:64-i128:128-n32:64-S128\"\ntarget triple = \"aarch64-unknown-linux-gnu\"\ndefine i32 @h(i32 %x) {\n  ret i32 %x\n}\n",
    )
    .unwrap();
    let other = Arc::new(Summary::build(&[ll], &BuildOptions::default()).unwrap());
    let err = EngineBuilder::new().summary(other).build().unwrap_err();
    assert!(matches!(err, Error::Summary { .. }), "{err:?}");
    assert!(err.to_string().contains("aarch64"), "{err}");
}

#[test]
fn import_report_explains_decisions() {
    let engine = lazy_host::register(summary_builder(RuntimeMode::JitResident))
        .build()
        .unwrap();
    let h = engine
        .add_script("big", BIG_IMPORTS_SCRIPT.as_bytes())
        .unwrap();
    let import = h.report().unwrap().import.unwrap();
    let big = import.entry("rt_big_checksum").unwrap();
    assert!(matches!(big.decision, Decision::NotImported(_)), "{big:?}");
    assert!(import
        .entry("rt_always_inline_mix")
        .unwrap()
        .decision
        .is_imported());
}

#[test]
fn cli_run_prints_result_report_and_times() {
    let dir = tempfile::TempDir::new().unwrap();
    let summary_path = dir.path().join("helpers.thinjit");
    summary().write(&summary_path).unwrap();
    let seed = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .join("examples/scripts/seed.ll");
    for mode in ["jit-resident", "host-native"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_thinjit"))
            .arg("run")
            .arg(&seed)
            .arg("--summary")
            .arg(&summary_path)
            .args(["--entry", "f_WRAPPED", "--mode", mode, "--time"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{mode}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("f_WRAPPED: WrappedValue(int 23333)"),
            "{stdout}"
        );
        assert!(stdout.contains("CreateWrappedValueFromInt"), "{stdout}");
        assert!(stdout.contains("materialize"), "{stdout}");
    }
    // a missing entry is an error message, not a crash
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thinjit"))
        .arg("run")
        .arg(&seed)
        .arg("--summary")
        .arg(&summary_path)
        .args(["--entry", "no_such_entry"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error:") && stderr.contains("no_such_entry"),
        "{stderr}"
    );
}

/// `thinjit run … | head`: a reader that closes the pipe early ends the output, not in a panic (Rust ignores
/// SIGPIPE, so `println!` panicked on EPIPE) but quietly with success, as `summary show` already did.
#[test]
fn cli_run_into_a_closed_pipe_exits_quietly() {
    let dir = tempfile::TempDir::new().unwrap();
    let summary_path = dir.path().join("helpers.thinjit");
    summary().write(&summary_path).unwrap();
    let seed = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .join("examples/scripts/seed.ll");
    crate::common::assert_quiet_into_closed_pipe(
        std::process::Command::new(env!("CARGO_BIN_EXE_thinjit"))
            .arg("run")
            .arg(&seed)
            .arg("--summary")
            .arg(&summary_path)
            .args(["--entry", "f_WRAPPED", "--time"]),
    );
}

#[test]
fn cli_demo_runs_every_example_in_both_modes() {
    let dir = tempfile::TempDir::new().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thinjit"))
        .arg("demo")
        .arg("--summary")
        .arg(dir.path().join("helpers.thinjit"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dir.path().join("helpers.thinjit").exists(),
        "the demo built the summary"
    );
    assert_eq!(
        stdout
            .matches("f_WRAPPED() = WrappedValue(int 23333)")
            .count(),
        2,
        "{stdout}"
    );
    assert_eq!(
        stdout
            .matches("sum_of_squares_WRAPPED() = WrappedValue(int 338350)")
            .count(),
        2
    );
    assert_eq!(
        stdout
            .matches("label_WRAPPED() = WrappedValue(string \"item-1-2.5\")")
            .count(),
        2
    );
    assert_eq!(stdout.matches("mix_main() = 1001").count(), 2);
    assert!(
        stdout.contains("constructor ran 1 time(s); destructor ran 1 time(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not imported: rt_big_checksum: over threshold"),
        "{stdout}"
    );
    assert_eq!(
        stdout
            .matches("inlined by O3: CreateWrappedValueFromInt, rt_alloc\n")
            .count(),
        4,
        "seed and arith_loop, both modes: {stdout}"
    );
    let compare = stdout
        .split("=== import strategies side by side")
        .nth(1)
        .expect("the strategy comparison");
    let row = |strategy: &str| {
        compare
            .lines()
            .find(|l| l.starts_with(&format!("| helpers | 48 | {strategy} |")))
            .unwrap_or_else(|| panic!("no {strategy} row: {compare}"))
            .to_owned()
    };
    assert!(row("full-link-internalize").contains("**BROKEN**"));
    for ok in ["none", "full-link", "summary@100"] {
        assert!(!row(ok).contains("BROKEN"), "{}", row(ok));
    }
}

host_callbacks!(lazy_threads_host);

#[test]
fn lazy_scripts_from_four_threads() {
    let engine = lazy_threads_host::register(summary_builder(RuntimeMode::JitResident).lazy(true))
        .build()
        .unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let engine = &engine;
            scope.spawn(move || {
                for i in 0..10 {
                    let text = counter_script(&format!("{t}_{i}"))
                        .replace("rt_counter_increment()\n  ret", "rt_counter_get()\n  ret")
                        .replace(
                            "declare i64 @rt_counter_increment()",
                            "declare i64 @rt_counter_get()",
                        );
                    let h = engine.add_script("lazy", text.as_bytes()).unwrap();
                    let f = h
                        .lookup::<extern "C" fn() -> i64>(&format!("bump_{t}_{i}"))
                        .unwrap();
                    assert_eq!(unsafe { f.call() }, 0);
                    assert!(h
                        .report()
                        .unwrap()
                        .import
                        .unwrap()
                        .entry("rt_counter_get")
                        .is_some());
                }
            });
        }
    });
    assert_eq!(engine.script_count(), 40);
}

#[test]
fn lazy_unresolved_symbol_is_a_typed_error_at_lookup() {
    let engine = EngineBuilder::new().lazy(true).build().unwrap();
    let script = "declare i32 @lazy_missing_helper()\ndefine i32 @lazy_user() {\n  %r = call i32 @lazy_missing_helper()\n  ret i32 %r\n}\n";
    let h = engine
        .add_script("lazy-missing", script.as_bytes())
        .unwrap();
    match h.lookup::<extern "C" fn() -> i32>("lazy_user") {
        Err(Error::UnresolvedSymbols {
            script, symbols, ..
        }) => {
            assert_eq!(script, "lazy-missing");
            assert_eq!(symbols, ["lazy_missing_helper"]);
        }
        other => panic!("expected a symbol error, got {other:?}"),
    }
    h.remove().unwrap();
}

host_callbacks!(init_host);

#[test]
fn summary_initializers_run_once_in_priority_order() {
    let engine = init_host::register(summary_builder(RuntimeMode::JitResident))
        .build()
        .unwrap();
    let expected: Vec<String> = summary()
        .index()
        .initializers
        .iter()
        .map(|i| i.function.clone())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(engine.initializers(), expected.as_slice());
    assert_eq!(init_host::events(EVENT_CTOR), 1);
    let runs = engine
        .lookup::<extern "C" fn() -> i32>("rt_intern_ctor_runs")
        .unwrap();
    assert_eq!(unsafe { runs.call() }, 1);
    drop(engine);
    assert_eq!(init_host::events(EVENT_DTOR), 1);
}

#[test]
fn object_files_are_added_and_removed_like_scripts() {
    use thinjit::llvm::{CodeGenOpt, TargetMachine};
    let engine = EngineBuilder::new().build().unwrap();
    let ctx = Context::new();
    let m = Module::parse_ir(
        &ctx,
        b"define i32 @from_object(i32 %x) {\n  %r = mul i32 %x, 3\n  ret i32 %r\n}\n",
        "obj",
    )
    .unwrap();
    let object = TargetMachine::host(CodeGenOpt::Default)
        .unwrap()
        .emit_object(&m)
        .unwrap();
    let h = engine.add_object("obj", &object).unwrap();
    let f = h
        .lookup::<extern "C" fn(i32) -> i32>("from_object")
        .unwrap();
    assert_eq!(unsafe { f.call(14) }, 42);
    h.remove().unwrap();
    assert!(engine.lookup_address("from_object").is_err());
    let garbage = engine.add_object("garbage", b"not an object file");
    assert!(matches!(garbage, Err(Error::Jit { .. })), "{garbage:?}");
}

#[test]
fn corrupt_summary_is_a_typed_error() {
    let mut bytes = summary().to_bytes();
    let n = bytes.len();
    bytes.truncate(n / 2);
    let err = Summary::from_bytes(bytes, "truncated.thinjit").unwrap_err();
    assert!(matches!(err, Error::Summary { .. }), "{err:?}");
}

#[test]
fn jit_resident_without_host_callbacks_fails_at_build_naming_the_callback() {
    let err = summary_builder(RuntimeMode::JitResident)
        .build()
        .unwrap_err();
    match err {
        Error::RuntimeUnresolvedSymbols {
            ref summary,
            ref symbols,
            ..
        } => {
            assert!(!summary.is_empty(), "{err}");
            assert!(
                err.to_string()
                    .starts_with("the runtime library of summary"),
                "{err}"
            );
            assert!(
                symbols.iter().all(|s| s.starts_with("thinjit_host_")),
                "{err}"
            )
        }
        other => panic!("expected a symbol error, got {other:?}"),
    }
}

host_callbacks!(script_dtor_host);

/// A script with a static constructor that registers a destructor with `__cxa_atexit` (as C++ does for a
/// global object), and a `llvm.global_dtors` entry. Each reports through the host event callback.
const SCRIPT_WITH_DESTRUCTORS: &str = r#"
@__dso_handle = external hidden global i8
@llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 65535, ptr @ctor_N, ptr null }]
@llvm.global_dtors = appending global [1 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 65535, ptr @dtor_N, ptr null }]
@state_N = internal global i32 0
declare i32 @__cxa_atexit(ptr, ptr, ptr)
declare void @thinjit_host_event(i32)

define internal void @obj_dtor_N(ptr %obj) {
  call void @thinjit_host_event(i32 5)
  ret void
}

define internal void @ctor_N() {
  store i32 1, ptr @state_N
  call void @thinjit_host_event(i32 4)
  %r = call i32 @__cxa_atexit(ptr @obj_dtor_N, ptr @state_N, ptr @__dso_handle)
  ret void
}

define internal void @dtor_N() {
  call void @thinjit_host_event(i32 6)
  ret void
}

define i32 @state_of_N() {
  %v = load i32, ptr @state_N
  ret i32 %v
}
"#;

#[test]
fn script_destructors_run_at_remove_and_at_engine_drop() {
    let engine = script_dtor_host::register(EngineBuilder::new())
        .build()
        .unwrap();
    let a = engine
        .add_script("a", SCRIPT_WITH_DESTRUCTORS.replace("_N", "_a").as_bytes())
        .unwrap();
    let b = engine
        .add_script("b", SCRIPT_WITH_DESTRUCTORS.replace("_N", "_b").as_bytes())
        .unwrap();
    assert_eq!(script_dtor_host::events(4), 2, "both constructors ran once");
    let state = a.lookup::<extern "C" fn() -> i32>("state_of_a").unwrap();
    assert_eq!(unsafe { state.call() }, 1);
    assert_eq!(script_dtor_host::events(5), 0);
    a.remove().unwrap();
    assert_eq!(
        script_dtor_host::events(5),
        1,
        "a's atexit handler ran at remove"
    );
    assert_eq!(
        script_dtor_host::events(6),
        1,
        "a's static destructor ran at remove"
    );
    drop(b);
    drop(engine);
    assert_eq!(
        script_dtor_host::events(5),
        2,
        "b's handler ran at engine drop"
    );
    assert_eq!(script_dtor_host::events(6), 2);
    assert_eq!(script_dtor_host::events(4), 2);
}

#[test]
fn missing_shared_library_is_a_typed_error_naming_it() {
    let err = EngineBuilder::new()
        .shared_library("/nonexistent/libthinjit_nope.so")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Jit { .. }), "{err:?}");
    assert!(err.to_string().contains("libthinjit_nope.so"), "{err}");
}

static HOST_VALUE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

extern "C" fn host_store(v: i64) {
    HOST_VALUE.store(v, std::sync::atomic::Ordering::SeqCst);
}

#[test]
fn host_symbols_and_opt_in_process_symbols() {
    let script = "declare void @host_store(i64)\ndeclare i32 @getpid()\ndefine i32 @use_host(i64 %v) {\n  call void @host_store(i64 %v)\n  %p = call i32 @getpid()\n  ret i32 %p\n}\n";
    // no runtime libraries and no process symbols: getpid is unresolved
    let engine = EngineBuilder::new()
        .runtime_libraries(Vec::new())
        .host_symbol("host_store", host_store as *const () as u64)
        .build()
        .unwrap();
    match engine.add_script("host", script.as_bytes()) {
        Err(Error::UnresolvedSymbols { symbols, .. }) => assert_eq!(symbols, ["getpid"]),
        other => panic!("expected getpid unresolved, got {other:?}"),
    }
    // with the process's symbols
    let engine = EngineBuilder::new()
        .runtime_libraries(Vec::new())
        .process_symbols(true)
        .host_symbol("host_store", host_store as *const () as u64)
        .build()
        .unwrap();
    let h = engine.add_script("host", script.as_bytes()).unwrap();
    let f = h.lookup::<extern "C" fn(i64) -> i32>("use_host").unwrap();
    assert_eq!(unsafe { f.call(77) }, std::process::id() as i32);
    assert_eq!(HOST_VALUE.load(std::sync::atomic::Ordering::SeqCst), 77);
}

host_callbacks!(internalize_host);

/// The seed's first attempt (link everything, internalize) is available as a strategy so the benchmark can
/// measure it; this shows the tests detect what it breaks: every script gets its own counter and runs the
/// helpers' static constructor again.
#[test]
fn full_link_internalize_breaks_one_instance_and_initializers_once_detectably() {
    let engine = internalize_host::register(
        summary_builder(RuntimeMode::JitResident).strategy(Strategy::FullLinkInternalize),
    )
    .build()
    .unwrap();
    assert_eq!(internalize_host::events(EVENT_CTOR), 1);
    let a = engine
        .add_script("a", counter_script("a").as_bytes())
        .unwrap();
    let b = engine
        .add_script("b", counter_script("b").as_bytes())
        .unwrap();
    let fa = a.lookup::<extern "C" fn() -> i64>("bump_a").unwrap();
    let fb = b.lookup::<extern "C" fn() -> i64>("bump_b").unwrap();
    let host_get = engine
        .lookup::<extern "C" fn() -> i64>("rt_counter_get")
        .unwrap();
    unsafe {
        assert_eq!(fa.call(), 1);
        assert_eq!(fb.call(), 1, "a private copy per script");
        assert_eq!(host_get.call(), 0, "the runtime's counter never moved");
    }
    assert!(
        internalize_host::events(EVENT_CTOR) > 1,
        "the copied constructor ran again"
    );
    assert!(a.report().unwrap().object_size.unwrap() > 0);
}

#[test]
fn lazy_script_removed_before_materialization() {
    let engine = EngineBuilder::new()
        .lazy(true)
        .strategy(Strategy::None)
        .build()
        .unwrap();
    for n in 0..50 {
        let text = format!("define i32 @never_called_{n}() {{\n  ret i32 {n}\n}}\n");
        let h = engine.add_script("never", text.as_bytes()).unwrap();
        assert!(h.report().is_none());
        h.remove().unwrap();
    }
    let h = engine
        .add_script("later", b"define i32 @later() {\n  ret i32 7\n}\n")
        .unwrap();
    let f = h.lookup::<extern "C" fn() -> i32>("later").unwrap();
    assert_eq!(unsafe { f.call() }, 7);
    assert_eq!(h.report().unwrap().name, "later");
}

#[test]
fn add_script_module_copies_a_callers_module() {
    let engine = EngineBuilder::new().build().unwrap();
    let ctx = Context::new();
    let module = Module::parse_ir(
        &ctx,
        b"define i32 @from_module() {\n  ret i32 11\n}\n",
        "mine",
    )
    .unwrap();
    let h = engine.add_script_module(&module).unwrap();
    drop(module);
    drop(ctx);
    let f = h.lookup::<extern "C" fn() -> i32>("from_module").unwrap();
    assert_eq!(unsafe { f.call() }, 11);
    assert_eq!(h.name(), "mine");
}
