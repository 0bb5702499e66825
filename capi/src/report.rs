//! `thinjitReportRef`: an [`ImportReport`] with C views of its entries, totals and stage times.
//!
//! In: the report an import produced (plus the optimize time `thinjit_optimize` records). Out: the entry,
//! totals and times structs of `thinjit.h` (strings borrowed from the handle), JSON, and the readable table.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, CString};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use thinjit::import::{Decision, ImportReport, Reason, SymbolKind};

use crate::boundary::{
    check_out, get, guard, owned_string, str_arg, unregister, write_out, CError, ErrorHandle,
    HandleKind,
};

/// `thinjitReportEntry`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ThinjitReportEntry {
    pub name: *const c_char,
    pub kind: c_int,
    pub imported: c_int,
    pub reason: c_int,
    pub reason_text: *const c_char,
    pub size: u64,
    pub threshold: u32,
    pub depth: u32,
    pub local_copy: c_int,
    pub not_inlinable: *const c_char,
    pub calls_after_optimize: i64,
}

/// `thinjitReportTotals`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ThinjitReportTotals {
    pub considered: u64,
    pub imported_functions: u64,
    pub imported_variables: u64,
    pub imported_instructions: u64,
    pub not_imported: u64,
}

/// `thinjitReportTimes`, in nanoseconds.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ThinjitReportTimes {
    pub verify_ns: u64,
    pub plan_ns: u64,
    pub parse_shards_ns: u64,
    pub link_ns: u64,
    pub stamp_ns: u64,
    pub import_total_ns: u64,
    pub optimize_ns: u64,
}

/// The C strings of one entry, kept alive by the handle.
#[derive(Debug)]
struct EntryText {
    name: CString,
    reason: CString,
    not_inlinable: Option<CString>,
}

/// What a `thinjitReportRef` points to.
#[derive(Debug)]
pub struct ReportHandle {
    report: ImportReport,
    module: CString,
    text: Vec<EntryText>,
    optimize_ns: AtomicU64,
    /// Per entry: calls to it left in the module after `thinjit_optimize` (-1 until then).
    calls_after: Mutex<Vec<i64>>,
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

/// `thinjitReason` for a reason.
fn reason_code(reason: &Reason) -> c_int {
    match reason {
        Reason::OverThreshold { .. } => 1,
        Reason::NoInline => 2,
        Reason::Interposable => 3,
        Reason::NotEligible(_) => 4,
        Reason::LocalNotCopyable { .. } => 5,
        Reason::NotInSummary => 6,
        Reason::Denied => 7,
        Reason::TotalCapReached { .. } => 8,
        Reason::DefinedByScript => 9,
        Reason::Mutable => 10,
        Reason::InitializerNotImportable => 11,
        Reason::NoDefinitionAvailable => 12,
        #[allow(unreachable_patterns)]
        _ => 13,
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl ReportHandle {
    pub(crate) fn new(report: ImportReport) -> Self {
        let text = report
            .entries
            .iter()
            .map(|e| EntryText {
                name: cstring(&e.name),
                reason: cstring(
                    &e.decision
                        .reason()
                        .map(|r| r.to_string())
                        .unwrap_or_default(),
                ),
                not_inlinable: e.not_inlinable.as_deref().map(cstring),
            })
            .collect();
        ReportHandle {
            module: cstring(&report.module),
            calls_after: Mutex::new(vec![-1; report.entries.len()]),
            report,
            text,
            optimize_ns: AtomicU64::new(0),
        }
    }

    /// The Rust report.
    pub fn report(&self) -> &ImportReport {
        &self.report
    }

    /// Records what `thinjit_optimize` took and the calls left to each considered function afterwards.
    pub(crate) fn record_optimize(&self, d: Duration, calls: &HashMap<String, u64>) {
        self.optimize_ns.store(nanos(d), Ordering::Relaxed);
        let mut after = self.calls_after.lock().unwrap_or_else(|e| e.into_inner());
        for (slot, e) in after.iter_mut().zip(&self.report.entries) {
            *slot = match e.kind {
                SymbolKind::Function => calls.get(&e.name).copied().unwrap_or(0) as i64,
                SymbolKind::Variable => -1,
            };
        }
    }

    /// A copy (a new handle's contents) of this report.
    pub(crate) fn duplicate(&self) -> Self {
        let copy = ReportHandle::new(self.report.clone());
        copy.optimize_ns
            .store(self.optimize_ns.load(Ordering::Relaxed), Ordering::Relaxed);
        *copy.calls_after.lock().unwrap_or_else(|e| e.into_inner()) = self.calls_after();
        copy
    }

    fn calls_after(&self) -> Vec<i64> {
        self.calls_after
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn entry(&self, i: usize) -> ThinjitReportEntry {
        let e = &self.report.entries[i];
        let t = &self.text[i];
        ThinjitReportEntry {
            name: t.name.as_ptr(),
            kind: match e.kind {
                SymbolKind::Function => 0,
                SymbolKind::Variable => 1,
            },
            imported: e.decision.is_imported() as c_int,
            reason: match &e.decision {
                Decision::Imported => 0,
                Decision::NotImported(r) => reason_code(r),
            },
            reason_text: t.reason.as_ptr(),
            size: e.size,
            threshold: e.threshold,
            depth: e.depth,
            local_copy: e.local_copy as c_int,
            not_inlinable: t
                .not_inlinable
                .as_ref()
                .map_or(std::ptr::null(), |s| s.as_ptr()),
            calls_after_optimize: self.calls_after().get(i).copied().unwrap_or(-1),
        }
    }

    fn times(&self) -> ThinjitReportTimes {
        let t = &self.report.times;
        ThinjitReportTimes {
            verify_ns: nanos(t.verify),
            plan_ns: nanos(t.plan),
            parse_shards_ns: nanos(t.parse_shards),
            link_ns: nanos(t.link),
            stamp_ns: nanos(t.stamp),
            import_total_ns: nanos(t.total()),
            optimize_ns: self.optimize_ns.load(Ordering::Relaxed),
        }
    }

    /// The JSON `thinjit_report_to_json` returns: the Rust report's serde form plus `optimize_ns`.
    pub fn to_json(&self) -> String {
        let mut value = serde_json::to_value(&self.report).unwrap_or(serde_json::Value::Null);
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "optimize_ns".into(),
                self.optimize_ns.load(Ordering::Relaxed).into(),
            );
            let calls: serde_json::Map<String, serde_json::Value> = self
                .report
                .entries
                .iter()
                .zip(self.calls_after())
                .filter(|(_, n)| *n >= 0)
                .map(|(e, n)| (e.name.clone(), n.into()))
                .collect();
            map.insert("calls_after_optimize".into(), calls.into());
        }
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }
}

unsafe fn report_arg<'a>(raw: *mut ReportHandle) -> Result<&'a ReportHandle, CError> {
    // SAFETY: forwarded (the table check).
    unsafe { get(raw, HandleKind::Report, "report") }
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_report_dispose(report: *mut ReportHandle) {
    crate::boundary::guard_value((), || {
        // SAFETY: only a live report handle is taken and dropped.
        drop(unsafe { unregister(report, HandleKind::Report) });
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_report_module(
    report: *mut ReportHandle,
    out: *mut *const c_char,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle; out-pointer per the header.
        unsafe {
            let r = report_arg(report)?;
            write_out(out, "out", r.module.as_ptr())
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_report_entry_count(
    report: *mut ReportHandle,
    out: *mut usize,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle; out-pointer per the header.
        unsafe {
            let r = report_arg(report)?;
            write_out(out, "out", r.report.entries.len())
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_report_entry(
    report: *mut ReportHandle,
    index: usize,
    out: *mut ThinjitReportEntry,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle; out-pointer per the header.
        unsafe {
            let r = report_arg(report)?;
            let count = r.report.entries.len();
            if index >= count {
                return Err(CError::invalid(format!(
                    "entry {index} out of range: the report has {count}"
                )));
            }
            write_out(out, "out", r.entry(index))
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_report_find(
    report: *mut ReportHandle,
    name: *const c_char,
    out: *mut ThinjitReportEntry,
    found: *mut c_int,
) -> *mut ErrorHandle {
    guard(|| {
        check_out(out, "out")?;
        check_out(found, "found")?;
        // SAFETY: checked handle; string and out-pointers per the header.
        unsafe {
            let r = report_arg(report)?;
            let name = str_arg(name, "name")?;
            match r.report.entries.iter().position(|e| e.name == name) {
                Some(i) => {
                    write_out(out, "out", r.entry(i))?;
                    write_out(found, "found", 1)
                }
                None => write_out(found, "found", 0),
            }
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_report_totals(
    report: *mut ReportHandle,
    out: *mut ThinjitReportTotals,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle; out-pointer per the header.
        unsafe {
            let r = report_arg(report)?;
            let t = &r.report.totals;
            write_out(
                out,
                "out",
                ThinjitReportTotals {
                    considered: t.considered as u64,
                    imported_functions: t.imported_functions as u64,
                    imported_variables: t.imported_variables as u64,
                    imported_instructions: t.imported_instructions,
                    not_imported: t.not_imported as u64,
                },
            )
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_report_times(
    report: *mut ReportHandle,
    out: *mut ThinjitReportTimes,
) -> *mut ErrorHandle {
    guard(|| {
        // SAFETY: checked handle; out-pointer per the header.
        unsafe {
            let r = report_arg(report)?;
            write_out(out, "out", r.times())
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_report_to_json(
    report: *mut ReportHandle,
    out: *mut *mut c_char,
) -> *mut ErrorHandle {
    guard(|| {
        check_out(out, "out")?;
        // SAFETY: checked handle; out-pointer per the header.
        unsafe {
            let r = report_arg(report)?;
            write_out(out, "out", owned_string(&r.to_json()))
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn thinjit_report_to_text(
    report: *mut ReportHandle,
    out: *mut *mut c_char,
) -> *mut ErrorHandle {
    guard(|| {
        check_out(out, "out")?;
        // SAFETY: checked handle; out-pointer per the header.
        unsafe {
            let r = report_arg(report)?;
            write_out(out, "out", owned_string(&r.report.to_string()))
        }
    })
}
