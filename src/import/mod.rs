//! The run-time half: import helper bodies into a script module so LLVM can inline them.
//!
//! In: a script [`Module`](crate::llvm::Module), a [`Summary`](crate::summary::Summary), an [`ImportConfig`] and
//! where the helper runtime lives ([`RuntimeMode`](crate::jit::RuntimeMode), an engine setting passed in). Out: the module with the planned helpers linked in as `available_externally` bodies (and
//! constants with their initializers), plus an [`ImportReport`] explaining every decision.
//!
//! The stages read in order: [`config`] → [`plan`](mod@plan) (pure Rust over the summary index) →
//! importer (parse shards, link, stamp target attributes) → [`report`].

pub mod config;
mod importer;
pub mod inlining;
mod llvm_importer;
pub mod plan;
pub mod report;

pub use config::ImportConfig;
pub(crate) use importer::import_planned;
pub use importer::{import, import_profiled, plan_for, script_symbols, ShardSource};
pub use inlining::{called_functions, InlineOutcome, RemainingCall};
pub(crate) use llvm_importer::import_with_llvm_verified;
pub use llvm_importer::{import_with_llvm, LlvmImport};
pub use plan::{plan, ImportPlan, PlannedFunction, PlannedVariable, ScriptSymbols};
pub use report::{Considered, Decision, ImportReport, Reason, StageTimes, SymbolKind, Totals};

/// Runs the import pass on an inkwell module in place (feature `inkwell`): helper bodies are linked into it, in
/// its own inkwell context, with no text or bitcode copy; see [`import`].
#[cfg(feature = "inkwell")]
pub fn import_inkwell<S: ShardSource + ?Sized>(
    module: &inkwell::module::Module<'_>,
    summary: &S,
    config: &ImportConfig,
    mode: crate::jit::RuntimeMode,
) -> crate::Result<ImportReport> {
    crate::llvm::inkwell::with_module(module, |m| import(m, summary, config, mode))
}
