//! Shard bitcode (issue 17): shards list only the metadata kinds they attach, so reading one does not decode
//! LLVM's whole kind table, and they read back exactly as the module they were written from.

use thinjit::llvm::{bitcode_metadata_kinds, Context, Module};
use thinjit::summary::{BuildOptions, Summary};

use crate::common::helper_bitcode;

const WITH_ATTACHMENTS: &str = r#"
target datalayout = "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128"
target triple = "x86_64-pc-linux-gnu"

@table = constant [4 x i32] [i32 1, i32 2, i32 3, i32 4], !type !6

define i32 @sum(ptr %p, i32 %n) !prof !5 {
entry:
  br label %loop
loop:
  %i = phi i32 [ 0, %entry ], [ %i1, %loop ]
  %s = phi i32 [ 0, %entry ], [ %s1, %loop ]
  %q = getelementptr i32, ptr %p, i32 %i
  %v = load i32, ptr %q, align 4, !tbaa !0, !range !4
  %s1 = add i32 %s, %v
  %i1 = add i32 %i, 1
  %c = icmp slt i32 %i1, %n
  br i1 %c, label %loop, label %done, !llvm.loop !7
done:
  ret i32 %s1
}

!0 = !{!1, !1, i64 0}
!1 = !{!"int", !2, i64 0}
!2 = !{!"omnipotent char", !3, i64 0}
!3 = !{!"Simple C TBAA"}
!4 = !{i32 0, i32 100}
!5 = !{!"function_entry_count", i64 1000}
!6 = !{i64 0, !"table"}
!7 = distinct !{!7, !8}
!8 = !{!"llvm.loop.mustprogress"}
"#;

#[test]
fn shard_bitcode_lists_only_the_attached_kinds_and_reads_back_the_same() {
    let ctx = Context::new();
    let m = Module::parse_ir(&ctx, WITH_ATTACHMENTS.as_bytes(), "attachments").unwrap();
    let full = m.write_bitcode();
    let shard = m.write_shard_bitcode();
    assert_eq!(shard.len(), full.len(), "the table keeps its size on disk");
    let all = bitcode_metadata_kinds(&full).expect("LLVM writes a kind table");
    assert!(all > 30, "LLVM 19 writes every kind it knows: {all}");
    // tbaa, range, prof, llvm.loop, type.
    assert_eq!(bitcode_metadata_kinds(&shard), Some(5));

    // Read back in fresh contexts: the same module, attachments and all.
    let a = Context::new();
    let from_full = Module::parse_bitcode(&a, &full, "full").unwrap();
    let b = Context::new();
    let from_shard = Module::parse_bitcode(&b, &shard, "shard").unwrap();
    from_shard.verify().unwrap();
    let text = from_shard.print();
    assert_eq!(text.replace("shard", "full"), from_full.print());
    for kind in ["!tbaa", "!range", "!prof", "!llvm.loop", "!type"] {
        assert!(text.contains(kind), "{kind} lost:\n{text}");
    }
}

#[test]
fn a_module_without_attachments_keeps_no_kinds() {
    let ctx = Context::new();
    let m = Module::parse_ir(&ctx, b"define i32 @f(i32 %x) {\n  ret i32 %x\n}\n", "plain").unwrap();
    let shard = m.write_shard_bitcode();
    assert_eq!(bitcode_metadata_kinds(&shard), Some(0));
    let other = Context::new();
    let back = Module::parse_bitcode(&other, &shard, "plain").unwrap();
    assert_eq!(back.print(), m.print());
}

#[test]
fn every_helper_shard_lists_only_its_kinds_and_parses() {
    let summary = Summary::build(&helper_bitcode(), &BuildOptions::default()).unwrap();
    let mut shards = 0;
    for f in &summary.index().functions {
        let Ok(bytes) = summary.shard(f) else {
            continue;
        };
        shards += 1;
        let kinds = bitcode_metadata_kinds(bytes).expect("a kind table");
        let ctx = Context::new();
        let m = Module::parse_bitcode(&ctx, bytes, &f.name).unwrap();
        m.verify().unwrap();
        assert!(kinds < 10, "shard of `{}` lists {kinds} kinds", f.name);
        // Written again untrimmed, the module lists every kind; trimmed again, the same kinds as the shard.
        assert!(bitcode_metadata_kinds(&m.write_bitcode()).unwrap() > 30);
        assert_eq!(
            bitcode_metadata_kinds(&m.write_shard_bitcode()),
            Some(kinds)
        );
    }
    assert!(shards > 10, "{shards} shards");
}
