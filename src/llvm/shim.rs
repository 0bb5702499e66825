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
    pub(crate) fn thinjit_link_modules(
        dst: LLVMModuleRef,
        srcs: *mut LLVMModuleRef,
        n: libc::size_t,
    ) -> libc::size_t;
    pub(crate) fn thinjit_materialize(gv: LLVMValueRef) -> *mut libc::c_char;
    pub(crate) fn thinjit_visit_orc_error(
        err: llvm_sys::error::LLVMErrorRef,
        visit: OrcErrorVisitor,
        ctx: *mut libc::c_void,
    );
    pub(crate) fn thinjit_trim_metadata_kinds(
        module: LLVMModuleRef,
        data: *mut libc::c_char,
        len: libc::size_t,
    ) -> libc::c_long;
    pub(crate) fn thinjit_bitcode_metadata_kind_count(
        data: *const libc::c_char,
        len: libc::size_t,
    ) -> libc::c_long;
    pub(crate) fn thinjit_call_profile_hotness(
        function: LLVMValueRef,
        out: *mut libc::c_int,
        cap: libc::size_t,
    ) -> libc::size_t;
}

/// `ThinjitLlvmImportOptions` in `src/llvm/shim/thinlto.cpp`.
#[repr(C)]
pub(crate) struct ThinjitLlvmImportOptions {
    pub(crate) import_instr_limit: libc::c_uint,
    pub(crate) import_instr_evolution_factor: f32,
    pub(crate) import_hot_evolution_factor: f32,
    pub(crate) import_hot_multiplier: f32,
    pub(crate) import_critical_multiplier: f32,
    pub(crate) import_cold_multiplier: f32,
    pub(crate) force_import_all: libc::c_int,
    pub(crate) preserve_library: libc::c_int,
}

extern "C" {
    pub(crate) fn thinjit_codegen_create(
        tm: llvm_sys::target_machine::LLVMTargetMachineRef,
    ) -> *mut libc::c_void;
    pub(crate) fn thinjit_codegen_run(
        codegen: *mut libc::c_void,
        tm: llvm_sys::target_machine::LLVMTargetMachineRef,
        module: LLVMModuleRef,
    ) -> llvm_sys::prelude::LLVMMemoryBufferRef;
    pub(crate) fn thinjit_codegen_dispose(codegen: *mut libc::c_void);
    pub(crate) fn thinjit_write_bitcode_with_summary(
        module: LLVMModuleRef,
    ) -> llvm_sys::prelude::LLVMMemoryBufferRef;
    pub(crate) fn thinjit_bitcode_has_summary(
        data: *const libc::c_char,
        len: libc::size_t,
    ) -> libc::c_int;
    pub(crate) fn thinjit_llvm_import(
        script: LLVMModuleRef,
        library: *const libc::c_char,
        library_len: libc::size_t,
        options: *const ThinjitLlvmImportOptions,
        seconds: *mut f64,
    ) -> *mut libc::c_char;
}
