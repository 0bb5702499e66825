//! Shared test helpers: fixture paths and the bundled helper library's build outputs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `tests/it/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(name)
}

/// The bitcode files of the bundled helper library, compiled by build.rs, sorted by name.
pub fn helper_bitcode() -> Vec<PathBuf> {
    let dir = Path::new(env!("THINJIT_HELPERS_BC_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("helpers bitcode dir")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bc"))
        .collect();
    files.sort();
    files
}

/// The native shared library of the bundled helpers (host-native mode).
pub fn helper_shared_library() -> PathBuf {
    PathBuf::from(env!("THINJIT_HELPERS_SO"))
}

/// An LLVM 19 tool (`opt`, `llvm-lto`, ...), never from PATH.
pub fn llvm_tool(name: &str) -> PathBuf {
    Path::new(env!("THINJIT_LLVM_BIN")).join(name)
}

/// The seed's script module, verbatim.
pub const SEED_SCRIPT: &str = r#"
declare ptr @CreateWrappedValueFromInt(i32) local_unnamed_addr

define noundef i32 @f_() local_unnamed_addr #0 {
  ret i32 23333
}

define ptr @f_WRAPPED(ptr nocapture readnone %0, ptr nocapture readnone %1) local_unnamed_addr {
  %3 = tail call ptr @CreateWrappedValueFromInt(i32 23333)
  ret ptr %3
}

attributes #0 = { mustprogress nofree norecurse nosync nounwind willreturn memory(none) }
"#;
