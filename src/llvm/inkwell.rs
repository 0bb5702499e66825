//! inkwell interop (feature `inkwell`): thinjit's [`Module`] view of an `inkwell::module::Module`, in place.
//!
//! In: an inkwell module (inkwell 0.11, `llvm19-1`: the same llvm-sys 191 and libLLVM-19 as thinjit, so the raw
//! handles are the same objects). Out: a closure run on a borrowed [`Module`] over the very same LLVM module —
//! no printing, no bitcode — with thinjit's diagnostic handler installed on the inkwell context for the duration
//! (and the previous one restored after).

use super::{Context, Module};

/// Runs `f` on thinjit's view of `module`. Changes `f` makes (imports, optimization) are changes to the inkwell
/// module. Whatever `f` parses or imports lands in the inkwell module's context (types, constants): like any
/// long-lived LLVM context that keeps taking imported code, recreate it now and then.
///
/// ```
/// let ink = inkwell::context::Context::create();
/// let module = ink.create_module("m");
/// let name = thinjit::llvm::inkwell::with_module(&module, |m| m.name());
/// assert_eq!(name, "m");
/// ```
pub fn with_module<R>(
    module: &inkwell::module::Module<'_>,
    f: impl FnOnce(&mut Module<'_>) -> R,
) -> R {
    let raw_ctx = module.get_context().raw();
    // SAFETY: the inkwell module is alive for this call and belongs to `raw_ctx`, which outlives it (inkwell ties
    // the module to its context's lifetime). inkwell contexts and modules are neither `Send` nor `Sync`, so no
    // other thread uses them meanwhile; the borrows end (handler restored, module left to inkwell) before we
    // return.
    let ctx = unsafe { Context::borrow_raw(raw_ctx) };
    // SAFETY: as above; the module is not disposed through the borrow.
    let mut borrowed = unsafe { Module::borrow_raw(&ctx, module.as_mut_ptr()) };
    f(&mut borrowed)
}
