//! The ORC layer (`thinjit::llvm::orc`) on plain IR modules: LLJIT, absolute symbols, generators, resource
//! trackers, the IR transform, and ORC's errors as values.

use std::path::Path;

use thinjit::llvm::orc::LlJit;
use thinjit::llvm::{Context, Module};
use thinjit::OrcErrorKind;

fn add_ir(
    jit: &LlJit,
    ir: &str,
    name: &str,
    tracker: Option<&thinjit::llvm::orc::ResourceTracker>,
) {
    let ctx = Context::new();
    let m = Module::parse_ir(&ctx, ir.as_bytes(), name).unwrap();
    jit.add_module(m, tracker).unwrap();
}

extern "C" fn host_add7(x: i32) -> i32 {
    x + 7
}

#[test]
fn absolute_symbol_and_lookup() {
    let jit = LlJit::new_host().unwrap();
    jit.define_absolute(&[("host_add7", host_add7 as *const () as usize as u64)])
        .unwrap();
    add_ir(
        &jit,
        "declare i32 @host_add7(i32)\ndefine i32 @f(i32 %x) {\n %r = call i32 @host_add7(i32 %x)\n ret i32 %r\n}\n",
        "m",
        None,
    );
    let f: extern "C" fn(i32) -> i32 =
        unsafe { std::mem::transmute(jit.lookup("f").unwrap() as usize) };
    assert_eq!(f(35), 42);
    let dup = jit.define_absolute(&[("host_add7", 1)]).unwrap_err();
    // The shim hands ORC's error over as data: its class and the symbol it names.
    assert_eq!(
        dup.symbols(OrcErrorKind::DuplicateDefinition),
        ["host_add7"],
        "{dup:?}"
    );
}

#[test]
fn process_symbols_are_opt_in() {
    let ir = "declare i64 @labs(i64)\ndefine i64 @g(i64 %x) {\n %r = call i64 @labs(i64 %x)\n ret i64 %r\n}\n";
    let jit = LlJit::new_host().unwrap();
    add_ir(&jit, ir, "m", None);
    let err = jit.lookup("g").unwrap_err();
    assert_eq!(
        err.symbols(OrcErrorKind::SymbolsNotFound),
        ["labs"],
        "{err:?}"
    );

    let jit = LlJit::new_host().unwrap();
    jit.add_process_symbols().unwrap();
    add_ir(&jit, ir, "m", None);
    let g: extern "C" fn(i64) -> i64 =
        unsafe { std::mem::transmute(jit.lookup("g").unwrap() as usize) };
    assert_eq!(g(-5), 5);

    let jit = LlJit::new_host().unwrap();
    jit.add_shared_library(Path::new("libc.so.6")).unwrap();
    add_ir(&jit, ir, "m", None);
    let g: extern "C" fn(i64) -> i64 =
        unsafe { std::mem::transmute(jit.lookup("g").unwrap() as usize) };
    assert_eq!(g(-9), 9);
    let missing = jit
        .add_shared_library(Path::new("/nonexistent/libnope.so"))
        .unwrap_err();
    assert!(missing.to_string().contains("libnope"), "{missing}");
}

#[test]
fn resource_tracker_remove_unloads() {
    let jit = LlJit::new_host().unwrap();
    let rt = jit.create_tracker();
    add_ir(&jit, "define i32 @h() {\n ret i32 5\n}\n", "m", Some(&rt));
    assert!(jit.lookup("h").is_ok());
    rt.remove().unwrap();
    let err = jit.lookup("h").unwrap_err();
    assert_eq!(err.errors.len(), 1, "{err:?}");
    assert_eq!(err.errors[0].kind, OrcErrorKind::SymbolsNotFound, "{err:?}");
    assert_eq!(err.errors[0].symbols, ["h"]);
    // the name can be defined again after removal
    add_ir(&jit, "define i32 @h() {\n ret i32 6\n}\n", "m2", None);
    let h: extern "C" fn() -> i32 =
        unsafe { std::mem::transmute(jit.lookup("h").unwrap() as usize) };
    assert_eq!(h(), 6);
}

#[test]
fn unresolved_symbol_is_reported_with_its_name() {
    let jit = LlJit::new_host().unwrap();
    add_ir(
        &jit,
        "declare i32 @definitely_missing_fn()\ndefine i32 @k() {\n %r = call i32 @definitely_missing_fn()\n ret i32 %r\n}\n",
        "m",
        None,
    );
    let err = jit.lookup("k").unwrap_err();
    // Linking reports the missing name; the lookup itself fails to materialize `k`.
    assert_eq!(
        err.symbols(OrcErrorKind::SymbolsNotFound),
        ["definitely_missing_fn"],
        "{err:?}"
    );
    assert_eq!(
        err.symbols(OrcErrorKind::FailedToMaterialize),
        ["k"],
        "{err:?}"
    );
}

#[test]
fn ir_transform_runs_on_materialization() {
    let mut jit = LlJit::new_host().unwrap();
    jit.set_ir_transform(Box::new(|m: &mut Module<'_>| {
        // rename the module's function body constant via textual check: just verify we see the module
        if m.function("t").is_some() {
            m.run_passes("default<O3>", None, &Default::default())
                .map_err(|e| e.to_string())
        } else {
            Err(format!("unexpected module {}", m.name()))
        }
    }))
    .unwrap();
    add_ir(
        &jit,
        "define i32 @t() {\n %a = add i32 20, 22\n ret i32 %a\n}\n",
        "m",
        None,
    );
    let t: extern "C" fn() -> i32 =
        unsafe { std::mem::transmute(jit.lookup("t").unwrap() as usize) };
    assert_eq!(t(), 42);
    add_ir(&jit, "define i32 @u() {\n ret i32 1\n}\n", "other", None);
    let err = jit.lookup("u").unwrap_err();
    assert!(err.to_string().contains("unexpected module other"), "{err}");
    assert_eq!(
        err.symbols(OrcErrorKind::FailedToMaterialize),
        ["u"],
        "{err:?}"
    );
}

/// The naive approach the seed tried — link the helper library's (strong) definitions into the script inside
/// the IR transform — makes the module define symbols its MaterializationResponsibility does not cover, and
/// ORC refuses it. The engine must never do this; this test shows the failure is detectable.
#[test]
fn naive_link_inside_transform_fails_with_orc_error() {
    let library = crate::engine::linked_helper_library();
    let mut jit = LlJit::new_host().unwrap();
    jit.set_ir_transform(Box::new(move |m: &mut Module<'_>| {
        let helpers =
            Module::parse_bitcode(m.context(), &library, "helpers").map_err(|e| e.to_string())?;
        m.link_in(helpers).map_err(|e| e.to_string())?;
        m.run_passes("default<O3>", None, &Default::default())
            .map_err(|e| e.to_string())
    }))
    .unwrap();
    add_ir(&jit, crate::common::SEED_SCRIPT, "seed", None);
    let err = jit.lookup("f_WRAPPED").unwrap_err();
    eprintln!("naive link inside the transform: {err}");
    assert!(
        err.has(OrcErrorKind::UnexpectedSymbolDefinitions)
            || err.has(OrcErrorKind::MissingSymbolDefinitions),
        "{err:?}"
    );
}

/// Issue 15: a JITDylib or resource tracker of one LLJIT is refused by another (an error, not a use of another
/// session's objects), and a JITDylib keeps its LLJIT alive.
#[test]
fn dylibs_and_trackers_of_another_jit_are_refused() {
    let (a, b) = (LlJit::new_host().unwrap(), LlJit::new_host().unwrap());
    let da = a.main_jitdylib();
    let err = b.define_absolute_in(&da, &[("x", 1)]).unwrap_err();
    assert!(err.to_string().contains("another LLJIT"), "{err}");
    assert!(b.lookup_in(&da, "x").is_err());
    assert!(b.add_object_file_in(&da, b"", "o").is_err());
    let ctx = Context::new();
    let m = Module::parse_ir(&ctx, b"define i32 @k() { ret i32 3 }", "k.ll").unwrap();
    assert!(b.add_module_in(&da, m).is_err());
    let rt = a.create_tracker();
    let m = Module::parse_ir(&ctx, b"define i32 @k() { ret i32 3 }", "k.ll").unwrap();
    let err = b.add_module(m, Some(&rt)).unwrap_err();
    assert!(err.to_string().contains("another LLJIT"), "{err}");
    assert!(b.lookup("k").is_err(), "nothing was added to b");

    // The dylib outlives the handle it came from: the LLJIT stays alive with it.
    drop(a);
    drop(rt);
    let m = Module::parse_ir(&ctx, b"define i32 @k() { ret i32 3 }", "k.ll").unwrap();
    assert!(b.add_module_in(&da, m).is_err());
    drop(da);
}

/// Issue 15: `add_module` verifies (code generation assumes valid IR), and so does the IR transform's result.
#[test]
fn invalid_ir_never_reaches_code_generation() {
    let jit = LlJit::new_host().unwrap();
    let ctx = Context::new();
    // Parses (the parser does not run the verifier) but is invalid: a use that its definition does not dominate.
    let m = Module::parse_ir(
        &ctx,
        b"define i32 @bad(i1 %c) {\nentry:\n br i1 %c, label %a, label %b\na:\n %x = add i32 1, 2\n br label %b\nb:\n ret i32 %x\n}",
        "bad.ll",
    )
    .unwrap();
    let err = jit.add_module(m, None).unwrap_err();
    assert!(err.to_string().contains("dominate"), "{err}");
    assert!(jit.lookup("bad").is_err());

    let mut jit = LlJit::new_host().unwrap();
    jit.set_ir_transform(Box::new(|m: &mut Module<'_>| {
        // Makes the module invalid: a declaration cannot have internal linkage.
        if let Some(f) = m.function("ext") {
            f.set_linkage(thinjit::llvm::Linkage::Internal);
        }
        Ok(())
    }))
    .unwrap();
    add_ir(
        &jit,
        "declare i32 @ext()\ndefine i32 @u() {\n %r = call i32 @ext()\n ret i32 %r\n}\n",
        "m",
        None,
    );
    let err = jit.lookup("u").unwrap_err();
    assert!(err.has(OrcErrorKind::FailedToMaterialize), "{err:?}");
    assert!(
        err.to_string()
            .contains("Global is external, but doesn't have external or weak linkage"),
        "{err}"
    );
}

/// Issue 15: LLVM's transform layer may not change while another thread materializes through it, so a transform
/// is installed only through the only handle on the LLJIT.
#[test]
fn ir_transform_needs_the_only_handle() {
    let mut jit = LlJit::new_host().unwrap();
    let clone = jit.clone();
    let err = jit
        .set_ir_transform(Box::new(|_: &mut Module<'_>| Ok(())))
        .unwrap_err();
    assert!(err.to_string().contains("clones"), "{err}");
    drop(clone);
    jit.set_ir_transform(Box::new(|_: &mut Module<'_>| Err("first".into())))
        .unwrap();
    // Replacing it keeps working (the replaced closure stays alive until the JIT goes).
    jit.set_ir_transform(Box::new(|_: &mut Module<'_>| Err("second".into())))
        .unwrap();
    add_ir(&jit, "define i32 @v() {\n ret i32 1\n}\n", "v", None);
    let err = jit.lookup("v").unwrap_err();
    assert!(err.to_string().contains("second"), "{err}");
}

/// Issue 15: `LlJit` is `Sync`, so several threads may materialize lazily added IR at once; the one target
/// machine that compiles it is not thread-safe, and the shim's compiler serializes its use. Every thread's
/// functions compute the right values.
#[test]
fn concurrent_ir_materialization_is_serialized() {
    let jit = LlJit::new_host().unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let jit = &jit;
            s.spawn(move || {
                for i in 0..25u64 {
                    let name = format!("c{t}_{i}");
                    let ir = format!(
                        "define i64 @{name}(i64 %x) {{\n %a = mul i64 %x, {t}\n %b = add i64 %a, {i}\n ret i64 %b\n}}\n"
                    );
                    add_ir(jit, &ir, &name, None);
                    let f: extern "C" fn(i64) -> i64 =
                        unsafe { std::mem::transmute(jit.lookup(&name).unwrap() as usize) };
                    assert_eq!(f(1000), (1000 * t + i) as i64);
                }
            });
        }
    });
}
