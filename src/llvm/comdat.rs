//! Comdat membership of global objects: imported bodies are `available_externally`, which may not sit in a
//! comdat, so the importer takes them out of theirs.

use llvm_sys::core as c;

use super::Value;

impl Value<'_> {
    /// `true` if this global object belongs to a comdat.
    pub fn has_comdat(self) -> bool {
        // SAFETY: LLVMIsAGlobalObject accepts any value; LLVMGetComdat is only called on global objects.
        unsafe {
            !c::LLVMIsAGlobalObject(self.as_raw()).is_null()
                && !llvm_sys::comdat::LLVMGetComdat(self.as_raw()).is_null()
        }
    }

    /// Removes this global object from its comdat (no-op for other values).
    pub fn clear_comdat(self) {
        // SAFETY: only global objects reach LLVMSetComdat; a null comdat is `GlobalObject::setComdat(nullptr)`.
        unsafe {
            if !c::LLVMIsAGlobalObject(self.as_raw()).is_null() {
                llvm_sys::comdat::LLVMSetComdat(self.as_raw(), std::ptr::null_mut());
            }
        }
    }
}
