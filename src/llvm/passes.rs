//! New-pass-manager pipelines (`default<O3>`, `function(instcombine)`, ...) over a module.

use llvm_sys::transforms::pass_builder as pb;

use super::message::{cstring, take_error};
use super::{Module, TargetMachine};
use crate::{Error, Result};

/// Options for [`Module::run_passes`].
#[derive(Clone, Debug, Default)]
pub struct PassOptions {
    /// Run the verifier after each pass (slow; for debugging).
    pub verify_each: bool,
    /// Print debug logging from the pass builder.
    pub debug_logging: bool,
}

impl Module<'_> {
    /// Verifies the module, then runs the new-PM `pipeline` (e.g. `default<O3>`), using `tm` for target-aware
    /// analyses when given. The module is verified first because passes assume valid IR.
    pub fn run_passes(
        &mut self,
        pipeline: &str,
        tm: Option<&TargetMachine>,
        options: &PassOptions,
    ) -> Result<()> {
        self.verify()?;
        self.run_passes_verified(pipeline, tm, options)
    }

    /// [`Module::run_passes`] without verifying first: for a module the crate verified and has since changed
    /// only with LLVM passes and thinjit's own well-formed edits (the engine's pipeline verifies once per trust
    /// boundary). Not public: invalid IR reaching the pass pipeline may abort the process.
    pub(crate) fn run_passes_verified(
        &mut self,
        pipeline: &str,
        tm: Option<&TargetMachine>,
        options: &PassOptions,
    ) -> Result<()> {
        let _stale = self.context().take_diagnostic_errors();
        let err = |message: String| Error::Passes {
            pipeline: pipeline.to_owned(),
            what: format!("module `{}`", self.name()),
            message,
        };
        let cpipeline = cstring(pipeline).map_err(err)?;
        // SAFETY: options are created and disposed here; the module and target machine are live; the returned
        // error is consumed by `take_error`.
        let result = unsafe {
            let opts = pb::LLVMCreatePassBuilderOptions();
            pb::LLVMPassBuilderOptionsSetVerifyEach(opts, options.verify_each as i32);
            pb::LLVMPassBuilderOptionsSetDebugLogging(opts, options.debug_logging as i32);
            let tm_raw = tm.map_or(std::ptr::null_mut(), |t| t.as_raw());
            let e = pb::LLVMRunPasses(self.as_raw(), cpipeline.as_ptr(), tm_raw, opts);
            pb::LLVMDisposePassBuilderOptions(opts);
            take_error(e)
        };
        result.map_err(err)?;
        // An error-severity diagnostic (for example a failed `alwaysinline`) fails the pipeline.
        let diagnostics = self.context().take_diagnostic_errors();
        if !diagnostics.is_empty() {
            let message: Vec<String> = diagnostics
                .iter()
                .map(|d| match &d.function {
                    Some(f) => format!("in function `{f}`: {}", d.message),
                    None => d.message.clone(),
                })
                .collect();
            return Err(err(message.join("; ")));
        }
        Ok(())
    }
}
