//! Declarations of the C++ shim (`src/llvm/shim/shim.cpp`): LLVM entry points the C API lacks.

use llvm_sys::prelude::{LLVMModuleRef, LLVMValueRef};

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
    pub(crate) fn thinjit_link_modules(
        dst: LLVMModuleRef,
        srcs: *mut LLVMModuleRef,
        n: libc::size_t,
    ) -> libc::size_t;
    pub(crate) fn thinjit_materialize(gv: LLVMValueRef) -> *mut libc::c_char;
    pub(crate) fn thinjit_call_profile_hotness(
        function: LLVMValueRef,
        out: *mut libc::c_int,
        cap: libc::size_t,
    ) -> libc::size_t;
}
