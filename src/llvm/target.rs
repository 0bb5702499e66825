//! `TargetMachine`: the host target, data layout, and native object emission.

use std::ptr::NonNull;

use llvm_sys::target_machine as tm;

use super::message::{cstring, LlvmMessage};
use super::{shim, MemoryBuffer, Module};
use crate::{Error, Result};

/// Code generation optimization level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CodeGenOpt {
    None,
    Less,
    Default,
    Aggressive,
}

impl CodeGenOpt {
    fn to_raw(self) -> tm::LLVMCodeGenOptLevel {
        match self {
            CodeGenOpt::None => tm::LLVMCodeGenOptLevel::LLVMCodeGenLevelNone,
            CodeGenOpt::Less => tm::LLVMCodeGenOptLevel::LLVMCodeGenLevelLess,
            CodeGenOpt::Default => tm::LLVMCodeGenOptLevel::LLVMCodeGenLevelDefault,
            CodeGenOpt::Aggressive => tm::LLVMCodeGenOptLevel::LLVMCodeGenLevelAggressive,
        }
    }
}

/// The host's target triple (e.g. `x86_64-pc-linux-gnu`).
pub fn host_triple() -> String {
    // SAFETY: returns an owned message.
    unsafe { LlvmMessage::take(tm::LLVMGetDefaultTargetTriple()) }
}

/// The host CPU name as LLVM knows it (e.g. `skylake`).
pub fn host_cpu_name() -> String {
    // SAFETY: returns an owned message.
    unsafe { LlvmMessage::take(tm::LLVMGetHostCPUName()) }
}

/// The host CPU's feature string (e.g. `+sse2,+avx,...`).
pub fn host_cpu_features() -> String {
    // SAFETY: returns an owned message.
    unsafe { LlvmMessage::take(tm::LLVMGetHostCPUFeatures()) }
}

/// An owned LLVM target machine (PIC, small code model — what JITLink on x86-64 expects).
pub struct TargetMachine {
    raw: NonNull<tm::LLVMOpaqueTargetMachine>,
    triple: String,
    cpu: String,
    features: String,
    /// The code generation pass pipeline, built at the first object this machine emits and run on every later
    /// one (dropped after a module whose code generation reported an error).
    codegen: std::cell::Cell<*mut libc::c_void>,
}

// SAFETY: a TargetMachine and its reused code generation pipeline are used for one operation at a time, through
// `&self` methods on the thread that holds the machine; moving the machine moves both (LLVM's target machines and
// legacy pass managers have no thread affinity). `TargetMachine` is Send but not Sync.
unsafe impl Send for TargetMachine {}

impl TargetMachine {
    /// A target machine for the host CPU and its features.
    pub fn host(opt: CodeGenOpt) -> Result<Self> {
        Self::new(&host_triple(), &host_cpu_name(), &host_cpu_features(), opt)
    }

    /// A target machine for `triple`, `cpu` and `features`.
    pub fn new(triple: &str, cpu: &str, features: &str, opt: CodeGenOpt) -> Result<Self> {
        super::initialize();
        let err = |message: String| Error::Target {
            triple: triple.to_owned(),
            message,
        };
        let ctriple = cstring(triple).map_err(err)?;
        let ccpu = cstring(cpu).map_err(err)?;
        let cfeatures = cstring(features).map_err(err)?;
        let mut target = std::ptr::null_mut();
        let mut msg = std::ptr::null_mut();
        // SAFETY: valid C strings and out-pointers; `msg` is ours on failure.
        let failed =
            unsafe { tm::LLVMGetTargetFromTriple(ctriple.as_ptr(), &mut target, &mut msg) };
        if failed != 0 {
            // SAFETY: owned message or null.
            return Err(err(unsafe { LlvmMessage::take(msg) }));
        }
        // SAFETY: `target` is a registered target; strings are copied.
        let raw = unsafe {
            tm::LLVMCreateTargetMachine(
                target,
                ctriple.as_ptr(),
                ccpu.as_ptr(),
                cfeatures.as_ptr(),
                opt.to_raw(),
                tm::LLVMRelocMode::LLVMRelocPIC,
                tm::LLVMCodeModel::LLVMCodeModelSmall,
            )
        };
        let raw = NonNull::new(raw)
            .ok_or_else(|| err(format!("cannot create a target machine for cpu `{cpu}`")))?;
        Ok(TargetMachine {
            raw,
            triple: triple.to_owned(),
            cpu: cpu.to_owned(),
            features: features.to_owned(),
            codegen: std::cell::Cell::new(std::ptr::null_mut()),
        })
    }

    pub(crate) fn as_raw(&self) -> tm::LLVMTargetMachineRef {
        self.raw.as_ptr()
    }

    /// The triple this machine targets.
    pub fn triple(&self) -> &str {
        &self.triple
    }

    /// The CPU name.
    pub fn cpu(&self) -> &str {
        &self.cpu
    }

    /// The feature string.
    pub fn features(&self) -> &str {
        &self.features
    }

    /// The data layout string this machine uses.
    pub fn data_layout(&self) -> String {
        // SAFETY: the target data is created for us and disposed here; the string is ours.
        unsafe {
            let td = tm::LLVMCreateTargetDataLayout(self.as_raw());
            let s = LlvmMessage::take(llvm_sys::target::LLVMCopyStringRepOfTargetData(td));
            llvm_sys::target::LLVMDisposeTargetData(td);
            s
        }
    }

    /// Compiles `module` to a relocatable object file. The module must verify (checked here). An error-severity
    /// diagnostic during code generation (an unsupported construct, inline asm that does not assemble, an
    /// impossible constraint) is an [`Error::Codegen`] naming the module, the function when LLVM says, and
    /// LLVM's message: the object LLVM produced anyway is dropped.
    pub fn emit_object(&self, module: &Module<'_>) -> Result<Vec<u8>> {
        module.verify()?;
        self.emit_object_verified(module)
    }

    /// [`TargetMachine::emit_object`] without verifying first, for a module the crate verified (see
    /// [`Module::run_passes_verified`]). Not public: invalid IR reaching code generation may abort the process.
    /// Error diagnostics are errors, as for [`TargetMachine::emit_object`].
    pub(crate) fn emit_object_verified(&self, module: &Module<'_>) -> Result<Vec<u8>> {
        self.emit_checked(module, false)
    }

    /// [`TargetMachine::emit_object`] through a code generation pipeline built for this module alone, as LLVM's
    /// `LLVMTargetMachineEmitToMemoryBuffer` does, instead of the machine's reused one: the same object, byte for
    /// byte, more slowly. For comparing the two.
    pub fn emit_object_fresh_pipeline(&self, module: &Module<'_>) -> Result<Vec<u8>> {
        module.verify()?;
        self.emit_checked(module, true)
    }

    /// Code generation of a verified module with error diagnostics turned into errors; `fresh`: through a
    /// pipeline built for it alone.
    fn emit_checked(&self, module: &Module<'_>, fresh: bool) -> Result<Vec<u8>> {
        let ctx = module.context();
        let _stale = ctx.take_diagnostic_errors();
        module.tag_inline_asm();
        ctx.set_compiling(Some(module.as_raw()));
        let result = if fresh {
            self.emit_fresh(module)
        } else {
            self.emit_unchecked(module)
        };
        ctx.set_compiling(None);
        let diagnostics = ctx.take_diagnostic_errors();
        if let Some(first) = diagnostics.first() {
            // The pipeline stopped partway through a module: the next one gets a fresh pipeline.
            self.drop_codegen();
            let message: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
            return Err(Error::Codegen {
                script: module.name(),
                function: first.function.clone(),
                message: message.join("; "),
            });
        }
        result
    }

    /// Code generation alone through this machine's reused pipeline (made on first use): LLVM's own result,
    /// diagnostics not looked at. The objects are byte for byte those of [`Self::emit_fresh`], which builds the
    /// pipeline anew (LLVM's `LLVMTargetMachineEmitToMemoryBuffer`); reusing it saves that construction (0.4–1.2 ms a
    /// module in `cargo bench --bench pipeline`).
    fn emit_unchecked(&self, module: &Module<'_>) -> Result<Vec<u8>> {
        let mut codegen = self.codegen.get();
        if codegen.is_null() {
            // SAFETY: a live target machine; the pipeline refers to it and is disposed before it (`Drop`).
            codegen = unsafe { shim::thinjit_codegen_create(self.as_raw()) };
            if codegen.is_null() {
                return self.emit_fresh(module);
            }
            self.codegen.set(codegen);
        }
        // SAFETY: the pipeline was made for this machine; the module is live and verified; `&self` and
        // `TargetMachine: !Sync` keep one run at a time; the buffer is ours.
        let buf = unsafe { shim::thinjit_codegen_run(codegen, self.as_raw(), module.as_raw()) };
        // SAFETY: an owned buffer (never null: LLVM's copy of the object's bytes).
        let buffer = unsafe { MemoryBuffer::from_raw(buf) };
        Ok(buffer.as_bytes().to_vec())
    }

    /// Disposes of the reused pipeline, if any.
    fn drop_codegen(&self) {
        let codegen = self.codegen.replace(std::ptr::null_mut());
        if !codegen.is_null() {
            // SAFETY: made by `thinjit_codegen_create` and no longer referenced.
            unsafe { shim::thinjit_codegen_dispose(codegen) }
        }
    }

    /// Code generation alone through a pipeline built for this module alone (LLVM's C API).
    fn emit_fresh(&self, module: &Module<'_>) -> Result<Vec<u8>> {
        let mut msg = std::ptr::null_mut();
        let mut buf = std::ptr::null_mut();
        // SAFETY: live target machine and verified module; out-pointers valid; `msg`/`buf` are ours.
        let failed = unsafe {
            tm::LLVMTargetMachineEmitToMemoryBuffer(
                self.as_raw(),
                module.as_raw(),
                tm::LLVMCodeGenFileType::LLVMObjectFile,
                &mut msg,
                &mut buf,
            )
        };
        if failed != 0 || buf.is_null() {
            return Err(Error::Target {
                triple: self.triple.clone(),
                // SAFETY: owned message or null.
                message: unsafe { LlvmMessage::take(msg) },
            });
        }
        // SAFETY: an owned buffer.
        let buffer = unsafe { MemoryBuffer::from_raw(buf) };
        Ok(buffer.as_bytes().to_vec())
    }
}

impl Drop for TargetMachine {
    fn drop(&mut self) {
        self.drop_codegen();
        // SAFETY: we own the target machine; its pipeline is gone.
        unsafe { tm::LLVMDisposeTargetMachine(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for TargetMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetMachine")
            .field("triple", &self.triple)
            .field("cpu", &self.cpu)
            .finish()
    }
}

/// LLVM's normal form of a target triple (`x86_64-linux-gnu` → `x86_64-unknown-linux-gnu`).
pub fn normalize_triple(triple: &str) -> String {
    let Ok(c) = std::ffi::CString::new(triple) else {
        return triple.to_owned();
    };
    // SAFETY: a valid C string; the result is a message we own.
    unsafe { LlvmMessage::take(tm::LLVMNormalizeTargetTriple(c.as_ptr())) }
}

/// Whether two triples name the same target: after LLVM's normalization, architecture, OS and environment
/// agree (the vendor may differ: `x86_64-pc-linux-gnu`, `x86_64-unknown-linux-gnu` and `x86_64-linux-gnu` are
/// one target). The one triple matcher of thinjit (summaries, runtime objects, scripts).
pub fn same_target(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (a, b) = (normalize_triple(a), normalize_triple(b));
    let parts = |t: &str| -> (String, Vec<String>) {
        let mut it = t.split('-').map(str::to_owned);
        let arch = it.next().unwrap_or_default();
        let _vendor = it.next();
        (arch, it.collect())
    };
    parts(&a) == parts(&b)
}
