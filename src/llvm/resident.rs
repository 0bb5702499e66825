//! The unsafe primitives a JIT needs to host C/C++ code that expects a process around it: reading
//! `llvm.global_ctors`-style arrays, replacing a declared global by a definition, calling static constructors
//! and destructors that were looked up, writing a dso handle's key, and the registry `__cxa_atexit` / `atexit`
//! registrations from JIT'd code go to.
//!
//! Crate-private: every function here either calls a looked-up address or frees IR, and is sound only under
//! invariants the engine keeps (`src/jit/runtime.rs` holds the policy: which names, when structors run, which
//! dso handle a script gets). The model is `GlobalCtorDtorScraper` in LLVM's `LLJIT.cpp`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::message::cstring;
use super::orc::LlJit;
use super::{Function, Linkage, Module, Value, Visibility};

/// Reads `(priority, function)` entries of an `llvm.global_ctors`-style array.
fn structor_entries<'m>(array: Value<'m>) -> Vec<(u64, Function<'m>)> {
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
    /// Takes the appending array `name` (`llvm.global_ctors` or `llvm.global_dtors`) out of the module and
    /// returns its `(priority, function)` entries in array order (empty when there is none).
    pub(crate) fn take_structor_array(&mut self, name: &str) -> Vec<(u64, Function<'_>)> {
        let Some(global) = self.global(name) else {
            return Vec::new();
        };
        let entries: Vec<(u64, llvm_sys::prelude::LLVMValueRef)> = global
            .initializer()
            .map(structor_entries)
            .unwrap_or_default()
            .into_iter()
            .map(|(priority, f)| (priority, f.as_raw()))
            .collect();
        self.erase_appending_arrays(&[name]);
        entries
            .into_iter()
            // SAFETY: functions of this module; erasing the array freed only the array (its initializer, a
            // constant of the context, keeps referring to them but is not freed either).
            .map(|(priority, f)| (priority, unsafe { Function::from_raw(f) }))
            .collect()
    }

    /// Replaces the declaration `old` (a global variable) by a new 8-aligned `i64` global `name` initialized
    /// to `value`, with `linkage` and `visibility`: every use of `old` now refers to the new global, and `old`
    /// is deleted. Returns `false` (and changes nothing) when `old` does not exist or is not a declaration.
    pub(crate) fn replace_declaration_with_i64(
        &mut self,
        old: &str,
        name: &str,
        value: u64,
        linkage: Linkage,
        visibility: Visibility,
    ) -> bool {
        let Some(old) = self.global(old) else {
            return false;
        };
        if !old.is_declaration() {
            return false;
        }
        if let Some(existing) = self.global(name) {
            // Made by an earlier call (new references arrived with imported code): share it.
            // SAFETY: both globals are live pointers of this module; `old` is a declaration whose uses move to
            // `existing` before it is deleted, and its handle is not used afterwards.
            unsafe {
                llvm_sys::core::LLVMReplaceAllUsesWith(old.as_raw(), existing.as_raw());
                llvm_sys::core::LLVMDeleteGlobal(old.as_raw());
            }
            return true;
        }
        let Ok(cname) = cstring(name) else {
            return false;
        };
        // SAFETY: the new global lives in the module's context; RAUW replaces every use of the declaration (a
        // pointer, like the new global) before it is deleted; `old`'s handle is not used afterwards.
        unsafe {
            let ctx = self.context().as_raw();
            let i64_ty = llvm_sys::core::LLVMInt64TypeInContext(ctx);
            let new = llvm_sys::core::LLVMAddGlobal(self.as_raw(), i64_ty, cname.as_ptr());
            llvm_sys::core::LLVMSetInitializer(new, llvm_sys::core::LLVMConstInt(i64_ty, value, 0));
            llvm_sys::core::LLVMSetAlignment(new, 8);
            llvm_sys::core::LLVMReplaceAllUsesWith(old.as_raw(), new);
            llvm_sys::core::LLVMDeleteGlobal(old.as_raw());
            let new = super::GlobalValue::from_raw(new);
            new.set_linkage(linkage);
            new.set_visibility(visibility);
        }
        true
    }
}

impl LlJit {
    /// Writes `key` into the dso handle `name` that a loaded object defines, so that the object's
    /// `__cxa_atexit` registrations reach the registry with that key.
    ///
    /// Crate-private: sound only for a writable, 8-aligned `i64` the engine itself defined (an exported dso
    /// handle, external linkage, not constant) in an object this JIT has just linked, before any of its code
    /// runs.
    pub(crate) fn write_dso_key(&self, name: &str, key: u64) -> Result<(), crate::OrcFailure> {
        let address = self.lookup(name)?;
        if address == 0 || address % 8 != 0 {
            return Err(crate::OrcFailure::other(format!(
                "dso handle `{name}` at {address:#x} is not an aligned i64"
            )));
        }
        // SAFETY: see the contract above: the engine only passes names of dso handles it made.
        unsafe { std::ptr::write_volatile(address as usize as *mut u64, key) };
        Ok(())
    }

    /// [`LlJit::run_structors`] with the names looked up in `dylib`.
    ///
    /// Crate-private, with the same contract as [`LlJit::run_structors`].
    pub(crate) fn run_structors_in(
        &self,
        dylib: &super::orc::JitDylib,
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

    /// Runs `names` (functions taken from `llvm.global_ctors` / `llvm.global_dtors`) in order, looking each one
    /// up first. Stops at the first lookup error.
    ///
    /// Crate-private: sound only for names the engine took from structor arrays (LLVM calls them as
    /// `void()`), whose code is loaded.
    pub(crate) fn run_structors(&self, names: &[String]) -> Result<(), crate::OrcFailure> {
        for name in names {
            let address = self.lookup(name)?;
            // SAFETY: the engine only passes functions from `llvm.global_ctors`/`llvm.global_dtors` entries, which
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
/// The engine creates one per dso handle, puts its [`AtExitRegistry::key`] in the handle, defines the
/// `__cxa_atexit` / `atexit` replacements as absolute symbols at [`AtExitRegistry::cxa_atexit_address`] /
/// [`AtExitRegistry::atexit_impl_address`], and calls [`AtExitRegistry::run`] before the code is freed.
/// Crate-private: running calls function pointers JIT'd code registered.
#[derive(Debug)]
pub(crate) struct AtExitRegistry {
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
    #[allow(dead_code)]
    pub fn len(&self) -> usize {
        self.handlers.lock().map(|h| h.len()).unwrap_or(0)
    }

    /// `true` when no handler is waiting.
    #[allow(dead_code)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs every registered handler once, last registered first (handlers registered while running are run
    /// too). Returns how many ran. The JIT'd code they point to must still be loaded: the engine calls it
    /// before it removes that code.
    pub(crate) fn run(&self) -> usize {
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
