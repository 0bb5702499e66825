//! `Context`: an LLVM context that records diagnostics instead of ending the process.

use std::ptr::NonNull;
use std::sync::Mutex;

use llvm_sys::core as c;
use llvm_sys::orc2 as orc;
use llvm_sys::prelude::{LLVMContextRef, LLVMDiagnosticInfoRef};
use llvm_sys::LLVMDiagnosticSeverity;

use super::message::LlvmMessage;

/// Diagnostics LLVM reported on a context, in order.
#[derive(Default)]
pub(crate) struct DiagnosticSink {
    errors: Mutex<Vec<String>>,
}

impl DiagnosticSink {
    pub(crate) fn push(&self, text: String) {
        if let Ok(mut errors) = self.errors.lock() {
            errors.push(text);
        }
    }

    /// Takes every recorded error, joined by newlines.
    pub(crate) fn take(&self) -> String {
        match self.errors.lock() {
            Ok(mut errors) => std::mem::take(&mut *errors).join("\n"),
            Err(_) => String::new(),
        }
    }
}

/// An LLVM context that modules are parsed into, linked in and optimized in.
///
/// Backed by an ORC `ThreadSafeContext`, so any module made in it can be handed to the JIT. A `Context` is
/// `Send` (it can move to another thread with its modules) but not `Sync`: give each thread or rayon task its
/// own. Error-severity diagnostics are recorded and returned as errors instead of ending the process.
pub struct Context {
    /// The ORC thread-safe context we hold a reference to; `None` for a context borrowed from ORC while it
    /// materializes a module, or from a caller (see [`Context::borrow_raw`]).
    tsc: Option<NonNull<orc::LLVMOrcOpaqueThreadSafeContext>>,
    raw: NonNull<llvm_sys::LLVMContext>,
    sink: Box<DiagnosticSink>,
    /// The diagnostic handler (and its context pointer) a borrowed context had before; put back on drop.
    previous: Option<(llvm_sys::LLVMDiagnosticHandler, *mut libc::c_void)>,
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

    /// A temporary handle on a context owned elsewhere (by a C or C++ caller, or by an ORC
    /// `ThreadSafeContext` whose lock the caller holds): thinjit's recording diagnostic handler is installed
    /// while the handle exists, and the context's previous handler is put back when it drops. The context is
    /// never disposed by thinjit. Use [`Module::borrow_raw`](super::Module::borrow_raw) for its modules.
    ///
    /// # Safety
    /// `raw` must be a live, non-null `LLVMContextRef` that no other thread uses while the returned handle
    /// exists, and that outlives it. Panics on a null pointer.
    pub unsafe fn borrow_raw(raw: LLVMContextRef) -> Self {
        let raw = NonNull::new(raw).expect("null LLVMContext");
        // SAFETY: the caller guarantees `raw` is a live context used by no one else meanwhile.
        let previous = unsafe {
            (
                c::LLVMContextGetDiagnosticHandler(raw.as_ptr()),
                c::LLVMContextGetDiagnosticContext(raw.as_ptr()),
            )
        };
        let mut ctx = Self::with_recording_handler(None, raw);
        ctx.previous = Some(previous);
        ctx
    }

    /// Installs a handler recording diagnostics into a fresh sink; `Drop` removes it before the sink goes.
    fn with_recording_handler(
        tsc: Option<NonNull<orc::LLVMOrcOpaqueThreadSafeContext>>,
        raw: NonNull<llvm_sys::LLVMContext>,
    ) -> Self {
        let sink = Box::<DiagnosticSink>::default();
        // SAFETY: the sink is boxed, so its address is stable until Drop, which removes the handler first.
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
            previous: None,
        }
    }

    /// The underlying `LLVMContextRef`, for interop with other LLVM users; it stays owned by this `Context`
    /// (or by whoever lent it).
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
        // before releasing our reference.
        unsafe {
            let (handler, handler_ctx) = self.previous.unwrap_or((None, std::ptr::null_mut()));
            c::LLVMContextSetDiagnosticHandler(self.raw.as_ptr(), handler, handler_ctx);
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
        let text = LlvmMessage::take(c::LLVMGetDiagInfoDescription(info));
        if let Some(sink) = (sink as *const DiagnosticSink).as_ref() {
            sink.push(text);
        }
    }
}
