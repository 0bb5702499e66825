//! IR building for tiered compilation: forwarding stubs, counters, call-site attributes.
//!
//! In: a module and the functions / call instructions to instrument, plus host addresses (counter cells,
//! target slots, a notification function) that the generated code reads and writes. Out: the edited module.
//! Building the IR is safe; running it touches the given addresses, which is why calling JIT'd code is
//! `unsafe` ([`super::orc::JitFunction::call`]) and the caller must keep those cells alive while the code is
//! loaded.

use std::ffi::CString;

use llvm_sys::core as c;
use llvm_sys::prelude::{LLVMBuilderRef, LLVMTypeRef, LLVMValueRef};
use llvm_sys::{LLVMAtomicOrdering, LLVMIntPredicate, LLVMTailCallKind};

use super::value::{Function, Instruction};
use super::Module;

/// Where a forwarding stub sends its call.
#[derive(Clone, Copy, Debug)]
pub enum ForwardTo<'m> {
    /// The function whose address is stored in the pointer-sized cell at this host address, read with
    /// acquire ordering on every call (a redirectable stub).
    Slot(u64),
    /// This function of the same module.
    Function(Function<'m>),
}

/// A call counter a forwarding stub bumps before it forwards: the i64 cell at `counter` is incremented with
/// relaxed (monotonic) loads and stores — a lost update under contention is acceptable for a profile — and
/// when the new value equals `threshold` the stub calls the C function at `notify` with `token`.
#[derive(Clone, Copy, Debug)]
pub struct EntryCounter {
    pub counter: u64,
    pub threshold: u64,
    pub notify: u64,
    pub token: u64,
}

/// An IR builder, disposed on drop.
struct Builder(LLVMBuilderRef);

impl Drop for Builder {
    fn drop(&mut self) {
        // SAFETY: created by `LLVMCreateBuilderInContext`, disposed once.
        unsafe { c::LLVMDisposeBuilder(self.0) }
    }
}

fn name(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// Emits `cell += 1` (relaxed load, add, relaxed store) at the builder's position; returns the new value.
///
/// # Safety
/// `b` is positioned inside a function of a module in `ctx`.
unsafe fn bump(
    b: LLVMBuilderRef,
    ctx: llvm_sys::prelude::LLVMContextRef,
    cell: u64,
) -> LLVMValueRef {
    // SAFETY: the caller's contract; every value is created in `ctx`.
    unsafe {
        let i64_ty = c::LLVMInt64TypeInContext(ctx);
        let ptr_ty = c::LLVMPointerTypeInContext(ctx, 0);
        let addr = c::LLVMConstIntToPtr(c::LLVMConstInt(i64_ty, cell, 0), ptr_ty);
        let old = c::LLVMBuildLoad2(b, i64_ty, addr, name("tj.n").as_ptr());
        c::LLVMSetOrdering(old, LLVMAtomicOrdering::LLVMAtomicOrderingMonotonic);
        c::LLVMSetAlignment(old, 8);
        let new = c::LLVMBuildAdd(
            b,
            old,
            c::LLVMConstInt(i64_ty, 1, 0),
            name("tj.n1").as_ptr(),
        );
        let store = c::LLVMBuildStore(b, new, addr);
        c::LLVMSetOrdering(store, LLVMAtomicOrdering::LLVMAtomicOrderingMonotonic);
        c::LLVMSetAlignment(store, 8);
        new
    }
}

impl Module<'_> {
    /// Adds a function `name` with the type, calling convention and return and parameter attributes of `like` (a
    /// function of this module) whose body optionally bumps `count`, then forwards every argument to `to` with a
    /// `musttail` call and returns its result: a stub that costs one (indirect) jump. Returns `None` (adding
    /// nothing) when `like` is variadic, when `like` or the function in `to` is not a function of this module,
    /// or when `name` exists already. Adding a function frees nothing, so this takes `&self`.
    pub fn add_forwarder<'a>(
        &'a self,
        name_: &str,
        like: Function<'_>,
        to: ForwardTo<'_>,
        count: Option<EntryCounter>,
    ) -> Option<Function<'a>> {
        let ours = |f: Function<'_>| f.parent_raw() == self.as_raw();
        if !ours(like) || matches!(to, ForwardTo::Function(f) if !ours(f)) {
            return None;
        }
        if like.is_var_arg() || self.function(name_).is_some() {
            return None;
        }
        let ctx = self.context().as_raw();
        let fname = name(name_);
        // SAFETY: `like` (and the function in `to`) is a live function of this module (checked above); every value and type below is
        // created in that context; the builder is positioned in the new function's blocks before use; the
        // call has `like`'s own function type and arguments, so the musttail prototypes match.
        unsafe {
            let fn_ty: LLVMTypeRef = c::LLVMGlobalGetValueType(like.as_raw());
            let stub = c::LLVMAddFunction(self.as_raw(), fname.as_ptr(), fn_ty);
            let cc = c::LLVMGetFunctionCallConv(like.as_raw());
            c::LLVMSetFunctionCallConv(stub, cc);
            let params = c::LLVMCountParams(like.as_raw());
            let mut attr_indices: Vec<u32> = vec![llvm_sys::LLVMAttributeReturnIndex];
            attr_indices.extend(1..=params);
            let attrs_at = |f: LLVMValueRef, idx: u32| {
                let n = c::LLVMGetAttributeCountAtIndex(f, idx) as usize;
                let mut v = vec![std::ptr::null_mut(); n];
                if n > 0 {
                    c::LLVMGetAttributesAtIndex(f, idx, v.as_mut_ptr());
                }
                v
            };
            // Return and parameter attributes (ABI: `sret`, `byval`, `zeroext`, ...) must match for `musttail`;
            // function attributes are not copied (`memory(none)` on the body would be false of the stub).
            for &idx in &attr_indices {
                for a in attrs_at(like.as_raw(), idx) {
                    c::LLVMAddAttributeAtIndex(stub, idx, a);
                }
            }

            let b = Builder(c::LLVMCreateBuilderInContext(ctx));
            let entry = c::LLVMAppendBasicBlockInContext(ctx, stub, name("entry").as_ptr());
            c::LLVMPositionBuilderAtEnd(b.0, entry);
            if let Some(count) = count {
                let i64_ty = c::LLVMInt64TypeInContext(ctx);
                let ptr_ty = c::LLVMPointerTypeInContext(ctx, 0);
                let n = bump(b.0, ctx, count.counter);
                let hit = c::LLVMBuildICmp(
                    b.0,
                    LLVMIntPredicate::LLVMIntEQ,
                    n,
                    c::LLVMConstInt(i64_ty, count.threshold, 0),
                    name("tj.hit").as_ptr(),
                );
                let notify_bb =
                    c::LLVMAppendBasicBlockInContext(ctx, stub, name("notify").as_ptr());
                let go = c::LLVMAppendBasicBlockInContext(ctx, stub, name("go").as_ptr());
                c::LLVMBuildCondBr(b.0, hit, notify_bb, go);
                c::LLVMPositionBuilderAtEnd(b.0, notify_bb);
                let void_ty = c::LLVMVoidTypeInContext(ctx);
                let mut arg_tys = [i64_ty];
                let notify_ty = c::LLVMFunctionType(void_ty, arg_tys.as_mut_ptr(), 1, 0);
                let notify = c::LLVMConstIntToPtr(c::LLVMConstInt(i64_ty, count.notify, 0), ptr_ty);
                let mut args = [c::LLVMConstInt(i64_ty, count.token, 0)];
                c::LLVMBuildCall2(
                    b.0,
                    notify_ty,
                    notify,
                    args.as_mut_ptr(),
                    1,
                    name("").as_ptr(),
                );
                c::LLVMBuildBr(b.0, go);
                c::LLVMPositionBuilderAtEnd(b.0, go);
            }
            let callee = match to {
                ForwardTo::Slot(cell) => {
                    let i64_ty = c::LLVMInt64TypeInContext(ctx);
                    let ptr_ty = c::LLVMPointerTypeInContext(ctx, 0);
                    let addr = c::LLVMConstIntToPtr(c::LLVMConstInt(i64_ty, cell, 0), ptr_ty);
                    let target = c::LLVMBuildLoad2(b.0, ptr_ty, addr, name("tj.target").as_ptr());
                    c::LLVMSetOrdering(target, LLVMAtomicOrdering::LLVMAtomicOrderingAcquire);
                    c::LLVMSetAlignment(target, 8);
                    target
                }
                ForwardTo::Function(f) => f.as_raw(),
            };
            let mut args: Vec<LLVMValueRef> =
                (0..params).map(|i| c::LLVMGetParam(stub, i)).collect();
            let call = c::LLVMBuildCall2(
                b.0,
                fn_ty,
                callee,
                args.as_mut_ptr(),
                params,
                name("").as_ptr(),
            );
            c::LLVMSetInstructionCallConv(call, cc);
            c::LLVMSetTailCallKind(call, LLVMTailCallKind::LLVMTailCallKindMustTail);
            for &idx in &attr_indices {
                for a in attrs_at(like.as_raw(), idx) {
                    c::LLVMAddCallSiteAttribute(call, idx, a);
                }
            }
            let ret_ty = c::LLVMGetReturnType(fn_ty);
            if c::LLVMGetTypeKind(ret_ty) == llvm_sys::LLVMTypeKind::LLVMVoidTypeKind {
                c::LLVMBuildRetVoid(b.0);
            } else {
                c::LLVMBuildRet(b.0, call);
            }
            Some(Function::from_raw(stub))
        }
    }
}

impl<'m> Instruction<'m> {
    /// Inserts `cell += 1` (relaxed, see [`EntryCounter`]) on the i64 cell at host address `cell`,
    /// immediately before this instruction.
    pub fn insert_counter_before(self, cell: u64) {
        // SAFETY: a live instruction inside a function; the builder is created in the instruction's context
        // and positioned before it.
        unsafe {
            let ctx = c::LLVMGetTypeContext(c::LLVMTypeOf(self.as_raw()));
            let b = Builder(c::LLVMCreateBuilderInContext(ctx));
            c::LLVMPositionBuilderBefore(b.0, self.as_raw());
            bump(b.0, ctx, cell);
        }
    }

    /// Adds the enum attribute `name` (no value, e.g. `noinline` or `cold`) to this call site; does nothing
    /// for other instructions or unknown names.
    pub fn add_call_site_attribute(self, name_: &str) {
        if !self.is_call() {
            return;
        }
        // SAFETY: (ptr, len) lookup without side effects.
        let kind =
            unsafe { c::LLVMGetEnumAttributeKindForName(name_.as_ptr() as *const _, name_.len()) };
        if kind == 0 {
            return;
        }
        // SAFETY: a live call-like instruction; the attribute is created in its context.
        unsafe {
            let ctx = c::LLVMGetTypeContext(c::LLVMTypeOf(self.as_raw()));
            let attr = c::LLVMCreateEnumAttribute(ctx, kind, 0);
            c::LLVMAddCallSiteAttribute(self.as_raw(), llvm_sys::LLVMAttributeFunctionIndex, attr);
        }
    }
}
