//! What a JIT needs to host C/C++ code that expects a process around it: static constructors and
//! destructors, `__cxa_atexit` / `atexit`, `__dso_handle`.
//!
//! In: a module about to be JIT'd (the helper library, or a script). Out: the module with its
//! `llvm.global_ctors` / `llvm.global_dtors` taken out into a [`Structors`] list (run by
//! [`LlJit::run_structors`]), and its `__cxa_atexit` / `atexit` / `__dso_handle` references redirected to an
//! [`AtExitRegistry`] owned by the engine, whose handlers run in reverse registration order when the engine
//! says so ([`AtExitRegistry::run`]) — before the JIT memory holding them is freed.
//!
//! A dso handle is a JIT'd `i64` holding its registry's key; the `__cxa_atexit` replacement reads the key
//! through the handle it is given. The engine's support module defines the engine's handle (used by the
//! JIT-resident library); a removable script gets its own ([`Module::localize_dso_handle`]), so what it
//! registered runs when it is removed, before its code is freed.
//!
//! Why not LLJIT's own platform support: the C API cannot call `LLJIT::initialize` / `deinitialize`, and the
//! default platform defines `__dso_handle` and `atexit` itself, so they cannot be defined again. The model is
//! `GlobalCtorDtorScraper` in LLVM's `LLJIT.cpp`. The dso handle is a JIT'd global (`__thinjit_dso_handle`), not
//! an absolute symbol: clang references `__dso_handle` as `hidden`, which codegen makes PC-relative (32-bit), so
//! it must live near the JIT'd code.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::message::cstring;
use super::orc::LlJit;
use super::{Function, Linkage, Module, Value, Visibility};

/// Name the dso handle global gets in the JIT.
pub const DSO_HANDLE: &str = "__thinjit_dso_handle";
/// Name `__cxa_atexit` is redirected to (an absolute symbol: [`AtExitRegistry::cxa_atexit_address`]).
pub const CXA_ATEXIT: &str = "__thinjit_cxa_atexit";
/// Name `atexit` is redirected to (an IR wrapper passing the dso handle to the registry).
pub const ATEXIT: &str = "__thinjit_atexit";
/// The registry's `atexit` entry point the wrapper calls (an absolute symbol).
pub const ATEXIT_IMPL: &str = "__thinjit_atexit_impl";

/// The engine's runtime-support module: the dso handle (holding the registry key `KEY`), the `atexit` wrapper.
/// Use [`support_ir`].
const SUPPORT_IR: &str = r#"
@__thinjit_dso_handle = global i64 KEY
declare i32 @__thinjit_atexit_impl(ptr, ptr)
define i32 @__thinjit_atexit(ptr %f) {
  %r = call i32 @__thinjit_atexit_impl(ptr %f, ptr @__thinjit_dso_handle)
  ret i32 %r
}
"#;

/// The engine's runtime-support module for an engine whose registry has key `key`.
pub fn support_ir(key: u64) -> String {
    SUPPORT_IR.replace("KEY", &key.to_string())
}

/// A permanent definition of the personality-routine cell codegen emits (weak, hidden) into every object with
/// C++ landing pads. ORC binds all of them to the first definition; if that were a script that is later
/// removed, every other script's exception tables would point into freed memory. This one is never removed.
pub const PERSONALITY_PIN_IR: &str = r#"
@"DW.ref.__gxx_personality_v0" = weak hidden global ptr @__gxx_personality_v0
declare i32 @__gxx_personality_v0(...)
"#;

/// Suffix counter for structor functions made visible by [`Module::take_structors`].
static NEXT_STRUCTOR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Static constructors and destructors taken out of a module, in the order they must run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Structors {
    ctors: Vec<String>,
    dtors: Vec<String>,
}

impl Structors {
    /// Constructor function names, in run order (ascending priority, array order within a priority).
    pub fn ctors(&self) -> &[String] {
        &self.ctors
    }

    /// Destructor function names, in run order (descending priority).
    pub fn dtors(&self) -> &[String] {
        &self.dtors
    }

    /// Lists recorded elsewhere (a summary's runtime object).
    pub fn new(ctors: Vec<String>, dtors: Vec<String>) -> Self {
        Structors { ctors, dtors }
    }

    /// Appends another module's lists.
    pub fn extend(&mut self, other: Structors) {
        self.ctors.extend(other.ctors);
        self.dtors.extend(other.dtors);
    }
}

/// Reads `(priority, function)` entries of an `llvm.global_ctors`-style array.
fn structor_entries<'ctx>(array: Value<'ctx>) -> Vec<(u64, Function<'ctx>)> {
    let mut out = Vec::new();
    for entry in array.operands() {
        let mut ops = entry.operands();
        let (Some(priority), Some(function)) = (ops.next(), ops.next()) else {
            continue;
        };
        let Some(priority) = priority.const_int_value() else {
            continue;
        };
        if let Some(function) = function.as_function() {
            out.push((priority, function));
        }
    }
    out
}

impl Module<'_> {
    /// Takes `llvm.global_ctors` and `llvm.global_dtors` out of the module and returns the functions they name,
    /// in run order. A function with local linkage is made externally visible (`hidden`, so only this JIT sees
    /// it) under a process-unique name (`<name>.thinjit.<n>`) so it can be looked up without clashing with
    /// another module's.
    pub fn take_structors(&mut self) -> Structors {
        self.take_structors_with(|name, _| {
            let n = NEXT_STRUCTOR.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("{name}.thinjit.{n}")
        })
    }

    /// [`Module::take_structors`] with deterministic names for local structors: `<name>.thinjit.<tag>.<i>`
    /// (`i` counts the structors made visible). For code that is compiled once and loaded later (the
    /// precompiled runtime object, cached scripts), where the names are baked into the object.
    pub fn take_structors_tagged(&mut self, tag: &str) -> Structors {
        self.take_structors_with(|name, i| format!("{name}.thinjit.{tag}.{i}"))
    }

    fn take_structors_with(&mut self, mut rename: impl FnMut(&str, usize) -> String) -> Structors {
        let mut renamed = 0;
        let mut result = Structors::default();
        for (array_name, descending) in [("llvm.global_ctors", false), ("llvm.global_dtors", true)]
        {
            let Some(global) = self.global(array_name) else {
                continue;
            };
            let mut entries = global
                .initializer()
                .map(structor_entries)
                .unwrap_or_default();
            if descending {
                entries.sort_by_key(|(p, _)| std::cmp::Reverse(*p));
            } else {
                entries.sort_by_key(|(p, _)| *p);
            }
            // SAFETY: the array's only handle is `global`, dropped here; nothing uses an appending
            // `llvm.global_*` array (the entries keep their functions alive; the functions do not refer back).
            unsafe { global.erase() };
            for (_, function) in entries {
                if function.linkage().is_local() {
                    function.set_name(&rename(&function.name(), renamed));
                    renamed += 1;
                    function.set_linkage(Linkage::External);
                    function.set_visibility(Visibility::Hidden);
                }
                let names = if descending {
                    &mut result.dtors
                } else {
                    &mut result.ctors
                };
                names.push(function.name());
            }
        }
        result
    }

    /// Deletes `llvm.global_ctors` and `llvm.global_dtors` without running or exposing what they name (the
    /// functions keep their linkage; unused local ones become dead code).
    pub fn drop_structors(&mut self) {
        for array_name in ["llvm.global_ctors", "llvm.global_dtors"] {
            if let Some(global) = self.global(array_name) {
                // SAFETY: as in `take_structors_with`: the only handle, and nothing uses the array.
                unsafe { global.erase() };
            }
        }
    }

    /// Redirects the module's references to `__cxa_atexit`, `atexit` and `__dso_handle` to the engine's
    /// registry ([`CXA_ATEXIT`], [`ATEXIT`], [`DSO_HANDLE`]). Returns whether anything was redirected.
    pub fn redirect_atexit(&mut self) -> bool {
        let mut changed = false;
        for (from, to) in [("__cxa_atexit", CXA_ATEXIT), ("atexit", ATEXIT)] {
            if let Some(f) = self.function(from) {
                if f.is_declaration() {
                    f.set_name(to);
                    changed = true;
                }
            }
        }
        if let Some(g) = self.global("__dso_handle") {
            if g.is_declaration() {
                g.set_name(DSO_HANDLE);
                changed = true;
            }
        }
        changed
    }

    /// Gives the module its own dso handle as an exported (hidden) zero-initialized global named `name`, for
    /// objects compiled once and loaded later: the loader writes the registry key into it
    /// ([`LlJit::write_dso_key`]) before any of the module's code runs. Returns whether the module references a
    /// dso handle at all.
    pub fn export_dso_handle(&mut self, name: &str) -> bool {
        let Some(old) = self.global(DSO_HANDLE) else {
            return false;
        };
        if !old.is_declaration() {
            return false;
        }
        if let Some(existing) = self.global(name) {
            // Exported by an earlier call (new references arrived with imported code): share it.
            // SAFETY: both globals are live pointers of this module; RAUW before deleting the declaration.
            unsafe {
                llvm_sys::core::LLVMReplaceAllUsesWith(old.as_raw(), existing.as_raw());
                llvm_sys::core::LLVMDeleteGlobal(old.as_raw());
            }
            return true;
        }
        let cname = cstring(name).unwrap_or_default();
        // SAFETY: as in `localize_dso_handle`: the new global lives in the module's context and replaces every
        // use of the declaration before it is deleted.
        unsafe {
            let ctx = self.context().as_raw();
            let i64_ty = llvm_sys::core::LLVMInt64TypeInContext(ctx);
            let new = llvm_sys::core::LLVMAddGlobal(self.as_raw(), i64_ty, cname.as_ptr());
            llvm_sys::core::LLVMSetInitializer(new, llvm_sys::core::LLVMConstInt(i64_ty, 0, 0));
            llvm_sys::core::LLVMSetLinkage(new, llvm_sys::LLVMLinkage::LLVMExternalLinkage);
            llvm_sys::core::LLVMSetVisibility(new, llvm_sys::LLVMVisibility::LLVMHiddenVisibility);
            llvm_sys::core::LLVMSetAlignment(new, 8);
            llvm_sys::core::LLVMReplaceAllUsesWith(old.as_raw(), new);
            llvm_sys::core::LLVMDeleteGlobal(old.as_raw());
        }
        true
    }

    /// Gives the module its own dso handle, holding `key` (after [`Module::redirect_atexit`]): its
    /// `__cxa_atexit` registrations then go to the registry with that key. Returns whether the module
    /// references a dso handle at all.
    pub fn localize_dso_handle(&mut self, key: u64) -> bool {
        let Some(old) = self.global(DSO_HANDLE) else {
            return false;
        };
        if !old.is_declaration() {
            return false;
        }
        let name = cstring(&format!("{DSO_HANDLE}.{key}")).unwrap_or_default();
        // SAFETY: the module and `old` are live; the new global is created in the module's context; RAUW
        // replaces every use of the declaration (a pointer, like the new global) before it is deleted.
        unsafe {
            let ctx = self.context().as_raw();
            let i64_ty = llvm_sys::core::LLVMInt64TypeInContext(ctx);
            let new = llvm_sys::core::LLVMAddGlobal(self.as_raw(), i64_ty, name.as_ptr());
            llvm_sys::core::LLVMSetInitializer(new, llvm_sys::core::LLVMConstInt(i64_ty, key, 0));
            llvm_sys::core::LLVMSetLinkage(new, llvm_sys::LLVMLinkage::LLVMInternalLinkage);
            llvm_sys::core::LLVMSetAlignment(new, 8);
            llvm_sys::core::LLVMReplaceAllUsesWith(old.as_raw(), new);
            llvm_sys::core::LLVMDeleteGlobal(old.as_raw());
        }
        true
    }
}

/// Prepares the promoted helper library for JIT-resident use: takes its static constructors and destructors
/// out (local ones get deterministic names, `<name>.thinjit.rt.<i>`) and redirects `__cxa_atexit` / `atexit` /
/// `__dso_handle` to the engine's registry. The engine applies it to the library bitcode, and
/// `precompute-summary --object` before compiling the runtime object, so both paths define the same symbols.
pub fn prepare_resident_library(module: &mut Module<'_>) -> Structors {
    let structors = module.take_structors_tagged("rt");
    module.redirect_atexit();
    structors
}

impl LlJit {
    /// Writes `key` into the dso handle `name` that a loaded object defines ([`Module::export_dso_handle`]),
    /// so that the object's `__cxa_atexit` registrations reach the registry with that key.
    pub fn write_dso_key(&self, name: &str, key: u64) -> Result<(), crate::OrcFailure> {
        let address = self.lookup(name)?;
        if address == 0 || address % 8 != 0 {
            return Err(crate::OrcFailure::other(format!(
                "dso handle `{name}` at {address:#x} is not an aligned i64"
            )));
        }
        // SAFETY: `name` is a writable, 8-aligned `i64` global (made by `export_dso_handle`, external linkage,
        // not constant) in an object this JIT has just linked; no code of that object runs before the write.
        unsafe { std::ptr::write_volatile(address as usize as *mut u64, key) };
        Ok(())
    }

    /// [`LlJit::run_structors`] with the names looked up in `dylib`.
    pub fn run_structors_in(
        &self,
        dylib: super::orc::JitDylib,
        names: &[String],
    ) -> Result<(), crate::OrcFailure> {
        for name in names {
            let address = self.lookup_in(dylib, name)?;
            // SAFETY: as in `run_structors`: `void()` functions from `llvm.global_ctors` / `llvm.global_dtors`,
            // at an address from a successful lookup in this live JIT.
            unsafe {
                let f: extern "C" fn() = std::mem::transmute(address as usize);
                f();
            }
        }
        Ok(())
    }

    /// Runs `names` (functions taken from `llvm.global_ctors` / `llvm.global_dtors` by
    /// [`Module::take_structors`]) in order, looking each one up first. Stops at the first lookup error.
    pub fn run_structors(&self, names: &[String]) -> Result<(), crate::OrcFailure> {
        for name in names {
            let address = self.lookup(name)?;
            // SAFETY: `Structors` only holds functions from `llvm.global_ctors`/`llvm.global_dtors` entries, which
            // LLVM calls as `void()` (LangRef, "The llvm.global_ctors Global Variable"); the address comes from a
            // successful lookup in this live JIT.
            unsafe {
                let f: extern "C" fn() = std::mem::transmute(address as usize);
                f();
            }
        }
        Ok(())
    }
}

/// One registration: `f(arg)` (`__cxa_atexit`) or `f()` (`atexit`).
#[derive(Clone, Copy, Debug)]
enum Handler {
    WithArg { f: usize, arg: usize },
    Plain { f: usize },
}

type Handlers = Arc<Mutex<Vec<Handler>>>;

/// Registries by key (the value a dso handle holds).
static REGISTRIES: Mutex<BTreeMap<u64, Handlers>> = Mutex::new(BTreeMap::new());

/// Keys for registries; never reused within a process.
static NEXT_KEY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The handlers JIT'd code registered with `__cxa_atexit` / `atexit` under one dso handle.
///
/// Create one, put its [`AtExitRegistry::key`] in a dso handle ([`support_ir`],
/// [`Module::localize_dso_handle`]), define [`CXA_ATEXIT`] and [`ATEXIT_IMPL`] as absolute symbols at
/// [`AtExitRegistry::cxa_atexit_address`] / [`AtExitRegistry::atexit_impl_address`], and call
/// [`AtExitRegistry::run`] before the code is freed.
#[derive(Debug)]
pub struct AtExitRegistry {
    key: u64,
    handlers: Handlers,
}

impl Default for AtExitRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl AtExitRegistry {
    /// A new, empty registry with a fresh key.
    pub fn new() -> Self {
        let handlers = Handlers::default();
        let key = NEXT_KEY.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut map) = REGISTRIES.lock() {
            map.insert(key, Arc::clone(&handlers));
        }
        AtExitRegistry { key, handlers }
    }

    /// The key a dso handle must hold for registrations to reach this registry.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// Address of the `__cxa_atexit(void (*)(void *), void *, void *)` replacement.
    pub fn cxa_atexit_address() -> u64 {
        thinjit_cxa_atexit as *const () as usize as u64
    }

    /// Address of the `atexit` replacement's implementation (`int (void (*)(void), void *dso)`).
    pub fn atexit_impl_address() -> u64 {
        thinjit_atexit_impl as *const () as usize as u64
    }

    /// How many handlers are registered and not yet run.
    pub fn len(&self) -> usize {
        self.handlers.lock().map(|h| h.len()).unwrap_or(0)
    }

    /// `true` when no handler is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs every registered handler once, last registered first (handlers registered while running are run
    /// too). Returns how many ran. The JIT'd code they point to must still be loaded.
    pub fn run(&self) -> usize {
        let mut ran = 0;
        loop {
            let next = match self.handlers.lock() {
                Ok(mut h) => h.pop(),
                Err(_) => None,
            };
            let Some(handler) = next else {
                return ran;
            };
            // SAFETY: handlers were registered by JIT'd code through `__cxa_atexit` / `atexit` with function
            // pointers of exactly these C signatures; the caller keeps the JIT (and so the code) alive.
            unsafe {
                match handler {
                    Handler::WithArg { f, arg } => {
                        let f: extern "C" fn(*mut libc::c_void) = std::mem::transmute(f);
                        f(arg as *mut libc::c_void);
                    }
                    Handler::Plain { f } => {
                        let f: extern "C" fn() = std::mem::transmute(f);
                        f();
                    }
                }
            }
            ran += 1;
        }
    }
}

impl Drop for AtExitRegistry {
    fn drop(&mut self) {
        if let Ok(mut map) = REGISTRIES.lock() {
            map.remove(&self.key);
        }
    }
}

fn register(dso: *mut libc::c_void, handler: Handler) -> libc::c_int {
    if dso.is_null() || (dso as usize) % std::mem::align_of::<u64>() != 0 {
        return -1;
    }
    // SAFETY: every `__dso_handle` reference in JIT'd code was redirected to a thinjit dso handle: a JIT'd,
    // 8-aligned `i64` holding a registry key, alive while the code that passes it can run.
    let key = unsafe { *(dso as *const u64) };
    let handlers = match REGISTRIES.lock() {
        Ok(map) => map.get(&key).cloned(),
        Err(_) => None,
    };
    let Some(handlers) = handlers else {
        return -1;
    };
    let pushed = match handlers.lock() {
        Ok(mut v) => {
            v.push(handler);
            true
        }
        Err(_) => false,
    };
    if pushed {
        0
    } else {
        -1
    }
}

extern "C" fn thinjit_cxa_atexit(
    f: Option<extern "C" fn(*mut libc::c_void)>,
    arg: *mut libc::c_void,
    dso: *mut libc::c_void,
) -> libc::c_int {
    match f {
        Some(f) => register(
            dso,
            Handler::WithArg {
                f: f as usize,
                arg: arg as usize,
            },
        ),
        None => -1,
    }
}

extern "C" fn thinjit_atexit_impl(
    f: Option<extern "C" fn()>,
    dso: *mut libc::c_void,
) -> libc::c_int {
    match f {
        Some(f) => register(dso, Handler::Plain { f: f as usize }),
        None => -1,
    }
}
