//! Build script: compiles the bundled sample helper runtime (`../helpers/`) to bitcode and to a native shared
//! library for this repository's tests, demo and benches.
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
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));

    build_helpers(&bin, &out);
    println!("cargo:rustc-env=THINJIT_LLVM_BIN={}", bin.display());
}

/// Compiles every `helpers/*.c` and `helpers/*.cpp` to `$OUT_DIR/helpers/<stem>.bc` and, together with
/// `helpers/host/*.c`, to the native `$OUT_DIR/libthinjit_helpers.so`.
fn build_helpers(bin: &Path, out: &Path) {
    println!("cargo:rerun-if-changed=../helpers");
    let dir = Path::new("../helpers");
    let bc_dir = out.join("helpers");
    std::fs::create_dir_all(&bc_dir).expect("create helpers output dir");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    sources.retain(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("c" | "cpp")));
    sources.sort();
    let mut natives = sources.clone();
    if let Ok(rd) = std::fs::read_dir(dir.join("host")) {
        let mut host: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("c"))
            .collect();
        host.sort();
        natives.extend(host);
    }
    let mut objects = Vec::new();
    for src in &natives {
        let stem = src.file_stem().unwrap().to_string_lossy().into_owned();
        let cpp = src.extension().and_then(|e| e.to_str()) == Some("cpp");
        let (compiler, std) = if cpp {
            ("clang++", "-std=c++17")
        } else {
            ("clang", "-std=c11")
        };
        let compiler = bin.join(compiler);
        let in_library = sources.contains(src);
        if in_library {
            let bc = bc_dir.join(format!("{stem}.bc"));
            run(Command::new(&compiler)
                .args([
                    std,
                    "-O2",
                    "-fPIC",
                    "-emit-llvm",
                    "-c",
                    "-I../helpers/include",
                ])
                .arg(src)
                .arg("-o")
                .arg(&bc));
        }
        let obj = out.join(format!("native-{stem}.o"));
        run(Command::new(&compiler)
            .args([std, "-O2", "-fPIC", "-c", "-I../helpers/include"])
            .arg(src)
            .arg("-o")
            .arg(&obj));
        objects.push(obj);
    }
    let so = out.join("libthinjit_helpers.so");
    run(Command::new(bin.join("clang++"))
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .args(&objects)
        .arg("-lstdc++"));
    println!(
        "cargo:rustc-env=THINJIT_HELPERS_BC_DIR={}",
        bc_dir.display()
    );
    println!("cargo:rustc-env=THINJIT_HELPERS_SO={}", so.display());
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
