//! Interop with other LLVM users: contexts and modules created through llvm-sys, borrowed by thinjit.

use std::sync::atomic::{AtomicUsize, Ordering};

use llvm_sys::core as c;
use llvm_sys::prelude::{LLVMContextRef, LLVMDiagnosticInfoRef, LLVMModuleRef};
use thinjit::llvm::{Context, Module};

/// Diagnostics seen by the caller's own handler (the one thinjit must put back).
static CALLER_DIAGNOSTICS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn caller_handler(_info: LLVMDiagnosticInfoRef, _ctx: *mut libc::c_void) {
    CALLER_DIAGNOSTICS.fetch_add(1, Ordering::SeqCst);
}

/// A context with the caller's own diagnostic handler and a module built with llvm-sys's IR builder:
/// `define i32 @answer() { ret i32 42 }`.
fn raw_context_and_module(handler_ctx: *mut libc::c_void) -> (LLVMContextRef, LLVMModuleRef) {
    // SAFETY: plain llvm-sys construction of a context, a module and one function in it.
    unsafe {
        let ctx = c::LLVMContextCreate();
        c::LLVMContextSetDiagnosticHandler(ctx, Some(caller_handler), handler_ctx);
        let module = c::LLVMModuleCreateWithNameInContext(c"raw".as_ptr(), ctx);
        let i32t = c::LLVMInt32TypeInContext(ctx);
        let fty = c::LLVMFunctionType(i32t, std::ptr::null_mut(), 0, 0);
        let f = c::LLVMAddFunction(module, c"answer".as_ptr(), fty);
        let entry = c::LLVMAppendBasicBlockInContext(ctx, f, c"entry".as_ptr());
        let builder = c::LLVMCreateBuilderInContext(ctx);
        c::LLVMPositionBuilderAtEnd(builder, entry);
        c::LLVMBuildRet(builder, c::LLVMConstInt(i32t, 42, 0));
        c::LLVMDisposeBuilder(builder);
        (ctx, module)
    }
}

#[test]
fn borrowed_raw_module_is_changed_in_place_and_left_to_its_owner() {
    let mut marker = 0u8;
    let handler_ctx = &mut marker as *mut u8 as *mut libc::c_void;
    let (raw_ctx, raw_module) = raw_context_and_module(handler_ctx);
    {
        // SAFETY: both handles are live, used only through these borrows on this thread, and outlive them.
        let ctx = unsafe { Context::borrow_raw(raw_ctx) };
        let mut module = unsafe { Module::borrow_raw(&ctx, raw_module) };
        assert_eq!(module.name(), "raw");
        module.verify().unwrap();
        assert!(module.function("answer").is_some());

        // Changes made through thinjit land in the caller's module.
        let other = Module::parse_ir(
            &ctx,
            b"define i32 @twice(i32 %x) { %y = add i32 %x, %x\n ret i32 %y }",
            "twice.ll",
        )
        .unwrap();
        module.link_in(other).unwrap();

        // Bad input in the borrowed context is a typed error recorded by thinjit's handler, not the caller's.
        let err = Module::parse_bitcode(&ctx, b"BC\xC0\xDEgarbage", "garbage.bc").unwrap_err();
        assert!(err.to_string().contains("garbage.bc"), "{err}");
        assert_eq!(CALLER_DIAGNOSTICS.load(Ordering::SeqCst), 0);
    }
    // SAFETY: the borrows are gone; the caller still owns both handles, which must still be live (disposing a
    // module twice would crash here).
    unsafe {
        assert!(!c::LLVMGetNamedFunction(raw_module, c"twice".as_ptr()).is_null());
        assert!(!c::LLVMGetNamedFunction(raw_module, c"answer".as_ptr()).is_null());
        // The caller's diagnostic handler and its context pointer are back.
        let handler = c::LLVMContextGetDiagnosticHandler(raw_ctx);
        assert_eq!(
            handler.map(|h| h as usize),
            Some(caller_handler as extern "C" fn(_, _) as usize)
        );
        assert_eq!(c::LLVMContextGetDiagnosticContext(raw_ctx), handler_ctx);
        c::LLVMDisposeModule(raw_module);
        c::LLVMContextDispose(raw_ctx);
    }
}

#[test]
fn borrowing_a_module_of_another_context_is_refused() {
    let (raw_ctx, raw_module) = raw_context_and_module(std::ptr::null_mut());
    let other = Context::new();
    let outcome = std::panic::catch_unwind(|| {
        // SAFETY: the module is live; the call checks it belongs to `other`, which it does not.
        let _ = unsafe { Module::borrow_raw(&other, raw_module) };
    });
    assert!(outcome.is_err());
    // SAFETY: the refused borrow never took the module; the caller still owns both handles.
    unsafe {
        c::LLVMDisposeModule(raw_module);
        c::LLVMContextDispose(raw_ctx);
    }
}

mod inkwell_modules {
    //! inkwell modules (feature `inkwell`): imported into in place, and added to the engine where they live.

    use std::ffi::c_void;
    use std::sync::{Arc, OnceLock};

    use inkwell::context::Context as InkContext;
    use inkwell::module::{Linkage as InkLinkage, Module as InkModule};
    use inkwell::AddressSpace;
    use thinjit::import::{import_inkwell, ImportConfig};
    use thinjit::jit::RuntimeMode;
    use thinjit::jit::{Engine, EngineBuilder};
    use thinjit::llvm::modules_serialized_on_this_thread;
    use thinjit::summary::{BuildOptions, Summary};
    use thinjit::Error;

    use crate::common::helper_bitcode;

    host_callbacks!(ink_host);

    fn summary() -> Arc<Summary> {
        static S: OnceLock<Arc<Summary>> = OnceLock::new();
        S.get_or_init(|| {
            Arc::new(Summary::build(&helper_bitcode(), &BuildOptions::default()).unwrap())
        })
        .clone()
    }

    fn engine(lazy: bool) -> Engine {
        ink_host::register(
            EngineBuilder::new()
                .summary(summary())
                .runtime_mode(RuntimeMode::JitResident)
                .lazy(lazy),
        )
        .build()
        .unwrap()
    }

    /// The seed's `f_WRAPPED`, built with inkwell's IR builder.
    fn seed<'ctx>(ctx: &'ctx InkContext, name: &str) -> InkModule<'ctx> {
        let module = ctx.create_module(name);
        let ptr = ctx.ptr_type(AddressSpace::default());
        let i32t = ctx.i32_type();
        let create = module.add_function(
            "CreateWrappedValueFromInt",
            ptr.fn_type(&[i32t.into()], false),
            Some(InkLinkage::External),
        );
        let f = module.add_function(
            "f_WRAPPED",
            ptr.fn_type(&[ptr.into(), ptr.into()], false),
            None,
        );
        let builder = ctx.create_builder();
        builder.position_at_end(ctx.append_basic_block(f, "entry"));
        let call = builder
            .build_call(create, &[i32t.const_int(23333, false).into()], "boxed")
            .unwrap();
        call.set_tail_call(true);
        builder
            .build_return(Some(&call.try_as_basic_value().basic().unwrap()))
            .unwrap();
        module
    }

    #[test]
    fn import_lands_in_the_inkwell_module_without_serialization() {
        let ctx = InkContext::create();
        let module = seed(&ctx, "seed");
        let before = modules_serialized_on_this_thread();
        let report = import_inkwell(
            &module,
            &*summary(),
            &ImportConfig::default(),
            RuntimeMode::JitResident,
        )
        .unwrap();
        assert_eq!(modules_serialized_on_this_thread(), before);
        assert!(report
            .imported_functions()
            .contains(&"CreateWrappedValueFromInt"));
        // inkwell sees the imported body, available_externally, in its own module.
        let helper = module.get_function("CreateWrappedValueFromInt").unwrap();
        assert!(helper.count_basic_blocks() > 0);
        assert_eq!(helper.get_linkage(), InkLinkage::AvailableExternally);
        module.verify().unwrap();
    }

    #[test]
    fn inkwell_module_runs_in_the_engine_with_no_text_or_bitcode_copy() {
        let engine = engine(false);
        let ctx = InkContext::create();

        let before = modules_serialized_on_this_thread();
        let script = engine.add_inkwell_module(seed(&ctx, "seed")).unwrap();
        assert_eq!(
            modules_serialized_on_this_thread(),
            before,
            "the in-place path wrote the module as bitcode or text"
        );
        let report = script.report().unwrap();
        assert!(report
            .import
            .as_ref()
            .unwrap()
            .imported_functions()
            .contains(&"CreateWrappedValueFromInt"));
        let f = script
            .lookup::<extern "C" fn(*mut c_void, *mut c_void) -> *mut c_void>("f_WRAPPED")
            .unwrap();
        // SAFETY: f_WRAPPED is `ptr (ptr, ptr)`.
        let boxed = unsafe { f.call(std::ptr::null_mut(), std::ptr::null_mut()) };
        let get = engine
            .lookup::<extern "C" fn(*mut c_void) -> i32>("WrappedValueGetInt")
            .unwrap();
        // SAFETY: `boxed` is a WrappedValue made by the helpers.
        assert_eq!(unsafe { get.call(boxed) }, 23333);
        script.remove().unwrap();

        // The counter does see the copying path: add_script_module writes the module as bitcode once.
        let module = seed(&ctx, "seed-copied");
        let before = modules_serialized_on_this_thread();
        let copied =
            thinjit::llvm::inkwell::with_module(&module, |m| engine.add_script_module(m)).unwrap();
        assert_eq!(modules_serialized_on_this_thread(), before + 1);
        copied.remove().unwrap();
    }

    #[test]
    fn a_lazy_engine_refuses_a_module_of_the_callers_context() {
        let engine = engine(true);
        let ctx = InkContext::create();
        match engine.add_inkwell_module(seed(&ctx, "seed")) {
            Err(Error::Config { message }) => assert!(message.contains("lazy"), "{message}"),
            Err(other) => panic!("expected a configuration error, got {other}"),
            Ok(_) => panic!("a lazy engine took a module of the caller's context"),
        }
    }
}

/// examples/inkwell-seed: the seed built with inkwell's builder, imported in place and run through the engine.
#[test]
fn inkwell_seed_example_runs() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(["run", "-q", "-p", "thinjit-example-inkwell-seed"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "inkwell sees CreateWrappedValueFromInt with 3 basic block(s), linkage AvailableExternally",
        "f_WRAPPED() = WrappedValue(int 23333)",
        "CreateWrappedValueFromInt inlined by O3",
        "50 scripts), 0 modules written as text or bitcode",
    ] {
        assert!(stdout.contains(line), "`{line}` not in:\n{stdout}");
    }
}
