//! `Context`: an LLVM context that records diagnostics instead of ending the process.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
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

/// A held module and the exact bytes it was parsed from.
type HeldModule = (Box<[u8]>, NonNull<llvm_sys::LLVMModule>);

/// Bitcode a context has parsed once and hands out copies of ([`Context::enable_module_cache`]): the parsed
/// modules, keyed by a hash of their bytes (the bytes are kept and compared, so a hash collision is a miss).
#[derive(Default)]
struct ModuleCache {
    enabled: bool,
    entries: HashMap<u64, Vec<HeldModule>>,
    len: usize,
    bytes: usize,
    hits: u64,
    misses: u64,
}

/// What a context's module cache holds and how often it served a parse ([`Context::module_cache_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModuleCacheStats {
    /// Parsed modules held.
    pub modules: usize,
    /// Bitcode bytes those modules were parsed from.
    pub bytes: usize,
    /// Parses served by copying a held module.
    pub hits: u64,
    /// Parses that read the bitcode (and kept the result).
    pub misses: u64,
}

fn bitcode_key(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
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
    /// Parsed bitcode kept for reuse (off unless enabled). A mutex (never contended: the context is not `Sync`)
    /// rather than a `RefCell`, so a `Context` stays `RefUnwindSafe` for hosts that catch panics at an FFI edge.
    cache: Mutex<ModuleCache>,
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
            cache: Mutex::default(),
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

    /// Makes [`super::Module::parse_bitcode_cached`] keep every module it parses in this context and hand out
    /// copies (`CloneModule`) when the same bytes come again: for a context reused across scripts, a helper
    /// shard is read once and copied after that (about 6× cheaper for a typical shard). The held modules live
    /// as long as the context; a context reused for a bounded number of scripts bounds them too.
    pub fn enable_module_cache(&self) {
        self.cache_mut().enabled = true;
    }

    /// What the module cache holds and how often it was used.
    pub fn module_cache_stats(&self) -> ModuleCacheStats {
        let c = self.cache_mut();
        ModuleCacheStats {
            modules: c.len,
            bytes: c.bytes,
            hits: c.hits,
            misses: c.misses,
        }
    }

    fn cache_mut(&self) -> std::sync::MutexGuard<'_, ModuleCache> {
        // Poisoning needs a panic while the guard is held; none of the short sections above can panic.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn module_cache_enabled(&self) -> bool {
        self.cache_mut().enabled
    }

    /// A held module parsed from exactly `bytes`, counting the hit or miss.
    pub(crate) fn cached_module(&self, bytes: &[u8]) -> Option<NonNull<llvm_sys::LLVMModule>> {
        let mut c = self.cache_mut();
        let found = c
            .entries
            .get(&bitcode_key(bytes))
            .and_then(|v| v.iter().find(|(b, _)| **b == *bytes).map(|(_, m)| *m));
        match found {
            Some(_) => c.hits += 1,
            None => c.misses += 1,
        }
        found
    }

    /// Keeps `module` (parsed from `bytes`, in this context, owned by the caller until now) for reuse; it is
    /// disposed with the context.
    pub(crate) fn keep_module(&self, bytes: &[u8], module: NonNull<llvm_sys::LLVMModule>) {
        let mut c = self.cache_mut();
        c.len += 1;
        c.bytes += bytes.len();
        c.entries
            .entry(bitcode_key(bytes))
            .or_default()
            .push((bytes.into(), module));
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
            // Held modules first: they belong to this context and nothing else refers to them.
            let cache = self.cache.get_mut().unwrap_or_else(|e| e.into_inner());
            for (_, modules) in cache.entries.drain() {
                for (_, m) in modules {
                    c::LLVMDisposeModule(m.as_ptr());
                }
            }
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
