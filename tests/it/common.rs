//! Shared test helpers: fixture paths and the bundled helper library's build outputs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `tests/it/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
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

/// Host callbacks (`thinjit_host_alloc/free/log/event`) with their own event counters, one set per test so
/// tests running in parallel do not see each other's events.
macro_rules! host_callbacks {
    ($name:ident) => {
        #[allow(dead_code)]
        mod $name {
            use std::sync::atomic::{AtomicI32, Ordering};

            pub static EVENTS: [AtomicI32; 8] = [const { AtomicI32::new(0) }; 8];

            pub extern "C" fn alloc(size: usize) -> *mut libc::c_void {
                // SAFETY: plain malloc.
                unsafe { libc::malloc(size.max(1)) }
            }

            pub extern "C" fn free(p: *mut libc::c_void) {
                // SAFETY: `p` came from `alloc` (or is null).
                unsafe { libc::free(p) }
            }

            pub extern "C" fn log(_msg: *const libc::c_char) {}

            pub extern "C" fn event(code: i32) {
                if (0..8).contains(&code) {
                    EVENTS[code as usize].fetch_add(1, Ordering::SeqCst);
                }
            }

            pub fn events(code: usize) -> i32 {
                EVENTS[code].load(Ordering::SeqCst)
            }

            pub fn register(builder: thinjit::jit::EngineBuilder) -> thinjit::jit::EngineBuilder {
                builder
                    .host_symbol("thinjit_host_alloc", alloc as *const () as u64)
                    .host_symbol("thinjit_host_free", free as *const () as u64)
                    .host_symbol("thinjit_host_log", log as *const () as u64)
                    .host_symbol("thinjit_host_event", event as *const () as u64)
            }
        }
    };
}

/// Resident set size of this process in KiB (`VmRSS` of /proc/self/status).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// Runs the `#[ignore]`d test `path` (e.g. `robustness::dead_symbol_names_child`) alone in a child process of
/// this test binary (memory figures mean nothing while other tests run), asserts it passed, and returns its
/// stdout.
pub fn run_ignored_test_in_child(path: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            path,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs `cmd` with its standard output a pipe whose reader is gone before the first line is written (`… | head`
/// that exits at once), and asserts it ends quietly: status 0, no panic, no error on stderr.
pub fn assert_quiet_into_closed_pipe(cmd: &mut std::process::Command) {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
