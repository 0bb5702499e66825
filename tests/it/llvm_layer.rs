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
