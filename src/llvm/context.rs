//! `Context`: an LLVM context that records diagnostics instead of ending the process.

use std::ptr::NonNull;
use std::sync::Mutex;

use llvm_sys::core as c;
use llvm_sys::orc2 as orc;
use llvm_sys::prelude::{LLVMContextRef, LLVMDiagnosticInfoRef};
use llvm_sys::{LLVMDiagnosticHandler, LLVMDiagnosticSeverity};

use super::message::LlvmMessage;

/// An error-severity diagnostic: LLVM's text and, when LLVM said, the function it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Diagnostic {
    pub(crate) function: Option<String>,
    pub(crate) message: String,
}

/// Diagnostics LLVM reported on a context, in order.
#[derive(Default)]
pub(crate) struct DiagnosticSink {
    errors: Mutex<Vec<Diagnostic>>,
    /// The module being compiled (its inline-asm cookies name functions), or 0.
    module: std::sync::atomic::AtomicUsize,
}

impl DiagnosticSink {
    pub(crate) fn push(&self, diagnostic: Diagnostic) {
        if let Ok(mut errors) = self.errors.lock() {
            errors.push(diagnostic);
        }
    }

    /// Takes every recorded error.
    pub(crate) fn take_all(&self) -> Vec<Diagnostic> {
        match self.errors.lock() {
            Ok(mut errors) => std::mem::take(&mut *errors),
            Err(_) => Vec::new(),
        }
    }

    /// Takes every recorded error, joined by newlines.
    pub(crate) fn take(&self) -> String {
        let all: Vec<String> = self.take_all().into_iter().map(|d| d.message).collect();
        all.join("\n")
    }
}

/// An LLVM context that modules are parsed into, linked in and optimized in.
///
/// Backed by an ORC `ThreadSafeContext`, so any module made in it can be handed to the JIT. A `Context` is
/// `Send` (it can move to another thread with its modules) but not `Sync`: give each thread or rayon task its
/// own. Error-severity diagnostics are recorded and returned as errors instead of ending the process.
pub struct Context {
    /// The ORC thread-safe context we hold a reference to; `None` for a context borrowed from ORC while it
    /// materializes a module (see [`Context::borrow_raw`]).
    tsc: Option<NonNull<orc::LLVMOrcOpaqueThreadSafeContext>>,
    raw: NonNull<llvm_sys::LLVMContext>,
    sink: Box<DiagnosticSink>,
    /// The diagnostic handler (and its context pointer) installed before ours, put back on drop.
    previous_handler: (LLVMDiagnosticHandler, *mut libc::c_void),
}

// SAFETY: an LLVMContext may be used from any one thread at a time; `Context` is not `Sync`, and every module
// borrowing it is tied to its lifetime, so moving the whole set to another thread is sound.
unsafe impl Send for Context {}

impl Context {
    /// Creates a fresh context with its own diagnostic handler.
    pub fn new() -> Self {
        super::initialize();
        // SAFETY: creating a thread-safe context has no preconditions; it owns a new LLVMContext.
        let tsc = unsafe { orc::LLVMOrcCreateNewThreadSafeContext() };
        let tsc = NonNull::new(tsc).expect("LLVM returned a null ThreadSafeContext");
        // SAFETY: `tsc` is live; the returned context lives as long as the TSC (or longer, while modules hold it).
        let raw = unsafe { orc::LLVMOrcThreadSafeContextGetContext(tsc.as_ptr()) };
        let raw = NonNull::new(raw).expect("ThreadSafeContext without a context");
        Self::with_recording_handler(Some(tsc), raw)
    }

    /// A temporary handle on a context owned elsewhere: by an ORC `ThreadSafeContext` whose lock the caller
    /// holds, by an inkwell `Context`, or by the caller's own `LLVMContextCreate`.
    ///
    /// While the handle exists, thinjit's diagnostic handler is installed on the context, so a bad bitcode file
    /// or a failed link in thinjit calls becomes an [`crate::Error`] instead of ending the process. Dropping the
    /// handle puts back whatever diagnostic handler (and handler context) was installed before, and never
    /// disposes the LLVMContext. Modules of the context are used through [`super::Module::borrow_raw`].
    ///
    /// ```
    /// use thinjit::llvm::Context;
    /// let raw = unsafe { llvm_sys::core::LLVMContextCreate() };
    /// {
    ///     // SAFETY: `raw` is live, used only through `ctx` on this thread, and outlives `ctx`.
    ///     let ctx = unsafe { Context::borrow_raw(raw) };
    ///     let m = thinjit::llvm::Module::parse_ir(&ctx, b"define i32 @f() { ret i32 1 }", "f.ll").unwrap();
    ///     assert!(m.function("f").is_some());
    /// }
    /// unsafe { llvm_sys::core::LLVMContextDispose(raw) };
    /// ```
    ///
    /// # Safety
    /// - `raw` must be a non-null, live `LLVMContextRef` that outlives the returned handle and every module
    ///   wrapped through it;
    /// - nothing else may use the context (from any thread) while the handle exists, and the caller must not
    ///   change the context's diagnostic handler until the handle is dropped;
    /// - handles borrowing the same context must be dropped in the reverse order of their creation (each one
    ///   restores the handler it found).
    pub unsafe fn borrow_raw(raw: LLVMContextRef) -> Self {
        let raw = NonNull::new(raw).expect("Context::borrow_raw: null LLVMContextRef");
        Self::with_recording_handler(None, raw)
    }

    /// Installs a handler recording diagnostics into a fresh sink, remembering the one it replaces; `Drop`
    /// puts that one back before the sink goes.
    fn with_recording_handler(
        tsc: Option<NonNull<orc::LLVMOrcOpaqueThreadSafeContext>>,
        raw: NonNull<llvm_sys::LLVMContext>,
    ) -> Self {
        let sink = Box::<DiagnosticSink>::default();
        // SAFETY: `raw` is live (the callers' contracts); reading its current handler has no preconditions.
        let previous_handler = unsafe {
            (
                c::LLVMContextGetDiagnosticHandler(raw.as_ptr()),
                c::LLVMContextGetDiagnosticContext(raw.as_ptr()),
            )
        };
        // SAFETY: the sink is boxed, so its address is stable until Drop, which replaces the handler first.
        unsafe {
            c::LLVMContextSetDiagnosticHandler(
                raw.as_ptr(),
                Some(diagnostic_handler),
                &*sink as *const DiagnosticSink as *mut libc::c_void,
            );
        }
        Context {
            tsc,
            raw,
            sink,
            previous_handler,
        }
    }

    /// The underlying `LLVMContextRef`, for interop with other LLVM users; it stays owned by this `Context` (or its
    /// lender).
    pub fn as_raw(&self) -> LLVMContextRef {
        self.raw.as_ptr()
    }

    /// The ORC thread-safe context backing this context; `None` for a borrowed context.
    pub(crate) fn thread_safe_raw(&self) -> Option<orc::LLVMOrcThreadSafeContextRef> {
        self.tsc.map(NonNull::as_ptr)
    }

    /// Takes the error diagnostics recorded since the last call.
    pub(crate) fn take_diagnostics(&self) -> String {
        self.sink.take()
    }

    /// Takes the error diagnostics recorded since the last call, each with its function when LLVM said.
    pub(crate) fn take_diagnostic_errors(&self) -> Vec<Diagnostic> {
        self.sink.take_all()
    }

    /// Names the module being compiled (`None` when done), so diagnostics about its inline asm can name their
    /// function.
    pub(crate) fn set_compiling(&self, module: Option<llvm_sys::prelude::LLVMModuleRef>) {
        let raw = module.map_or(0, |m| m as usize);
        self.sink
            .module
            .store(raw, std::sync::atomic::Ordering::Relaxed);
    }

    /// The metadata kind id for `name` (for example `prof`) in this context.
    pub fn md_kind_id(&self, name: &str) -> u32 {
        // SAFETY: the context is live and the name is a valid (ptr, len) pair.
        unsafe {
            c::LLVMGetMDKindIDInContext(
                self.raw.as_ptr(),
                name.as_ptr() as *const _,
                name.len() as u32,
            )
        }
    }
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: modules borrowing this context are gone (lifetimes); modules handed to ORC keep the underlying
        // LLVMContext alive through the TSC's reference count, so unhook our handler (which points into `sink`)
        // before releasing our reference. A borrowed context gets back the handler its owner had installed.
        unsafe {
            let (handler, handler_context) = self.previous_handler;
            c::LLVMContextSetDiagnosticHandler(self.raw.as_ptr(), handler, handler_context);
            if let Some(tsc) = self.tsc {
                orc::LLVMOrcDisposeThreadSafeContext(tsc.as_ptr());
            }
        }
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

extern "C" fn diagnostic_handler(info: LLVMDiagnosticInfoRef, sink: *mut libc::c_void) {
    // SAFETY: LLVM passes a live diagnostic; `sink` is the DiagnosticSink registered in `Context::new`, alive
    // until the handler is removed in `Drop`.
    unsafe {
        let severity = c::LLVMGetDiagInfoSeverity(info);
        if severity != LLVMDiagnosticSeverity::LLVMDSError {
            return;
        }
        let mut message = LlvmMessage::take(c::LLVMGetDiagInfoDescription(info));
        strip_cookie_line(&mut message);
        if let Some(sink) = (sink as *const DiagnosticSink).as_ref() {
            let module = sink.module.load(std::sync::atomic::Ordering::Relaxed);
            let function = super::facts::diagnostic_function(info, module as _);
            sink.push(Diagnostic { function, message });
        }
    }
}

/// Drops the " at line N" LLVM appends for an inline-asm cookie when N is one of thinjit's function tags
/// (`thinjit_tag_inline_asm`), not a source line.
pub(crate) fn strip_cookie_line(message: &mut String) {
    if let Some(i) = message.rfind(" at line ") {
        let tail = message[i + " at line ".len()..].trim_end();
        if tail.parse::<u64>().is_ok_and(|n| n >> 48 == 0x7417) {
            message.truncate(i);
        }
    }
}
