//! `precompute-summary`'s real build inputs (compile_commands.json, -I/-D/--std, per-language flags, directory
//! walks that report what they skip), the error for a library with nothing importable, and `thinjit run` on a
//! user runtime whose helper calls the user's own host callback (`--host-library`, `--process-symbols`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use thinjit::summary::Summary;

use crate::common;

fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn precompute(dir: &Path, args: &[&OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_precompute-summary"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn thinjit(args: &[&OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_thinjit"))
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn function_names(summary: &Path) -> Vec<String> {
    let s = Summary::load(summary).unwrap();
    s.index().functions.iter().map(|f| f.name.clone()).collect()
}

/// Copies the compile-commands fixture into a temporary directory (compile_commands.json needs absolute paths).
fn compile_commands_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = common::fixture("compile-commands");
    for sub in ["src", "include", "tests"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for e in std::fs::read_dir(from.join(sub)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.path().join(sub).join(e.file_name())).unwrap();
        }
    }
    dir
}

#[test]
fn readme_precompute_line_works_verbatim_on_the_bundled_helpers_and_runs_the_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let out_file = tmp.path().join("helpers.thinjit");
    // The README's line, run from the repository root: `precompute-summary helpers/ -o helpers.thinjit`.
    let out = precompute(
        &repo_root(),
        &["helpers/".as_ref(), "-o".as_ref(), out_file.as_os_str()],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The helpers' flags come from helpers/compile_flags.txt; the host stand-in is skipped, and says why.
    assert!(stdout.contains("picked 4 inputs"), "{stdout}");
    assert!(
        stdout.contains("(flags: helpers/compile_flags.txt)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skipped helpers/host: listed in helpers/.thinjitignore"),
        "{stdout}"
    );
    let names = function_names(&out_file);
    assert!(names.iter().any(|n| n == "CreateWrappedValueFromInt"));
    let summary = Summary::load(&out_file).unwrap();
    for host in ["thinjit_host_log", "thinjit_host_alloc"] {
        let f = summary.index().function(host);
        assert!(
            f.map_or(true, |f| !f.is_eligible()),
            "{host} must not be defined by the summary"
        );
    }

    let script = tmp.path().join("seed.ll");
    std::fs::write(&script, common::SEED_SCRIPT).unwrap();
    let out = thinjit(&[
        "run".as_ref(),
        script.as_os_str(),
        "--summary".as_ref(),
        out_file.as_os_str(),
        "--entry".as_ref(),
        "f_WRAPPED".as_ref(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("f_WRAPPED: WrappedValue(int 23333)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("inlined by O3: CreateWrappedValueFromInt"),
        "{stdout}"
    );
}

/// `precompute-summary … | head`: standard output closed before anything is printed still writes the summary
/// and ends with status 0, no panic and no error (the report lines are not worth failing the build for).
#[test]
fn precompute_summary_into_a_closed_pipe_writes_the_summary_and_exits_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let out_file = tmp.path().join("helpers.thinjit");
    common::assert_quiet_into_closed_pipe(
        Command::new(env!("CARGO_BIN_EXE_precompute-summary"))
            .current_dir(repo_root())
            .args(["helpers/".as_ref(), "-o".as_ref(), out_file.as_os_str()]),
    );
    assert!(function_names(&out_file)
        .iter()
        .any(|n| n == "CreateWrappedValueFromInt"));
}

/// Writes a compile_commands.json for the fixture: the C file through `arguments`, the C++ file through a
/// `command` string with shell quoting, the test program as CMake would list it.
fn write_database(dir: &Path) -> PathBuf {
    let d = dir.display().to_string();
    let db = serde_json::json!([
        {
            "directory": d,
            "file": "src/needs_c11.c",
            "arguments": ["/usr/bin/cc", "-Iinclude", "-DFIXTURE_X=5", "-std=c11", "-O2", "-MD", "-MF",
                          "build/needs_c11.o.d", "-o", "build/needs_c11.o", "-c", "src/needs_c11.c"],
            "output": "build/needs_c11.o"
        },
        {
            "directory": d,
            "file": format!("{d}/src/needs_cxx17.cpp"),
            "command": format!("/usr/bin/c++ -I{d}/include -std=c++17 \"-DGREETING_LEN=(sizeof \\\"hi there\\\" - 1)\" -o build/x.o -c {d}/src/needs_cxx17.cpp")
        },
        {
            "directory": d,
            "file": "tests/test_fixture.c",
            "arguments": ["cc", "-Iinclude", "-c", "tests/test_fixture.c"]
        }
    ]);
    let path = dir.join("compile_commands.json");
    std::fs::write(&path, serde_json::to_string_pretty(&db).unwrap()).unwrap();
    path
}

#[test]
fn compile_commands_give_each_file_its_own_flags() {
    let dir = compile_commands_fixture();
    let db = write_database(dir.path());
    let out_file = dir.path().join("fixture.thinjit");
    let out = precompute(
        dir.path(),
        &[
            "--compile-commands".as_ref(),
            db.as_os_str(),
            "-o".as_ref(),
            out_file.as_os_str(),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("picked 2 inputs"), "{stdout}");
    assert!(
        stdout.contains("test_fixture.c: named like a test program"),
        "{stdout}"
    );
    let names = function_names(&out_file);
    for f in ["fixture_c_value", "fixture_cxx_value"] {
        assert!(names.iter().any(|n| n == f), "{f} in {names:?}");
    }
    assert!(!names.iter().any(|n| n == "main"), "{names:?}");

    // The macro values made it through (`arguments` and a quoted `command`): run the library's functions.
    let script = dir.path().join("s.ll");
    std::fs::write(
        &script,
        "declare i32 @fixture_c_value(i32)\ndeclare i32 @fixture_cxx_value(i32)\n\
         define i32 @main() {\n %a = call i32 @fixture_c_value(i32 1)\n %b = call i32 @fixture_cxx_value(i32 10)\n\
         %c = mul i32 %a, 100\n %d = add i32 %c, %b\n ret i32 %d\n}\n",
    )
    .unwrap();
    let out = thinjit(&[
        "run".as_ref(),
        script.as_os_str(),
        "--summary".as_ref(),
        out_file.as_os_str(),
        "--ret".as_ref(),
        "i32".as_ref(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // (1 + 5) * 100 + (10 * 2 + 8)
    assert!(stdout.contains("main: 628"), "{stdout}");
}

#[test]
fn one_flag_for_every_file_breaks_the_cxx_file_and_per_language_flags_do_not() {
    let dir = compile_commands_fixture();
    let out_file = dir.path().join("fixture.thinjit");
    let base: Vec<&OsStr> = vec![
        "src".as_ref(),
        "-I".as_ref(),
        "include".as_ref(),
        "-D".as_ref(),
        "FIXTURE_X=5".as_ref(),
        "-D".as_ref(),
        "GREETING_LEN=8".as_ref(),
        "-o".as_ref(),
        out_file.as_os_str(),
    ];
    let mut shared = base.clone();
    shared.extend(["--clang-arg", "-std=c11"].map(OsStr::new));
    let out = precompute(dir.path(), &shared);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("needs_cxx17.cpp"), "{stderr}");

    let mut per_language = base.clone();
    per_language.extend(["--std", "c11", "--std", "c++17"].map(OsStr::new));
    let out = precompute(dir.path(), &per_language);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    let mut split = base;
    split.extend(["--c-arg=-std=c11", "--cxx-arg=-std=c++17"].map(OsStr::new));
    let out = precompute(dir.path(), &split);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
}

#[test]
fn malformed_or_dangling_compile_commands_name_the_file_and_the_entry() {
    let dir = compile_commands_fixture();
    let d = dir.path().display().to_string();
    let out_file = dir.path().join("x.thinjit");
    let cases: Vec<(&str, String, &[&str])> = vec![
        ("not json", "[{\"directory\": ".into(), &["compile_commands.json", "not a compile_commands.json"]),
        ("not an array", "{}".into(), &["compile_commands.json", "not a compile_commands.json"]),
        (
            "missing file",
            format!("[{{\"directory\": \"{d}\", \"file\": \"src/gone.c\", \"arguments\": [\"cc\", \"-c\", \"src/gone.c\"]}}]"),
            &["compile_commands.json entry 0 (`src/gone.c`)", "gone.c does not exist"],
        ),
        (
            "missing directory",
            format!("[{{\"directory\": \"{d}\", \"file\": \"src/needs_c11.c\", \"arguments\": [\"cc\"]}}, {{\"directory\": \"{d}/nowhere\", \"file\": \"a.c\", \"command\": \"cc -c a.c\"}}]"),
            &["entry 1 (`a.c`)", "nowhere does not exist"],
        ),
        (
            "no command",
            format!("[{{\"directory\": \"{d}\", \"file\": \"src/needs_c11.c\"}}]"),
            &["entry 0 (`src/needs_c11.c`)", "neither `arguments` nor `command`"],
        ),
        (
            "wrong type",
            format!("[{{\"directory\": \"{d}\", \"file\": \"src/needs_c11.c\", \"arguments\": \"cc -c\"}}]"),
            &["entry 0 (`src/needs_c11.c`)", "malformed entry"],
        ),
        (
            "unterminated quote",
            format!("[{{\"directory\": \"{d}\", \"file\": \"src/needs_c11.c\", \"command\": \"cc '-DX -c src/needs_c11.c\"}}]"),
            &["entry 0", "unterminated"],
        ),
    ];
    for (case, contents, expected) in cases {
        let db = dir.path().join("compile_commands.json");
        std::fs::write(&db, contents).unwrap();
        let out = precompute(
            dir.path(),
            &[
                "--compile-commands".as_ref(),
                db.as_os_str(),
                "-o".as_ref(),
                out_file.as_os_str(),
            ],
        );
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{case}: succeeded");
        assert!(!stderr.contains("panicked"), "{case}: {stderr}");
        for e in expected {
            assert!(stderr.contains(e), "{case}: `{e}` not in {stderr}");
        }
    }
}

#[test]
fn directory_walks_report_test_programs_instead_of_summarizing_them() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    std::fs::create_dir_all(lib.join("tests")).unwrap();
    std::fs::create_dir_all(lib.join(".cache")).unwrap();
    std::fs::write(
        lib.join("helper.c"),
        "int helper(int x) { return x + 1; }\n",
    )
    .unwrap();
    std::fs::write(
        lib.join("driver.c"),
        "int helper(int);\nint main(void) { return helper(1); }\n",
    )
    .unwrap();
    std::fs::write(
        lib.join("test_helper.c"),
        "int test_helper_case(void) { return 0; }\n",
    )
    .unwrap();
    std::fs::write(lib.join("tests/run.c"), "int main(void) { return 0; }\n").unwrap();
    std::fs::write(
        lib.join(".cache/stale.c"),
        "int stale(void) { return 0; }\n",
    )
    .unwrap();
    let out_file = dir.path().join("lib.thinjit");
    let out = precompute(
        dir.path(),
        &["lib".as_ref(), "-o".as_ref(), out_file.as_os_str()],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("picked 1 input: lib/helper.c"), "{stdout}");
    for line in [
        "skipped lib/.cache: hidden",
        "skipped lib/driver.c: defines `main` (a program, not a helper)",
        "skipped lib/test_helper.c: named like a test program",
        "skipped lib/tests: a test, example or benchmark directory",
    ] {
        assert!(stdout.contains(line), "`{line}` not in {stdout}");
    }
    assert_eq!(function_names(&out_file), vec!["helper".to_owned()]);

    // A named file is taken as it is, `main` included: naming it is asking for it.
    let out = precompute(
        dir.path(),
        &[
            "lib/driver.c".as_ref(),
            "lib/helper.c".as_ref(),
            "-o".as_ref(),
            out_file.as_os_str(),
        ],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(function_names(&out_file).contains(&"main".to_owned()));
}

#[test]
fn a_library_with_nothing_importable_is_an_error_naming_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("slow.c"),
        "int slow_add(int a, int b) { return a + b; }\nint slow_twice(int a) { return slow_add(a, a); }\n",
    )
    .unwrap();
    let out_file = dir.path().join("slow.thinjit");
    let out = precompute(
        dir.path(),
        &[
            "slow.c".as_ref(),
            "--clang-arg=-O0".as_ref(),
            "-o".as_ref(),
            out_file.as_os_str(),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stderr.contains("no function is importable among 2 defined: 2 optnone"),
        "{stderr}"
    );
    assert!(stderr.contains("-O0"), "{stderr}");
    assert!(!out_file.exists());
}

/// Builds the host-callback fixture: the runtime's summary and the host's shared library.
fn host_callback_fixture(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let fixture = common::fixture("host-callback");
    let summary = dir.join("scaler.thinjit");
    let out = precompute(
        dir,
        &[
            fixture.join("runtime").as_os_str(),
            "-o".as_ref(),
            summary.as_os_str(),
        ],
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let library = dir.join("libscaler_host.so");
    let out = Command::new(common::llvm_tool("clang"))
        .args(["-shared", "-fPIC", "-O2", "-I"])
        .arg(fixture.join("include"))
        .arg(fixture.join("host/host_scale.c"))
        .arg("-o")
        .arg(&library)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    (summary, library, fixture.join("script.ll"))
}

#[test]
fn run_resolves_a_user_runtimes_host_callback_from_a_host_library() {
    let dir = tempfile::tempdir().unwrap();
    let (summary, library, script) = host_callback_fixture(dir.path());
    let run = |extra: &[&OsStr]| {
        let mut args: Vec<&OsStr> = vec![
            "run".as_ref(),
            script.as_os_str(),
            "--summary".as_ref(),
            summary.as_os_str(),
            "--ret".as_ref(),
            "i32".as_ref(),
        ];
        args.extend_from_slice(extra);
        thinjit(&args)
    };

    let out = run(&["--host-library".as_ref(), library.as_os_str()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // 14 * scaler_host_factor() + 1, the factor coming from the host library.
    assert!(stdout.contains("main: 43"), "{stdout}");
    assert!(stdout.contains("inlined by O3: scaler_scale"), "{stdout}");
    assert!(
        stdout.contains("scaler_host_factor: not imported"),
        "{stdout}"
    );

    // Without it, the error names the callback and calls the summary the summary.
    let out = run(&[]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("symbol `scaler_host_factor`"), "{stderr}");
    assert!(
        stderr.contains("the runtime library of summary") && !stderr.contains("script `"),
        "{stderr}"
    );
    assert!(stderr.contains("--host-library"), "{stderr}");

    // The process's own symbols (here: a library the dynamic loader preloaded), opt-in.
    let out = Command::new(env!("CARGO_BIN_EXE_thinjit"))
        .env("LD_PRELOAD", &library)
        .args([
            "run".as_ref(),
            script.as_os_str(),
            "--summary".as_ref(),
            summary.as_os_str(),
            "--ret".as_ref(),
            "i32".as_ref(),
            "--process-symbols".as_ref(),
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("main: 43"), "{stdout}");
}

#[test]
fn plan_says_what_o3_inlined_and_what_stayed_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let (summary, library, script) = host_callback_fixture(dir.path());
    // `plan` builds the engine `run` builds (the runtime started), so the runtime's host callback comes from
    // the same place.
    let out = thinjit(&[
        "plan".as_ref(),
        script.as_os_str(),
        "--summary".as_ref(),
        summary.as_os_str(),
        "--host-library".as_ref(),
        library.as_os_str(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("inlined by O3: scaler_scale"), "{stdout}");
    assert!(
        stdout.contains("still calls:\n  scaler_host_factor: not imported: not eligible"),
        "{stdout}"
    );
}
