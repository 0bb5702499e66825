//! A host crate with its own C helper runtime (csrc/, include/, `-DHOSTRT_SCALE=7`), summarized by
//! `thinjit-build` in build.rs, and its own host callback (`hostrt_host_notify`, in Rust). Two scripts call the
//! runtime; the host keeps them in its own struct, checks on the optimized IR that the helpers were inlined,
//! and that the counter is one instance across both scripts and the host.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use thinjit::import::called_functions;
use thinjit::jit::RuntimeMode;
use thinjit::jit::{Engine, EngineBuilder, Script};
use thinjit::llvm::{Context, Module};
use thinjit::summary::Summary;

/// What the runtime told the host through its callback.
static NOTIFICATIONS: AtomicI64 = AtomicI64::new(0);
static LAST_NOTIFIED: AtomicI64 = AtomicI64::new(0);

/// The host callback the C runtime calls (`void hostrt_host_notify(int64_t)` in include/hostrt.h).
extern "C" fn hostrt_host_notify(value: i64) {
    NOTIFICATIONS.fetch_add(1, Ordering::SeqCst);
    LAST_NOTIFIED.store(value, Ordering::SeqCst);
}

/// Script `n`: `i64 run(i64 x)` bumps the shared counter by `hostrt_scale(x)` and returns the counter.
fn script(n: u32) -> String {
    format!(
        "declare i64 @hostrt_bump(i64)\n\
         declare i64 @hostrt_scale(i64)\n\
         define i64 @run_{n}(i64 %x) {{\n\
           %s = call i64 @hostrt_scale(i64 %x)\n\
           %c = call i64 @hostrt_bump(i64 %s)\n\
           ret i64 %c\n\
         }}\n"
    )
}

/// The host's JIT: the engine and the scripts it added, owned together in one struct (a `Script` keeps what it
/// needs of the engine alive, so the struct borrows nothing).
struct HostJit {
    engine: Engine,
    scripts: Vec<Script>,
}

impl HostJit {
    fn add(&mut self, n: u32) -> thinjit::Result<()> {
        let script = self
            .engine
            .add_owned_script(&format!("script{n}"), script(n).as_bytes())?;
        self.scripts.push(script);
        Ok(())
    }

    /// Calls `run_<n>` of script `n`.
    fn run(&self, n: usize, x: i64) -> thinjit::Result<i64> {
        let f = self.scripts[n].lookup::<extern "C" fn(i64) -> i64>(&format!("run_{n}"))?;
        // SAFETY: `run_<n>` is `i64 (i64)` (see `script`).
        Ok(unsafe { f.call(x) })
    }

    /// The helper calls left in script `n` after import and O3.
    fn remaining_helper_calls(&self, n: usize) -> Vec<String> {
        let report = self.scripts[n].report().expect("script report");
        let ir = report.optimized_ir.expect("kept optimized IR");
        let ctx = Context::new();
        let module =
            Module::parse_ir(&ctx, ir.as_bytes(), "optimized").expect("optimized IR parses");
        called_functions(&module)
            .into_iter()
            .filter(|f| f.starts_with("hostrt_") && f != "hostrt_host_notify")
            .collect()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = thinjit::summary_path!("hostrt");
    let summary = Arc::new(Summary::load(path.as_ref())?);
    let engine = EngineBuilder::new()
        .summary(summary)
        .runtime_mode(RuntimeMode::JitResident)
        .host_symbol("hostrt_host_notify", hostrt_host_notify as *const () as u64)
        .keep_optimized_ir(true)
        .build()?;
    println!("summary: {path}");
    println!("runtime: {}", engine.startup_report().runtime);

    let mut jit = HostJit {
        engine,
        scripts: Vec::new(),
    };
    jit.add(0)?;
    jit.add(1)?;
    let a = jit.run(0, 2)?; // counter = 14
    let b = jit.run(1, 3)?; // counter = 14 + 21
    println!("script0 run(2) -> counter {a}");
    println!("script1 run(3) -> counter {b}");
    for n in 0..2 {
        let left = jit.remaining_helper_calls(n);
        println!("script{n} helper calls left after O3: {left:?}");
        if !left.is_empty() {
            return Err(format!("script{n}: helpers not inlined: {left:?}").into());
        }
    }

    // The host sees the same counter: through the runtime's accessor and through the global's address.
    let engine = &jit.engine;
    let get = engine.lookup::<extern "C" fn() -> i64>("hostrt_counter_get")?;
    // SAFETY: `int64_t hostrt_counter_get(void)`.
    let via_helper = unsafe { get.call() };
    let address = engine.lookup_address("hostrt_counter")?;
    // SAFETY: `hostrt_counter` is an `int64_t` global of the JIT-resident runtime, alive with the engine.
    let via_global = unsafe { *(address as *const i64) };
    println!("host: counter via hostrt_counter_get {via_helper}, via &hostrt_counter {via_global}");
    println!(
        "host callback: {} notifications, last value {}",
        NOTIFICATIONS.load(Ordering::SeqCst),
        LAST_NOTIFIED.load(Ordering::SeqCst)
    );
    let expected = 2 * 7 + 3 * 7;
    if (a, b, via_helper, via_global) != (14, expected, expected, expected)
        || NOTIFICATIONS.load(Ordering::SeqCst) != 2
        || LAST_NOTIFIED.load(Ordering::SeqCst) != expected
    {
        return Err("the counter is not one instance across the scripts and the host".into());
    }
    println!("one counter instance across two scripts and the host: ok");
    Ok(())
}
