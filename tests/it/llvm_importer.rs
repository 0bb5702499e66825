//! The `llvm-importer` engine strategy (issue 14): LLVM's own FunctionImporter inside `jit::Engine`, on the
//! summary's library (which carries its ThinLTO summary) or on a helper library given without one.

use std::sync::{Arc, OnceLock};

use thinjit::jit::RuntimeMode;
use thinjit::jit::{EngineBuilder, Strategy};
use thinjit::summary::{BuildOptions, Summary};
use thinjit::Error;

use crate::common::{helper_bitcode, SEED_SCRIPT};

fn summary() -> Arc<Summary> {
    static S: OnceLock<Arc<Summary>> = OnceLock::new();
    S.get_or_init(|| Arc::new(Summary::build(&helper_bitcode(), &BuildOptions::default()).unwrap()))
        .clone()
}

host_callbacks!(llvm_host);

/// A call to `callee` left in `function`'s body in printed IR.
fn body_calls(ir: &str, function: &str, callee: &str) -> bool {
    let start = ir
        .find(&format!("@{function}("))
        .and_then(|i| ir[..i].rfind("define"))
        .unwrap_or_else(|| panic!("{function} not in\n{ir}"));
    let end = ir[start..].find("\n}").map_or(ir.len(), |e| start + e);
    ir[start..end].contains(&format!("@{callee}("))
}

fn seed_through(builder: EngineBuilder) {
    let engine = llvm_host::register(
        builder
            .strategy(Strategy::LlvmImporter)
            .keep_optimized_ir(true),
    )
    .build()
    .unwrap();
    let h = engine.add_script("seed", SEED_SCRIPT.as_bytes()).unwrap();
    // Lazy engines import and optimize at the first lookup.
    let f = h
        .lookup::<extern "C" fn(*mut libc::c_void, *mut libc::c_void) -> *mut libc::c_void>(
            "f_WRAPPED",
        )
        .unwrap();
    let report = h.report().unwrap();
    assert_eq!(report.strategy, Strategy::LlvmImporter);
    let import = report.import.as_ref().expect("LLVM's imports are reported");
    assert!(
        import
            .imported_functions()
            .contains(&"CreateWrappedValueFromInt"),
        "{import:?}"
    );
    // LLVM's summary + thin link + import lists, and its importFunctions, timed apart.
    assert!(
        !import.times.plan.is_zero() && !import.times.link.is_zero(),
        "{:?}",
        import.times
    );
    let ir = report.optimized_ir.as_deref().unwrap();
    assert!(
        !body_calls(ir, "f_WRAPPED", "CreateWrappedValueFromInt"),
        "not inlined:\n{ir}"
    );
    let get_int = engine
        .lookup::<extern "C" fn(*mut libc::c_void) -> i32>("WrappedValueGetInt")
        .unwrap();
    // SAFETY: the seed's signatures; the script and the runtime are loaded while `engine` and `h` live.
    unsafe {
        let v = f.call(std::ptr::null_mut(), std::ptr::null_mut());
        assert_eq!(get_int.call(v), 23333);
    }
}

#[test]
fn llvm_importer_strategy_inlines_the_seed_helper_from_the_summary() {
    seed_through(EngineBuilder::new().summary(summary()));
}

#[test]
fn llvm_importer_strategy_builds_the_thinlto_summary_of_a_helper_library_given_without_one() {
    let plain = crate::engine::linked_helper_library();
    assert_eq!(thinjit::llvm::bitcode_has_summary(&plain), Some(false));
    seed_through(EngineBuilder::new().helper_library("helpers", plain));
}

#[test]
fn llvm_importer_strategy_runs_inside_orcs_ir_transform_too() {
    seed_through(EngineBuilder::new().summary(summary()).lazy(true));
}

#[test]
fn llvm_importer_strategy_refuses_host_native_mode() {
    let err = EngineBuilder::new()
        .summary(summary())
        .runtime_mode(RuntimeMode::HostNative)
        .strategy(Strategy::LlvmImporter)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err}");
    assert!(err.to_string().contains("JIT-resident"), "{err}");
    assert_eq!(
        "llvm-importer".parse::<Strategy>(),
        Ok(Strategy::LlvmImporter)
    );
    assert_eq!(Strategy::LlvmImporter.to_string(), "llvm-importer");
}
