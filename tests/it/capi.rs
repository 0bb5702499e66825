//! The C API (`capi/`, `thinjit.h`): the header compiles as C99 and C++17 with warnings as errors, a C file
//! calling every function links against the shared and the static library, the C and C++ examples build and
//! run, and bad input from C comes back as error values.
//!
//! The C programs are compiled here with LLVM 19's clang against `llvm-config` and `libthinjit_capi`, which
//! cargo builds before this binary (thinjit-cli dev-depends on thinjit-capi; the `.so` and `.a` land in
//! this executable's directory).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use thinjit::jit::RuntimeMode;
use thinjit::summary::{BuildOptions, ObjectTarget, Summary};

use crate::common::{fixture, helper_bitcode, helper_shared_library, llvm_tool};

fn repo_root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).to_path_buf()
}

/// The directory holding `libthinjit_capi.so` / `.a`: next to this test executable (`target/<profile>/deps`)
/// or one level up (`target/<profile>`, after `cargo build -p thinjit-capi`).
fn capi_lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("executable directory").to_path_buf();
    for dir in [
        deps.clone(),
        deps.parent().map(Path::to_path_buf).unwrap_or_default(),
    ] {
        if dir.join("libthinjit_capi.so").exists() {
            return dir;
        }
    }
    panic!(
        "libthinjit_capi.so not found next to {} (cargo builds it as a dev-dependency of thinjit-cli)",
        exe.display()
    );
}

fn llvm_config(args: &[&str]) -> Vec<String> {
    let out = Command::new(llvm_tool("llvm-config"))
        .args(args)
        .output()
        .expect("llvm-config");
    assert!(out.status.success(), "llvm-config {args:?} failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// How a C/C++ program links thinjit.
#[derive(Clone, Copy, PartialEq)]
enum Link {
    Shared,
    Static,
}

/// Compiles and links `sources` into `out` with clang (C) or clang++ (C++), warnings as errors.
fn build_program(sources: &[PathBuf], out: &Path, cxx: bool, link: Link) {
    let lib = capi_lib_dir();
    let mut cmd = Command::new(llvm_tool(if cxx { "clang++" } else { "clang" }));
    // LLVM's headers as system headers: they do not build warning-free under -Wextra themselves.
    let flags = llvm_config(&[if cxx { "--cxxflags" } else { "--cflags" }]);
    for flag in flags {
        match flag.strip_prefix("-I") {
            Some(dir) => cmd.arg("-isystem").arg(dir),
            None => cmd.arg(flag),
        };
    }
    cmd.arg(if cxx { "-std=c++17" } else { "-std=c99" });
    cmd.args(["-Wall", "-Wextra", "-Werror", "-g"])
        .arg("-I")
        .arg(repo_root().join("capi/include"))
        .args(sources)
        .arg("-o")
        .arg(out);
    match link {
        Link::Shared => {
            cmd.arg(format!("-L{}", lib.display()))
                .arg("-lthinjit_capi")
                .arg(format!("-Wl,-rpath,{}", lib.display()));
        }
        Link::Static => {
            // The Rust staticlib carries thinjit, the C++ shim and Rust's std; LLVM stays the shared one.
            cmd.arg(lib.join("libthinjit_capi.a")).args([
                "-lstdc++",
                "-lpthread",
                "-ldl",
                "-lm",
                "-lgcc_s",
                "-lutil",
                "-lrt",
            ]);
        }
    }
    cmd.args(llvm_config(&["--ldflags", "--libs"]));
    let llvm_lib = llvm_config(&["--libdir"]).remove(0);
    cmd.arg(format!("-Wl,-rpath,{llvm_lib}"));
    let output = cmd.output().expect("run clang");
    assert!(
        output.status.success(),
        "compiling {sources:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs a built program; returns stdout. Fails the test on a non-zero exit (or a signal: an abort).
fn run(program: &Path, args: &[&Path]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .expect("run program");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{} {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        program.display(),
        output.status
    );
    for forbidden in [
        "Unexpected definitions",
        "Missing definitions",
        "LLVM fatal error",
    ] {
        assert!(
            !stdout.contains(forbidden) && !stderr.contains(forbidden),
            "{forbidden}:\n{stdout}\n{stderr}"
        );
    }
    stdout
}

/// The bundled helpers' summary, with the runtime object for this host.
fn helpers_summary() -> Arc<Summary> {
    static S: OnceLock<Arc<Summary>> = OnceLock::new();
    S.get_or_init(|| {
        let options = BuildOptions {
            object: Some(ObjectTarget::host()),
            ..BuildOptions::default()
        };
        Arc::new(Summary::build(&helper_bitcode(), &options).expect("build the helpers' summary"))
    })
    .clone()
}

/// Writes the helpers' summary into `dir` and returns its path.
fn write_summary(dir: &Path) -> PathBuf {
    let path = dir.join("helpers.thinjit");
    helpers_summary().write(&path).unwrap();
    path
}

/// The value of the first `key: value` line.
fn field<'a>(stdout: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}: ");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no `{key}` line in:\n{stdout}"))
}

/// The functions `thinjit.h` declares.
fn header_functions() -> Vec<String> {
    let header = std::fs::read_to_string(repo_root().join("capi/include/thinjit.h")).unwrap();
    let mut names = Vec::new();
    let mut rest = header.as_str();
    while let Some(at) = rest.find("thinjit_") {
        let word: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + word.len()..];
        if rest.starts_with('(') {
            names.push(word);
        }
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn header_compiles_as_c99_and_cpp17_with_warnings_as_errors() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("h.c");
    std::fs::write(&c, "#include \"thinjit.h\"\nint main(void) { return 0; }\n").unwrap();
    let cpp = dir.path().join("h.cpp");
    std::fs::write(
        &cpp,
        "#include \"thinjit.h\"\n#include <type_traits>\n\
         static_assert(std::is_pointer<thinjitSummaryRef>::value, \"opaque handle\");\n\
         int main() { return thinjit_error_kind(nullptr) == THINJIT_ERROR_INVALID_ARGUMENT ? 0 : 1; }\n",
    )
    .unwrap();
    for (source, cxx) in [(&c, false), (&cpp, true)] {
        let mut cmd = Command::new(llvm_tool(if cxx { "clang++" } else { "clang" }));
        cmd.args(["-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-pedantic"])
            .arg(if cxx { "-std=c++17" } else { "-std=c99" })
            .arg("-I")
            .arg(repo_root().join("capi/include"))
            .arg(format!("-I{}", llvm_config(&["--includedir"])[0]))
            .arg(source);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{} does not compile:\n{}",
            source.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_c_file_calling_every_function_links_shared_and_static() {
    let source = fixture("capi/every_function.c");
    let text = std::fs::read_to_string(&source).unwrap();
    let functions = header_functions();
    assert!(functions.len() >= 30, "{functions:?}");
    for f in &functions {
        assert!(
            text.contains(&format!("{f}(")),
            "every_function.c does not call `{f}`"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    for link in [Link::Shared, Link::Static] {
        let exe = dir.path().join(if link == Link::Shared {
            "every_shared"
        } else {
            "every_static"
        });
        build_program(std::slice::from_ref(&source), &exe, false, link);
        let stdout = run(&exe, &[]);
        assert_eq!(field(&stdout, "failures"), "0", "{stdout}");
        let checked: usize = field(&stdout, "checked").parse().unwrap();
        assert!(checked >= functions.len(), "{stdout}");
    }
}

#[test]
fn c_eager_example_imports_inlines_and_runs_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_summary(dir.path());
    let exe = dir.path().join("c-eager");
    build_program(
        &[repo_root().join("examples/c-eager/main.c")],
        &exe,
        false,
        Link::Shared,
    );
    let so = helper_shared_library();
    let stdout = run(&exe, &[&summary, &so]);
    // The call to the helper was inlined into f_WRAPPED by the import-aware O3.
    assert_eq!(field(&stdout, "calls_after_o3"), "0", "{stdout}");
    assert_eq!(
        field(&stdout, "CreateWrappedValueFromInt"),
        "imported",
        "{stdout}"
    );
    assert_eq!(field(&stdout, "f_WRAPPED"), "tag 1 value 23333", "{stdout}");
    // Two modules and the host see one counter: the helpers' native instance.
    assert_eq!(
        field(&stdout, "counter"),
        "a=1 b=2 get=2 shared=2",
        "{stdout}"
    );
    assert!(stdout.contains("import report for `seed`"), "{stdout}");
    assert!(stdout.trim_end().ends_with("done"), "{stdout}");

    // JIT-resident: the summary's runtime in the C program's own LLJIT, through the plug-in.
    let stdout = run(&exe, &[&summary, Path::new("--resident")]);
    assert_eq!(field(&stdout, "calls_after_o3"), "0", "{stdout}");
    assert_eq!(field(&stdout, "f_WRAPPED"), "tag 1 value 23333", "{stdout}");
    assert_eq!(
        field(&stdout, "counter"),
        "a=1 b=2 get=2 shared=2",
        "{stdout}"
    );
    assert_eq!(
        field(&stdout, "events_before_dispose"),
        "ctor=1 dtor=0",
        "{stdout}"
    );
    assert_eq!(
        field(&stdout, "events_after_dispose"),
        "ctor=1 dtor=1",
        "{stdout}"
    );
}

/// Checks what every run of the C++ example prints: the seed's result, the call inlined, one counter.
fn check_cpp_run(stdout: &str) {
    assert_eq!(field(stdout, "calls_after_o3"), "0", "{stdout}");
    assert_eq!(
        field(stdout, "CreateWrappedValueFromInt"),
        "imported",
        "{stdout}"
    );
    assert_eq!(field(stdout, "f_WRAPPED"), "tag 1 value 23333", "{stdout}");
    // Two modules added to the caller's LLJIT and the host see one counter.
    assert_eq!(
        field(stdout, "counter"),
        "a=1 b=2 get=2 shared=2",
        "{stdout}"
    );
    assert!(stdout.contains("import report for `seed`"), "{stdout}");
    assert!(stdout.trim_end().ends_with("done"), "{stdout}");
}

/// Checks the JIT-resident runtime's invariants: constructor once, destructor once at dispose.
fn check_resident(stdout: &str, source: &str) {
    assert_eq!(field(stdout, "runtime"), source, "{stdout}");
    assert_eq!(field(stdout, "intern_ctor_runs"), "1", "{stdout}");
    assert_eq!(
        field(stdout, "events_before_dispose"),
        "ctor=1 dtor=0",
        "{stdout}"
    );
    assert_eq!(
        field(stdout, "events_after_dispose"),
        "ctor=1 dtor=1",
        "{stdout}"
    );
}

fn build_cpp_example(dir: &Path) -> PathBuf {
    let exe = dir.join("cpp-orc");
    build_program(
        &[repo_root().join("examples/cpp-orc/main.cpp")],
        &exe,
        true,
        Link::Shared,
    );
    exe
}

#[test]
fn cpp_example_eager_with_the_resident_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_summary(dir.path());
    let exe = build_cpp_example(dir.path());
    let stdout = run(&exe, &[&summary, Path::new("eager")]);
    check_cpp_run(&stdout);
    check_resident(&stdout, "object");
}

#[test]
fn cpp_example_inside_orc_imports_in_the_transform() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_summary(dir.path());
    let exe = build_cpp_example(dir.path());
    let stdout = run(&exe, &[&summary, Path::new("orc")]);
    check_cpp_run(&stdout);
    check_resident(&stdout, "object");
    // One report per script module the transform materialized; the runtime's own modules passed through.
    assert_eq!(field(&stdout, "transform_reports"), "2", "{stdout}");

    // The same from a summary without a precompiled object: the library bitcode is compiled in the caller's
    // LLJIT, with the same invariants.
    let bare = dir.path().join("bare.thinjit");
    Summary::build(&helper_bitcode(), &BuildOptions::default())
        .unwrap()
        .write(&bare)
        .unwrap();
    let stdout = run(&exe, &[&bare, Path::new("orc")]);
    check_cpp_run(&stdout);
    check_resident(&stdout, "bitcode");
}

#[test]
fn cpp_example_host_native_both_variants() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_summary(dir.path());
    let exe = build_cpp_example(dir.path());
    let so = helper_shared_library();
    for variant in ["eager", "orc"] {
        let stdout = run(&exe, &[&summary, Path::new(variant), &so]);
        check_cpp_run(&stdout);
    }
}

/// A summary of one helper built for aarch64.
fn other_target_summary(dir: &Path) -> PathBuf {
    let ll = dir.join("arm_helper.ll");
    std::fs::write(
        &ll,
        "target datalayout = \"e-m:e-i8:8:32-i16:16:32-i64:64-i128:128-n32:64-S128-Fn32\"\n\
         target triple = \"aarch64-unknown-linux-gnu\"\n\
         define ptr @CreateWrappedValueFromInt(i32 %v) {\n  ret ptr null\n}\n",
    )
    .unwrap();
    let summary = Summary::build(&[ll], &BuildOptions::default()).unwrap();
    assert_eq!(summary.header().target_triple, "aarch64-unknown-linux-gnu");
    let path = dir.join("arm.thinjit");
    summary.write(&path).unwrap();
    path
}

#[test]
fn bad_input_from_c_is_an_error_value_and_leaves_the_module_alone() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_summary(dir.path());
    let other = other_target_summary(dir.path());
    let damaged = dir.path().join("damaged.thinjit");
    let mut bytes = std::fs::read(&good).unwrap();
    bytes[40] ^= 0x5a;
    std::fs::write(&damaged, &bytes).unwrap();

    let exe = dir.path().join("bad_input");
    build_program(&[fixture("capi/bad_input.c")], &exe, false, Link::Shared);
    let stdout = run(&exe, &[&good, &other, &damaged]);
    assert!(!stdout.contains("FAIL"), "{stdout}");
    let cases: Vec<(&str, i32, bool, &str)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("case: "))
        .map(|l| {
            let (name, rest) = l.split_once(" kind=").unwrap();
            let (kind, rest) = rest.split_once(" unchanged=").unwrap();
            let (unchanged, message) = rest.split_once(" message=").unwrap();
            (name, kind.parse().unwrap(), unchanged == "1", message)
        })
        .collect();
    const INVALID: i32 = 1;
    const VERIFY: i32 = 4;
    const SUMMARY: i32 = 8;
    const SYMBOL: i32 = 10;
    const CONFIG: i32 = 12;
    const IO: i32 = 2;
    let expected = [
        ("null_module", INVALID, "`module` is NULL"),
        ("null_summary", INVALID, "`summary` is NULL"),
        ("foreign_handle", INVALID, "not a live thinjitSummaryRef"),
        ("disposed_summary", INVALID, "already disposed"),
        ("damaged_summary", SUMMARY, "damaged.thinjit"),
        ("truncated_summary", SUMMARY, "half"),
        ("missing_summary", IO, "/nonexistent/helpers.thinjit"),
        ("module_does_not_verify", VERIFY, "Basic Block"),
        ("optimize_does_not_verify", VERIFY, "does not verify"),
        ("module_defines_helper", SYMBOL, "CreateWrappedValueFromInt"),
        ("summary_for_other_target", SUMMARY, "aarch64"),
        ("module_for_other_target", SUMMARY, "aarch64"),
        ("unknown_knob", CONFIG, "import-instr-limt"),
        ("bad_knob_value", CONFIG, "import-hot-multiplier"),
        ("bad_opt_level", INVALID, "thinjitOptLevel"),
        ("wrong_handle_kind", INVALID, "not a thinjitSummaryRef"),
        ("good_import", 0, "(no error)"),
    ];
    assert_eq!(cases.len(), expected.len(), "{stdout}");
    for ((name, kind, unchanged, message), (want_name, want_kind, want_text)) in
        cases.iter().zip(expected)
    {
        assert_eq!(*name, want_name, "{stdout}");
        assert_eq!(*kind, want_kind, "{name}: {message}");
        assert!(*unchanged, "{name} changed the module");
        assert!(
            message.contains(want_text),
            "{name}: `{message}` lacks `{want_text}`"
        );
    }
}

/// The C API's import is the Rust API's: the same report for the same module, and the module afterwards
/// is the same text.
#[test]
fn c_api_import_is_the_rust_import() {
    use thinjit::llvm::{Context, Module};
    let summary = helpers_summary();
    let ctx = Context::new();
    let mut rust_module =
        Module::parse_ir(&ctx, crate::common::SEED_SCRIPT.as_bytes(), "seed").unwrap();
    rust_module.set_triple(&thinjit::llvm::host_triple());
    let c_module = rust_module.clone_module();
    let rust_report = thinjit::import::import(
        &mut rust_module,
        &*summary,
        &thinjit::import::ImportConfig::default(),
        RuntimeMode::JitResident,
    )
    .unwrap();

    let bytes = summary.to_bytes();
    let mut handle = std::ptr::null_mut();
    let mut report = std::ptr::null_mut();
    // SAFETY: valid buffers and out-pointers; the module is live in `ctx`, used by nothing else meanwhile.
    unsafe {
        let err = thinjit_capi::thinjit_summary_load_from_memory(
            bytes.as_ptr().cast(),
            bytes.len(),
            c"helpers".as_ptr(),
            &mut handle,
        );
        assert!(err.is_null());
        let err = thinjit_capi::thinjit_import(
            c_module.as_raw(),
            handle,
            std::ptr::null_mut(),
            &mut report,
        );
        assert!(err.is_null());
        let c_report = (*report).report();
        assert_eq!(c_report.entries, rust_report.entries);
        assert_eq!(c_report.totals, rust_report.totals);
        assert_eq!(c_report.stamped, rust_report.stamped);
        thinjit_capi::thinjit_report_dispose(report);
        thinjit_capi::thinjit_summary_dispose(handle);
    }
    assert_eq!(c_module.print(), rust_module.print());
}

/// `Module::borrow_raw` works on a module owned elsewhere without disposing it, and `Context::borrow_raw`
/// puts the owner's diagnostic handler back.
#[test]
fn borrowed_modules_stay_the_owners() {
    use thinjit::llvm::{Context, Module};
    let owner = Context::new();
    let owned = Module::parse_ir(&owner, b"define i32 @f() {\n ret i32 1\n}\n", "owned").unwrap();
    let raw = owned.as_raw();
    // SAFETY: the context and module are live and used by nothing else while borrowed.
    unsafe {
        {
            let ctx = Context::borrow_raw(owner.as_raw());
            let mut borrowed = Module::borrow_raw(&ctx, raw);
            borrowed.set_triple(&thinjit::llvm::host_triple());
            // Moving the borrowed module out and dropping it must not dispose the owner's module.
            let mut other = Module::new(&ctx, "other");
            std::mem::swap(&mut *borrowed, &mut other);
            drop(other);
            drop(std::mem::replace(
                &mut *borrowed,
                Module::new(&ctx, "again"),
            ));
        }
    }
    assert_eq!(owned.triple(), thinjit::llvm::host_triple());
    assert!(owned.function("f").is_some());
    // The owner's recording handler is back: without it LLVM would end the process on this bitcode.
    let mut bad = b"BC\xC0\xDE".to_vec();
    bad.extend_from_slice(&[0x35, 0x14, 0, 0, 5, 0, 0, 0, 0x62, 0x0c, 0x30, 0x24]);
    let err = Module::parse_bitcode(&owner, &bad, "garbage.bc").unwrap_err();
    assert!(err.to_string().contains("garbage.bc"), "{err}");
}

host_callbacks!(resident_host);

/// The library API under the C plug-in: `ResidentRuntime` in a JITDylib of an LLJIT thinjit does not own
/// (here an LLJIT of thinjit's, borrowed through its raw handle as a C host's would be):
/// constructor once, helpers callable, destructor once at shutdown, a second runtime in the same JITDylib
/// refused.
#[test]
fn resident_runtime_installs_into_a_borrowed_lljit() {
    use thinjit::jit::{ResidentRuntime, RuntimeSource};
    use thinjit::llvm::orc::LlJit;
    let summary = helpers_summary();
    let owner = LlJit::new_host().unwrap();
    // What a C++ `LLJITBuilder` JIT has by default: the process's symbols (libc, libstdc++).
    owner.add_process_symbols().unwrap();
    // SAFETY: `owner` outlives `jit` and everything installed through it.
    let jit = unsafe { LlJit::borrow_raw(owner.as_raw()) }.unwrap();
    let host = [
        (
            "thinjit_host_alloc",
            resident_host::alloc as *const () as u64,
        ),
        ("thinjit_host_free", resident_host::free as *const () as u64),
        ("thinjit_host_log", resident_host::log as *const () as u64),
        (
            "thinjit_host_event",
            resident_host::event as *const () as u64,
        ),
    ];
    let mut runtime =
        ResidentRuntime::install(&jit, jit.main_jitdylib(), &summary, &host, true).unwrap();
    assert_eq!(runtime.report().source, RuntimeSource::Object);
    assert_eq!(resident_host::events(1), 1);
    assert!(runtime
        .helper_symbols()
        .contains("CreateWrappedValueFromInt"));
    let runs = owner.lookup("rt_intern_ctor_runs").unwrap();
    // SAFETY: `rt_intern_ctor_runs` is `int32_t (void)` in the runtime just installed.
    let runs: extern "C" fn() -> i32 = unsafe { std::mem::transmute(runs as usize) };
    assert_eq!(runs(), 1);

    let again = ResidentRuntime::install(&jit, jit.main_jitdylib(), &summary, &host, true);
    assert!(again.is_err(), "a second runtime in one JITDylib");

    assert_eq!(resident_host::events(2), 0);
    assert!(runtime.shutdown() >= 1);
    assert_eq!(resident_host::events(2), 1, "destructor once");
    assert_eq!(runtime.shutdown(), 0);
    drop(runtime);
    assert_eq!(resident_host::events(2), 1);
    drop(jit);
    // The borrowed handle never disposed the LLJIT: its owner still looks symbols up.
    assert!(owner.lookup("CreateWrappedValueFromInt").is_ok());
}

host_callbacks!(transform_host);

/// The transform inside ORC, driven through the C functions on an LLJIT the caller owns: a module that does
/// not verify fails its own materialization (the lookup returns the error, the process lives on, the failure
/// is counted), and the next module is imported, inlined and runs.
#[test]
fn transform_refusal_is_a_lookup_error_not_an_abort() {
    use thinjit::llvm::orc::LlJit;
    use thinjit::llvm::{Context, Module};
    let summary = helpers_summary();
    let bytes = summary.to_bytes();
    let jit = LlJit::new_host().unwrap();
    jit.add_process_symbols().unwrap();
    let host = [
        (
            c"thinjit_host_alloc",
            transform_host::alloc as *const () as u64,
        ),
        (
            c"thinjit_host_free",
            transform_host::free as *const () as u64,
        ),
        (c"thinjit_host_log", transform_host::log as *const () as u64),
        (
            c"thinjit_host_event",
            transform_host::event as *const () as u64,
        ),
    ]
    .map(|(name, address)| thinjit_capi::ThinjitHostSymbol {
        name: name.as_ptr(),
        address,
    });
    let (mut s, mut runtime, mut transform) = (
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    );
    // SAFETY: valid buffers, handles and out-pointers; `jit` outlives the runtime (disposed below) and the
    // transform (disposed after `jit`).
    unsafe {
        let err = thinjit_capi::thinjit_summary_load_from_memory(
            bytes.as_ptr().cast(),
            bytes.len(),
            c"helpers".as_ptr(),
            &mut s,
        );
        assert!(err.is_null());
        let err = thinjit_capi::thinjit_resident_runtime_install(
            jit.as_raw(),
            std::ptr::null_mut(),
            s,
            host.as_ptr(),
            host.len(),
            1,
            &mut runtime,
        );
        assert!(
            err.is_null(),
            "{:?}",
            std::ffi::CStr::from_ptr(thinjit_capi::thinjit_error_message(err))
        );
        let err = thinjit_capi::thinjit_ir_transform_install(
            jit.as_raw(),
            s,
            std::ptr::null_mut(),
            3,
            &mut transform,
        );
        assert!(err.is_null());
    }
    let bad_ir: &[u8] =
        b"define i32 @bad() {\nentry:\n  ret i32 %y\nb:\n  %y = add i32 1, 1\n  ret i32 %y\n}\n";
    let bad = Context::new();
    let module = Module::parse_ir(&bad, bad_ir, "bad").unwrap();
    // The safe layer verifies before handing a module to ORC (issue 15)...
    let refused = jit.add_module(module, None).unwrap_err();
    assert!(refused.to_string().contains("dominate"), "{refused}");
    // ...a C host adds modules through LLVM's C API, unverified: the transform must refuse them.
    // SAFETY: LLVM-C calls on handles made here; the thread-safe module takes the module, the JIT takes the
    // thread-safe module, and our reference on the thread-safe context is released last.
    unsafe {
        use llvm_sys::orc2::{self, lljit};
        let tsc = orc2::LLVMOrcCreateNewThreadSafeContext();
        let buffer = llvm_sys::core::LLVMCreateMemoryBufferWithMemoryRangeCopy(
            bad_ir.as_ptr().cast(),
            bad_ir.len(),
            c"bad".as_ptr(),
        );
        let (mut raw, mut message) = (std::ptr::null_mut(), std::ptr::null_mut());
        let failed = llvm_sys::ir_reader::LLVMParseIRInContext(
            orc2::LLVMOrcThreadSafeContextGetContext(tsc),
            buffer,
            &mut raw,
            &mut message,
        );
        assert_eq!(failed, 0);
        let tsm = orc2::LLVMOrcCreateNewThreadSafeModule(raw, tsc);
        let main = lljit::LLVMOrcLLJITGetMainJITDylib(jit.as_raw());
        assert!(lljit::LLVMOrcLLJITAddLLVMIRModule(jit.as_raw(), main, tsm).is_null());
        orc2::LLVMOrcDisposeThreadSafeContext(tsc);
    }
    let failure = jit.lookup("bad").unwrap_err();
    let text = format!("{failure:?} {:?}", jit.take_reported_errors());
    assert!(
        text.contains("does not verify") || text.contains("dominate"),
        "{text}"
    );

    let good = Context::new();
    let module = Module::parse_ir(&good, crate::common::SEED_SCRIPT.as_bytes(), "seed").unwrap();
    jit.add_module(module, None).unwrap();
    let f = jit.lookup("f_WRAPPED").unwrap();
    // SAFETY: `f_WRAPPED` is `ptr (ptr, ptr)` and returns a boxed int: `{ i32 tag, i32 pad, i32 value }`.
    let value = unsafe {
        let f: extern "C" fn(*mut u8, *mut u8) -> *const i32 = std::mem::transmute(f as usize);
        let boxed = f(std::ptr::null_mut(), std::ptr::null_mut());
        (*boxed, *boxed.add(2))
    };
    assert_eq!(value, (1, 23333));

    let (mut failures, mut reports) = (0usize, 0usize);
    let mut report = std::ptr::null_mut();
    let mut entry = std::mem::MaybeUninit::<thinjit_capi::ThinjitReportEntry>::uninit();
    let mut found = 0;
    // SAFETY: live handles; valid out-pointers.
    unsafe {
        assert!(
            thinjit_capi::thinjit_ir_transform_failure_count(transform, &mut failures).is_null()
        );
        assert!(thinjit_capi::thinjit_ir_transform_report_count(transform, &mut reports).is_null());
        assert!(thinjit_capi::thinjit_ir_transform_report(transform, 0, &mut report).is_null());
        assert!(thinjit_capi::thinjit_report_find(
            report,
            c"CreateWrappedValueFromInt".as_ptr(),
            entry.as_mut_ptr(),
            &mut found
        )
        .is_null());
        assert_eq!(found, 1);
        let entry = entry.assume_init();
        assert_eq!(entry.imported, 1);
        assert_eq!(entry.calls_after_optimize, 0, "inlined inside ORC");
        thinjit_capi::thinjit_report_dispose(report);
        thinjit_capi::thinjit_resident_runtime_dispose(runtime);
    }
    assert_eq!((failures, reports), (1, 1));
    assert_eq!(transform_host::events(2), 1, "destructor at dispose");
    drop(jit);
    // SAFETY: the LLJIT it was installed on is gone.
    unsafe {
        thinjit_capi::thinjit_ir_transform_dispose(transform);
        thinjit_capi::thinjit_summary_dispose(s);
    }
}

host_callbacks!(checked_host);

/// What the checked-compiler test's LLJIT reported asynchronously (its session's error reporter).
static REPORTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

extern "C" fn keep_reported_error(_ctx: *mut std::ffi::c_void, err: llvm_sys::error::LLVMErrorRef) {
    // SAFETY: ORC hands the reporter an error it owns; its message is read and freed here.
    let text = unsafe {
        let raw = llvm_sys::error::LLVMGetErrorMessage(err);
        let text = std::ffi::CStr::from_ptr(raw).to_string_lossy().into_owned();
        llvm_sys::error::LLVMDisposeErrorMessage(raw);
        text
    };
    REPORTED.lock().unwrap().push(text);
}

/// Issue 15, with a C host's own LLJIT: a module the backend reports an error diagnostic for.
const CODEGEN_ERRORS: [(&str, &str, &str, &str); 2] = [
    (
        "no-sse",
        "define double @d(double %x) noinline \"target-features\"=\"-sse,-sse2,-avx,-avx2,-avx512f\" {\n  %y = fadd double %x, 1.0\n  ret double %y\n}\ndefine i64 @no_sse_main() {\n  %r = call double @d(double 2.0)\n  %i = fptosi double %r to i64\n  ret i64 %i\n}\n",
        "no_sse_main",
        "SSE register return with SSE disabled",
    ),
    (
        "bad-asm",
        "define i32 @bad_asm() {\n  %r = call i32 asm \"bogus_instruction $0\", \"=r\"()\n  ret i32 %r\n}\n",
        "bad_asm",
        "bogus_instruction",
    ),
];

/// Adds textual IR to a C-API LLJIT the way a C host does: its own LLVMContext (LLVM's default diagnostic
/// handler, which exits the process on an error diagnostic), a thread-safe module, `LLVMOrcLLJITAddLLVMIRModule`.
///
/// # Safety
/// `jit` must be a live LLJIT.
unsafe fn add_ir_like_a_c_host(jit: llvm_sys::orc2::lljit::LLVMOrcLLJITRef, name: &str, ir: &str) {
    use llvm_sys::orc2::{self as orc, lljit};
    let tsc = orc::LLVMOrcCreateNewThreadSafeContext();
    let ctx = orc::LLVMOrcThreadSafeContextGetContext(tsc);
    let cname = std::ffi::CString::new(name).unwrap();
    let buffer = llvm_sys::core::LLVMCreateMemoryBufferWithMemoryRangeCopy(
        ir.as_ptr().cast(),
        ir.len(),
        cname.as_ptr(),
    );
    let (mut module, mut message) = (std::ptr::null_mut(), std::ptr::null_mut());
    assert_eq!(
        llvm_sys::ir_reader::LLVMParseIRInContext(ctx, buffer, &mut module, &mut message),
        0,
        "{name} parses"
    );
    let tsm = orc::LLVMOrcCreateNewThreadSafeModule(module, tsc);
    orc::LLVMOrcDisposeThreadSafeContext(tsc);
    let dylib = lljit::LLVMOrcLLJITGetMainJITDylib(jit);
    let err = lljit::LLVMOrcLLJITAddLLVMIRModule(jit, dylib, tsm);
    assert!(err.is_null(), "adding {name}");
}

/// `LLVMOrcLLJITLookup`: the address, or the error's message.
///
/// # Safety
/// `jit` must be a live LLJIT.
unsafe fn c_lookup(jit: llvm_sys::orc2::lljit::LLVMOrcLLJITRef, name: &str) -> Result<u64, String> {
    let cname = std::ffi::CString::new(name).unwrap();
    let mut address = 0;
    let err = llvm_sys::orc2::lljit::LLVMOrcLLJITLookup(jit, &mut address, cname.as_ptr());
    if err.is_null() {
        return Ok(address);
    }
    let raw = llvm_sys::error::LLVMGetErrorMessage(err);
    let text = std::ffi::CStr::from_ptr(raw).to_string_lossy().into_owned();
    llvm_sys::error::LLVMDisposeErrorMessage(raw);
    Err(text)
}

/// A C host's LLJIT built with `thinjit_lljit_builder_use_checked_compiler`, thinjit's transform installed:
/// a script whose code generation raises an error diagnostic (issue 15 case 1's `-sse` double return, inline
/// asm that does not assemble) fails its lookup — without the checked compiler LLVM's default diagnostic
/// handler exits the process (or, with a recording handler, the mis-compiled object runs) — the failure is
/// listed with its module, function and LLVM's message, and the same LLJIT then compiles, imports into and
/// runs a clean module.
#[test]
fn checked_compiler_turns_codegen_errors_in_a_c_hosts_lljit_into_lookup_errors() {
    use llvm_sys::orc2::lljit;
    let bytes = helpers_summary().to_bytes();
    let host = [
        (
            c"thinjit_host_alloc",
            checked_host::alloc as *const () as u64,
        ),
        (c"thinjit_host_free", checked_host::free as *const () as u64),
        (c"thinjit_host_log", checked_host::log as *const () as u64),
        (
            c"thinjit_host_event",
            checked_host::event as *const () as u64,
        ),
    ]
    .map(|(name, address)| thinjit_capi::ThinjitHostSymbol {
        name: name.as_ptr(),
        address,
    });
    let (mut s, mut runtime, mut transform, mut compiler) = (
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    );
    let mut jit = std::ptr::null_mut();
    // SAFETY: valid buffers and out-pointers; the builder is consumed by LLVMOrcCreateLLJIT after the compiler
    // is installed; the transform is disposed after the LLJIT.
    unsafe {
        let err = thinjit_capi::thinjit_summary_load_from_memory(
            bytes.as_ptr().cast(),
            bytes.len(),
            c"helpers".as_ptr(),
            &mut s,
        );
        assert!(err.is_null());
        let builder = lljit::LLVMOrcCreateLLJITBuilder();
        let err = thinjit_capi::thinjit_lljit_builder_use_checked_compiler(builder, &mut compiler);
        assert!(err.is_null());
        assert!(lljit::LLVMOrcCreateLLJIT(&mut jit, builder).is_null());
        llvm_sys::orc2::LLVMOrcExecutionSessionSetErrorReporter(
            lljit::LLVMOrcLLJITGetExecutionSession(jit),
            keep_reported_error,
            std::ptr::null_mut(),
        );
        let err = thinjit_capi::thinjit_resident_runtime_install(
            jit,
            std::ptr::null_mut(),
            s,
            host.as_ptr(),
            host.len(),
            1,
            &mut runtime,
        );
        assert!(err.is_null());
        let err = thinjit_capi::thinjit_ir_transform_install(
            jit,
            s,
            std::ptr::null_mut(),
            3,
            &mut transform,
        );
        assert!(err.is_null());
    }
    for (i, (name, ir, entry, expected)) in CODEGEN_ERRORS.iter().enumerate() {
        // SAFETY: `jit` is live.
        let failure = unsafe {
            add_ir_like_a_c_host(jit, name, ir);
            c_lookup(jit, entry).unwrap_err()
        };
        // ORC's lookup error names the symbols; the reason goes to the session's error reporter and the list.
        assert!(failure.contains(entry), "{name}: {failure}");
        let reported = REPORTED.lock().unwrap().join("\n");
        assert!(
            reported.contains(&format!("code generation of {name} failed"))
                && reported.contains(expected),
            "{name}: {reported}"
        );
        let mut count = 0;
        let (mut module, mut function, mut message) = (
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        // SAFETY: live handle; valid out-pointers; the strings are ours to free.
        let (module_name, function_name, text) = unsafe {
            assert!(
                thinjit_capi::thinjit_checked_compiler_failure_count(compiler, &mut count)
                    .is_null()
            );
            assert_eq!(count, i + 1);
            assert!(thinjit_capi::thinjit_checked_compiler_failure(
                compiler,
                i,
                &mut module,
                &mut function,
                &mut message
            )
            .is_null());
            let read = |p: *mut std::ffi::c_char| {
                let text = (!p.is_null())
                    .then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned());
                thinjit_capi::thinjit_string_dispose(p);
                text
            };
            (read(module), read(function), read(message))
        };
        assert_eq!(module_name.as_deref(), Some(*name));
        assert_eq!(
            function_name.as_deref(),
            Some(if *name == "no-sse" { "d" } else { "bad_asm" })
        );
        assert!(text.unwrap().contains(expected));
    }
    // The same LLJIT compiles the next module: imported (the helper inlined inside ORC) and run.
    let clean = "declare ptr @CreateWrappedValueFromInt(i32)\ndefine i32 @clean() {\n  %p = call ptr @CreateWrappedValueFromInt(i32 7)\n  %v = getelementptr inbounds i8, ptr %p, i64 8\n  %x = load i32, ptr %v\n  ret i32 %x\n}\n";
    // SAFETY: `jit` is live; `clean` is `i32 ()`.
    let value = unsafe {
        add_ir_like_a_c_host(jit, "clean", clean);
        let address = c_lookup(jit, "clean").unwrap();
        let f: extern "C" fn() -> i32 = std::mem::transmute(address as usize);
        f()
    };
    assert_eq!(value, 7);
    let (mut reports, mut failures) = (0, 0);
    // SAFETY: live handles; the LLJIT is disposed before the transform (header contract).
    unsafe {
        assert!(thinjit_capi::thinjit_ir_transform_report_count(transform, &mut reports).is_null());
        assert!(
            thinjit_capi::thinjit_ir_transform_failure_count(transform, &mut failures).is_null()
        );
        assert_eq!(
            (reports, failures),
            (3, 0),
            "import + optimize ran for all three"
        );
        thinjit_capi::thinjit_checked_compiler_dispose(compiler);
        thinjit_capi::thinjit_resident_runtime_dispose(runtime);
        assert!(lljit::LLVMOrcDisposeLLJIT(jit).is_null());
        thinjit_capi::thinjit_ir_transform_dispose(transform);
        thinjit_capi::thinjit_summary_dispose(s);
    }
}
