//! The safe LLVM layer: parsing, round trips, typed errors, verification, pass pipelines, attribute access.

use thinjit::llvm::{CodeGenOpt, Context, Linkage, Module, PassOptions, TargetMachine};
use thinjit::Error;

use crate::common;

const SAMPLE: &str = r#"
@table = internal constant [4 x i32] [i32 1, i32 2, i32 3, i32 5]
@counter = global i64 0

define i32 @lookup(i32 %i) noinline {
  %p = getelementptr [4 x i32], ptr @table, i32 0, i32 %i
  %v = load i32, ptr %p
  ret i32 %v
}

define i32 @folded() {
  %v = call i32 @lookup(i32 3)
  %w = add i32 %v, mul (i32 2, i32 3)
  ret i32 %w
}

declare void @external(ptr)
"#;

#[test]
fn ll_and_bc_round_trip() {
    let ctx = Context::new();
    let m = Module::parse_ir(&ctx, SAMPLE.as_bytes(), "sample.ll").unwrap();
    m.verify().unwrap();
    let text = m.print();
    let bc = m.write_bitcode();
    assert!(bc.starts_with(b"BC\xC0\xDE"));

    let ctx2 = Context::new();
    let from_bc = Module::parse(&ctx2, &bc, "sample.bc").unwrap();
    let from_text = Module::parse(&ctx2, text.as_bytes(), "sample2.ll").unwrap();
    // Same IR modulo the module header (identifier / source name).
    let body = |s: String| {
        s.lines()
            .filter(|l| !l.starts_with("; ModuleID") && !l.starts_with("source_filename"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(from_bc.print()), body(text.clone()));
    assert_eq!(body(from_text.print()), body(text));
}

#[test]
fn files_parse_eagerly_and_lazily() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context::new();
    let m = Module::parse_ir(&ctx, SAMPLE.as_bytes(), "sample.ll").unwrap();
    let bc_path = dir.path().join("sample.bc");
    m.write_bitcode_to_file(&bc_path).unwrap();
    let ll_path = dir.path().join("sample.ll");
    std::fs::write(&ll_path, SAMPLE).unwrap();

    let eager = Module::parse_file(&ctx, &bc_path).unwrap();
    assert!(!eager.function("lookup").unwrap().is_declaration());
    let text = Module::parse_file(&ctx, &ll_path).unwrap();
    assert_eq!(text.function("lookup").unwrap().instruction_count(), 3);

    let buffer = thinjit::llvm::MemoryBuffer::from_file(&bc_path).unwrap();
    let lazy = Module::parse_bitcode_lazy(&ctx, buffer, "sample.bc").unwrap();
    let names: Vec<String> = lazy.functions().map(|f| f.name()).collect();
    assert_eq!(names, ["lookup", "folded", "external"]);
}

#[test]
fn invalid_ir_is_a_typed_error_with_llvms_message() {
    let ctx = Context::new();
    let err = Module::parse_ir(&ctx, b"define i32 @f() { ret i64 0 }", "bad.ll").unwrap_err();
    match err {
        Error::Parse { what, message } => {
            assert_eq!(what, "bad.ll");
            assert!(
                message.contains("value doesn't match function result type"),
                "{message}"
            );
        }
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn corrupt_and_truncated_bitcode_are_typed_errors() {
    let ctx = Context::new();
    let m = Module::parse_ir(&ctx, SAMPLE.as_bytes(), "sample.ll").unwrap();
    let bc = m.write_bitcode();

    let truncated = &bc[..bc.len() / 2];
    let err = Module::parse_bitcode(&ctx, truncated, "truncated.bc").unwrap_err();
    assert!(
        matches!(&err, Error::Parse { what, .. } if what == "truncated.bc"),
        "{err:?}"
    );

    let mut flipped = bc.clone();
    for b in flipped.iter_mut().skip(40).step_by(7) {
        *b ^= 0x5a;
    }
    let err = Module::parse_bitcode(&ctx, &flipped, "flipped.bc").unwrap_err();
    assert!(matches!(&err, Error::Parse { .. }), "{err:?}");

    let err = Module::parse_bitcode(&ctx, b"not bitcode at all", "garbage.bc").unwrap_err();
    assert!(err.to_string().contains("garbage.bc"), "{err}");

    // The context still works after the failures.
    Module::parse_ir(&ctx, SAMPLE.as_bytes(), "again.ll")
        .unwrap()
        .verify()
        .unwrap();
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let ctx = Context::new();
    let err = Module::parse_file(&ctx, std::path::Path::new("/nonexistent/x.bc")).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path.ends_with("x.bc")),
        "{err:?}"
    );
}

#[test]
fn verifier_failure_carries_the_verifiers_text() {
    // Parses (the IR parser does not check dominance) but fails verification.
    let ctx = Context::new();
    let m = Module::parse_ir(
        &ctx,
        b"define i32 @f(i1 %c) {\nentry:\n  br i1 %c, label %a, label %b\na:\n  %x = add i32 1, 2\n  br label %b\nb:\n  ret i32 %x\n}\n",
        "dominance.ll",
    )
    .unwrap();
    let err = m.verify().unwrap_err();
    assert!(
        err.to_string()
            .contains("Instruction does not dominate all uses"),
        "{err}"
    );
}

#[test]
fn linking_clashing_strong_definitions_is_a_typed_error() {
    let ctx = Context::new();
    let mut a = Module::parse_ir(&ctx, b"define i32 @dup() { ret i32 1 }", "a.ll").unwrap();
    let b = Module::parse_ir(&ctx, b"define i32 @dup() { ret i32 2 }", "b.ll").unwrap();
    let err = a.link_in(b).unwrap_err();
    assert!(err.to_string().contains("symbol multiply defined"), "{err}");
}

#[test]
fn o3_folds_constants_and_the_result_verifies() {
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, SAMPLE.as_bytes(), "sample.ll").unwrap();
    // Let the inliner see `lookup`.
    m.function("lookup").unwrap().remove_attribute("noinline");
    let tm = TargetMachine::host(CodeGenOpt::Aggressive).unwrap();
    m.run_passes("default<O3>", Some(&tm), &PassOptions::default())
        .unwrap();
    m.verify().unwrap();
    let folded = m.function("folded").unwrap();
    let ir = folded.print();
    assert!(
        ir.contains("ret i32 11"),
        "O3 should fold table[3] + 2*3 = 11:\n{ir}"
    );
}

#[test]
fn bad_pipeline_is_a_typed_error() {
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, SAMPLE.as_bytes(), "sample.ll").unwrap();
    let err = m
        .run_passes("no-such-pass", None, &PassOptions::default())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Passes { pipeline, .. } if pipeline == "no-such-pass"),
        "{err:?}"
    );
}

#[test]
fn attributes_linkage_and_dso_local() {
    let ctx = Context::new();
    let m = Module::parse_ir(&ctx, SAMPLE.as_bytes(), "sample.ll").unwrap();
    let lookup = m.function("lookup").unwrap();
    assert!(lookup.has_attribute("noinline"));
    assert!(!lookup.has_attribute("alwaysinline"));
    lookup.set_string_attribute("target-cpu", "x86-64");
    assert_eq!(
        lookup.string_attribute("target-cpu").as_deref(),
        Some("x86-64")
    );
    let table = m.global("table").unwrap();
    assert_eq!(table.linkage(), Linkage::Internal);
    assert!(table.is_constant());
    assert_eq!(m.global_size(table), 16, "[4 x i32] is 16 bytes");
    let counter = m.global("counter").unwrap();
    assert!(!counter.is_constant());
    counter.set_dso_local(true);
    assert!(counter.is_dso_local());
    counter.set_dso_local(false);
    assert!(!counter.is_dso_local());
    assert!(m.print().contains("@counter = global i64 0"));
    let calls: Vec<_> = m
        .function("folded")
        .unwrap()
        .instructions()
        .filter_map(|i| i.called_function())
        .map(|f| f.name())
        .collect();
    assert_eq!(calls, ["lookup"]);
    assert_eq!(
        m.defined_symbols().into_iter().collect::<Vec<_>>(),
        ["counter", "folded", "lookup"]
    );
}

#[test]
fn helper_library_bitcode_parses_and_verifies() {
    let files = common::helper_bitcode();
    assert!(files.len() >= 3, "{files:?}");
    let ctx = Context::new();
    for f in files {
        let m = Module::parse_file(&ctx, &f).unwrap();
        m.verify().unwrap();
    }
}

/// Issue 15: erasing goes through an exclusive handle and refuses while the value is used elsewhere (LLVM would
/// free it anyway and leave the call dangling); once the use is gone it erases.
#[test]
fn erase_refuses_used_values_and_frees_unused_ones() {
    let ctx = Context::new();
    let mut m = Module::parse_ir(
        &ctx,
        b"@g = global i32 1
          @p = global ptr @g
          define i32 @callee() { ret i32 1 }
          define i32 @caller() {
            %r = call i32 @callee()
            ret i32 %r
          }
          define i32 @rec(i32 %n) {
            %r = call i32 @rec(i32 %n)
            ret i32 %r
          }",
        "erase.ll",
    )
    .unwrap();
    let err = m.function_mut("callee").unwrap().erase().unwrap_err();
    assert!(
        matches!(&err, Error::UnusableSymbol { symbol, message } if symbol == "callee" && message.contains("1 use")),
        "{err:?}"
    );
    let err = m.global_mut("g").unwrap().erase().unwrap_err();
    assert!(
        matches!(&err, Error::UnusableSymbol { symbol, .. } if symbol == "g"),
        "{err:?}"
    );
    // Nothing changed, and the module is still valid.
    m.verify().unwrap();
    assert!(m.function("callee").is_some() && m.global("g").is_some());

    // A function whose only use is its own recursive call, and unused values, are erased.
    m.function_mut("rec").unwrap().erase().unwrap();
    m.function_mut("caller").unwrap().erase().unwrap();
    m.function_mut("callee").unwrap().erase().unwrap();
    m.global_mut("p").unwrap().erase().unwrap();
    m.global_mut("g").unwrap().erase().unwrap();
    assert_eq!(m.functions().count() + m.globals().count(), 0);
    m.verify().unwrap();
    assert!(m.function_mut("callee").is_none());
}

/// Issue 15: values never cross LLVM contexts or modules through the safe API: each case is an error or `None`,
/// and nothing is changed.
#[test]
fn values_of_another_context_or_module_are_refused() {
    let (a, b) = (Context::new(), Context::new());
    let ir = b"define i32 @f(i32 %x) { ret i32 %x }\n@g = global [4 x i32] zeroinitializer";
    let ma = Module::parse_ir(&a, ir, "a.ll").unwrap();
    let mut a2 = Module::parse_ir(&a, b"declare i32 @h(i32)", "a2.ll").unwrap();
    let mb = Module::parse_ir(&b, ir, "b.ll").unwrap();
    let (fa, fb) = (ma.function("f").unwrap(), mb.function("f").unwrap());

    // Linking modules of two contexts.
    let mut dst = Module::parse_ir(&a, b"declare i32 @f(i32)", "dst.ll").unwrap();
    let other = Module::parse_ir(&b, b"define i32 @f(i32 %x) { ret i32 %x }", "src.ll").unwrap();
    let err = dst.link_in(other).unwrap_err();
    assert!(err.to_string().contains("different LLVM contexts"), "{err}");
    let other = Module::parse_ir(&b, b"define i32 @z() { ret i32 0 }", "z.ll").unwrap();
    assert!(dst.link_in_all(vec![other]).is_err());
    assert!(dst.function("f").unwrap().is_declaration());
    dst.verify().unwrap();

    // A declaration like a function of another context: its type cannot be used here.
    assert!(a2.declare_function_like("copy", fb).is_none());
    assert!(a2.function("copy").is_none());
    let like = a2.declare_function_like("copy", fa).unwrap();
    assert_eq!(like.name(), "copy");
    a2.verify().unwrap();

    // Extracting, sizing and forwarding with values of another module.
    let err = mb.extract_function(fa, "x").unwrap_err();
    assert!(
        err.to_string().contains("not a function of module"),
        "{err}"
    );
    assert_eq!(mb.global_size(ma.global("g").unwrap()), 0);
    assert_eq!(mb.global_size(mb.global("g").unwrap()), 16);
    use thinjit::llvm::ForwardTo;
    assert!(mb
        .add_forwarder("fw", fa, ForwardTo::Slot(0), None)
        .is_none());
    assert!(mb
        .add_forwarder("fw", fb, ForwardTo::Function(fa), None)
        .is_none());
    assert!(mb.function("fw").is_none());
    let fw = mb
        .add_forwarder("fw", fb, ForwardTo::Function(fb), None)
        .unwrap();
    assert_eq!(fw.name(), "fw");
    mb.verify().unwrap();
    a2.link_in(Module::parse_ir(&a, b"define i32 @h(i32 %x) { ret i32 %x }", "h.ll").unwrap())
        .unwrap();
}

/// Issue 15: names LLVM only asserts against (NUL bytes; values that cannot carry a name) are refused.
#[test]
fn set_name_refuses_what_llvm_only_asserts_against() {
    let ctx = Context::new();
    let m = Module::parse_ir(
        &ctx,
        b"@g = global i32 0\ndefine void @f() {\n store i32 1, ptr @g\n ret void\n}",
        "n.ll",
    )
    .unwrap();
    let f = m.function("f").unwrap();
    assert!(!f.set_name("a\0b"));
    assert_eq!(f.name(), "f");
    let store = f.instructions().next().unwrap();
    assert!(!store.set_name("s"), "a void instruction has no name");
    let constant = store.operands().next().unwrap();
    assert!(constant.is_constant() && !constant.set_name("one"));
    assert!(f.set_name("renamed"));
    assert!(m.function("renamed").is_some());
    m.verify().unwrap();
}

/// Handles borrow their module but may edit it while several are alive: what the importer and the tiering code
/// do (rename, set linkage, add a forwarder next to the function it forwards to).
#[test]
fn shared_handles_edit_the_module_in_place() {
    let ctx = Context::new();
    let m = Module::parse_ir(
        &ctx,
        b"define internal i32 @f(i32 %x) { ret i32 %x }",
        "s.ll",
    )
    .unwrap();
    let f = m.function("f").unwrap();
    let all: Vec<_> = m.functions().collect();
    f.set_linkage(Linkage::External);
    f.set_string_attribute("target-cpu", "x86-64");
    f.add_attribute("noinline");
    let stub = m
        .add_forwarder("g", f, thinjit::llvm::ForwardTo::Function(f), None)
        .unwrap();
    assert_eq!(all[0].linkage(), Linkage::External);
    assert!(all[0].has_attribute("noinline"));
    assert_eq!(
        all[0].string_attribute("target-cpu").as_deref(),
        Some("x86-64")
    );
    assert_eq!(stub.instructions().filter(|i| i.is_call()).count(), 1);
    m.verify().unwrap();
}

/// A target machine reuses one code generation pipeline across modules: every bundled script (each optimized at
/// O3), compiled twice in turn, gives byte for byte the object a pipeline built for that module alone gives — in
/// two contexts, and after modules whose code generation failed (an assembler error, a return in SSE registers
/// with SSE off), which are errors both ways.
#[test]
fn reused_codegen_pipeline_gives_the_objects_of_fresh_ones() {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../benches/scripts"));
    let mut scripts: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ll"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 6, "{scripts:?}");
    let failing = [
        "define i64 @main() {\n  %r = call i32 asm \"bogus_instruction $0\", \"=r\"()\n  %i = sext i32 %r to i64\n  ret i64 %i\n}\n",
        "define double @d(double %x) \"target-features\"=\"-sse,-sse2\" {\n  %y = fadd double %x, 1.0\n  ret double %y\n}\n",
    ];
    let tm = TargetMachine::host(CodeGenOpt::Aggressive).unwrap();
    let fresh_tm = TargetMachine::host(CodeGenOpt::Aggressive).unwrap();
    let contexts = [Context::new(), Context::new()];
    let mut compiled = 0;
    for round in 0..2 {
        for (i, (name, text)) in scripts.iter().enumerate() {
            let ctx = &contexts[(i + round) % 2];
            let optimized = |ctx| {
                let mut m = Module::parse_ir(ctx, text.as_bytes(), name).unwrap();
                thinjit::optimize::optimize(&mut m, &tm, thinjit::optimize::OptLevel::O3).unwrap();
                m
            };
            let (a, b) = (optimized(ctx), optimized(ctx));
            let reused = tm.emit_object(&a).unwrap();
            let fresh = fresh_tm.emit_object_fresh_pipeline(&b).unwrap();
            assert!(!reused.is_empty());
            assert!(reused == fresh, "{name}, round {round}: objects differ");
            compiled += 1;
            let bad = failing[i % failing.len()];
            let m = Module::parse_ir(ctx, bad.as_bytes(), "failing").unwrap();
            assert!(matches!(tm.emit_object(&m), Err(Error::Codegen { .. })));
            let m = Module::parse_ir(ctx, bad.as_bytes(), "failing").unwrap();
            assert!(matches!(
                fresh_tm.emit_object_fresh_pipeline(&m),
                Err(Error::Codegen { .. })
            ));
        }
    }
    assert_eq!(compiled, 2 * scripts.len());
}
