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
