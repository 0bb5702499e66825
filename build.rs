//! Build script: compiles the C++ shim (the few LLVM entry points the C API lacks). Nothing else: the bundled
//! sample helpers are built by the `thinjit-cli` crate, for this repository's tests, demo and benches only.
//!
//! LLVM is found only through `LLVM_SYS_191_PREFIX` (default `/usr/lib/llvm-19`), never through `PATH`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LLVM_SYS_191_PREFIX");
    let prefix = PathBuf::from(
        std::env::var("LLVM_SYS_191_PREFIX").unwrap_or_else(|_| "/usr/lib/llvm-19".into()),
    );
    let bin = prefix.join("bin");

    build_shim(&bin.join("llvm-config"));
    println!("cargo:rustc-env=THINJIT_LLVM_BIN={}", bin.display());
}

fn build_shim(llvm_config: &Path) {
    println!("cargo:rerun-if-changed=src/llvm/shim");
    let cxxflags = run(Command::new(llvm_config).arg("--cxxflags"));
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file("src/llvm/shim/shim.cpp")
        .file("src/llvm/shim/check.cpp")
        .file("src/llvm/shim/thinlto.cpp")
        .file("src/llvm/shim/shard.cpp")
        .file("src/llvm/shim/intrinsics.cpp")
        .warnings(false);
    for flag in cxxflags.split_whitespace() {
        build.flag(flag);
    }
    build.flag("-Wno-unused-parameter");
    build.compile("thinjit_llvm_shim");
}

fn run(cmd: &mut Command) -> String {
    let output = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {:?}: {e} (is LLVM 19 installed? run scripts/bootstrap.sh)",
            cmd
        )
    });
    if !output.status.success() {
        panic!(
            "{:?} failed:\n{}{}",
            cmd,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8_lossy(&output.stdout).into_owned()
}
