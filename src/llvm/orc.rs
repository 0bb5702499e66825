//! ORCv2 `LLJIT` behind owned, safe wrappers.
//!
//! In: [`Module`]s (each in its own [`Context`], which is backed by an ORC `ThreadSafeContext`), object files,
//! host symbol addresses, shared library paths, and an optional Rust IR transform. Out: addresses of JIT'd
//! symbols, [`ResourceTracker`]s that unload what was added under them, and ORC's errors as data
//! ([`OrcFailure`]: each error's kind and the symbols it names, read by the C++ shim, never parsed from text).
//!
//! What the wrappers guarantee:
//! - [`LlJit`] disposes the LLJIT on drop, after every [`ResourceTracker`] made from it is gone (trackers keep
//!   the JIT alive through a shared reference; ORC's trackers must not outlive their session).
//! - Errors ORC reports asynchronously (a failed materialization, an unresolved symbol while linking) go to
//!   an error sink instead of stderr; the call that failed returns them in [`OrcFailure::reported`], and
//!   [`LlJit::take_reported_errors`] drains what no call returned.
//! - The IR transform ([`LlJit::set_ir_transform`]) runs Rust code on each module ORC materializes, on the
//!   materializing thread, with the module's context locked and a diagnostic handler installed. When it
//!   fails, the module is disposed as LLVM's C binding requires (`LLVMOrcIRTransformLayerTransformFunction`).
//!
//! Compiling IR: thinjit's LLJIT compiles every IR module through the checked compiler (error diagnostics fail
//! the materialization; [`CheckedCompiler`] installs it in a caller's LLJIT builder), which holds one target
//! machine and compiles one module at a time (objects are linked concurrently: JITLink and the session are
//! thread-safe). Callers that need parallel code generation compile to objects themselves
//! ([`LlJit::add_object_file`]).
//!
//! Process symbols are not linked by default (LLVM's `LLJITBuilder` links them unless told otherwise; the C
//! API cannot say so, the shim does): resolution sources are added explicitly.

use std::ffi::CString;
use std::marker::PhantomData;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use llvm_sys::error::LLVMErrorRef;
use llvm_sys::orc2 as orc;
use llvm_sys::orc2::lljit as lj;
use llvm_sys::prelude::LLVMModuleRef;

use super::message::{borrowed_cstr, cstring};
use super::{Context, MemoryBuffer, Module};
use crate::{OrcError, OrcErrorKind, OrcFailure};

/// A Rust transform run on every module ORC's IR transform layer materializes. `Err` fails the
/// materialization with that text (ORC reports it; the lookup that triggered it fails with
/// `FailedToMaterialize`). A caller that needs the typed error keeps it itself.
pub type IrTransform = dyn Fn(&mut Module<'_>) -> Result<(), String> + Send + Sync;

extern "C" fn collect_orc_error(
    ctx: *mut libc::c_void,
    kind: OrcErrorKind,
    message: *const libc::c_char,
    symbols: *const *const libc::c_char,
    count: libc::size_t,
) {
    // SAFETY: `ctx` is the `Vec<OrcError>` `consume_error` passed; the strings are NUL-terminated and valid
    // during this call, `symbols` points to `count` of them (the shim's contract).
    unsafe {
        let out = &mut *(ctx as *mut Vec<OrcError>);
        let symbols = if count == 0 || symbols.is_null() {
            Vec::new()
        } else {
            std::slice::from_raw_parts(symbols, count)
                .iter()
                .map(|&p| borrowed_cstr(p))
                .collect()
        };
        out.push(OrcError {
            kind,
            symbols,
            message: borrowed_cstr(message),
        });
    }
}

/// Consumes an `LLVMErrorRef`: `Ok(())` for success, otherwise each error it holds, as data.
///
/// # Safety
/// `err` must be null or an unconsumed `LLVMErrorRef` owned by the caller.
pub(crate) unsafe fn consume_error(err: LLVMErrorRef) -> Result<(), Vec<OrcError>> {
    if err.is_null() {
        return Ok(());
    }
    let mut errors: Vec<OrcError> = Vec::new();
    // SAFETY: the shim consumes `err` and calls the visitor synchronously with `errors` as its context.
    unsafe {
        super::shim::thinjit_visit_orc_error(
            err,
            collect_orc_error,
            &mut errors as *mut Vec<OrcError> as *mut libc::c_void,
        )
    };
    if errors.is_empty() {
        errors.push(OrcError {
            kind: OrcErrorKind::Other,
            symbols: Vec::new(),
            message: "(ORC gave no message)".into(),
        });
    }
    Err(errors)
}

/// Errors ORC reported through the execution session's error reporter.
#[derive(Default)]
struct ErrorSink {
    errors: Mutex<Vec<OrcError>>,
}

impl ErrorSink {
    fn push(&self, errors: Vec<OrcError>) {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(errors);
    }

    fn take(&self) -> Vec<OrcError> {
        std::mem::take(&mut *self.errors.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

extern "C" fn report_error(ctx: *mut libc::c_void, err: LLVMErrorRef) {
    // SAFETY: `ctx` is the `ErrorSink` boxed in `JitInner`, alive as long as the session; `err` is ours.
    unsafe {
        let errors = consume_error(err).err().unwrap_or_default();
        if let Some(sink) = (ctx as *const ErrorSink).as_ref() {
            sink.push(errors);
        }
    }
}

/// The LLJIT and the Rust state its callbacks point into.
struct JitInner {
    raw: NonNull<lj::LLVMOrcOpaqueLLJIT>,
    /// `false` for an LLJIT lent by a C or C++ caller ([`LlJit::borrow_raw`]): never disposed by thinjit.
    owned: bool,
    errors: Box<ErrorSink>,
    /// Every transform installed, double-boxed so its address is thin and stable. Replaced ones are kept until
    /// the JIT goes: a materialization that started before the replacement may still be running them.
    #[allow(clippy::vec_box)]
    // the outer box gives the (fat) inner one a thin address that never moves
    transform: Mutex<Vec<Box<Box<IrTransform>>>>,
    /// Code generation failures of IR modules (error diagnostics the checked compiler turned into failures).
    codegen: Box<super::facts::CodegenSink>,
}

// SAFETY: LLJIT's add, lookup, define and remove operations are internally synchronized (the execution
// session lock); the Rust-side state is behind a Mutex or immutable.
unsafe impl Send for JitInner {}
// SAFETY: as above.
unsafe impl Sync for JitInner {}

impl Drop for JitInner {
    fn drop(&mut self) {
        // SAFETY: no tracker refers to the JIT any more (they hold an `Arc<JitInner>`); disposing tears down the
        // session, which stops calling the transform and the reporter before `transform`/`errors` drop.
        if self.owned {
            unsafe {
                let _ = consume_error(lj::LLVMOrcDisposeLLJIT(self.raw.as_ptr()));
            }
        }
    }
}

/// An ORC LLJIT for the host, with its main JITDylib.
///
/// `Send + Sync`: adding, looking up and removing code from several threads at once is what LLJIT supports.
pub struct LlJit {
    inner: Arc<JitInner>,
    /// Counts the `LlJit` handles on `inner` (clones share it): installing an IR transform needs the only one,
    /// so that no other thread can be materializing meanwhile.
    handles: Arc<()>,
}

impl std::fmt::Debug for LlJit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlJit")
            .field("triple", &self.triple())
            .finish_non_exhaustive()
    }
}

/// Hands an owned module in a thread-safe context over to a new ORC thread-safe module, which the caller passes
/// to one of LLJIT's add functions (they take it over).
fn thread_safe_module(module: Module<'_>) -> Result<orc::LLVMOrcThreadSafeModuleRef, OrcFailure> {
    let tsc = module.context().thread_safe_raw().ok_or_else(|| {
        OrcFailure::other("a module in a borrowed context cannot be added to the JIT")
    })?;
    if !module.is_owned() {
        return Err(OrcFailure::other(
            "a borrowed module (Module::borrow_raw) cannot be handed to the JIT",
        ));
    }
    let raw = module.into_raw();
    // SAFETY: `raw` is a module we own in the TSC's context; the TSM takes it over and holds its own reference
    // on the TSC.
    Ok(unsafe { orc::LLVMOrcCreateNewThreadSafeModule(raw, tsc) })
}

/// Turns an ORC error into an [`OrcFailure`], with anything the session reported meanwhile.
fn orc_result(inner: &JitInner, err: LLVMErrorRef) -> Result<(), OrcFailure> {
    // SAFETY: `err` is null or an error we own.
    unsafe { consume_error(err) }.map_err(|errors| OrcFailure {
        errors,
        reported: inner.errors.take(),
    })
}

/// An [`OrcFailure`] for a C string thinjit could not even pass to ORC.
fn name_failure(message: String) -> OrcFailure {
    OrcFailure::other(message)
}

impl LlJit {
    /// Creates an LLJIT for the host CPU (and its features), without the process's symbols linked in.
    pub fn new_host() -> Result<Self, OrcFailure> {
        super::initialize();
        let mut jtmb = std::ptr::null_mut();
        // SAFETY: valid out-pointer; on success we own the builder.
        unsafe { consume_error(orc::LLVMOrcJITTargetMachineBuilderDetectHost(&mut jtmb)) }
            .map_err(|errors| OrcFailure {
                errors,
                reported: Vec::new(),
            })?;
        let mut raw = std::ptr::null_mut();
        let codegen = Box::<super::facts::CodegenSink>::default();
        let (on_codegen_error, codegen_ctx) = codegen.callback();
        // SAFETY: the LLJIT builder takes ownership of `jtmb`; LLVMOrcCreateLLJIT takes ownership of the
        // builder whatever the outcome.
        let result = unsafe {
            let builder = lj::LLVMOrcCreateLLJITBuilder();
            lj::LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb);
            super::shim::thinjit_lljit_builder_use_empty_process_symbols(builder);
            // `codegen` moves into `JitInner` (a box: the address stays) and outlives the LLJIT.
            super::facts::thinjit_lljit_builder_install_checked_compiler(
                builder,
                on_codegen_error,
                codegen_ctx,
                None,
            );
            consume_error(lj::LLVMOrcCreateLLJIT(&mut raw, builder))
        };
        result.map_err(|errors| OrcFailure {
            errors,
            reported: Vec::new(),
        })?;
        let raw =
            NonNull::new(raw).ok_or_else(|| OrcFailure::other("LLVM returned a null LLJIT"))?;
        let inner = Arc::new(JitInner {
            raw,
            owned: true,
            errors: Box::default(),
            transform: Mutex::new(Vec::new()),
            codegen,
        });
        // SAFETY: the session lives as long as the LLJIT; the sink is boxed inside `inner` and outlives it.
        unsafe {
            let es = lj::LLVMOrcLLJITGetExecutionSession(raw.as_ptr());
            orc::LLVMOrcExecutionSessionSetErrorReporter(
                es,
                report_error,
                &*inner.errors as *const ErrorSink as *mut libc::c_void,
            );
        }
        Ok(LlJit {
            inner,
            handles: Arc::new(()),
        })
    }

    fn raw(&self) -> lj::LLVMOrcLLJITRef {
        self.inner.raw.as_ptr()
    }

    fn main_dylib(&self) -> orc::LLVMOrcJITDylibRef {
        // SAFETY: the LLJIT is live; the main JITDylib lives as long as it.
        unsafe { lj::LLVMOrcLLJITGetMainJITDylib(self.raw()) }
    }

    /// The JIT's target triple.
    pub fn triple(&self) -> String {
        // SAFETY: a NUL-terminated string owned by the LLJIT.
        unsafe { borrowed_cstr(lj::LLVMOrcLLJITGetTripleString(self.raw())) }
    }

    /// The JIT's data layout.
    pub fn data_layout(&self) -> String {
        // SAFETY: a NUL-terminated string owned by the LLJIT.
        unsafe { borrowed_cstr(lj::LLVMOrcLLJITGetDataLayoutStr(self.raw())) }
    }

    /// Frees the pooled symbol-name strings nothing references any more (the names of removed scripts): ORC
    /// keeps dead entries until asked, so distinct names per script would otherwise grow the pool forever.
    pub fn clear_dead_symbol_names(&self) {
        // SAFETY: the session and its string pool live as long as the LLJIT; the pool takes its own lock.
        unsafe {
            let es = lj::LLVMOrcLLJITGetExecutionSession(self.raw());
            let pool = orc::LLVMOrcExecutionSessionGetSymbolStringPool(es);
            orc::LLVMOrcSymbolStringPoolClearDeadEntries(pool);
        }
    }

    /// Drains the code generation failures of IR modules ORC compiled since the last call.
    pub fn take_codegen_failures(&self) -> Vec<super::facts::CodegenFailure> {
        self.inner.codegen.take()
    }

    /// Drains the errors ORC reported asynchronously since the last call.
    pub fn take_reported_errors(&self) -> Vec<OrcError> {
        self.inner.errors.take()
    }

    /// Defines absolute symbols (`name` → `address`) in the main JITDylib: host functions and data that JIT'd
    /// code may call or reference. Fails on a duplicate definition.
    pub fn define_absolute(&self, symbols: &[(&str, u64)]) -> Result<(), OrcFailure> {
        self.define_absolute_in(&self.main_jitdylib(), symbols)
    }

    /// Resolves otherwise-undefined symbols from everything the host process has loaded (its own exported
    /// symbols and every shared library in it).
    pub fn add_process_symbols(&self) -> Result<(), OrcFailure> {
        let mut generator = std::ptr::null_mut();
        // SAFETY: valid out-pointer; no filter; the JITDylib takes ownership of the generator.
        unsafe {
            let prefix = lj::LLVMOrcLLJITGetGlobalPrefix(self.raw());
            orc_result(
                &self.inner,
                orc::LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
                    &mut generator,
                    prefix,
                    None,
                    std::ptr::null_mut(),
                ),
            )?;
            orc::LLVMOrcJITDylibAddGenerator(self.main_dylib(), generator);
        }
        Ok(())
    }

    /// Resolves otherwise-undefined symbols from the shared library at `path` (loaded with `dlopen`; a bare
    /// soname such as `libc.so.6` is searched for the usual way).
    pub fn add_shared_library(&self, path: &Path) -> Result<(), OrcFailure> {
        let cpath = cstring(&path.to_string_lossy()).map_err(name_failure)?;
        let mut generator = std::ptr::null_mut();
        // SAFETY: valid C string and out-pointer; the JITDylib takes ownership of the generator.
        unsafe {
            let prefix = lj::LLVMOrcLLJITGetGlobalPrefix(self.raw());
            orc_result(
                &self.inner,
                orc::LLVMOrcCreateDynamicLibrarySearchGeneratorForPath(
                    &mut generator,
                    cpath.as_ptr(),
                    prefix,
                    None,
                    std::ptr::null_mut(),
                ),
            )?;
            orc::LLVMOrcJITDylibAddGenerator(self.main_dylib(), generator);
        }
        Ok(())
    }

    /// A new resource tracker on the main JITDylib.
    pub fn create_tracker(&self) -> ResourceTracker {
        // SAFETY: the main JITDylib is live; we own the returned reference.
        let raw = unsafe { orc::LLVMOrcJITDylibCreateResourceTracker(self.main_dylib()) };
        ResourceTracker {
            raw: NonNull::new(raw).expect("null resource tracker"),
            _jit: Arc::clone(&self.inner),
        }
    }

    /// Adds `module` to the main JITDylib (under `tracker`, or the JITDylib's default tracker). The module is
    /// verified first (code generation assumes valid IR) and compiled when one of its symbols is first looked
    /// up. The module is consumed even on error. A tracker of another LLJIT is refused.
    pub fn add_module(
        &self,
        module: Module<'_>,
        tracker: Option<&ResourceTracker>,
    ) -> Result<(), OrcFailure> {
        module
            .verify()
            .map_err(|e| OrcFailure::other(e.to_string()))?;
        self.add_module_verified(module, tracker)
    }

    /// [`LlJit::add_module`] for a module the crate has verified (and changed since only with LLVM passes and
    /// its own well-formed edits).
    pub(crate) fn add_module_verified(
        &self,
        module: Module<'_>,
        tracker: Option<&ResourceTracker>,
    ) -> Result<(), OrcFailure> {
        if let Some(rt) = tracker {
            self.own_tracker(rt)?;
        }
        let tsm = thread_safe_module(module)?;
        // SAFETY: `tsm` is a fresh thread-safe module; LLVMOrcLLJITAddLLVMIRModule(WithRT) takes it over, even
        // when it fails.
        let err = unsafe {
            match tracker {
                Some(rt) => lj::LLVMOrcLLJITAddLLVMIRModuleWithRT(self.raw(), rt.raw.as_ptr(), tsm),
                None => lj::LLVMOrcLLJITAddLLVMIRModule(self.raw(), self.main_dylib(), tsm),
            }
        };
        orc_result(&self.inner, err)
    }

    /// Adds a relocatable object file to the main JITDylib (under `tracker` or the default tracker).
    pub fn add_object_file(
        &self,
        object: &[u8],
        name: &str,
        tracker: Option<&ResourceTracker>,
    ) -> Result<(), OrcFailure> {
        if let Some(rt) = tracker {
            self.own_tracker(rt)?;
        }
        let buffer = MemoryBuffer::from_bytes(object, name);
        // SAFETY: the call takes ownership of the buffer whatever the outcome.
        let err = unsafe {
            match tracker {
                Some(rt) => lj::LLVMOrcLLJITAddObjectFileWithRT(
                    self.raw(),
                    rt.raw.as_ptr(),
                    buffer.into_raw(),
                ),
                None => {
                    lj::LLVMOrcLLJITAddObjectFile(self.raw(), self.main_dylib(), buffer.into_raw())
                }
            }
        };
        orc_result(&self.inner, err)
    }

    /// Looks `name` up in the main JITDylib (materializing it, and compiling what it needs, if necessary) and
    /// returns its address. Errors carry ORC's text plus anything ORC reported while materializing.
    pub fn lookup(&self, name: &str) -> Result<u64, OrcFailure> {
        let cname = cstring(name).map_err(name_failure)?;
        let mut address = 0;
        // SAFETY: valid out-pointer and C string.
        let err = unsafe { lj::LLVMOrcLLJITLookup(self.raw(), &mut address, cname.as_ptr()) };
        orc_result(&self.inner, err)?;
        Ok(address)
    }

    /// Like [`LlJit::lookup`], and whether ORC knows the symbol as callable (a function rather than data).
    pub fn lookup_flags(&self, name: &str) -> Result<(u64, bool), OrcFailure> {
        let cname = cstring(name).map_err(name_failure)?;
        let (mut address, mut callable) = (0u64, 0 as libc::c_int);
        // SAFETY: the LLJIT is live; valid C string and out-pointers.
        let err = unsafe {
            super::facts::thinjit_lljit_lookup_flags(
                self.raw(),
                cname.as_ptr(),
                &mut address,
                &mut callable,
            )
        };
        orc_result(&self.inner, err)?;
        Ok((address, callable != 0))
    }

    /// Installs `transform` as the IR transform layer's transform: it runs on every module ORC materializes
    /// from now on, on the materializing thread, and the module is verified after it (code generation assumes
    /// valid IR; an invalid result fails the materialization with the verifier's text). Replaces an earlier
    /// transform.
    ///
    /// Refused while another `LlJit` handle on this JIT exists (a clone): LLVM's transform layer may not be
    /// changed while another thread materializes through it.
    pub fn set_ir_transform(&mut self, transform: Box<IrTransform>) -> Result<(), OrcFailure> {
        if Arc::strong_count(&self.handles) != 1 {
            return Err(OrcFailure::other(
                "an IR transform can only be installed through the only handle on the LLJIT (it has clones)",
            ));
        }
        self.set_ir_transform_trusted(Box::new(move |m: &mut Module<'_>| {
            transform(m)?;
            m.verify().map_err(|e| e.to_string())
        }));
        Ok(())
    }

    /// [`LlJit::set_ir_transform`] without the verifier after the transform and without the check for other
    /// handles: for the engine's own transforms, which only run LLVM passes and thinjit's well-formed edits on
    /// verified modules, installed while the engine starts (before any lookup).
    pub(crate) fn set_ir_transform_trusted(&mut self, transform: Box<IrTransform>) {
        let boxed: Box<Box<IrTransform>> = Box::new(transform);
        let ctx = &*boxed as *const Box<IrTransform> as *mut libc::c_void;
        // SAFETY: `ctx` points into a box kept in `inner.transform` until the JIT is disposed (replaced boxes
        // too); the callers make sure no other thread materializes meanwhile (the only handle, or engine start).
        unsafe {
            let layer = lj::LLVMOrcLLJITGetIRTransformLayer(self.raw());
            orc::LLVMOrcIRTransformLayerSetTransform(layer, ir_transform_trampoline, ctx);
        }
        self.inner
            .transform
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(boxed);
    }
}

/// thinjit's checked compiler in an LLJIT a caller builds (the C API's `thinjit_lljit_builder_use_checked_compiler`):
/// code generation of an IR module that raises an error-severity diagnostic (an unsupported construct, inline
/// asm that does not assemble, an impossible constraint) fails that module's materialization — the lookup that
/// triggered it returns an error naming the module and LLVM's message — instead of reaching the context's
/// diagnostic handler (LLVM's default one exits the process) or being ignored with the object linked anyway.
/// The failures are also kept here, with the function LLVM named. This is what [`LlJit::new_host`] builds its
/// own LLJIT with.
#[derive(Clone)]
pub struct CheckedCompiler {
    sink: Arc<super::facts::CodegenSink>,
}

impl std::fmt::Debug for CheckedCompiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedCompiler")
            .field("failures", &self.sink.snapshot().len())
            .finish()
    }
}

extern "C" fn release_codegen_sink(ctx: *mut libc::c_void) {
    // SAFETY: `ctx` came from `Arc::into_raw` in `CheckedCompiler::install`, and the shim calls this once.
    drop(unsafe { Arc::from_raw(ctx as *const super::facts::CodegenSink) });
}

impl CheckedCompiler {
    /// Makes the LLJIT that `builder` will create compile IR through the checked compiler (replacing a compile
    /// function creator set on the builder before). The compiler uses one target machine made from the
    /// builder's `JITTargetMachineBuilder` and compiles one module at a time. The returned handle and the
    /// LLJIT share the failure list: either may go first. `None` for a null builder.
    ///
    /// # Safety
    /// `builder` must be null or a live `LLVMOrcLLJITBuilderRef` that `LLVMOrcCreateLLJIT` has not consumed yet.
    pub unsafe fn install(builder: lj::LLVMOrcLLJITBuilderRef) -> Option<Self> {
        if builder.is_null() {
            return None;
        }
        super::initialize();
        let sink = Arc::new(super::facts::CodegenSink::default());
        let (on_codegen_error, _) = sink.callback();
        let ctx = Arc::into_raw(Arc::clone(&sink)) as *mut libc::c_void;
        // SAFETY: a live builder (contract); `ctx` is a strong reference the shim releases once through
        // `release_codegen_sink` when the builder's creator and the compiler are both gone.
        unsafe {
            super::facts::thinjit_lljit_builder_install_checked_compiler(
                builder,
                on_codegen_error,
                ctx,
                Some(release_codegen_sink),
            );
        }
        Some(CheckedCompiler { sink })
    }

    /// Every code generation failure so far, oldest first.
    pub fn failures(&self) -> Vec<super::facts::CodegenFailure> {
        self.sink.snapshot()
    }

    /// Drains the failures so far.
    pub fn take_failures(&self) -> Vec<super::facts::CodegenFailure> {
        self.sink.take()
    }
}

/// The payload handed through `LLVMOrcThreadSafeModuleWithModuleDo`.
struct TransformCall<'a> {
    transform: &'a IrTransform,
}

extern "C" fn ir_transform_trampoline(
    ctx: *mut libc::c_void,
    module: *mut orc::LLVMOrcThreadSafeModuleRef,
    _mr: orc::LLVMOrcMaterializationResponsibilityRef,
) -> LLVMErrorRef {
    // SAFETY: `ctx` is the boxed transform installed by `set_ir_transform`, alive while the JIT is; `module`
    // points at a live thread-safe module we may use. On success it stays in place (ownership returns to ORC);
    // on error LLVM's C binding expects the transform to dispose it and null the reference
    // (`LLVMOrcIRTransformLayerSetTransform` in OrcV2CBindings.cpp asserts `!TSMRef`; otherwise the module and
    // its wrapper leak).
    unsafe {
        let transform = &**(ctx as *const Box<IrTransform>);
        let mut call = TransformCall { transform };
        let err = orc::LLVMOrcThreadSafeModuleWithModuleDo(
            *module,
            with_module_trampoline,
            &mut call as *mut TransformCall<'_> as *mut libc::c_void,
        );
        if !err.is_null() {
            orc::LLVMOrcDisposeThreadSafeModule(*module);
            *module = std::ptr::null_mut();
        }
        err
    }
}

extern "C" fn with_module_trampoline(ctx: *mut libc::c_void, raw: LLVMModuleRef) -> LLVMErrorRef {
    // SAFETY: `ctx` is the `TransformCall` on the caller's stack; `raw` is the live module, whose context ORC
    // has locked for the duration of this call, so we are its only user. The module stays owned by ORC (a
    // borrowed module), and the borrowed context restores ORC's diagnostic handler when it drops.
    unsafe {
        let call = &*(ctx as *const TransformCall<'_>);
        let context = Context::borrow_raw(llvm_sys::core::LLVMGetModuleContext(raw));
        let mut module = Module::borrow_raw(&context, raw);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            (call.transform)(&mut module)
        }));
        let message = match outcome {
            Ok(Ok(())) => return std::ptr::null_mut(),
            Ok(Err(text)) => text,
            Err(_) => String::from("the IR transform panicked"),
        };
        let cmsg = CString::new(message.replace('\0', " ")).unwrap_or_default();
        llvm_sys::error::LLVMCreateStringError(cmsg.as_ptr())
    }
}

/// An ORC resource tracker: everything added under it can be removed (unloaded) together.
///
/// Dropping a tracker without [`ResourceTracker::remove`] keeps its code loaded (it moves to the JITDylib's
/// default tracker's lifetime: until the JIT is dropped).
pub struct ResourceTracker {
    raw: NonNull<orc::LLVMOrcOpaqueResourceTracker>,
    _jit: Arc<JitInner>,
}

// SAFETY: ORC resource trackers are reference counted and their operations go through the session lock.
unsafe impl Send for ResourceTracker {}
// SAFETY: as above.
unsafe impl Sync for ResourceTracker {}

impl ResourceTracker {
    /// Removes everything added under this tracker: symbols disappear from the JITDylib and their memory is
    /// released.
    pub fn remove(self) -> Result<(), OrcFailure> {
        // SAFETY: the tracker is live; the release happens in Drop.
        let err = unsafe { orc::LLVMOrcResourceTrackerRemove(self.raw.as_ptr()) };
        orc_result(&self._jit, err)
    }
}

impl Drop for ResourceTracker {
    fn drop(&mut self) {
        // SAFETY: we own one reference; the session is still alive (we hold `_jit`).
        unsafe { orc::LLVMOrcReleaseResourceTracker(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for ResourceTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceTracker").finish_non_exhaustive()
    }
}

/// A JIT'd function of type `F` (an `extern "C" fn(..) -> R` pointer type), borrowed from whatever owns the
/// JIT memory (`'a`), so it cannot be called after that memory is freed.
///
/// Calling is `unsafe`: the JIT cannot check that the code really has signature `F`.
pub struct JitFunction<'a, F> {
    address: u64,
    _f: PhantomData<F>,
    _owner: PhantomData<&'a ()>,
}

impl<'a, F> JitFunction<'a, F> {
    /// Wraps `address`, borrowing `owner` (the JIT or engine the code lives in) for the wrapper's lifetime.
    pub fn new<T: ?Sized>(address: u64, _owner: &'a T) -> Self {
        JitFunction {
            address,
            _f: PhantomData,
            _owner: PhantomData,
        }
    }

    /// The function's address.
    pub fn address(&self) -> u64 {
        self.address
    }
}

impl<F> Clone for JitFunction<'_, F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F> Copy for JitFunction<'_, F> {}

impl<F> std::fmt::Debug for JitFunction<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JitFunction({:#x})", self.address)
    }
}

macro_rules! impl_call {
    ($($arg:ident: $ty:ident),*) => {
        impl<'a, R, $($ty),*> JitFunction<'a, extern "C" fn($($ty),*) -> R> {
            /// Calls the function.
            ///
            /// # Safety
            /// The JIT'd code at this address must have exactly this C signature and still be loaded (not removed
            /// with its resource tracker), and calling it must be sound (its arguments valid for what the code does
            /// with them).
            #[allow(clippy::too_many_arguments)]
            pub unsafe fn call(&self, $($arg: $ty),*) -> R {
                // SAFETY: forwarded to the caller; the address came from a successful lookup and the code is
                // alive for `'a`.
                let f: extern "C" fn($($ty),*) -> R = unsafe { std::mem::transmute(self.address as usize) };
                f($($arg),*)
            }
        }
    };
}

impl_call!();
impl_call!(a: A);
impl_call!(a: A, b: B);
impl_call!(a: A, b: B, c: C);
impl_call!(a: A, b: B, c: C, d: D);
impl_call!(a: A, b: B, c: C, d: D, e: E);

impl Module<'_> {
    /// A key identifying this module while ORC owns it (its address, stable for the module's lifetime).
    pub(crate) fn identity(&self) -> usize {
        self.as_raw() as usize
    }
}

/// A JITDylib of an [`LlJit`]: where definitions go and where lookups search.
///
/// It keeps its LLJIT alive (like a [`ResourceTracker`]), so it can never name a freed JITDylib, and the
/// `*_in` methods of [`LlJit`] refuse a JITDylib of another LLJIT (an [`OrcFailure`], not undefined behaviour).
#[derive(Clone)]
pub struct JitDylib {
    raw: NonNull<orc::LLVMOrcOpaqueJITDylib>,
    jit: Arc<JitInner>,
}

impl std::fmt::Debug for JitDylib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitDylib")
            .field("raw", &self.raw)
            .finish_non_exhaustive()
    }
}

impl PartialEq for JitDylib {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for JitDylib {}

// SAFETY: a JITDylib is owned by its execution session; its operations take the session lock.
unsafe impl Send for JitDylib {}
// SAFETY: as above.
unsafe impl Sync for JitDylib {}

impl JitDylib {
    /// Wraps a JITDylib handle of `jit` (for example one a C or C++ host created in its LLJIT).
    ///
    /// # Safety
    /// `raw` must be a live `LLVMOrcJITDylibRef` of `jit`'s execution session that stays alive as long as that
    /// session (JITDylibs are never removed from an LLJIT thinjit uses).
    pub unsafe fn from_raw(jit: &LlJit, raw: orc::LLVMOrcJITDylibRef) -> Option<Self> {
        NonNull::new(raw).map(|raw| JitDylib {
            raw,
            jit: Arc::clone(&jit.inner),
        })
    }

    /// The underlying `LLVMOrcJITDylibRef`.
    pub fn as_raw(&self) -> orc::LLVMOrcJITDylibRef {
        self.raw.as_ptr()
    }
}

impl Clone for LlJit {
    /// Another handle on the same LLJIT (it is disposed when the last owned handle goes).
    fn clone(&self) -> Self {
        LlJit {
            inner: Arc::clone(&self.inner),
            handles: Arc::clone(&self.handles),
        }
    }
}

/// The result an asynchronous session lookup hands to its callback.
type LookupResult = Result<u64, Vec<OrcError>>;

extern "C" fn lookup_done(
    err: LLVMErrorRef,
    result: orc::LLVMOrcCSymbolMapPairs,
    count: libc::size_t,
    ctx: *mut libc::c_void,
) {
    // SAFETY: `ctx` is the `Sender` `lookup_in` keeps alive until it has received; `result` holds `count`
    // pairs on success (owned by ORC, read only here); `err` is ours.
    unsafe {
        let outcome = match consume_error(err) {
            Err(errors) => Err(errors),
            Ok(()) if count >= 1 && !result.is_null() => Ok((*result).Sym.Address),
            Ok(()) => Err(vec![OrcError {
                kind: OrcErrorKind::Other,
                symbols: Vec::new(),
                message: "the lookup returned no address".into(),
            }]),
        };
        let sender = &*(ctx as *const std::sync::mpsc::Sender<LookupResult>);
        let _ = sender.send(outcome);
    }
}

impl LlJit {
    /// A handle on a caller's LLJIT (an `llvm::orc::LLJIT` of a C or C++ host, as `LLVMOrcLLJITRef`). thinjit
    /// never disposes it and installs no error reporter on its session (errors ORC reports asynchronously go
    /// to the caller's reporter; the calls that fail still return theirs).
    ///
    /// # Safety
    /// `raw` must be a live LLJIT that outlives every handle made from it (and everything those handles
    /// installed in it, such as an IR transform); while an IR transform is installed through the handle, no
    /// other thread may materialize code in that LLJIT.
    pub unsafe fn borrow_raw(raw: lj::LLVMOrcLLJITRef) -> Option<Self> {
        super::initialize();
        let raw = NonNull::new(raw)?;
        Some(LlJit {
            handles: Arc::new(()),
            inner: Arc::new(JitInner {
                raw,
                owned: false,
                errors: Box::default(),
                transform: Mutex::new(Vec::new()),
                // The caller's LLJIT compiles with the caller's compiler: no failures are reported here.
                codegen: Box::default(),
            }),
        })
    }

    /// The underlying `LLVMOrcLLJITRef` (still owned by this handle's owner).
    pub fn as_raw(&self) -> lj::LLVMOrcLLJITRef {
        self.raw()
    }

    /// The main JITDylib.
    pub fn main_jitdylib(&self) -> JitDylib {
        JitDylib {
            raw: NonNull::new(self.main_dylib()).expect("LLJIT without a main JITDylib"),
            jit: Arc::clone(&self.inner),
        }
    }

    /// `Ok` if `tracker` was made by this LLJIT (or another handle on the same one).
    fn own_tracker(&self, tracker: &ResourceTracker) -> Result<(), OrcFailure> {
        if tracker._jit.raw == self.inner.raw {
            Ok(())
        } else {
            Err(OrcFailure::other(
                "the resource tracker belongs to another LLJIT".to_string(),
            ))
        }
    }

    /// `dylib`'s raw handle, if it belongs to this LLJIT (handles on the same LLJIT through
    /// [`LlJit::borrow_raw`] count as the same).
    fn own_dylib(&self, dylib: &JitDylib) -> Result<orc::LLVMOrcJITDylibRef, OrcFailure> {
        if dylib.jit.raw == self.inner.raw {
            Ok(dylib.as_raw())
        } else {
            Err(OrcFailure::other(
                "the JITDylib belongs to another LLJIT".to_string(),
            ))
        }
    }

    /// Defines absolute symbols (`name` → `address`) in `dylib`. Fails on a duplicate definition.
    pub fn define_absolute_in(
        &self,
        dylib: &JitDylib,
        symbols: &[(&str, u64)],
    ) -> Result<(), OrcFailure> {
        let dylib = self.own_dylib(dylib)?;
        if symbols.is_empty() {
            return Ok(());
        }
        let mut pairs = Vec::with_capacity(symbols.len());
        for (name, address) in symbols {
            let cname = cstring(name).map_err(name_failure)?;
            // SAFETY: the LLJIT is live; the entry is retained for us and handed to LLVMOrcAbsoluteSymbols.
            let entry = unsafe { lj::LLVMOrcLLJITMangleAndIntern(self.raw(), cname.as_ptr()) };
            pairs.push(orc::LLVMOrcCSymbolMapPair {
                Name: entry,
                Sym: orc::LLVMJITEvaluatedSymbol {
                    Address: *address,
                    Flags: orc::LLVMJITSymbolFlags {
                        GenericFlags:
                            orc::LLVMJITSymbolGenericFlags::LLVMJITSymbolGenericFlagsExported as u8
                                | orc::LLVMJITSymbolGenericFlags::LLVMJITSymbolGenericFlagsCallable
                                    as u8,
                        TargetFlags: 0,
                    },
                },
            });
        }
        // SAFETY: LLVMOrcAbsoluteSymbols takes the retained names; JITDylibDefine takes the unit on success,
        // on failure we dispose it.
        unsafe {
            let mu = orc::LLVMOrcAbsoluteSymbols(pairs.as_mut_ptr(), pairs.len());
            let err = orc::LLVMOrcJITDylibDefine(dylib, mu);
            if !err.is_null() {
                orc::LLVMOrcDisposeMaterializationUnit(mu);
            }
            orc_result(&self.inner, err)
        }
    }

    /// Adds `module` to `dylib` (verified first, compiled when first looked up). The module is consumed even on
    /// error.
    pub fn add_module_in(&self, dylib: &JitDylib, module: Module<'_>) -> Result<(), OrcFailure> {
        module
            .verify()
            .map_err(|e| OrcFailure::other(e.to_string()))?;
        self.add_module_in_verified(dylib, module)
    }

    /// [`LlJit::add_module_in`] for a module the crate has verified.
    pub(crate) fn add_module_in_verified(
        &self,
        dylib: &JitDylib,
        module: Module<'_>,
    ) -> Result<(), OrcFailure> {
        let dylib = self.own_dylib(dylib)?;
        let tsm = thread_safe_module(module)?;
        // SAFETY: `tsm` is a fresh thread-safe module; LLVMOrcLLJITAddLLVMIRModule takes it over, even when it
        // fails.
        let err = unsafe { lj::LLVMOrcLLJITAddLLVMIRModule(self.raw(), dylib, tsm) };
        orc_result(&self.inner, err)
    }

    /// Adds a relocatable object file to `dylib`.
    pub fn add_object_file_in(
        &self,
        dylib: &JitDylib,
        object: &[u8],
        name: &str,
    ) -> Result<(), OrcFailure> {
        let dylib = self.own_dylib(dylib)?;
        let buffer = MemoryBuffer::from_bytes(object, name);
        // SAFETY: the call takes ownership of the buffer whatever the outcome.
        let err = unsafe { lj::LLVMOrcLLJITAddObjectFile(self.raw(), dylib, buffer.into_raw()) };
        orc_result(&self.inner, err)
    }

    /// Looks `name` up in `dylib` alone (all its symbols, exported or not), materializing what it needs, and
    /// returns its address.
    pub fn lookup_in(&self, dylib: &JitDylib, name: &str) -> Result<u64, OrcFailure> {
        let dylib = self.own_dylib(dylib)?;
        let cname = cstring(name).map_err(name_failure)?;
        let (sender, receiver) = std::sync::mpsc::channel::<LookupResult>();
        // SAFETY: the session is live; the search order and lookup set are read during the call; the name is
        // retained for the lookup, which takes it over; `sender` outlives the callback (we wait for it below).
        unsafe {
            let es = lj::LLVMOrcLLJITGetExecutionSession(self.raw());
            let entry = lj::LLVMOrcLLJITMangleAndIntern(self.raw(), cname.as_ptr());
            let mut order = [orc::LLVMOrcCJITDylibSearchOrderElement {
                JD: dylib,
                JDLookupFlags:
                    orc::LLVMOrcJITDylibLookupFlags::LLVMOrcJITDylibLookupFlagsMatchAllSymbols,
            }];
            let mut symbols = [orc::LLVMOrcCLookupSetElement {
                Name: entry,
                LookupFlags: orc::LLVMOrcSymbolLookupFlags::LLVMOrcSymbolLookupFlagsRequiredSymbol,
            }];
            orc::LLVMOrcExecutionSessionLookup(
                es,
                orc::LLVMOrcLookupKind::LLVMOrcLookupKindStatic,
                order.as_mut_ptr(),
                order.len(),
                symbols.as_mut_ptr(),
                symbols.len(),
                lookup_done,
                &sender as *const std::sync::mpsc::Sender<LookupResult> as *mut libc::c_void,
            );
        }
        match receiver.recv() {
            Ok(Ok(address)) => Ok(address),
            Ok(Err(errors)) => Err(OrcFailure {
                errors,
                reported: self.inner.errors.take(),
            }),
            Err(_) => Err(OrcFailure::other(format!(
                "the lookup of `{name}` never completed"
            ))),
        }
    }
}

type ManyResult = Result<Vec<(String, u64)>, Vec<OrcError>>;

extern "C" fn lookup_many_done(
    err: LLVMErrorRef,
    result: orc::LLVMOrcCSymbolMapPairs,
    count: libc::size_t,
    ctx: *mut libc::c_void,
) {
    // SAFETY: `ctx` is the `Sender` `lookup_many_in` keeps alive until it has received; `result` holds `count`
    // pairs on success (owned by ORC, read only here, names read as C strings); `err` is ours.
    unsafe {
        let outcome = consume_error(err).map(|()| {
            (0..count)
                .map(|i| {
                    let pair = &*result.add(i);
                    let name = orc::LLVMOrcSymbolStringPoolEntryStr(pair.Name);
                    let name = if name.is_null() {
                        String::new()
                    } else {
                        std::ffi::CStr::from_ptr(name)
                            .to_string_lossy()
                            .into_owned()
                    };
                    (name, pair.Sym.Address)
                })
                .collect()
        });
        let sender = &*(ctx as *const std::sync::mpsc::Sender<ManyResult>);
        let _ = sender.send(outcome);
    }
}

impl LlJit {
    /// Looks up many names in `dylib` in one session lookup (all its symbols, exported or not, then its
    /// generators). A name marked weak may be missing (`None`); a missing required one fails the lookup with
    /// ORC's "symbols not found" naming it.
    pub fn lookup_many_in(
        &self,
        dylib: &JitDylib,
        names: &[(&str, bool)],
    ) -> Result<Vec<Option<u64>>, OrcFailure> {
        let dylib = self.own_dylib(dylib)?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut set = Vec::with_capacity(names.len());
        for (name, weak) in names {
            let cname = cstring(name).map_err(name_failure)?;
            set.push(orc::LLVMOrcCLookupSetElement {
                // SAFETY: the LLJIT is live; the retained entry is handed to the lookup, which takes it over.
                Name: unsafe { lj::LLVMOrcLLJITMangleAndIntern(self.raw(), cname.as_ptr()) },
                LookupFlags: if *weak {
                    orc::LLVMOrcSymbolLookupFlags::LLVMOrcSymbolLookupFlagsWeaklyReferencedSymbol
                } else {
                    orc::LLVMOrcSymbolLookupFlags::LLVMOrcSymbolLookupFlagsRequiredSymbol
                },
            });
        }
        let (sender, receiver) = std::sync::mpsc::channel::<ManyResult>();
        // SAFETY: as in `lookup_in`: the session is live, the order and set are read during the call, the names
        // are taken over, `sender` outlives the callback.
        unsafe {
            let es = lj::LLVMOrcLLJITGetExecutionSession(self.raw());
            let mut order = [orc::LLVMOrcCJITDylibSearchOrderElement {
                JD: dylib,
                JDLookupFlags:
                    orc::LLVMOrcJITDylibLookupFlags::LLVMOrcJITDylibLookupFlagsMatchAllSymbols,
            }];
            orc::LLVMOrcExecutionSessionLookup(
                es,
                orc::LLVMOrcLookupKind::LLVMOrcLookupKindStatic,
                order.as_mut_ptr(),
                order.len(),
                set.as_mut_ptr(),
                set.len(),
                lookup_many_done,
                &sender as *const std::sync::mpsc::Sender<ManyResult> as *mut libc::c_void,
            );
        }
        match receiver.recv() {
            Ok(Ok(found)) => {
                let found: std::collections::HashMap<String, u64> = found.into_iter().collect();
                Ok(names.iter().map(|(n, _)| found.get(*n).copied()).collect())
            }
            Ok(Err(errors)) => Err(OrcFailure {
                errors,
                reported: self.inner.errors.take(),
            }),
            Err(_) => Err(OrcFailure::other(
                "a lookup of many symbols never completed",
            )),
        }
    }
}
