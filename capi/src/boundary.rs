//! The boundary itself: the table of live handles, error values, argument checks, and the `catch_unwind`
//! guard every exported function runs its body in.
//!
//! In: raw pointers from C. Out: references to live thinjit objects, or a [`CError`] that becomes a
//! `thinjitErrorRef`. A pointer is dereferenced only after the table says thinjit handed it out as a handle
//! of the expected kind and has not seen it disposed.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

/// What a handle points to; a handle of one kind passed where another is expected is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HandleKind {
    Error,
    Summary,
    Config,
    Report,
    Runtime,
    Transform,
    CheckedCompiler,
}

impl HandleKind {
    fn name(self) -> &'static str {
        match self {
            HandleKind::Error => "thinjitErrorRef",
            HandleKind::Summary => "thinjitSummaryRef",
            HandleKind::Config => "thinjitConfigRef",
            HandleKind::Report => "thinjitReportRef",
            HandleKind::Runtime => "thinjitResidentRuntimeRef",
            HandleKind::Transform => "thinjitIRTransformRef",
            HandleKind::CheckedCompiler => "thinjitCheckedCompilerRef",
        }
    }
}

/// Live handles: address → kind. Filled by [`register`], emptied by [`unregister`].
static LIVE: Mutex<Option<HashMap<usize, HandleKind>>> = Mutex::new(None);

fn with_live<R>(f: impl FnOnce(&mut HashMap<usize, HandleKind>) -> R) -> R {
    let mut guard = LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    f(guard.get_or_insert_with(HashMap::new))
}

/// Boxes `value`, records it as a live handle of `kind` and returns the pointer C gets.
pub(crate) fn register<T>(value: T, kind: HandleKind) -> *mut T {
    let raw = Box::into_raw(Box::new(value));
    with_live(|live| live.insert(raw as usize, kind));
    raw
}

/// The object behind a live handle of `kind`; `what` names the argument in the error.
///
/// # Safety
/// A handle found in the table points to a live `T` boxed by [`register`] with this kind; the caller (C)
/// must not dispose it while the returned reference is in use (the header's thread-safety rule).
pub(crate) unsafe fn get<'a, T>(
    raw: *mut T,
    kind: HandleKind,
    what: &str,
) -> Result<&'a T, CError> {
    if raw.is_null() {
        return Err(CError::invalid(format!("`{what}` is NULL")));
    }
    match with_live(|live| live.get(&(raw as usize)).copied()) {
        Some(k) if k == kind => {
            // SAFETY: registered by `register::<T>` with this kind and not yet unregistered.
            Ok(unsafe { &*raw })
        }
        Some(other) => Err(CError::invalid(format!(
            "`{what}` is a {}, not a {}",
            other.name(),
            kind.name()
        ))),
        None => Err(CError::invalid(format!(
            "`{what}` ({raw:p}) is not a live {}: never created by thinjit, or already disposed",
            kind.name()
        ))),
    }
}

/// Takes a handle out of the table and returns its box; `None` for NULL or a pointer that is not a live
/// handle of `kind` (disposing it twice, or disposing something else, does nothing).
///
/// # Safety
/// As for [`get`]; no other thread may use the handle any more.
pub(crate) unsafe fn unregister<T>(raw: *mut T, kind: HandleKind) -> Option<Box<T>> {
    if raw.is_null() {
        return None;
    }
    let removed = with_live(|live| match live.get(&(raw as usize)) {
        Some(k) if *k == kind => live.remove(&(raw as usize)).is_some(),
        _ => false,
    });
    // SAFETY: it was a live handle of this kind, boxed by `register::<T>`; it is out of the table now, so
    // nobody else can take it again.
    removed.then(|| unsafe { Box::from_raw(raw) })
}

/// Error kinds; the numbers are `thinjitErrorKind` in `thinjit.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum ErrorKind {
    InvalidArgument = 1,
    Io = 2,
    Parse = 3,
    Verify = 4,
    Link = 5,
    Passes = 6,
    Target = 7,
    Summary = 8,
    Import = 9,
    Symbol = 10,
    Jit = 11,
    Config = 12,
    Internal = 13,
    Other = 14,
    Codegen = 15,
}

/// An error on its way to C.
#[derive(Debug)]
pub(crate) struct CError {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
}

impl CError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CError {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    fn into_handle(self) -> *mut ErrorHandle {
        let message = CString::new(self.message.replace('\0', " ")).unwrap_or_default();
        register(
            ErrorHandle {
                kind: self.kind,
                message,
            },
            HandleKind::Error,
        )
    }
}

impl From<thinjit::Error> for CError {
    fn from(e: thinjit::Error) -> Self {
        use thinjit::Error as E;
        let kind = match &e {
            E::Io { .. } => ErrorKind::Io,
            E::Parse { .. } => ErrorKind::Parse,
            E::Verify { .. } => ErrorKind::Verify,
            E::Link { .. } => ErrorKind::Link,
            E::Passes { .. } => ErrorKind::Passes,
            E::Target { .. } => ErrorKind::Target,
            E::Summary { .. } | E::SummaryBuild { .. } => ErrorKind::Summary,
            E::Import { .. } => ErrorKind::Import,
            E::DuplicateDefinition { .. }
            | E::UnresolvedSymbols { .. }
            | E::RuntimeUnresolvedSymbols { .. }
            | E::UndefinedSymbol { .. }
            | E::UnusableSymbol { .. }
            | E::InvalidEntry { .. } => ErrorKind::Symbol,
            E::Codegen { .. } | E::CompileAborted { .. } | E::Timeout { .. } => ErrorKind::Codegen,
            E::Jit { .. } => ErrorKind::Jit,
            E::Config { .. } => ErrorKind::Config,
            E::Poisoned { .. } => ErrorKind::Internal,
            _ => ErrorKind::Other,
        };
        CError::new(kind, error_chain(&e))
    }
}

/// `e` and its sources, joined by `: `.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// What a `thinjitErrorRef` points to.
#[derive(Debug)]
pub struct ErrorHandle {
    kind: ErrorKind,
    message: CString,
}

/// Runs an exported function's body: `Ok` is a NULL error, `Err` an error handle, a panic an
/// `THINJIT_ERROR_INTERNAL` error with the panic's text (nothing unwinds into C).
pub(crate) fn guard(body: impl FnOnce() -> Result<(), CError>) -> *mut ErrorHandle {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => std::ptr::null_mut(),
        Ok(Err(e)) => e.into_handle(),
        Err(payload) => CError::new(ErrorKind::Internal, panic_text(&*payload)).into_handle(),
    }
}

/// Runs a body that cannot report an error (dispose functions, error accessors); a panic gives `fallback`.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    format!("internal error in thinjit (please report): {text}")
}

/// Writes `value` to the out-parameter `out`.
///
/// # Safety
/// `out` must be null (an error) or valid for a write of `T`.
pub(crate) unsafe fn write_out<T>(out: *mut T, what: &str, value: T) -> Result<(), CError> {
    if out.is_null() {
        return Err(CError::invalid(format!("`{what}` is NULL")));
    }
    // SAFETY: non-null; the caller promises it is valid for writes.
    unsafe { out.write(value) };
    Ok(())
}

/// Checks an out-parameter before any work is done (so nothing is made and then lost).
pub(crate) fn check_out<T>(out: *mut T, what: &str) -> Result<(), CError> {
    if out.is_null() {
        Err(CError::invalid(format!("`{what}` is NULL")))
    } else {
        Ok(())
    }
}

/// A borrowed, NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `raw` must be null (an error) or a NUL-terminated string alive for `'a`.
pub(crate) unsafe fn str_arg<'a>(raw: *const c_char, what: &str) -> Result<&'a str, CError> {
    if raw.is_null() {
        return Err(CError::invalid(format!("`{what}` is NULL")));
    }
    // SAFETY: non-null and NUL-terminated (the caller's promise).
    unsafe { CStr::from_ptr(raw) }
        .to_str()
        .map_err(|_| CError::invalid(format!("`{what}` is not valid UTF-8")))
}

/// A string the caller owns and frees with `thinjit_string_dispose`.
pub(crate) fn owned_string(text: &str) -> *mut c_char {
    CString::new(text.replace('\0', " "))
        .unwrap_or_default()
        .into_raw()
}

const INVALID_ERROR: &CStr = c"invalid thinjitErrorRef (NULL, disposed, or not made by thinjit)";

/// The kind of `err`; `THINJIT_ERROR_INVALID_ARGUMENT` for NULL or an unknown handle.
///
/// # Safety
/// `err` is NULL or a pointer; only live error handles are read.
#[no_mangle]
pub unsafe extern "C" fn thinjit_error_kind(err: *mut ErrorHandle) -> c_int {
    guard_value(ErrorKind::InvalidArgument as c_int, || {
        // SAFETY: `get` reads only live error handles.
        match unsafe { get(err, HandleKind::Error, "err") } {
            Ok(e) => e.kind as c_int,
            Err(_) => ErrorKind::InvalidArgument as c_int,
        }
    })
}

/// The message of `err`, borrowed until `thinjit_error_dispose(err)`.
///
/// # Safety
/// As for [`thinjit_error_kind`].
#[no_mangle]
pub unsafe extern "C" fn thinjit_error_message(err: *mut ErrorHandle) -> *const c_char {
    guard_value(INVALID_ERROR.as_ptr(), || {
        // SAFETY: `get` reads only live error handles.
        match unsafe { get(err, HandleKind::Error, "err") } {
            Ok(e) => e.message.as_ptr(),
            Err(_) => INVALID_ERROR.as_ptr(),
        }
    })
}

/// Frees an error; NULL and unknown pointers are ignored.
///
/// # Safety
/// `err` must not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn thinjit_error_dispose(err: *mut ErrorHandle) {
    guard_value((), || {
        // SAFETY: only a live error handle is taken and dropped.
        drop(unsafe { unregister(err, HandleKind::Error) });
    })
}

/// Frees a `char *` made by thinjit; NULL is ignored.
///
/// # Safety
/// `s` must be NULL or a string returned by thinjit and not freed before.
#[no_mangle]
pub unsafe extern "C" fn thinjit_string_dispose(s: *mut c_char) {
    guard_value((), || {
        if !s.is_null() {
            // SAFETY: made by `CString::into_raw` in `owned_string` (the caller's promise).
            drop(unsafe { CString::from_raw(s) });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_checked_by_kind_and_liveness() {
        let raw = register(5u32, HandleKind::Config);
        // SAFETY: `raw` is live.
        assert_eq!(
            unsafe { get(raw, HandleKind::Config, "x") }.ok().copied(),
            Some(5)
        );
        // SAFETY: checked without dereferencing.
        let wrong = unsafe { get(raw, HandleKind::Summary, "x") }.unwrap_err();
        assert!(
            wrong.message.contains("not a thinjitSummaryRef"),
            "{wrong:?}"
        );
        // SAFETY: live; taken out once.
        assert!(unsafe { unregister(raw, HandleKind::Config) }.is_some());
        // SAFETY: no longer in the table, so never dereferenced.
        assert!(unsafe { unregister(raw, HandleKind::Config) }.is_none());
        // SAFETY: as above.
        let gone = unsafe { get(raw, HandleKind::Config, "x") }.unwrap_err();
        assert_eq!(gone.kind, ErrorKind::InvalidArgument);
    }

    #[test]
    fn panics_become_internal_errors() {
        let err = guard(|| panic!("boom"));
        // SAFETY: `err` is a live error handle.
        unsafe {
            assert_eq!(thinjit_error_kind(err), ErrorKind::Internal as c_int);
            let text = CStr::from_ptr(thinjit_error_message(err)).to_string_lossy();
            assert!(text.contains("boom"), "{text}");
            thinjit_error_dispose(err);
            assert_eq!(thinjit_error_kind(err), ErrorKind::InvalidArgument as c_int);
        }
    }
}
