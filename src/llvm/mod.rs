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
//! with a `# Safety` section (the raw-handle constructors [`Context::borrow_raw`], [`Module::borrow_raw`],
//! [`orc::LlJit::borrow_raw`], [`orc::JitDylib::from_raw`], and calling a [`orc::JitFunction`]). Everything else
//! is safe whatever its arguments:
//! - value handles ([`Value`], [`Function`], [`GlobalVariable`], [`Instruction`], ...) borrow their module: a
//!   handle is `Value<'m>` for a `&'m Module`, so dropping the module, linking it into another, handing it to
//!   ORC, running passes or LLVM's importer on it (all take the module by value or `&mut`) do not compile while
//!   a handle is alive. Handle methods only make edits that free nothing (names, linkage, attributes, added
//!   instructions and functions);
//! - erasing goes through an exclusive, non-`Copy` handle ([`Module::function_mut`] → [`FunctionMut::erase`],
//!   [`Module::global_mut`] → [`GlobalVariableMut::erase`]) and refuses while anything else uses the value;
//! - values never cross LLVM contexts: linking modules of two contexts, declaring a function like one of
//!   another context, extracting or sizing a global of another module, forwarding to a function of another
//!   module are errors (or `None`), checked at run time (one pointer comparison);
//! - a [`orc::JitDylib`] keeps its LLJIT alive, and an LLJIT refuses another one's JITDylibs and trackers;
//! - invalid IR never reaches code generation or LLVM's importer: [`orc::LlJit::add_module`],
//!   [`Module::import_with_llvm`] verify first and [`orc::LlJit::set_ir_transform`] verifies the transform's result
//!   (and is refused while the LLJIT has other handles, which could be materializing meanwhile);
//! - linkage, visibility and `dso_local` exist only on [`GlobalValue`]s;
//! - calling looked-up static constructors, writing a dso handle's key and running the atexit registry are
//!   crate-private primitives (`resident`): the engine keeps their invariants (`src/jit/runtime.rs`).
//!
//! ```compile_fail,E0505
//! use thinjit::llvm::{Context, Module};
//! let ctx = Context::new();
//! let m = Module::parse_ir(&ctx, b"define i32 @f() { ret i32 1 }", "f.ll").unwrap();
//! let f = m.function("f").unwrap();
//! drop(m); // error[E0505]: cannot move out of `m` because it is borrowed
//! f.name(); // would read freed memory
//! ```
//!
//! The same steps in the order the borrow checker accepts:
//!
//! ```
//! use thinjit::llvm::{Context, Module};
//! let ctx = Context::new();
//! let m = Module::parse_ir(&ctx, b"define i32 @f() { ret i32 1 }", "f.ll").unwrap();
//! let f = m.function("f").unwrap();
//! assert_eq!(f.name(), "f");
//! drop(m);
//! ```
//!
//! Not expressible as a Rust contract, and so documented instead: a [`MemoryBuffer`] read from a file may be a
//! memory map of it (as LLVM decides), so another process truncating that file while it is mapped faults (the
//! summary's known limitation in `docs/robustness.md`); [`orc::LlJit::add_shared_library`] runs the library's
//! initializers (`dlopen`); and code added to an LLJIT is the caller's code — running it (a
//! [`orc::JitFunction`] call, or the engine running a script's constructors) is as sound as that code.
//!
//! The `compile_fail` examples name the error they must fail with (`E0505`, `E0502`); `scripts/test.sh` runs
//! them with rustdoc's error-code check on (`scripts/rustdoc-error-codes`), so one that fails for another
//! reason fails the suite.

mod buffer;
mod comdat;
mod context;
pub(crate) mod dylib;
pub mod facts;
#[cfg(feature = "inkwell")]
pub mod inkwell;
mod instrument;
pub mod intrinsics;
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
    Attribute, BasicBlock, Function, FunctionMut, GlobalValue, GlobalVariable, GlobalVariableMut,
    Instruction, Linkage, Opcode, Value, Visibility,
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
