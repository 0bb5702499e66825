//! Owned LLVM strings and error conversion.
//!
//! LLVM hands out two kinds of owned text that must be freed differently: `char*` messages
//! (`LLVMDisposeMessage`) and the text of an `LLVMErrorRef` (`LLVMDisposeErrorMessage`).

use std::ffi::CStr;
use std::ptr::NonNull;

/// A `char*` owned by the caller, freed with `LLVMDisposeMessage`.
pub(crate) struct LlvmMessage(NonNull<libc::c_char>);

impl LlvmMessage {
    /// Takes ownership of a message; `None` for a null pointer.
    ///
    /// # Safety
    /// `ptr` must be null or a message allocated by LLVM that the caller owns and must free with
    /// `LLVMDisposeMessage`.
    pub(crate) unsafe fn from_raw(ptr: *mut libc::c_char) -> Option<Self> {
        NonNull::new(ptr).map(LlvmMessage)
    }

    /// Takes ownership of a message and returns its text (empty for null).
    ///
    /// # Safety
    /// As for [`LlvmMessage::from_raw`].
    pub(crate) unsafe fn take(ptr: *mut libc::c_char) -> String {
        // SAFETY: forwarded to the caller.
        unsafe { Self::from_raw(ptr) }
            .map(|m| m.to_string())
            .unwrap_or_default()
    }
}

impl std::fmt::Display for LlvmMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SAFETY: LLVM messages are NUL-terminated and live until disposed.
        let text = unsafe { CStr::from_ptr(self.0.as_ptr()) };
        f.write_str(&text.to_string_lossy())
    }
}

impl Drop for LlvmMessage {
    fn drop(&mut self) {
        // SAFETY: we own the message (from_raw's contract).
        unsafe { llvm_sys::core::LLVMDisposeMessage(self.0.as_ptr()) }
    }
}

/// Consumes an `LLVMErrorRef`: `Ok(())` for success, otherwise the error's text.
///
/// # Safety
/// `err` must be null or an unconsumed `LLVMErrorRef` owned by the caller.
pub(crate) unsafe fn take_error(err: llvm_sys::error::LLVMErrorRef) -> Result<(), String> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: `err` is a live error we own; LLVMGetErrorMessage consumes it and returns a string that must be
    // freed with LLVMDisposeErrorMessage.
    unsafe {
        let msg = llvm_sys::error::LLVMGetErrorMessage(err);
        let text = CStr::from_ptr(msg).to_string_lossy().into_owned();
        llvm_sys::error::LLVMDisposeErrorMessage(msg);
        Err(text)
    }
}

/// Reads a borrowed `(ptr, len)` string from LLVM (for example a value name) into a `String`.
///
/// # Safety
/// `ptr` must be null or point to `len` readable bytes.
pub(crate) unsafe fn borrowed_str(ptr: *const libc::c_char, len: usize) -> String {
    if ptr.is_null() || len == 0 {
        return String::new();
    }
    // SAFETY: forwarded to the caller.
    let bytes = unsafe { std::slice::from_raw_parts(ptr as *const u8, len) };
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reads a borrowed NUL-terminated string from LLVM.
///
/// # Safety
/// `ptr` must be null or a NUL-terminated string valid for the duration of the call.
pub(crate) unsafe fn borrowed_cstr(ptr: *const libc::c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: forwarded to the caller.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// A `CString` for passing Rust text to LLVM; interior NULs become an error message.
pub(crate) fn cstring(s: &str) -> Result<std::ffi::CString, String> {
    std::ffi::CString::new(s).map_err(|_| format!("`{}` contains a NUL byte", s.escape_debug()))
}
