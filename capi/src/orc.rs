//! The ORC plug-in for the caller's own LLJIT: the JIT-resident helper runtime
//! (`thinjit_resident_runtime_*`, the library's `thinjit::jit::ResidentRuntime`) and an IR transform for the
//! LLJIT's IRTransformLayer that imports + optimizes every module ORC materializes
//! (`thinjit_ir_transform_*`).
//!
//! In: `LLVMOrcLLJITRef` / `LLVMOrcJITDylibRef` of the caller, a summary, a config. Out: handles; per-module
//! reports the caller can fetch. The transform runs inside ORC, on the materializing thread, with the
//! module's context locked by ORC; it changes nothing ORC's MaterializationResponsibility covers (imported
//! bodies are `available_externally`, the module's own definitions stay as they were).

use std::ffi::{c_char, c_int};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use llvm_sys::orc2::lljit::{LLVMOrcLLJITBuilderRef, LLVMOrcLLJITRef};
use llvm_sys::orc2::LLVMOrcJITDylibRef;
use thinjit::jit::{ResidentRuntime, RuntimeSource, RUNTIME_MODULE_PREFIX};
use thinjit::llvm::orc::{CheckedCompiler, JitDylib, LlJit};
use thinjit::llvm::Module;
use thinjit::optimize::OptLevel;
use thinjit::summary::Summary;

use crate::boundary::{
    check_out, get, guard, guard_value, owned_string, register, str_arg, unregister, write_out,
    CError, ErrorHandle, HandleKind,
};
use crate::report::ReportHandle;
use crate::{calls_by_callee, opt_level, optimize_module, summary_arg, ConfigHandle};

/// `thinjitHostSymbol`: a host function or variable the helpers use (name → address).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ThinjitHostSymbol {
    pub name: *const c_char,
    pub address: u64,
}

/// What a `thinjitResidentRuntimeRef` points to.
#[derive(Debug)]
pub struct RuntimeHandle {
    runtime: Mutex<ResidentRuntime>,
}

/// What a `thinjitIRTransformRef` points to: the borrowed LLJIT (which keeps the installed closure alive)
/// and the reports of the modules the transform saw.
#[derive(Debug)]
pub struct TransformHandle {
    _jit: LlJit,
    state: Arc<TransformState>,
}

#[derive(Debug, Default)]
struct TransformState {
    reports: Mutex<Vec<ReportHandle>>,
    failures: Mutex<Vec<String>>,
}

/// The caller's LLJIT, borrowed.
///
/// # Safety
/// `jit` must be NULL or a live LLJIT that outlives what thinjit installs in it.
unsafe fn jit_arg(jit: LLVMOrcLLJITRef) -> Result<LlJit, CError> {
    // SAFETY: forwarded.
    unsafe { LlJit::borrow_raw(jit) }.ok_or_else(|| CError::invalid("`jit` is NULL"))
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_resident_runtime_install(
    jit: LLVMOrcLLJITRef,
    dylib: LLVMOrcJITDylibRef,
    summary: *mut crate::SummaryHandle,
    host_symbols: *const ThinjitHostSymbol,
    host_symbol_count: usize,
    use_object: c_int,
    out: *mut *mut RuntimeHandle,
) -> *mut ErrorHandle {
    guard(|| {
        check_out(out, "out")?;
        // SAFETY: handles, array and strings per the header.
        unsafe {
            let s = summary_arg(summary)?;
            let jit = jit_arg(jit)?;
            let dylib = match JitDylib::from_raw(&jit, dylib) {
                Some(d) => d,
                None => jit.main_jitdylib(),
            };
            let mut names = Vec::with_capacity(host_symbol_count);
            if host_symbol_count > 0 {
                if host_symbols.is_null() {
                    return Err(CError::invalid(
                        "`host_symbols` is NULL but `host_symbol_count` is not 0",
                    ));
                }
                for (i, sym) in std::slice::from_raw_parts(host_symbols, host_symbol_count)
                    .iter()
                    .enumerate()
                {
                    names.push((
                        str_arg(sym.name, &format!("host_symbols[{i}].name"))?,
                        sym.address,
                    ));
                }
            }
            let runtime =
                ResidentRuntime::install(&jit, dylib, &s.summary, &names, use_object != 0)?;
            let handle = register(
                RuntimeHandle {
                    runtime: Mutex::new(runtime),
                },
                HandleKind::Runtime,
            );
            write_out(out, "out", handle)
        }
    })
}

unsafe fn runtime_arg<'a>(raw: *mut RuntimeHandle) -> Result<&'a RuntimeHandle, CError> {
    // SAFETY: forwarded (the table check).
    unsafe { get(raw, HandleKind::Runtime, "runtime") }
}

fn with_runtime<R>(handle: &RuntimeHandle, f: impl FnOnce(&mut ResidentRuntime) -> R) -> R {
    f(&mut handle.runtime.lock().unwrap_or_else(|e| e.into_inner()))
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_resident_runtime_source(
    runtime: *mut RuntimeHandle,
    out: *mut c_int,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle; out-pointer per the header.
        unsafe {
            let r = runtime_arg(runtime)?;
            let source = with_runtime(r, |rt| match rt.report().source {
                RuntimeSource::Object => 1,
                RuntimeSource::Bitcode => 2,
                RuntimeSource::SharedObject => 3,
                _ => 0,
            });
            write_out(out, "out", source)
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_resident_runtime_initializer_count(
    runtime: *mut RuntimeHandle,
    out: *mut usize,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle; out-pointer per the header.
        unsafe {
            let r = runtime_arg(runtime)?;
            write_out(out, "out", with_runtime(r, |rt| rt.initializers().len()))
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_resident_runtime_defines(
    runtime: *mut RuntimeHandle,
    name: *const c_char,
    out: *mut c_int,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle; string and out-pointer per the header.
        unsafe {
            let r = runtime_arg(runtime)?;
            let name = str_arg(name, "name")?;
            let defined = with_runtime(r, |rt| rt.helper_symbols().contains(name));
            write_out(out, "out", defined as c_int)
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_resident_runtime_shutdown(
    runtime: *mut RuntimeHandle,
    ran: *mut usize,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle; `ran` may be NULL (header).
        unsafe {
            let r = runtime_arg(runtime)?;
            let n = with_runtime(r, ResidentRuntime::shutdown);
            if !ran.is_null() {
                ran.write(n);
            }
        }
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_resident_runtime_dispose(runtime: *mut RuntimeHandle) {
    guard_value((), || {
        // SAFETY: only a live runtime handle is taken; dropping it runs the shutdown if it has not run.
        drop(unsafe { unregister(runtime, HandleKind::Runtime) });
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_ir_transform_install(
    jit: LLVMOrcLLJITRef,
    summary: *mut crate::SummaryHandle,
    config: *mut ConfigHandle,
    level: c_int,
    out: *mut *mut TransformHandle,
) -> *mut ErrorHandle {
    guard(|| {
        check_out(out, "out")?;
        let level = opt_level(level)?;
        // SAFETY: handles per the header; the LLJIT outlives the transform (header contract).
        unsafe {
            let s = summary_arg(summary)?;
            let settings = if config.is_null() {
                crate::config::Settings::default()
            } else {
                crate::with_config(config, |c| Ok(c.clone()))?
            };
            settings.import.validate()?;
            let mut jit = jit_arg(jit)?;
            let state = Arc::new(TransformState::default());
            let summary = Arc::clone(&s.summary);
            let for_transform = Arc::clone(&state);
            jit.set_ir_transform(Box::new(move |m: &mut Module<'_>| {
                transform(m, &summary, &settings, level, &for_transform)
            }))
            .map_err(|f| CError::invalid(f.to_string()))?;
            let handle = register(TransformHandle { _jit: jit, state }, HandleKind::Transform);
            write_out(out, "out", handle)
        }
    })
}

/// What the installed transform does to each module ORC materializes: import, optimize, record the report.
/// thinjit's own runtime modules pass through unchanged.
fn transform(
    m: &mut Module<'_>,
    summary: &Summary,
    settings: &crate::config::Settings,
    level: OptLevel,
    state: &TransformState,
) -> Result<(), String> {
    if m.name().starts_with(RUNTIME_MODULE_PREFIX) {
        return Ok(());
    }
    let outcome = (|| -> Result<ReportHandle, CError> {
        let report = thinjit::import::import(m, summary, &settings.import, settings.mode)?;
        let t = Instant::now();
        optimize_module(m, level)?;
        let handle = ReportHandle::new(report);
        handle.record_optimize(t.elapsed(), &calls_by_callee(m));
        Ok(handle)
    })();
    match outcome {
        Ok(report) => {
            state
                .reports
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(report);
            Ok(())
        }
        Err(e) => {
            let text = format!("thinjit: module `{}`: {}", m.name(), e.message);
            state
                .failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(text.clone());
            Err(text)
        }
    }
}

unsafe fn transform_arg<'a>(raw: *mut TransformHandle) -> Result<&'a TransformHandle, CError> {
    // SAFETY: forwarded (the table check).
    unsafe { get(raw, HandleKind::Transform, "transform") }
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_ir_transform_report_count(
    transform: *mut TransformHandle,
    out: *mut usize,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle; out-pointer per the header.
        unsafe {
            let t = transform_arg(transform)?;
            let n = t
                .state
                .reports
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len();
            write_out(out, "out", n)
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_ir_transform_report(
    transform: *mut TransformHandle,
    index: usize,
    out: *mut *mut ReportHandle,
) -> *mut ErrorHandle {
    guard(|| {
        check_out(out, "out")?;
        // SAFETY: checked handle; out-pointer per the header.
        unsafe {
            let t = transform_arg(transform)?;
            let copy = {
                let reports = t.state.reports.lock().unwrap_or_else(|e| e.into_inner());
                match reports.get(index) {
                    Some(r) => r.duplicate(),
                    None => {
                        return Err(CError::invalid(format!(
                            "report {index} out of range: the transform has {}",
                            reports.len()
                        )))
                    }
                }
            };
            write_out(out, "out", register(copy, HandleKind::Report))
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_ir_transform_failure_count(
    transform: *mut TransformHandle,
    out: *mut usize,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle; out-pointer per the header.
        unsafe {
            let t = transform_arg(transform)?;
            let n = t
                .state
                .failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len();
            write_out(out, "out", n)
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_ir_transform_dispose(transform: *mut TransformHandle) {
    guard_value((), || {
        // SAFETY: only a live transform handle is taken (the header: after the LLJIT is disposed).
        drop(unsafe { unregister(transform, HandleKind::Transform) });
    })
}

/// What a `thinjitCheckedCompilerRef` points to: the failure list it shares with the LLJIT's compiler.
#[derive(Debug)]
pub struct CheckedCompilerHandle {
    compiler: CheckedCompiler,
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_lljit_builder_use_checked_compiler(
    builder: LLVMOrcLLJITBuilderRef,
    out: *mut *mut CheckedCompilerHandle,
) -> *mut ErrorHandle {
    guard(|| {
        check_out(out, "out")?;
        // SAFETY: `builder` is NULL or a live builder not yet consumed by LLVMOrcCreateLLJIT (header contract).
        unsafe {
            let compiler = CheckedCompiler::install(builder)
                .ok_or_else(|| CError::invalid("`builder` is NULL"))?;
            let handle = register(
                CheckedCompilerHandle { compiler },
                HandleKind::CheckedCompiler,
            );
            write_out(out, "out", handle)
        }
    })
}

unsafe fn checked_arg<'a>(
    raw: *mut CheckedCompilerHandle,
) -> Result<&'a CheckedCompilerHandle, CError> {
    // SAFETY: forwarded (the table check).
    unsafe { get(raw, HandleKind::CheckedCompiler, "compiler") }
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_checked_compiler_failure_count(
    compiler: *mut CheckedCompilerHandle,
    out: *mut usize,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle; out-pointer per the header.
        unsafe {
            let c = checked_arg(compiler)?;
            write_out(out, "out", c.compiler.failures().len())
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_checked_compiler_failure(
    compiler: *mut CheckedCompilerHandle,
    index: usize,
    module: *mut *mut c_char,
    function: *mut *mut c_char,
    message: *mut *mut c_char,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle; each out-pointer is NULL (not wanted) or writable (header).
        unsafe {
            let c = checked_arg(compiler)?;
            let failures = c.compiler.failures();
            let Some(f) = failures.get(index) else {
                return Err(CError::invalid(format!(
                    "failure {index} out of range: the compiler reported {}",
                    failures.len()
                )));
            };
            if !module.is_null() {
                module.write(owned_string(&f.name));
            }
            if !function.is_null() {
                function.write(match &f.function {
                    Some(name) => owned_string(name),
                    None => std::ptr::null_mut(),
                });
            }
            if !message.is_null() {
                message.write(owned_string(&f.message));
            }
            Ok(())
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_checked_compiler_dispose(compiler: *mut CheckedCompilerHandle) {
    guard_value((), || {
        // SAFETY: only a live handle is taken; the LLJIT keeps its own reference to the failure list.
        drop(unsafe { unregister(compiler, HandleKind::CheckedCompiler) });
    })
}
