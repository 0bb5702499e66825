//! `MemoryBuffer`: bytes LLVM reads bitcode and IR from.

use std::path::Path;
use std::ptr::NonNull;

use llvm_sys::core as c;
use llvm_sys::prelude::LLVMMemoryBufferRef;

use super::message::{cstring, LlvmMessage};
use crate::{Error, Result};

/// An owned LLVM memory buffer (`LLVMDisposeMemoryBuffer` on drop).
///
/// Buffers made from files may be memory-mapped by LLVM, so reading a large file this way costs time only for
/// the pages actually touched.
pub struct MemoryBuffer {
    raw: NonNull<llvm_sys::LLVMMemoryBuffer>,
}

// SAFETY: a MemoryBuffer is immutable after creation and owns its storage; LLVM's MemoryBuffer has no
// thread affinity.
unsafe impl Send for MemoryBuffer {}
// SAFETY: only `&self` reads of immutable bytes are exposed.
unsafe impl Sync for MemoryBuffer {}

impl MemoryBuffer {
    /// Copies `bytes` into a new buffer named `name` (the name shows up in LLVM's messages).
    pub fn from_bytes(bytes: &[u8], name: &str) -> Self {
        let name = cstring(name).unwrap_or_default();
        // SAFETY: LLVM copies `bytes`; the name is copied as well.
        let raw = unsafe {
            c::LLVMCreateMemoryBufferWithMemoryRangeCopy(
                bytes.as_ptr() as *const libc::c_char,
                bytes.len(),
                name.as_ptr(),
            )
        };
        MemoryBuffer {
            raw: NonNull::new(raw).expect("LLVM returned a null memory buffer for a copy"),
        }
    }

    /// Reads (or maps) a whole file.
    pub fn from_file(path: &Path) -> Result<Self> {
        // A FIFO or device would block or never end: refuse what is not a regular file.
        crate::check::regular_file(path)?;
        let cpath = cstring(&path.to_string_lossy()).map_err(|message| Error::Io {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, message),
        })?;
        let mut raw = std::ptr::null_mut();
        let mut msg = std::ptr::null_mut();
        // SAFETY: out-pointers are valid; on failure LLVM sets `msg`, which we own.
        let failed = unsafe {
            c::LLVMCreateMemoryBufferWithContentsOfFile(cpath.as_ptr(), &mut raw, &mut msg)
        };
        if failed != 0 || raw.is_null() {
            // SAFETY: `msg` is an LLVM-allocated message or null.
            let text = unsafe { LlvmMessage::take(msg) };
            let source = std::fs::metadata(path)
                .err()
                .unwrap_or_else(|| std::io::Error::other(text));
            return Err(Error::io(path, source));
        }
        Ok(MemoryBuffer {
            raw: NonNull::new(raw).expect("checked non-null above"),
        })
    }

    /// The buffer's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: the buffer owns `size` bytes at `start` for as long as it lives.
        unsafe {
            let start = c::LLVMGetBufferStart(self.raw.as_ptr()) as *const u8;
            let size = c::LLVMGetBufferSize(self.raw.as_ptr());
            if size == 0 {
                return &[];
            }
            std::slice::from_raw_parts(start, size)
        }
    }

    pub(crate) fn as_raw(&self) -> LLVMMemoryBufferRef {
        self.raw.as_ptr()
    }

    /// Gives up ownership (for LLVM calls that consume the buffer).
    pub(crate) fn into_raw(self) -> LLVMMemoryBufferRef {
        let raw = self.raw.as_ptr();
        std::mem::forget(self);
        raw
    }

    /// Wraps a buffer LLVM handed over.
    ///
    /// # Safety
    /// `raw` must be a non-null buffer owned by the caller.
    pub(crate) unsafe fn from_raw(raw: LLVMMemoryBufferRef) -> Self {
        MemoryBuffer {
            raw: NonNull::new(raw).expect("null memory buffer"),
        }
    }
}

impl Drop for MemoryBuffer {
    fn drop(&mut self) {
        // SAFETY: we own the buffer.
        unsafe { c::LLVMDisposeMemoryBuffer(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for MemoryBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBuffer")
            .field("len", &self.as_bytes().len())
            .finish()
    }
}
