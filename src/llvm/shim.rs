//! Declarations of the C++ shim (`src/llvm/shim/shim.cpp`): LLVM entry points the C API lacks.

use llvm_sys::prelude::{LLVMModuleRef, LLVMValueRef};

use crate::OrcErrorKind;

/// Called by `thinjit_visit_orc_error` once per error: kind, message, and `count` symbol names (all
/// NUL-terminated, valid only during the call).
pub(crate) type OrcErrorVisitor = extern "C" fn(
    ctx: *mut libc::c_void,
    kind: OrcErrorKind,
    message: *const libc::c_char,
    symbols: *const *const libc::c_char,
    count: libc::size_t,
);

extern "C" {
    pub(crate) fn thinjit_is_dso_local(gv: LLVMValueRef) -> libc::c_int;
    pub(crate) fn thinjit_set_dso_local(gv: LLVMValueRef, dso_local: libc::c_int);
    pub(crate) fn thinjit_lljit_builder_use_empty_process_symbols(
        builder: llvm_sys::orc2::lljit::LLVMOrcLLJITBuilderRef,
    );
    pub(crate) fn thinjit_extract_function(
        src: LLVMModuleRef,
        function: LLVMValueRef,
        name: *const libc::c_char,
    ) -> LLVMModuleRef;
    pub(crate) fn thinjit_materialize(gv: LLVMValueRef) -> *mut libc::c_char;
    pub(crate) fn thinjit_visit_orc_error(
        err: llvm_sys::error::LLVMErrorRef,
        visit: OrcErrorVisitor,
        ctx: *mut libc::c_void,
    );
    pub(crate) fn thinjit_call_profile_hotness(
        function: LLVMValueRef,
        out: *mut libc::c_int,
        cap: libc::size_t,
    ) -> libc::size_t;
}
