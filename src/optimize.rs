//! Optimization: the pipeline run on a script after import, before code generation.
//!
//! In: a module (imported helper bodies as `available_externally` definitions, or none), a host
//! [`TargetMachine`] and an [`OptLevel`]. Out: the optimized module; imported bodies that were not inlined are
//! gone and their calls go to the runtime's one copy. One [`OptLevel`] serves the engine
//! ([`EngineBuilder::opt_level`](crate::jit::EngineBuilder::opt_level)), the CLI and the benchmark harness.

use crate::llvm::{Module, PassOptions, TargetMachine};
use crate::Result;

/// Optimization level of [`optimize`] (LLVM's `default<On>` pipelines).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum OptLevel {
    O0,
    O1,
    O2,
    #[default]
    O3,
}

impl OptLevel {
    /// The new-pass-manager pipeline, e.g. `default<O3>`.
    pub fn pipeline(self) -> &'static str {
        match self {
            OptLevel::O0 => "default<O0>",
            OptLevel::O1 => "default<O1>",
            OptLevel::O2 => "default<O2>",
            OptLevel::O3 => "default<O3>",
        }
    }
}

/// The pipeline [`optimize`] runs: `default<On>`, or, when helper bodies were imported
/// (`available_externally` definitions are present) and `level` inlines (O1 and up), the inliner first, then
/// `elim-avail-extern` and `globaldce`, then `default<On>` on what is left.
///
/// `default<On>` alone runs the whole function-simplification pipeline on every function before its callers
/// inline it — imported bodies included, although clang already optimized them and
/// `EliminateAvailableExternallyPass` throws them away at the end. Inlining them first and dropping them
/// before the main pipeline gives the same inlining with a fraction of the work (a script importing 57 helpers
/// from a 10k-function synthetic library: 60 ms → 21 ms for O3 plus codegen, the same calls inlined).
pub fn pipeline_for(module: &Module<'_>, level: OptLevel) -> String {
    let imported = module
        .functions()
        .any(|f| !f.is_declaration() && f.linkage() == crate::llvm::Linkage::AvailableExternally);
    if imported && level != OptLevel::O0 {
        format!(
            "cgscc(inline),elim-avail-extern,globaldce,{}",
            level.pipeline()
        )
    } else {
        level.pipeline().to_owned()
    }
}

/// Runs [`pipeline_for`] on `module` for `tm` (setting the module's triple and data layout from `tm` when it
/// has none). Imported bodies that were not inlined are dropped and their calls go to the runtime's one copy.
pub fn optimize(module: &mut Module<'_>, tm: &TargetMachine, level: OptLevel) -> Result<()> {
    if module.triple().is_empty() {
        module.set_triple(tm.triple());
    }
    if module.data_layout().is_empty() {
        module.set_data_layout(&tm.data_layout());
    }
    let pipeline = pipeline_for(module, level);
    module.run_passes(&pipeline, Some(tm), &PassOptions::default())
}

/// [`optimize`] for a module the engine's pipeline has verified (no second verification).
pub(crate) fn optimize_verified(
    module: &mut Module<'_>,
    tm: &TargetMachine,
    level: OptLevel,
) -> Result<()> {
    if module.triple().is_empty() {
        module.set_triple(tm.triple());
    }
    if module.data_layout().is_empty() {
        module.set_data_layout(&tm.data_layout());
    }
    let pipeline = pipeline_for(module, level);
    module.run_passes_verified(&pipeline, Some(tm), &PassOptions::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_name_llvms_pipelines() {
        assert_eq!(OptLevel::default(), OptLevel::O3);
        assert_eq!(OptLevel::O2.pipeline(), "default<O2>");
    }
}
