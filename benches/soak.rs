//! Soak (issue 8): add, run and remove many scripts across several threads on one engine and watch the
//! process's resident memory; it must plateau.
//!
//! `cargo bench --bench soak` (release): 10,000 scripts over 4 threads against the bundled helpers'
//! summary, JIT-resident. Each script imports and inlines helpers (`CreateWrappedValueFromInt`,
//! `WrappedValueAdd`, `WrappedValueGetInt`), is optimized at O3, materialized by ORC, called (result
//! checked) and removed. `--scripts N` (or `THINJIT_SOAK_SCRIPTS=N`) and `--threads T` change the load;
//! `--name-bytes B` pads every script's symbol names to about B bytes (to make leaked names visible); `--lazy`
//! imports and optimizes inside ORC's IR transform instead of eagerly; `--trim` calls `malloc_trim(0)` before
//! each sample (to tell allocator retention from a leak).
//!
//! Prints VmRSS (`/proc/self/status`), glibc's bytes in use (`mallinfo2`, LLVM's heap plus ours) and the Rust
//! side's live heap every 500 scripts, then compares the growth over the last quarter of the
//! run with the growth over the first quarter; exits with status 1 when memory did not plateau (last-quarter
//! growth above a quarter of the first quarter's and above 2 MiB).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use thinjit::jit::EngineBuilder;
use thinjit::summary::{BuildOptions, Summary};

mod host {
    pub extern "C" fn alloc(size: usize) -> *mut libc::c_void {
        // SAFETY: plain malloc.
        unsafe { libc::malloc(size.max(1)) }
    }
    pub extern "C" fn free(p: *mut libc::c_void) {
        // SAFETY: `p` came from `alloc` (or is null).
        unsafe { libc::free(p) }
    }
    pub extern "C" fn log(_msg: *const libc::c_char) {}
    pub extern "C" fn event(_code: i32) {}
}

/// Counts the bytes the Rust side holds, to tell thinjit's own state apart from LLVM's (which uses `malloc`
/// directly) and from allocator fragmentation.
struct Counting;

static RUST_HEAP: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; the counter is a plain atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        RUST_HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        RUST_HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SCRIPT: &str = r#"
declare ptr @CreateWrappedValueFromInt(i32)
declare ptr @WrappedValueAdd(ptr, ptr)
declare i32 @WrappedValueGetInt(ptr)
define i32 @soak_N(i32 %x) {
  %a = call ptr @CreateWrappedValueFromInt(i32 %x)
  %b = call ptr @CreateWrappedValueFromInt(i32 N)
  %c = call ptr @WrappedValueAdd(ptr %a, ptr %b)
  %r = call i32 @WrappedValueGetInt(ptr %c)
  ret i32 %r
}
"#;

/// Bytes glibc's malloc has handed out and not had back (all arenas): LLVM's and thinjit's live heap.
fn malloc_in_use() -> usize {
    // SAFETY: `mallinfo2` only reads the allocator's statistics.
    unsafe { libc::mallinfo2().uordblks }
}

/// A `/proc/self/status` field in KiB (`VmRSS`, `RssAnon`, `RssFile`).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// VmRSS in KiB.
fn rss_kib() -> u64 {
    status_kib("VmRSS")
}

fn arg(name: &str, env: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .or_else(|| std::env::var(env).ok())
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: not a number: {v}"))
        })
        .unwrap_or(default)
}

fn main() {
    let total = arg("--scripts", "THINJIT_SOAK_SCRIPTS", 10_000);
    let threads = arg("--threads", "THINJIT_SOAK_THREADS", 4).max(1);
    let every = 500.min(total.max(1));
    let name_bytes = arg("--name-bytes", "THINJIT_SOAK_NAME_BYTES", 0);
    let lazy = std::env::args().any(|a| a == "--lazy");
    let trim = std::env::args().any(|a| a == "--trim");

    let mut inputs: Vec<_> = std::fs::read_dir(env!("THINJIT_HELPERS_BC_DIR"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bc"))
        .collect();
    inputs.sort();
    let summary = Arc::new(Summary::build(&inputs, &BuildOptions::default()).unwrap());
    let engine = EngineBuilder::new()
        .summary(summary)
        .keep_optimized_ir(false)
        .lazy(lazy)
        .host_symbol("thinjit_host_alloc", host::alloc as *const () as u64)
        .host_symbol("thinjit_host_free", host::free as *const () as u64)
        .host_symbol("thinjit_host_log", host::log as *const () as u64)
        .host_symbol("thinjit_host_event", host::event as *const () as u64)
        .build()
        .unwrap();

    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let samples: Mutex<Vec<(usize, u64, f64)>> = Mutex::new(vec![(0, rss_kib(), 0.0)]);
    let start = Instant::now();
    println!(
        "soak: {total} scripts, {threads} threads, {} mode, names padded to {name_bytes} bytes, RSS every {every} scripts",
        if lazy { "lazy" } else { "eager" }
    );
    println!(
        "| scripts | seconds | VmRSS (MiB) | RssAnon (MiB) | RssFile (MiB) | malloc in use (MiB) | Rust heap (KiB) |\n|---:|---:|---:|---:|---:|---:|---:|"
    );
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let k = (n % 1000) as i32 + 1;
                let text = SCRIPT
                    .replace('N', &format!("{n}"))
                    .replace(&format!("(i32 {n})"), &format!("(i32 {k})"));
                let h = engine
                    .add_script(&format!("soak{n}"), text.as_bytes())
                    .unwrap();
                let f = h
                    .lookup::<extern "C" fn(i32) -> i32>(&format!("soak_{n}"))
                    .unwrap();
                // SAFETY: `soak_<n>` has this signature; the handle keeps it loaded while `f` lives.
                let r = unsafe { f.call(2) };
                assert_eq!(r, 2 + k, "script {n}");
                h.remove().unwrap();
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                if finished % every == 0 || finished == total {
                    if trim {
                        // SAFETY: returns free memory at the top of each arena to the system; no other effect.
                        unsafe { libc::malloc_trim(0) };
                    }
                    let s = (finished, rss_kib(), start.elapsed().as_secs_f64());
                    println!(
                        "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {} |",
                        s.0,
                        s.2,
                        s.1 as f64 / 1024.0,
                        status_kib("RssAnon") as f64 / 1024.0,
                        status_kib("RssFile") as f64 / 1024.0,
                        malloc_in_use() as f64 / (1024.0 * 1024.0),
                        RUST_HEAP.load(Ordering::Relaxed) / 1024
                    );
                    samples.lock().unwrap().push(s);
                }
            });
        }
    });
    assert_eq!(engine.script_count(), 0);
    let mut samples = samples.into_inner().unwrap();
    samples.sort_by_key(|s| s.0);
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{total} scripts in {elapsed:.1} s ({:.0} scripts/s)",
        total as f64 / elapsed
    );

    // Growth over the first and the last quarter of the run (by scripts completed).
    let rss_at = |count: usize| {
        samples
            .iter()
            .min_by_key(|s| s.0.abs_diff(count))
            .map(|s| s.1 as i64)
            .unwrap_or(0)
    };
    let q = total / 4;
    let first = rss_at(q) - rss_at(0);
    let last = rss_at(total) - rss_at(total - q);
    let plateau = last <= (first / 4).max(2048);
    println!(
        "RSS growth: first quarter {:+.1} MiB, last quarter {:+.1} MiB, total {:+.1} MiB -> {}",
        first as f64 / 1024.0,
        last as f64 / 1024.0,
        (rss_at(total) - rss_at(0)) as f64 / 1024.0,
        if plateau { "plateau" } else { "NO PLATEAU" }
    );
    if !plateau {
        std::process::exit(1);
    }
}
