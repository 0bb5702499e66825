//! The safe LLVM 19 layer: the only place in thinjit that calls llvm-sys.
//!
//! In: textual IR, bitcode, pass pipeline strings, target descriptions. Out: owned wrappers
//! ([`Context`], [`Module`], [`MemoryBuffer`], [`TargetMachine`]) whose `Drop` calls the matching LLVM dispose,
//! and typed [`crate::Error`]s carrying LLVM's own message.
//!
//! # Fatal-error policy
//! LLVM ends the process on a fatal error (`report_fatal_error`) and, with no diagnostic handler installed, on
//! any error-severity diagnostic (a bad bitcode file, a failed link). thinjit keeps bad input away from both:
//! - every [`Context`] installs a diagnostic handler that records diagnostics, so the bitcode reader and the
//!   linker report failure as a return value that becomes an [`crate::Error`] with LLVM's text;
//! - textual IR is parsed with the IR parser, which returns its message instead of aborting;
//! - every module is run through the verifier before it is optimized, linked into a script or code-generated
//!   (passes and codegen assume valid IR and may abort on invalid IR);
//! - bytes from a summary file are checked (magic, version, checksum) before they reach the bitcode reader.
//!
//! For what slips through, [`initialize`] installs a fatal-error handler that writes LLVM's reason to stderr,
//! prefixed with `thinjit: LLVM fatal error:`, before LLVM ends the process: the reason is never lost.
//!
//! # What is safe here
//! A public function of this layer that can cause undefined behaviour whatever its arguments is an `unsafe fn`
//! with a `# Safety` section ([`Function::erase`], [`GlobalVariable::erase`], the raw-handle constructors, and
//! calling a [`orc::JitFunction`]). Linkage, visibility and `dso_local` exist only on [`GlobalValue`]s.
//! Calling looked-up static constructors, writing a dso handle's key and running the atexit registry are
//! crate-private primitives (`resident`): the engine keeps their invariants (`src/jit/runtime.rs`).
//! Known limit: value handles are `Copy` and tied to the context's lifetime, not to their module's, so a handle
//! used after its module was dropped is not caught by the compiler.

mod buffer;
mod comdat;
mod context;
pub(crate) mod dylib;
pub mod facts;
#[cfg(feature = "inkwell")]
pub mod inkwell;
mod instrument;
mod message;
mod module;
pub mod orc;
mod passes;
pub(crate) mod resident;
mod shim;
mod target;
mod thinlto;
mod value;

pub use buffer::MemoryBuffer;
pub use context::{Context, ModuleCacheStats};
pub use instrument::{EntryCounter, ForwardTo};
pub(crate) use module::is_bitcode;
pub use module::{
    modules_serialized_on_this_thread, modules_verified_on_this_thread, BorrowedModule, Module,
};
pub use passes::PassOptions;
pub use target::{
    host_cpu_features, host_cpu_name, host_triple, normalize_triple, same_target, CodeGenOpt,
    TargetMachine,
};
pub use thinlto::{bitcode_has_summary, LlvmImportOptions, LlvmImportTimes};
pub use value::{
    Attribute, BasicBlock, Function, GlobalValue, GlobalVariable, Instruction, Linkage, Opcode,
    Value, Visibility,
};

use std::sync::Once;

static INIT: Once = Once::new();

/// Initializes LLVM's native target, its assembly printer and parser, and installs thinjit's fatal-error
/// handler. Idempotent and thread-safe; every entry point that needs a target calls it.
pub fn initialize() {
    INIT.call_once(|| {
        // SAFETY: LLVM's target initialization functions have no preconditions and are guarded by `Once`.
        unsafe {
            llvm_sys::target::LLVM_InitializeNativeTarget();
            llvm_sys::target::LLVM_InitializeNativeAsmPrinter();
            llvm_sys::target::LLVM_InitializeNativeAsmParser();
            llvm_sys::error_handling::LLVMInstallFatalErrorHandler(Some(fatal_error_handler));
        }
    });
}

extern "C" fn fatal_error_handler(reason: *const libc::c_char) {
    let text = if reason.is_null() {
        String::from("(no reason given)")
    } else {
        // SAFETY: LLVM passes a NUL-terminated string that lives for the duration of the call.
        unsafe { std::ffi::CStr::from_ptr(reason) }
            .to_string_lossy()
            .into_owned()
    };
    eprintln!("thinjit: LLVM fatal error: {text}");
}

/// The LLVM version thinjit was built against, as `major.minor.patch`.
pub fn llvm_version() -> String {
    let (mut major, mut minor, mut patch) = (0u32, 0u32, 0u32);
    // SAFETY: the out-pointers are valid for writes.
    unsafe { llvm_sys::core::LLVMGetVersion(&mut major, &mut minor, &mut patch) };
    format!("{major}.{minor}.{patch}")
}

/// The number of entries in the metadata-kind table of the module in `bitcode` (the kinds its attachments may
/// use), or `None` when it has no such table or does not read as bitcode. Shards written by
/// [`Module::write_shard_bitcode`] list only the kinds they attach.
pub fn bitcode_metadata_kinds(bitcode: &[u8]) -> Option<usize> {
    // SAFETY: the shim reads `bitcode.len()` bytes and keeps no reference to them.
    let n = unsafe {
        shim::thinjit_bitcode_metadata_kind_count(
            bitcode.as_ptr() as *const libc::c_char,
            bitcode.len(),
        )
    };
    usize::try_from(n).ok()
}
