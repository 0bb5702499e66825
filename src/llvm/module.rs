//! `Module`: parse, verify, print, write, link and walk an LLVM module.

use std::marker::PhantomData;
use std::path::Path;
use std::ptr::NonNull;

use llvm_sys::analysis::{LLVMVerifierFailureAction, LLVMVerifyModule};
use llvm_sys::bit_reader::{LLVMGetBitcodeModuleInContext2, LLVMParseBitcodeInContext2};
use llvm_sys::bit_writer::LLVMWriteBitcodeToMemoryBuffer;
use llvm_sys::core as c;
use llvm_sys::prelude::{LLVMModuleRef, LLVMValueRef};

use super::message::{borrowed_cstr, borrowed_str, cstring, LlvmMessage};
use super::value::{Function, FunctionMut, GlobalValue, GlobalVariable, GlobalVariableMut};
use super::{Context, MemoryBuffer};
use crate::{Error, Result};

/// Bitcode starts with `BC\xC0\xDE` (raw) or `\xDE\xC0\x17\x0B` (wrapper).
pub(crate) fn is_bitcode(bytes: &[u8]) -> bool {
    bytes.starts_with(b"BC\xC0\xDE") || bytes.starts_with(&[0xDE, 0xC0, 0x17, 0x0B])
}

thread_local! {
    /// Modules this thread wrote as bitcode or text ([`Module::write_bitcode`], [`Module::print`]).
    static SERIALIZED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many modules this thread has written as bitcode or text so far: for checking that a path (such as
/// [`crate::jit::Engine::add_script_module_in_place`]) never round-trips a module through serialization.
pub fn modules_serialized_on_this_thread() -> u64 {
    SERIALIZED.with(|c| c.get())
}

fn count_serialization() {
    SERIALIZED.with(|c| c.set(c.get() + 1));
}

thread_local! {
    /// Modules this thread ran LLVM's verifier on ([`Module::verify`]).
    static VERIFIED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many times this thread has run LLVM's verifier on a module so far ([`Module::verify`], the only place
/// thinjit calls it): for checking that a path verifies each module once per trust boundary.
pub fn modules_verified_on_this_thread() -> u64 {
    VERIFIED.with(|c| c.get())
}

/// An LLVM module owned by Rust, living in a [`Context`].
pub struct Module<'ctx> {
    raw: NonNull<llvm_sys::LLVMModule>,
    ctx: &'ctx Context,
    /// `false` for a module lent by its owner ([`Module::borrow_raw`]): dropping it never disposes it, even
    /// after `std::mem::swap` / `std::mem::replace` moved it out of its [`BorrowedModule`].
    owned: bool,
    _marker: PhantomData<&'ctx Context>,
}

impl<'ctx> Module<'ctx> {
    /// An empty module named `name`.
    pub fn new(ctx: &'ctx Context, name: &str) -> Self {
        let name = cstring(name).unwrap_or_default();
        // SAFETY: the context is live; LLVM copies the name.
        let raw = unsafe { c::LLVMModuleCreateWithNameInContext(name.as_ptr(), ctx.as_raw()) };
        // SAFETY: a freshly created module, owned by us.
        unsafe { Self::from_raw(ctx, raw) }
    }

    /// Wraps a module pointer we own.
    ///
    /// # Safety
    /// `raw` must be a non-null module created in `ctx`, owned by the caller and not owned elsewhere.
    pub(crate) unsafe fn from_raw(ctx: &'ctx Context, raw: LLVMModuleRef) -> Self {
        Module {
            raw: NonNull::new(raw).expect("null module"),
            ctx,
            owned: true,
            _marker: PhantomData,
        }
    }

    /// The underlying `LLVMModuleRef`, for interop with other LLVM users; it stays owned by this `Module`.
    pub fn as_raw(&self) -> LLVMModuleRef {
        self.raw.as_ptr()
    }

    /// Whether thinjit owns this module (`false` for [`Module::borrow_raw`]).
    pub(crate) fn is_owned(&self) -> bool {
        self.owned
    }

    /// Borrows a module owned elsewhere (by an llvm-sys caller, an inkwell `Module`, or a C++ host) so that
    /// thinjit can read and change it in place: import helpers into it, optimize it, verify it. The returned
    /// [`BorrowedModule`] dereferences to a `Module` and never disposes the module.
    ///
    /// `ctx` is the caller's context borrowed with [`Context::borrow_raw`] (or the thinjit context the module was
    /// made in); thinjit's diagnostics for this module are recorded on it.
    ///
    /// ```
    /// use thinjit::llvm::{Context, Module};
    /// use llvm_sys::core as c;
    /// unsafe {
    ///     let raw_ctx = c::LLVMContextCreate();
    ///     let raw = c::LLVMModuleCreateWithNameInContext(c"m".as_ptr(), raw_ctx);
    ///     {
    ///         // SAFETY: both handles are live, used only here, and outlive the borrows.
    ///         let ctx = Context::borrow_raw(raw_ctx);
    ///         let mut m = Module::borrow_raw(&ctx, raw);
    ///         m.set_name("renamed");
    ///         m.verify().unwrap();
    ///     }
    ///     c::LLVMDisposeModule(raw);
    ///     c::LLVMContextDispose(raw_ctx);
    /// }
    /// ```
    ///
    /// # Safety
    /// - `raw` must be a non-null, live module created in the LLVMContext that `ctx` wraps (checked: a module of
    ///   another context panics);
    /// - the module must outlive the returned handle, must not be disposed, moved into another owner (ORC, a
    ///   linker) or used by anyone else while the handle exists;
    /// - values and functions obtained through the handle are only valid while the module is alive and
    ///   unchanged by others (their lifetime is tied to the handle's borrow, not to the lender's ownership);
    /// - the same holds for a `Module` moved out of the handle (`std::mem::swap` / `std::mem::replace` through
    ///   `DerefMut`): it must not be used once the lender disposes the module.
    pub unsafe fn borrow_raw<'c>(ctx: &'c Context, raw: LLVMModuleRef) -> BorrowedModule<'c> {
        let raw = NonNull::new(raw).expect("Module::borrow_raw: null LLVMModuleRef");
        // SAFETY: `raw` is live (the caller's contract).
        let module_ctx = unsafe { c::LLVMGetModuleContext(raw.as_ptr()) };
        assert!(
            module_ctx == ctx.as_raw(),
            "Module::borrow_raw: the module belongs to another LLVMContext than `ctx`"
        );
        BorrowedModule {
            module: Module {
                raw,
                ctx,
                owned: false,
                _marker: PhantomData,
            },
        }
    }

    /// Gives up ownership (for LLVM calls that consume the module); callers check [`Module::is_owned`].
    pub(crate) fn into_raw(self) -> LLVMModuleRef {
        let raw = self.raw.as_ptr();
        std::mem::forget(self);
        raw
    }

    /// The context this module lives in.
    pub fn context(&self) -> &'ctx Context {
        self.ctx
    }

    /// Parses textual IR or bitcode (detected by its magic number); `name` names the input in errors.
    pub fn parse(ctx: &'ctx Context, bytes: &[u8], name: &str) -> Result<Self> {
        if is_bitcode(bytes) {
            Self::parse_bitcode(ctx, bytes, name)
        } else {
            Self::parse_ir(ctx, bytes, name)
        }
    }

    /// Reads and parses a `.ll` or `.bc` file.
    pub fn parse_file(ctx: &'ctx Context, path: &Path) -> Result<Self> {
        let buffer = MemoryBuffer::from_file(path)?;
        let name = path.display().to_string();
        if is_bitcode(buffer.as_bytes()) {
            Self::parse_bitcode_buffer(ctx, &buffer, &name)
        } else {
            Self::parse_ir_buffer(ctx, buffer, &name)
        }
    }

    /// Parses textual IR.
    pub fn parse_ir(ctx: &'ctx Context, text: &[u8], name: &str) -> Result<Self> {
        Self::parse_ir_buffer(ctx, MemoryBuffer::from_bytes(text, name), name)
    }

    fn parse_ir_buffer(ctx: &'ctx Context, buffer: MemoryBuffer, name: &str) -> Result<Self> {
        // LLVM's IR parser recurses once per nesting level: refuse what could overflow the stack.
        let limit = super::facts::MAX_NESTING;
        if let Some(line) = super::facts::text_nesting_exceeds(buffer.as_bytes(), limit) {
            return Err(Error::Parse {
                what: name.to_owned(),
                message: format!(
                    "line {line}: brackets nest deeper than {limit} levels (thinjit's limit: LLVM's parser \
                     recurses once per level)"
                ),
            });
        }
        let mut raw = std::ptr::null_mut();
        let mut msg = std::ptr::null_mut();
        // SAFETY: LLVMParseIRInContext takes ownership of the buffer in all cases; out-pointers are valid.
        let failed = unsafe {
            llvm_sys::ir_reader::LLVMParseIRInContext(
                ctx.as_raw(),
                buffer.into_raw(),
                &mut raw,
                &mut msg,
            )
        };
        // SAFETY: `msg` is null or an LLVM message we own.
        let text = unsafe { LlvmMessage::take(msg) };
        let diagnostics = ctx.take_diagnostics();
        if failed != 0 || raw.is_null() {
            return Err(Error::Parse {
                what: name.to_owned(),
                message: join_messages(&text, &diagnostics),
            });
        }
        // SAFETY: a module we now own, created in `ctx`.
        let mut module = unsafe { Self::from_raw(ctx, raw) };
        module.set_source_name(name);
        Ok(module)
    }

    /// Parses bitcode eagerly (every function body is read).
    pub fn parse_bitcode(ctx: &'ctx Context, bytes: &[u8], name: &str) -> Result<Self> {
        Self::parse_bitcode_buffer(ctx, &MemoryBuffer::from_bytes(bytes, name), name)
    }

    /// Like [`parse_bitcode`](Self::parse_bitcode), but when `ctx` has its module cache enabled
    /// ([`Context::enable_module_cache`]) the first parse of these bytes is kept and later ones return a copy
    /// of it instead of reading the bitcode again. Without the cache, exactly `parse_bitcode`.
    pub fn parse_bitcode_cached(ctx: &'ctx Context, bytes: &[u8], name: &str) -> Result<Self> {
        if !ctx.module_cache_enabled() {
            return Self::parse_bitcode(ctx, bytes, name);
        }
        if let Some(held) = ctx.cached_module(bytes) {
            // SAFETY: `held` is a live module of `ctx` (disposed only with the context) that nobody modifies;
            // the clone is a new module we own, in the same context.
            return Ok(unsafe { Self::from_raw(ctx, c::LLVMCloneModule(held.as_ptr())) });
        }
        let module = Self::parse_bitcode(ctx, bytes, name)?;
        let copy = module.clone_module();
        let raw = NonNull::new(module.into_raw()).expect("null module");
        ctx.keep_module(bytes, raw);
        Ok(copy)
    }

    /// Parses bitcode eagerly from a buffer; the buffer is not retained by the module.
    pub fn parse_bitcode_buffer(
        ctx: &'ctx Context,
        buffer: &MemoryBuffer,
        name: &str,
    ) -> Result<Self> {
        if !is_bitcode(buffer.as_bytes()) {
            return Err(Error::Parse {
                what: name.to_owned(),
                message: "not LLVM bitcode (bad magic number)".into(),
            });
        }
        let mut raw = std::ptr::null_mut();
        // SAFETY: the buffer is borrowed (not consumed) by LLVMParseBitcodeInContext2; errors go to the
        // context's diagnostic handler, which records them.
        let failed = unsafe { LLVMParseBitcodeInContext2(ctx.as_raw(), buffer.as_raw(), &mut raw) };
        let diagnostics = ctx.take_diagnostics();
        if failed != 0 || raw.is_null() {
            return Err(Error::Parse {
                what: name.to_owned(),
                message: join_messages("invalid bitcode", &diagnostics),
            });
        }
        // SAFETY: a module we now own, created in `ctx`; eager parsing leaves no reference to the buffer.
        let mut module = unsafe { Self::from_raw(ctx, raw) };
        module.set_source_name(name);
        Ok(module)
    }

    /// Parses bitcode lazily: global declarations are read now, function bodies stay in the buffer, which the
    /// module takes over. Useful for reading symbol tables of large libraries.
    pub fn parse_bitcode_lazy(
        ctx: &'ctx Context,
        buffer: MemoryBuffer,
        name: &str,
    ) -> Result<Self> {
        if !is_bitcode(buffer.as_bytes()) {
            return Err(Error::Parse {
                what: name.to_owned(),
                message: "not LLVM bitcode (bad magic number)".into(),
            });
        }
        let mut raw = std::ptr::null_mut();
        // SAFETY: LLVMGetBitcodeModuleInContext2 takes ownership of the buffer whether it succeeds or not.
        let failed =
            unsafe { LLVMGetBitcodeModuleInContext2(ctx.as_raw(), buffer.into_raw(), &mut raw) };
        let diagnostics = ctx.take_diagnostics();
        if failed != 0 || raw.is_null() {
            return Err(Error::Parse {
                what: name.to_owned(),
                message: join_messages("invalid bitcode", &diagnostics),
            });
        }
        // SAFETY: a module we now own; it owns the buffer.
        Ok(unsafe { Self::from_raw(ctx, raw) })
    }

    /// Runs LLVM's verifier; `Err` carries the verifier's text. First refuses types or constants nested deeper
    /// than [`MAX_NESTING`](super::facts::MAX_NESTING) (measured without recursion): the verifier, the
    /// optimizer and the code generator recurse on them.
    pub fn verify(&self) -> Result<()> {
        let nesting = self.nesting();
        let limit = super::facts::MAX_NESTING;
        if nesting.types > limit || nesting.constants > limit {
            let what = if nesting.types == u64::MAX {
                "a type contains itself".to_owned()
            } else if nesting.types > limit {
                format!("types nest {} levels deep", nesting.types)
            } else {
                format!(
                    "constant expressions nest {} levels deep",
                    nesting.constants
                )
            };
            return Err(Error::Verify {
                what: format!("module `{}`", self.name()),
                message: format!("{what}; thinjit's limit is {limit}"),
            });
        }
        let mut msg = std::ptr::null_mut();
        VERIFIED.with(|c| c.set(c.get() + 1));
        // SAFETY: the module is live; LLVMReturnStatusAction never aborts; `msg` is always allocated.
        let broken = unsafe {
            LLVMVerifyModule(
                self.as_raw(),
                LLVMVerifierFailureAction::LLVMReturnStatusAction,
                &mut msg,
            )
        };
        // SAFETY: `msg` is ours to free.
        let text = unsafe { LlvmMessage::take(msg) };
        if broken != 0 {
            return Err(Error::Verify {
                what: format!("module `{}`", self.name()),
                message: text.trim_end().to_owned(),
            });
        }
        Ok(())
    }

    /// The module as textual IR.
    pub fn print(&self) -> String {
        count_serialization();
        // SAFETY: the module is live; the returned string is ours to free.
        unsafe { LlvmMessage::take(c::LLVMPrintModuleToString(self.as_raw())) }
    }

    /// The module as bitcode.
    pub fn write_bitcode(&self) -> Vec<u8> {
        count_serialization();
        // SAFETY: the module is live; the returned buffer is ours.
        let buffer =
            unsafe { MemoryBuffer::from_raw(LLVMWriteBitcodeToMemoryBuffer(self.as_raw())) };
        buffer.as_bytes().to_vec()
    }

    /// The module as bitcode for a helper shard: [`write_bitcode`](Self::write_bitcode), with the
    /// metadata-kind table cut down to the kinds the module attaches (LLVM writes all the context knows, and
    /// every read of the module decodes them: about half the fixed cost of reading a small module). The
    /// table keeps its size on disk (the rest is a block readers skip by its length), and every kind keeps its
    /// id, so the module reads back the same.
    pub fn write_shard_bitcode(&self) -> Vec<u8> {
        let mut bytes = self.write_bitcode();
        // SAFETY: the module is live and `bytes` is the bitcode just written from it; the shim rewrites
        // `bytes.len()` bytes in place at most, and leaves them as they were when it cannot.
        unsafe {
            super::shim::thinjit_trim_metadata_kinds(
                self.as_raw(),
                bytes.as_mut_ptr() as *mut libc::c_char,
                bytes.len(),
            );
        }
        bytes
    }

    /// Writes bitcode to `path`.
    pub fn write_bitcode_to_file(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.write_bitcode()).map_err(|e| Error::io(path, e))
    }

    /// A deep copy of this module in the same context.
    pub fn clone_module(&self) -> Module<'ctx> {
        // SAFETY: the module is live; the clone is a new module we own, in the same context.
        unsafe { Self::from_raw(self.ctx, c::LLVMCloneModule(self.as_raw())) }
    }

    /// Links `other` into this module (LLVM's `Linker::linkModules` with default flags); `other` is consumed.
    ///
    /// Linking may replace this module's declarations by definitions (freeing the declarations), and it frees
    /// `other`: no handle on either module may be alive, which the borrow checker enforces:
    ///
    /// ```compile_fail,E0505
    /// use thinjit::llvm::{Context, Module};
    /// let ctx = Context::new();
    /// let mut dst = Module::parse_ir(&ctx, b"declare i32 @f()", "dst.ll").unwrap();
    /// let src = Module::parse_ir(&ctx, b"define i32 @f() { ret i32 1 }", "src.ll").unwrap();
    /// let f = src.function("f").unwrap();
    /// dst.link_in(src).unwrap(); // error[E0505]: cannot move out of `src` because it is borrowed
    /// f.name();
    /// ```
    ///
    /// ```compile_fail,E0502
    /// use thinjit::llvm::{Context, Module};
    /// let ctx = Context::new();
    /// let mut dst = Module::parse_ir(&ctx, b"declare i32 @f()", "dst.ll").unwrap();
    /// let src = Module::parse_ir(&ctx, b"define i32 @f() { ret i32 1 }", "src.ll").unwrap();
    /// let decl = dst.function("f").unwrap();
    /// dst.link_in(src).unwrap(); // error[E0502]: `dst` is also borrowed as immutable
    /// decl.name();
    /// ```
    ///
    /// Taking the handles again after the link compiles (and sees the linked definition):
    ///
    /// ```
    /// use thinjit::llvm::{Context, Module};
    /// let ctx = Context::new();
    /// let mut dst = Module::parse_ir(&ctx, b"declare i32 @f()", "dst.ll").unwrap();
    /// let src = Module::parse_ir(&ctx, b"define i32 @f() { ret i32 1 }", "src.ll").unwrap();
    /// assert!(src.function("f").is_some());
    /// assert!(dst.function("f").unwrap().is_declaration());
    /// dst.link_in(src).unwrap();
    /// assert!(!dst.function("f").unwrap().is_declaration());
    /// ```
    ///
    /// Modules of two different contexts cannot be linked (an error, not undefined behaviour).
    pub fn link_in(&mut self, other: Module<'ctx>) -> Result<()> {
        let what = format!("`{}` into `{}`", other.name(), self.name());
        if other.ctx.as_raw() != self.ctx.as_raw() {
            return Err(Error::Link {
                what,
                message: "the modules belong to different LLVM contexts".into(),
            });
        }
        if !other.owned {
            return Err(Error::Link {
                what,
                message:
                    "the source module is borrowed (Module::borrow_raw); linking would destroy it"
                        .into(),
            });
        }
        // SAFETY: both modules are live and in the same context; LLVMLinkModules2 destroys the source module
        // whatever the outcome; errors are reported to the context's diagnostic handler.
        let failed = unsafe { llvm_sys::linker::LLVMLinkModules2(self.as_raw(), other.into_raw()) };
        let diagnostics = self.ctx.take_diagnostics();
        if failed != 0 {
            return Err(Error::Link {
                what,
                message: join_messages("the linker reported an error", &diagnostics),
            });
        }
        Ok(())
    }

    /// Links every module of `others` into this one, in order, with one LLVM `Linker` (cheaper than one
    /// [`link_in`](Self::link_in) per module: each call would rebuild the linker's view of this module's types).
    /// All of `others` are consumed; on failure the error names the module that failed, and the ones after it
    /// are not linked.
    pub fn link_in_all(&mut self, others: Vec<Module<'ctx>>) -> Result<()> {
        if others.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = others.iter().map(|m| m.name()).collect();
        if let Some(i) = others
            .iter()
            .position(|m| m.ctx.as_raw() != self.ctx.as_raw() || !m.owned)
        {
            return Err(Error::Link {
                what: format!("`{}` into `{}`", names[i], self.name()),
                message:
                    "the source module is borrowed (Module::borrow_raw) or belongs to another LLVM \
                          context"
                        .into(),
            });
        }
        let mut raw: Vec<LLVMModuleRef> = others.into_iter().map(Module::into_raw).collect();
        // SAFETY: every module is live, owned by us and in this module's context; the shim takes ownership of
        // all of them whatever the outcome; errors are reported to the context's diagnostic handler.
        let linked = unsafe {
            crate::llvm::shim::thinjit_link_modules(self.as_raw(), raw.as_mut_ptr(), raw.len())
        };
        let diagnostics = self.ctx.take_diagnostics();
        if linked < names.len() {
            return Err(Error::Link {
                what: format!("`{}` into `{}`", names[linked], self.name()),
                message: join_messages("the linker reported an error", &diagnostics),
            });
        }
        Ok(())
    }

    /// The module identifier.
    pub fn name(&self) -> String {
        let mut len = 0usize;
        // SAFETY: the module is live; the returned pointer is borrowed for `len` bytes.
        unsafe { borrowed_str(c::LLVMGetModuleIdentifier(self.as_raw(), &mut len), len) }
    }

    /// Sets the module identifier.
    pub fn set_name(&mut self, name: &str) {
        // SAFETY: LLVM copies the (ptr, len) string.
        unsafe { c::LLVMSetModuleIdentifier(self.as_raw(), name.as_ptr() as *const _, name.len()) }
    }

    /// Sets the source file name (what LLVM prints as `source_filename`).
    pub fn set_source_name(&mut self, name: &str) {
        // SAFETY: LLVM copies the (ptr, len) string.
        unsafe { c::LLVMSetSourceFileName(self.as_raw(), name.as_ptr() as *const _, name.len()) }
    }

    /// The target triple (may be empty).
    pub fn triple(&self) -> String {
        // SAFETY: borrowed NUL-terminated string owned by the module.
        unsafe { borrowed_cstr(c::LLVMGetTarget(self.as_raw())) }
    }

    /// Sets the target triple.
    pub fn set_triple(&mut self, triple: &str) {
        if let Ok(t) = cstring(triple) {
            // SAFETY: LLVM copies the string.
            unsafe { c::LLVMSetTarget(self.as_raw(), t.as_ptr()) }
        }
    }

    /// The data layout string (may be empty).
    pub fn data_layout(&self) -> String {
        // SAFETY: borrowed NUL-terminated string owned by the module.
        unsafe { borrowed_cstr(c::LLVMGetDataLayoutStr(self.as_raw())) }
    }

    /// Sets the data layout string.
    pub fn set_data_layout(&mut self, layout: &str) {
        if let Ok(l) = cstring(layout) {
            // SAFETY: LLVM copies the string.
            unsafe { c::LLVMSetDataLayout(self.as_raw(), l.as_ptr()) }
        }
    }

    /// Every function (definitions and declarations), in module order. The handles borrow the module.
    pub fn functions(&self) -> impl Iterator<Item = Function<'_>> + '_ {
        // SAFETY: the module is live for the iterator's lifetime and the list holds its functions.
        unsafe {
            value_list(
                c::LLVMGetFirstFunction(self.as_raw()),
                c::LLVMGetNextFunction,
            )
        }
        // SAFETY: every value in the function list is a function of this module.
        .map(|f| unsafe { Function::from_raw(f) })
    }

    /// Every global variable, in module order.
    pub fn globals(&self) -> impl Iterator<Item = GlobalVariable<'_>> + '_ {
        // SAFETY: the module is live for the iterator's lifetime and the list holds its globals.
        unsafe { value_list(c::LLVMGetFirstGlobal(self.as_raw()), c::LLVMGetNextGlobal) }
            // SAFETY: every value in the global list is a global variable of this module.
            .map(|g| unsafe { GlobalVariable::from_raw(g) })
    }

    /// Every global alias, in module order, as plain values.
    pub fn aliases(&self) -> impl Iterator<Item = GlobalValue<'_>> + '_ {
        // SAFETY: the module is live for the iterator's lifetime and the list holds its aliases.
        unsafe {
            value_list(
                c::LLVMGetFirstGlobalAlias(self.as_raw()),
                c::LLVMGetNextGlobalAlias,
            )
        }
        // SAFETY: every value in the alias list is a global value of this module.
        .map(|a| unsafe { GlobalValue::from_raw(a) })
    }

    /// Erases LLVM's special appending arrays named in `names` (`llvm.global_ctors`, `llvm.used`, …) from a
    /// module the crate holds the only handles to (a shard it just parsed). Nothing in IR can use these arrays
    /// (LangRef: they are read by the code generator only), so erasing them frees nothing still used.
    pub(crate) fn erase_appending_arrays(&mut self, names: &[&str]) {
        for name in names {
            if let Some(g) = self.global_mut(name) {
                let array = g.get();
                if array.name().starts_with("llvm.") && array.linkage() == super::Linkage::Appending
                {
                    // Cannot fail: nothing in IR uses these arrays.
                    let _ = g.erase();
                }
            }
        }
    }

    /// The function named `name`, if any. The handle borrows the module.
    pub fn function(&self, name: &str) -> Option<Function<'_>> {
        let name = cstring(name).ok()?;
        // SAFETY: the module is live.
        let raw = unsafe { c::LLVMGetNamedFunction(self.as_raw(), name.as_ptr()) };
        // SAFETY: non-null function of this module.
        (!raw.is_null()).then(|| unsafe { Function::from_raw(raw) })
    }

    /// The global variable named `name`, if any. The handle borrows the module.
    pub fn global(&self, name: &str) -> Option<GlobalVariable<'_>> {
        let name = cstring(name).ok()?;
        // SAFETY: the module is live.
        let raw = unsafe { c::LLVMGetNamedGlobal(self.as_raw(), name.as_ptr()) };
        // SAFETY: non-null global of this module.
        (!raw.is_null()).then(|| unsafe { GlobalVariable::from_raw(raw) })
    }

    /// The function named `name`, borrowing the module exclusively: the one handle through which it can be
    /// erased ([`FunctionMut::erase`]).
    pub fn function_mut(&mut self, name: &str) -> Option<FunctionMut<'_>> {
        let name = cstring(name).ok()?;
        // SAFETY: the module is live.
        let raw = unsafe { c::LLVMGetNamedFunction(self.as_raw(), name.as_ptr()) };
        // SAFETY: non-null function of this module, which `&mut self` borrows exclusively.
        (!raw.is_null()).then(|| unsafe { FunctionMut::from_raw(raw) })
    }

    /// The global variable named `name`, borrowing the module exclusively ([`GlobalVariableMut::erase`]).
    pub fn global_mut(&mut self, name: &str) -> Option<GlobalVariableMut<'_>> {
        let name = cstring(name).ok()?;
        // SAFETY: the module is live.
        let raw = unsafe { c::LLVMGetNamedGlobal(self.as_raw(), name.as_ptr()) };
        // SAFETY: non-null global of this module, which `&mut self` borrows exclusively.
        (!raw.is_null()).then(|| unsafe { GlobalVariableMut::from_raw(raw) })
    }

    /// Whether `v` lives in this module's LLVM context (values of another context must never meet this
    /// module's).
    fn same_context(&self, v: super::Value<'_>) -> bool {
        v.context_raw() == self.ctx.as_raw()
    }

    /// Declares `name` with the same function type as `like` (which may live in another module of the same
    /// context), or returns the existing function of that name. `None` when `like` belongs to another LLVM
    /// context (its type cannot be used here) or `name` has a NUL byte. Adding a declaration frees nothing, so
    /// this takes `&self` and other handles stay usable.
    pub fn declare_function_like(&self, name: &str, like: Function<'_>) -> Option<Function<'_>> {
        if let Some(f) = self.function(name) {
            return Some(f);
        }
        if !self.same_context(like.as_value()) {
            return None;
        }
        let cname = cstring(name).ok()?;
        // SAFETY: the module is live; the function type belongs to this module's context (checked above).
        unsafe {
            let ty = c::LLVMGlobalGetValueType(like.as_raw());
            Some(Function::from_raw(c::LLVMAddFunction(
                self.as_raw(),
                cname.as_ptr(),
                ty,
            )))
        }
    }

    /// A new module in the same context holding a copy of `f` (same name, linkage and attributes, no comdat),
    /// declarations of every global it references (default visibility, never `dso_local`), and definitions of
    /// the constants it reads whose initializers can be copied (constant, non-interposable, not thread-local,
    /// no `blockaddress`); their own references are declared. Costs time proportional to `f` and what it
    /// references, not to this module. The result is verified.
    pub fn extract_function(&self, f: Function<'_>, name: &str) -> Result<Module<'ctx>> {
        let fname = f.name();
        if f.parent_raw() != self.as_raw() {
            return Err(Error::UnusableSymbol {
                symbol: fname,
                message: format!("not a function of module `{}`", self.name()),
            });
        }
        if f.is_declaration() {
            return Err(Error::UnusableSymbol {
                symbol: fname,
                message: "cannot extract a declaration".into(),
            });
        }
        let cname = cstring(name).map_err(|message| Error::UnusableSymbol {
            symbol: fname.clone(),
            message,
        })?;
        // SAFETY: `self` is live and `f` is a definition in it (both checked above; `f` borrows its module);
        // the shim returns a new module in the same context that we own.
        let raw = unsafe {
            super::shim::thinjit_extract_function(self.as_raw(), f.as_raw(), cname.as_ptr())
        };
        if raw.is_null() {
            return Err(Error::UnusableSymbol {
                symbol: fname,
                message: "extraction produced no module".into(),
            });
        }
        // SAFETY: a fresh module in `self.ctx`, owned by us.
        let module = unsafe { Self::from_raw(self.ctx, raw) };
        module.verify()?;
        Ok(module)
    }

    /// The module-level inline assembly (empty when there is none).
    pub fn inline_asm(&self) -> String {
        let mut len = 0usize;
        // SAFETY: the module is live; the returned pointer is borrowed for `len` bytes.
        unsafe { borrowed_str(c::LLVMGetModuleInlineAsm(self.as_raw(), &mut len), len) }
    }

    /// The ABI size in bytes of a global's value type under this module's data layout; 0 for an unsized type
    /// or a global of another module.
    pub fn global_size(&self, global: GlobalVariable<'_>) -> u64 {
        if global.parent_raw() != self.as_raw() {
            return 0;
        }
        // SAFETY: the module and global are live and the global is this module's; the target data is borrowed
        // from the module.
        unsafe {
            let td = llvm_sys::target::LLVMGetModuleDataLayout(self.as_raw());
            let ty = c::LLVMGlobalGetValueType(global.as_raw());
            if c::LLVMTypeIsSized(ty) == 0 {
                return 0;
            }
            llvm_sys::target::LLVMABISizeOfType(td, ty)
        }
    }

    /// Names of all non-declaration globals (functions, variables, aliases) with non-local linkage that are not
    /// `available_externally`: the symbols an ORC materialization unit would claim for this module.
    pub fn defined_symbols(&self) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        for f in self.functions() {
            if !f.is_declaration() && f.linkage().is_claimed_definition() {
                out.insert(f.name());
            }
        }
        for g in self.globals() {
            if !g.is_declaration()
                && g.linkage().is_claimed_definition()
                && !g.name().starts_with("llvm.")
            {
                out.insert(g.name());
            }
        }
        for a in self.aliases() {
            if a.linkage().is_claimed_definition() {
                out.insert(a.name());
            }
        }
        out
    }
}

impl Drop for Module<'_> {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: we own the module.
            unsafe { c::LLVMDisposeModule(self.raw.as_ptr()) }
        }
    }
}

impl std::fmt::Debug for Module<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name())
            .finish()
    }
}

/// A module borrowed from its owner with [`Module::borrow_raw`]: dereferences to [`Module`], and dropping it
/// leaves the module alive with its owner.
pub struct BorrowedModule<'c> {
    module: Module<'c>,
}

impl<'c> std::ops::Deref for BorrowedModule<'c> {
    type Target = Module<'c>;

    fn deref(&self) -> &Module<'c> {
        &self.module
    }
}

impl<'c> std::ops::DerefMut for BorrowedModule<'c> {
    fn deref_mut(&mut self) -> &mut Module<'c> {
        &mut self.module
    }
}

impl std::fmt::Debug for BorrowedModule<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BorrowedModule")
            .field("name", &self.module.name())
            .finish()
    }
}

/// Walks one of a module's value lists (functions, globals, aliases) from `first`, following `next`.
///
/// # Safety
/// `first` must be null or the head of a list of a module that outlives the iterator, and `next` the matching
/// `LLVMGetNext*` function; the module must not be changed while the iterator is in use.
unsafe fn value_list(
    first: LLVMValueRef,
    next: unsafe extern "C" fn(LLVMValueRef) -> LLVMValueRef,
) -> impl Iterator<Item = LLVMValueRef> {
    std::iter::successors((!first.is_null()).then_some(first), move |&v| {
        // SAFETY: `v` is a live member of the list (the caller's contract).
        let n = unsafe { next(v) };
        (!n.is_null()).then_some(n)
    })
}

fn join_messages(primary: &str, diagnostics: &str) -> String {
    match (primary.trim().is_empty(), diagnostics.trim().is_empty()) {
        (_, true) => primary.trim().to_owned(),
        (true, false) => diagnostics.trim().to_owned(),
        (false, false) => format!("{}: {}", primary.trim(), diagnostics.trim()),
    }
}
