//! thinjit's C API: the functions declared in `include/thinjit.h`, exported from `libthinjit_capi.so` /
//! `libthinjit_capi.a`.
//!
//! In: C pointers — thinjit handles, LLVM-C handles of the caller's own LLVM objects (`LLVMModuleRef`,
//! `LLVMOrcLLJITRef`, ...), strings. Out: the same library calls the Rust API makes (`thinjit::import::import`
//! on the caller's module, borrowed through `thinjit::llvm::Module::borrow_raw`; the import-aware optimizer;
//! reports), results through out-parameters and errors as `thinjitErrorRef` values.
//!
//! Every exported function runs its body inside [`boundary::guard`] (`catch_unwind`): nothing unwinds into C.
//! Handles are checked against the table of live handles before they are used ([`boundary::get`]), so NULL,
//! disposed and foreign pointers are errors. The header documents each function's contract (ownership of
//! every argument); the `# Safety` sections here refer to it.

#![allow(clippy::missing_safety_doc)]

mod boundary;
mod config;
mod orc;
mod report;

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use llvm_sys::prelude::LLVMModuleRef;
use thinjit::import::{ImportConfig, ImportReport};
use thinjit::llvm::{CodeGenOpt, Context, Module, TargetMachine};
use thinjit::optimize::OptLevel;
use thinjit::summary::Summary;

use boundary::{
    check_out, get, guard, owned_string, register, str_arg, unregister, write_out, CError,
    HandleKind,
};
pub use boundary::{
    thinjit_error_dispose, thinjit_error_kind, thinjit_error_message, thinjit_string_dispose,
    ErrorHandle,
};
pub use orc::*;
pub use report::*;

/// What a `thinjitSummaryRef` points to. Shared (`Arc`) with the runtimes and transforms made from it, so
/// the caller may dispose it first.
#[derive(Debug)]
pub struct SummaryHandle {
    summary: Arc<Summary>,
}

/// What a `thinjitConfigRef` points to.
#[derive(Debug)]
pub struct ConfigHandle {
    config: Mutex<config::Settings>,
}

/// thinjit's version, NUL-terminated.
static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

#[no_mangle]
pub extern "C" fn thinjit_version() -> *const c_char {
    boundary::guard_value(c"".as_ptr(), || VERSION.as_ptr() as *const c_char)
}

#[no_mangle]
pub extern "C" fn thinjit_llvm_version() -> *const c_char {
    static TEXT: OnceLock<CString> = OnceLock::new();
    boundary::guard_value(c"".as_ptr(), || {
        TEXT.get_or_init(|| CString::new(thinjit::llvm::llvm_version()).unwrap_or_default())
            .as_ptr()
    })
}

// ----------------------------------------------------------------------------------------------------------
// Summaries
// ----------------------------------------------------------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn thinjit_summary_load(
    path: *const c_char,
    out: *mut *mut SummaryHandle,
) -> *mut ErrorHandle {
    guard(|| {
        check_out(out, "out")?;
        // SAFETY: a NUL-terminated string (header contract).
        let path = unsafe { str_arg(path, "path") }?;
        let summary = Summary::load(path.as_ref())?;
        let handle = register(
            SummaryHandle {
                summary: Arc::new(summary),
            },
            HandleKind::Summary,
        );
        // SAFETY: checked non-null above; valid for writes (header contract).
        unsafe { write_out(out, "out", handle) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_summary_load_from_memory(
    data: *const c_void,
    size: usize,
    name: *const c_char,
    out: *mut *mut SummaryHandle,
) -> *mut ErrorHandle {
    guard(|| {
        check_out(out, "out")?;
        if data.is_null() {
            return Err(CError::invalid("`data` is NULL"));
        }
        let name = if name.is_null() {
            "<summary in memory>"
        } else {
            // SAFETY: a NUL-terminated string (header contract).
            unsafe { str_arg(name, "name") }?
        };
        // SAFETY: `data` points to `size` readable bytes (header contract); they are copied.
        let bytes = unsafe { std::slice::from_raw_parts(data as *const u8, size) }.to_vec();
        let summary = Summary::from_bytes(bytes, name)?;
        let handle = register(
            SummaryHandle {
                summary: Arc::new(summary),
            },
            HandleKind::Summary,
        );
        // SAFETY: checked non-null above.
        unsafe { write_out(out, "out", handle) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_summary_dispose(summary: *mut SummaryHandle) {
    boundary::guard_value((), || {
        // SAFETY: only a live summary handle is taken and dropped.
        drop(unsafe { unregister(summary, HandleKind::Summary) });
    })
}

/// The summary behind a handle.
pub(crate) unsafe fn summary_arg<'a>(raw: *mut SummaryHandle) -> Result<&'a SummaryHandle, CError> {
    // SAFETY: forwarded (the table check).
    unsafe { get(raw, HandleKind::Summary, "summary") }
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_summary_function_count(
    summary: *mut SummaryHandle,
    out: *mut usize,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle; out-pointer per the header.
        unsafe {
            let s = summary_arg(summary)?;
            write_out(out, "out", s.summary.index().functions.len())
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_summary_variable_count(
    summary: *mut SummaryHandle,
    out: *mut usize,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle; out-pointer per the header.
        unsafe {
            let s = summary_arg(summary)?;
            write_out(out, "out", s.summary.index().variables.len())
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_summary_target_triple(
    summary: *mut SummaryHandle,
    out: *mut *mut c_char,
) -> *mut ErrorHandle {
    guard(|| {
        check_out(out, "out")?;
        // SAFETY: checked handle; out-pointer per the header.
        unsafe {
            let s = summary_arg(summary)?;
            write_out(out, "out", owned_string(&s.summary.header().target_triple))
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_summary_has_runtime_object(
    summary: *mut SummaryHandle,
    out: *mut c_int,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle; out-pointer per the header.
        unsafe {
            let s = summary_arg(summary)?;
            write_out(out, "out", s.summary.runtime_object().is_some() as c_int)
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_summary_defines(
    summary: *mut SummaryHandle,
    name: *const c_char,
    out: *mut c_int,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle; string and out-pointer per the header.
        unsafe {
            let s = summary_arg(summary)?;
            let name = str_arg(name, "name")?;
            let index = s.summary.index();
            let defined = index.function(name).is_some() || index.variable(name).is_some();
            write_out(out, "out", defined as c_int)
        }
    })
}

// ----------------------------------------------------------------------------------------------------------
// Configuration
// ----------------------------------------------------------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn thinjit_config_create(out: *mut *mut ConfigHandle) -> *mut ErrorHandle {
    guard(|| {
        check_out(out, "out")?;
        let handle = register(
            ConfigHandle {
                config: Mutex::new(config::Settings::default()),
            },
            HandleKind::Config,
        );
        // SAFETY: checked non-null above.
        unsafe { write_out(out, "out", handle) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_config_dispose(config: *mut ConfigHandle) {
    boundary::guard_value((), || {
        // SAFETY: only a live config handle is taken and dropped.
        drop(unsafe { unregister(config, HandleKind::Config) });
    })
}

/// Runs `f` on the configuration behind a handle.
pub(crate) unsafe fn with_config<R>(
    raw: *mut ConfigHandle,
    f: impl FnOnce(&mut config::Settings) -> Result<R, CError>,
) -> Result<R, CError> {
    // SAFETY: forwarded (the table check).
    let handle = unsafe { get(raw, HandleKind::Config, "config") }?;
    let mut config = handle
        .config
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    f(&mut config)
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_config_set(
    config: *mut ConfigHandle,
    name: *const c_char,
    value: *const c_char,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: strings per the header; checked handle.
        unsafe {
            let name = str_arg(name, "name")?;
            let value = str_arg(value, "value")?;
            with_config(config, |c| config::set(c, name, value))
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_config_get(
    config: *mut ConfigHandle,
    name: *const c_char,
    out: *mut *mut c_char,
) -> *mut ErrorHandle {
    guard(|| {
        check_out(out, "out")?;
        // SAFETY: strings and out-pointer per the header; checked handle.
        unsafe {
            let name = str_arg(name, "name")?;
            let text = with_config(config, |c| config::get(c, name))?;
            write_out(out, "out", owned_string(&text))
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_config_set_instr_limit(
    config: *mut ConfigHandle,
    limit: u32,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle.
        unsafe {
            with_config(config, |c| {
                c.import.import_instr_limit = limit;
                Ok(())
            })
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_config_set_runtime_mode(
    config: *mut ConfigHandle,
    mode: c_int,
) -> *mut ErrorHandle {
    guard(|| {
        let mode = match mode {
            0 => "jit-resident",
            1 => "host-native",
            other => {
                return Err(CError::invalid(format!(
                    "runtime mode {other} is not a thinjitRuntimeMode (0 or 1)"
                )))
            }
        };
        // SAFETY: checked handle.
        unsafe { with_config(config, |c| config::set(c, "runtime-mode", mode)) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_config_allow(
    config: *mut ConfigHandle,
    function: *const c_char,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: string per the header; checked handle.
        unsafe {
            let name = str_arg(function, "function")?;
            with_config(config, |c| add_one(&mut c.import, name, true))
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_config_deny(
    config: *mut ConfigHandle,
    symbol: *const c_char,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: string per the header; checked handle.
        unsafe {
            let name = str_arg(symbol, "symbol")?;
            with_config(config, |c| add_one(&mut c.import, name, false))
        }
    })
}

/// Adds one name to the allow or deny list (validated: a name in both lists is refused).
fn add_one(config: &mut ImportConfig, name: &str, allow: bool) -> Result<(), CError> {
    if name.is_empty() {
        return Err(CError::invalid("the symbol name is empty"));
    }
    let mut next = config.clone();
    if allow {
        next.allow.insert(name.to_owned());
    } else {
        next.deny.insert(name.to_owned());
    }
    next.validate()?;
    *config = next;
    Ok(())
}

// ----------------------------------------------------------------------------------------------------------
// Import and optimize on the caller's module
// ----------------------------------------------------------------------------------------------------------

/// The host's target triple (what the caller's LLJIT compiles for).
fn host_triple() -> &'static str {
    static TRIPLE: OnceLock<String> = OnceLock::new();
    TRIPLE.get_or_init(thinjit::llvm::host_triple)
}

/// Imports into the caller's module, in the caller's context: the Rust API's `thinjit::import::import` on
/// the module borrowed in place. A module without a triple is checked against the host's.
///
/// # Safety
/// `module` must be a live module whose context no other thread uses during the call.
pub(crate) unsafe fn import_raw(
    module: LLVMModuleRef,
    summary: &Summary,
    settings: &config::Settings,
) -> Result<ImportReport, CError> {
    if module.is_null() {
        return Err(CError::invalid("`module` is NULL"));
    }
    // SAFETY: a live module (caller's promise); its context lives as long as it and is ours for the call.
    let ctx = unsafe { Context::borrow_raw(llvm_sys::core::LLVMGetModuleContext(module)) };
    // SAFETY: the module lives in `ctx` and outlives the borrow; thinjit never disposes it.
    let mut m = unsafe { Module::borrow_raw(&ctx, module) };
    if m.triple().is_empty() {
        summary.check_target(host_triple(), "")?;
    }
    Ok(thinjit::import::import(
        &mut m,
        summary,
        &settings.import,
        settings.mode,
    )?)
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_import(
    module: LLVMModuleRef,
    summary: *mut SummaryHandle,
    config: *mut ConfigHandle,
    report: *mut *mut ReportHandle,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handles; the module per the header.
        unsafe {
            let s = summary_arg(summary)?;
            // A copy, so concurrent imports with one config do not wait for each other.
            let settings = if config.is_null() {
                config::Settings::default()
            } else {
                with_config(config, |c| Ok(c.clone()))?
            };
            let result = import_raw(module, &s.summary, &settings)?;
            if !report.is_null() {
                report.write(register(ReportHandle::new(result), HandleKind::Report));
            }
        }
        Ok(())
    })
}

/// The optimization level for a `thinjitOptLevel` value.
pub(crate) fn opt_level(level: c_int) -> Result<OptLevel, CError> {
    Ok(match level {
        0 => OptLevel::O0,
        1 => OptLevel::O1,
        2 => OptLevel::O2,
        3 => OptLevel::O3,
        other => {
            return Err(CError::invalid(format!(
                "optimization level {other} is not a thinjitOptLevel (0..3)"
            )))
        }
    })
}

thread_local! {
    /// Target machines by triple, one set per thread (a TargetMachine is not shared across threads).
    static MACHINES: RefCell<HashMap<String, TargetMachine>> = RefCell::new(HashMap::new());
}

/// Runs the import-aware pipeline on `module` (borrowed), for the host (or the module's own triple).
///
/// # Safety
/// As for [`import_raw`].
pub(crate) unsafe fn optimize_raw(module: LLVMModuleRef, level: OptLevel) -> Result<(), CError> {
    if module.is_null() {
        return Err(CError::invalid("`module` is NULL"));
    }
    // SAFETY: as in `import_raw`.
    let ctx = unsafe { Context::borrow_raw(llvm_sys::core::LLVMGetModuleContext(module)) };
    // SAFETY: as in `import_raw`.
    let mut m = unsafe { Module::borrow_raw(&ctx, module) };
    optimize_module(&mut m, level)
}

/// `thinjit::import::optimize` with this thread's target machine for the module's triple (the host's when
/// it has none). The module is verified first: `optimize` sets a missing triple and data layout before its
/// own check, and a module that does not verify must come back untouched.
pub(crate) fn optimize_module(m: &mut Module<'_>, level: OptLevel) -> Result<(), CError> {
    m.verify()?;
    let triple = match m.triple() {
        t if t.is_empty() => host_triple().to_owned(),
        t => t,
    };
    MACHINES.with(|machines| {
        let mut machines = machines.borrow_mut();
        if !machines.contains_key(&triple) {
            let tm = if triple == host_triple() {
                TargetMachine::host(CodeGenOpt::Aggressive)?
            } else {
                TargetMachine::new(&triple, "", "", CodeGenOpt::Aggressive)?
            };
            machines.insert(triple.clone(), tm);
        }
        let tm = &machines[&triple];
        thinjit::optimize::optimize(m, tm, level)?;
        Ok(())
    })
}

/// Calls left to each function in `m`, by callee name (what import + optimize did not inline).
pub(crate) fn calls_by_callee(m: &Module<'_>) -> HashMap<String, u64> {
    let mut calls = HashMap::new();
    for f in m.functions() {
        for inst in f.instructions() {
            if let Some(callee) = inst.called_function() {
                *calls.entry(callee.name()).or_insert(0) += 1;
            }
        }
    }
    calls
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_optimize(
    module: LLVMModuleRef,
    level: c_int,
    report: *mut ReportHandle,
) -> *mut ErrorHandle {
    guard(|| {
        let level = opt_level(level)?;
        // SAFETY: a checked handle when non-NULL.
        let report = if report.is_null() {
            None
        } else {
            Some(unsafe { get(report, HandleKind::Report, "report") }?)
        };
        let t = Instant::now();
        // SAFETY: the module per the header.
        unsafe { optimize_raw(module, level) }?;
        if let Some(r) = report {
            let elapsed = t.elapsed();
            // SAFETY: as above; the module was just optimized and is still the caller's.
            let calls = unsafe {
                let ctx = Context::borrow_raw(llvm_sys::core::LLVMGetModuleContext(module));
                let m = Module::borrow_raw(&ctx, module);
                calls_by_callee(&m)
            };
            r.record_optimize(elapsed, &calls);
        }
        Ok(())
    })
}
