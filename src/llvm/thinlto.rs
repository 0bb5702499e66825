//! LLVM's own ThinLTO pieces, through the C++ shim (`src/llvm/shim/thinlto.cpp`): module summaries in bitcode, and
//! LLVM's summary-based `FunctionImporter` run in-process on a script, as `llvm-lto -thinlto-action=import` runs it.
//!
//! In: a module, or a script module and the helper library's bitcode with its ThinLTO summary. Out: bitcode with a
//! summary, or the script with LLVM's imports linked in (`available_externally`).

use std::time::Duration;

use super::message::LlvmMessage;
use super::shim;
use super::{MemoryBuffer, Module};

/// LLVM's `FunctionImport.cpp` options, under LLVM's names (`-import-instr-limit`, ...), and which symbols the thin
/// link keeps alive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LlvmImportOptions {
    pub import_instr_limit: u32,
    pub import_instr_evolution_factor: f32,
    pub import_hot_evolution_factor: f32,
    pub import_hot_multiplier: f32,
    pub import_critical_multiplier: f32,
    pub import_cold_multiplier: f32,
    pub force_import_all: bool,
    /// Preserve every external definition of the library as well as the script's own definitions. A JIT-resident
    /// runtime can be called by any later script or by the host, so nothing in it is dead and no variable it
    /// exports is read-only (otherwise LLVM's constant propagation may give the script a private copy of a
    /// variable that only code outside this script writes). `false`: only the script's definitions, like
    /// `llvm-lto -exported-symbol=<each>`.
    pub preserve_library: bool,
}

/// Where LLVM's importer spent its time on one script.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LlvmImportTimes {
    /// The script's summary (`buildModuleSummaryIndex`) and writing it with the script to memory.
    pub script_summary: Duration,
    /// The combined index: reading the library's summary and the script's.
    pub thin_link: Duration,
    /// Dead symbols and constant propagation, then `ComputeCrossModuleImport`.
    pub import_lists: Duration,
    /// `FunctionImporter::importFunctions`: loading the library lazily, materializing and linking the imports.
    pub import: Duration,
}

/// Whether `bitcode` carries a ThinLTO module summary; `None` when it is not readable bitcode.
pub fn bitcode_has_summary(bitcode: &[u8]) -> Option<bool> {
    // SAFETY: the shim reads `len` bytes of `bitcode`, which is live for the call.
    match unsafe { shim::thinjit_bitcode_has_summary(bitcode.as_ptr().cast(), bitcode.len()) } {
        1 => Some(true),
        0 => Some(false),
        _ => None,
    }
}

impl Module<'_> {
    /// The module as bitcode with its ThinLTO summary (what `opt -module-summary` writes). Unnamed globals get
    /// names first (`thinjit.anon.<n>`): the summary writer needs them.
    pub fn write_bitcode_with_summary(&mut self) -> Vec<u8> {
        // SAFETY: the module is live and borrowed mutably (the shim names its unnamed globals); the returned buffer
        // is a new one we own.
        let buffer = unsafe {
            MemoryBuffer::from_raw(shim::thinjit_write_bitcode_with_summary(self.as_raw()))
        };
        buffer.as_bytes().to_vec()
    }

    /// Imports into this module what LLVM's own `FunctionImporter` imports from `library` (bitcode with a ThinLTO
    /// summary): the module's summary, a combined index of both, dead-symbol and constant propagation,
    /// `ComputeCrossModuleImport`, then `FunctionImporter::importFunctions` loading the library lazily into this
    /// module's context. The module is verified first (LLVM's summary analysis and importer assume valid IR).
    /// Returns the time of each step; errors carry LLVM's message.
    pub fn import_with_llvm(
        &mut self,
        library: &[u8],
        options: &LlvmImportOptions,
    ) -> std::result::Result<LlvmImportTimes, String> {
        self.verify().map_err(|e| e.to_string())?;
        self.import_with_llvm_verified(library, options)
    }

    /// [`Module::import_with_llvm`] for a module the crate has verified.
    pub(crate) fn import_with_llvm_verified(
        &mut self,
        library: &[u8],
        options: &LlvmImportOptions,
    ) -> std::result::Result<LlvmImportTimes, String> {
        let raw_options = shim::ThinjitLlvmImportOptions {
            import_instr_limit: options.import_instr_limit,
            import_instr_evolution_factor: options.import_instr_evolution_factor,
            import_hot_evolution_factor: options.import_hot_evolution_factor,
            import_hot_multiplier: options.import_hot_multiplier,
            import_critical_multiplier: options.import_critical_multiplier,
            import_cold_multiplier: options.import_cold_multiplier,
            force_import_all: options.force_import_all as libc::c_int,
            preserve_library: options.preserve_library as libc::c_int,
        };
        let mut seconds = [0f64; 4];
        // SAFETY: the module is live and borrowed mutably; `library`, `raw_options` and `seconds` (4 entries, as
        // the shim writes) outlive the call and the shim keeps no reference to them; the result is null or a
        // message from LLVMCreateMessage.
        let msg = unsafe {
            shim::thinjit_llvm_import(
                self.as_raw(),
                library.as_ptr().cast(),
                library.len(),
                &raw_options,
                seconds.as_mut_ptr(),
            )
        };
        // SAFETY: as above; LlvmMessage frees it with LLVMDisposeMessage.
        match unsafe { LlvmMessage::from_raw(msg) } {
            None => {
                let d = |s: f64| Duration::from_secs_f64(s.max(0.0));
                Ok(LlvmImportTimes {
                    script_summary: d(seconds[0]),
                    thin_link: d(seconds[1]),
                    import_lists: d(seconds[2]),
                    import: d(seconds[3]),
                })
            }
            Some(m) => Err(m.to_string()),
        }
    }
}
