//! The seed's script, built with inkwell's IR builder and run through thinjit's engine:
//!
//! ```llvm
//! declare ptr @CreateWrappedValueFromInt(i32) local_unnamed_addr
//! define noundef i32 @f_() local_unnamed_addr { ret i32 23333 }
//! define ptr @f_WRAPPED(ptr nocapture readnone %0, ptr nocapture readnone %1) local_unnamed_addr {
//!   %3 = tail call ptr @CreateWrappedValueFromInt(i32 23333)
//!   ret ptr %3
//! }
//! ```
//!
//! The inkwell module goes into the engine as it is (`Engine::add_inkwell_module`): import, O3 and code
//! generation run on it in the caller's inkwell context, with no text or bitcode copy. The example also imports
//! into an inkwell module in place (`thinjit::import::import_inkwell`), and times the three ways in: inkwell in
//! place, `add_script_module` (a bitcode copy), `add_script` with the module printed as text.

use std::ffi::c_void;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use inkwell::attributes::AttributeLoc;
use inkwell::context::Context;
use inkwell::module::{Linkage, Module};
use inkwell::AddressSpace;
use thinjit::import::{import_inkwell, ImportConfig};
use thinjit::jit::RuntimeMode;
use thinjit::jit::{Engine, EngineBuilder};
use thinjit::summary::{BuildOptions, Summary};

/// Events the helpers report (constructor and destructor of their intern table).
static EVENTS: AtomicI32 = AtomicI32::new(0);

extern "C" fn host_alloc(size: usize) -> *mut c_void {
    // SAFETY: plain malloc.
    unsafe { libc::malloc(size.max(1)) }
}
extern "C" fn host_free(p: *mut c_void) {
    // SAFETY: `p` came from `host_alloc` (or is null).
    unsafe { libc::free(p) }
}
extern "C" fn host_log(_msg: *const std::ffi::c_char) {}
extern "C" fn host_event(_code: i32) {
    EVENTS.fetch_add(1, Ordering::SeqCst);
}

/// Builds the seed's script module with inkwell's builder.
fn seed_module<'ctx>(ctx: &'ctx Context, name: &str) -> Module<'ctx> {
    let module = ctx.create_module(name);
    let i32t = ctx.i32_type();
    let ptr = ctx.ptr_type(AddressSpace::default());
    let create = module.add_function(
        "CreateWrappedValueFromInt",
        ptr.fn_type(&[i32t.into()], false),
        Some(Linkage::External),
    );
    let builder = ctx.create_builder();

    let f = module.add_function("f_", i32t.fn_type(&[], false), None);
    let noundef = ctx.create_enum_attribute(
        inkwell::attributes::Attribute::get_named_enum_kind_id("noundef"),
        0,
    );
    f.add_attribute(AttributeLoc::Return, noundef);
    builder.position_at_end(ctx.append_basic_block(f, "entry"));
    builder
        .build_return(Some(&i32t.const_int(23333, false)))
        .expect("ret");

    let wrapped = module.add_function(
        "f_WRAPPED",
        ptr.fn_type(&[ptr.into(), ptr.into()], false),
        None,
    );
    builder.position_at_end(ctx.append_basic_block(wrapped, "entry"));
    let call = builder
        .build_call(create, &[i32t.const_int(23333, false).into()], "boxed")
        .expect("call");
    call.set_tail_call(true);
    let boxed = call.try_as_basic_value().basic().expect("a value");
    builder.build_return(Some(&boxed)).expect("ret");
    module.verify().expect("the seed module verifies");
    module
}

fn engine(summary: Arc<Summary>) -> thinjit::Result<Engine> {
    EngineBuilder::new()
        .summary(summary)
        .runtime_mode(RuntimeMode::JitResident)
        .host_symbol("thinjit_host_alloc", host_alloc as *const () as u64)
        .host_symbol("thinjit_host_free", host_free as *const () as u64)
        .host_symbol("thinjit_host_log", host_log as *const () as u64)
        .host_symbol("thinjit_host_event", host_event as *const () as u64)
        .keep_optimized_ir(true)
        .build()
}

/// Reads the boxed int back through the helper API.
fn unbox(engine: &Engine, boxed: *mut c_void) -> thinjit::Result<i32> {
    let get = engine.lookup::<extern "C" fn(*mut c_void) -> i32>("WrappedValueGetInt")?;
    // SAFETY: `int32_t WrappedValueGetInt(const WrappedValue *)`, and `boxed` came from the helpers.
    Ok(unsafe { get.call(boxed) })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The bundled helpers, as `precompute-summary helpers/` builds them.
    let helpers = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../helpers");
    let summary = Arc::new(Summary::build(&[helpers], &BuildOptions::default())?);
    let engine = engine(Arc::clone(&summary))?;
    let ctx = Context::create();

    // 1. Import into an inkwell module in place, then look at it through inkwell.
    let module = seed_module(&ctx, "seed-import");
    let report = import_inkwell(
        &module,
        &*summary,
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    )?;
    let imported = report.imported_functions();
    println!("imported into the inkwell module: {}", imported.join(", "));
    let body = module
        .get_function("CreateWrappedValueFromInt")
        .ok_or("CreateWrappedValueFromInt vanished")?;
    println!(
        "inkwell sees CreateWrappedValueFromInt with {} basic block(s), linkage {:?}",
        body.count_basic_blocks(),
        body.get_linkage()
    );
    if body.count_basic_blocks() == 0 {
        return Err("the import did not land in the inkwell module".into());
    }

    // 2. Run the seed through the engine from an inkwell module: no text or bitcode. (This engine keeps the
    //    optimized IR as text for the report read below; the timed engines further down do not.)
    let module = seed_module(&ctx, "seed");
    let script = engine.add_inkwell_module(module)?;
    let report = script.report().ok_or("no report")?;
    let f = script.lookup::<extern "C" fn(*mut c_void, *mut c_void) -> *mut c_void>("f_WRAPPED")?;
    // SAFETY: f_WRAPPED is `ptr (ptr, ptr)`.
    let boxed = unsafe { f.call(std::ptr::null_mut(), std::ptr::null_mut()) };
    let value = unbox(&engine, boxed)?;
    println!("f_WRAPPED() = WrappedValue(int {value})");
    let ir = report.optimized_ir.as_deref().unwrap_or("");
    let still_called = ir
        .lines()
        .any(|l| l.contains("call ") && l.contains("@CreateWrappedValueFromInt("));
    println!(
        "CreateWrappedValueFromInt {} by O3",
        if still_called {
            "NOT inlined"
        } else {
            "inlined"
        }
    );
    if value != 23333 || still_called {
        return Err("the seed did not run as expected".into());
    }

    // 3. Times of the three ways in (a fresh engine each, same module shape).
    const N: u32 = 50;
    for way in [
        "inkwell in place",
        "add_script_module (bitcode copy)",
        "add_script (text)",
    ] {
        let engine = engine_without_ir(Arc::clone(&summary))?;
        let written = thinjit::llvm::modules_serialized_on_this_thread();
        let start = Instant::now();
        for i in 0..N {
            let ctx = Context::create();
            let module = seed_module(&ctx, &format!("seed{i}"));
            let script = match way {
                "inkwell in place" => engine.add_inkwell_module(module)?,
                "add_script_module (bitcode copy)" => {
                    thinjit::llvm::inkwell::with_module(&module, |m| engine.add_script_module(m))?
                }
                _ => {
                    let text = thinjit::llvm::inkwell::with_module(&module, |m| m.print());
                    engine.add_script(&format!("seed{i}"), text.as_bytes())?
                }
            };
            script.remove()?;
        }
        let per = start.elapsed().as_secs_f64() * 1e3 / N as f64;
        let written = thinjit::llvm::modules_serialized_on_this_thread() - written;
        println!(
            "{way}: {per:.3} ms per script (build + add + remove, {N} scripts), {written} modules written as text or bitcode"
        );
    }
    Ok(())
}

fn engine_without_ir(summary: Arc<Summary>) -> thinjit::Result<Engine> {
    EngineBuilder::new()
        .summary(summary)
        .runtime_mode(RuntimeMode::JitResident)
        .host_symbol("thinjit_host_alloc", host_alloc as *const () as u64)
        .host_symbol("thinjit_host_free", host_free as *const () as u64)
        .host_symbol("thinjit_host_log", host_log as *const () as u64)
        .host_symbol("thinjit_host_event", host_event as *const () as u64)
        .build()
}
