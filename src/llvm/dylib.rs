//! A private instance of a shared object mapped by the system loader: the primitives the shared runtime needs
//! (`src/jit/resident.rs` holds the policy). Each [`PrivateImage`] is its own copy: the bytes are written to a
//! fresh anonymous file (`memfd_create`; a temporary file where that is missing) and opened through it, so the
//! loader, which returns the same handle for the same file, maps a separate instance every time.
//!
//! Crate-private: writing into a mapped image and calling its code are sound only for images the engine built
//! and checked (`crate::summary::shared::SharedImage::parse`: no loader-run initializers, weak imports, the
//! written words inside writable segments).

use std::ffi::{CStr, CString};

/// A shared object opened with `RTLD_NOW | RTLD_LOCAL` from a private copy of its bytes; closed on drop.
#[derive(Debug)]
pub(crate) struct PrivateImage {
    handle: *mut libc::c_void,
    base: u64,
    /// The anonymous file the image was opened from (kept open while it is loaded).
    file: Option<std::fs::File>,
}

// SAFETY: the handle is only passed to `dlsym`/`dlclose`, which are thread-safe; the image is never mutated
// through `&self` except by the crate-private calls below, whose callers serialize them (engine start-up).
unsafe impl Send for PrivateImage {}
// SAFETY: as above.
unsafe impl Sync for PrivateImage {}

fn dl_error(what: &str) -> String {
    // SAFETY: dlerror returns null or a thread-local C string valid until the next dl* call on this thread.
    let message = unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown error".to_owned()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    };
    format!("{what}: {message}")
}

impl PrivateImage {
    /// Maps a private instance of the shared object `bytes` (label: the anonymous file's name, for
    /// `/proc/self/maps`). `anchor` is an exported symbol whose image-relative address is `anchor_offset`: the
    /// image's base address is derived from it. No code of the image runs (it has no initializers; checked by the
    /// caller).
    pub fn open(
        bytes: &[u8],
        label: &str,
        anchor: &str,
        anchor_offset: u64,
    ) -> Result<Self, String> {
        let clabel = CString::new(label).map_err(|_| "label contains NUL".to_string())?;
        // SAFETY: valid C string; the flag is a plain bit set.
        let fd = unsafe { libc::memfd_create(clabel.as_ptr(), libc::MFD_CLOEXEC) };
        if fd >= 0 {
            // SAFETY: `fd` is a fresh descriptor we own; File takes it over and closes it on drop.
            let mut file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            std::io::Write::write_all(&mut file, bytes)
                .map_err(|e| format!("writing the anonymous file: {e}"))?;
            // The loader returns an already loaded object whose name matches: the descriptor stays open while
            // the image is loaded, so no later image gets the same `/proc/self/fd/N` name.
            let mut image = Self::dlopen(&format!("/proc/self/fd/{fd}"), anchor, anchor_offset)?;
            image.file = Some(file);
            return Ok(image);
        }
        let path = std::env::temp_dir().join(format!(
            "thinjit-runtime-{}-{}.so",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::write(&path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
        let result = Self::dlopen(&path.display().to_string(), anchor, anchor_offset);
        let _ = std::fs::remove_file(&path);
        result
    }

    fn dlopen(path: &str, anchor: &str, anchor_offset: u64) -> Result<Self, String> {
        let cpath = CString::new(path).map_err(|_| "path contains NUL".to_string())?;
        // SAFETY: valid C string. The image has no initializers, so dlopen runs none of its code.
        let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(dl_error("the system loader refused it"));
        }
        let mut image = PrivateImage {
            handle,
            base: 0,
            file: None,
        };
        let address = image
            .symbol(anchor)
            .ok_or_else(|| format!("it does not export `{anchor}`"))?;
        image.base = address.wrapping_sub(anchor_offset);
        Ok(image)
    }

    /// The address `dlsym` gives `name` in this image (`None` when it does not define it).
    pub fn symbol(&self, name: &str) -> Option<u64> {
        let cname = CString::new(name).ok()?;
        // SAFETY: live handle, valid C string.
        let address = unsafe { libc::dlsym(self.handle, cname.as_ptr()) };
        (!address.is_null()).then_some(address as usize as u64)
    }

    /// The address image-relative `offset` is mapped at.
    pub fn address(&self, offset: u64) -> u64 {
        self.base.wrapping_add(offset)
    }

    /// Writes each `(offset, value)` word (image-relative, 8 bytes) into the mapped image.
    ///
    /// Crate-private: sound only for offsets the caller checked lie in the image's writable segments
    /// (`SharedImage::is_writable`), before any of the image's code runs or while none runs concurrently.
    pub fn write_words(&self, words: &[(u64, u64)]) {
        for &(offset, value) in words {
            // SAFETY: see the contract above: the word lies in a writable mapping of this live image. Relocation
            // targets need not be 8-aligned, hence the unaligned write.
            unsafe {
                std::ptr::write_unaligned(self.address(offset) as usize as *mut u64, value);
            }
        }
    }
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Drop for PrivateImage {
    fn drop(&mut self) {
        // SAFETY: the handle came from dlopen and is closed once; the owner ran every destructor first and no
        // code of the image runs any more.
        unsafe {
            libc::dlclose(self.handle);
        }
        self.file = None;
    }
}
