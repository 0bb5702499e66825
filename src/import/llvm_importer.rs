//! The `llvm-importer` strategy: LLVM's own summary-based `FunctionImporter` on a script, in-process — the
//! reference thinjit's importer is measured against.
//!
//! In: a script module, the helper library's bitcode with its ThinLTO summary (what
//! [`Summary::library_bitcode`](crate::summary::Summary::library_bitcode) holds), an [`ImportConfig`] (LLVM's
//! option names and defaults). Out: the module with LLVM's imports linked in (`available_externally`), script
//! functions stamped with the helpers' target attributes (as thinjit's importer does), and an [`LlvmImport`]
//! naming what came in.
//!
//! The steps are `llvm-lto -thinlto-action=import`'s (see [`Module::import_with_llvm`]). What differs from
//! thinjit's importer on purpose is LLVM's behaviour, not this module's: LLVM copies mutable variables without
//! references as `available_externally`, imports `optnone` functions under `force_import_all`, and reads the
//! whole library summary for every script. Under `force_import_all`, LLVM's `ComputeCrossModuleImport` writes a
//! line to stderr for each callee it refuses ("Error importing module: ...") — LLVM's own output, not thinjit's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::importer::stamp_targets;
use super::{Considered, Decision, ImportConfig, ImportReport, SymbolKind};
use crate::llvm::{LlvmImportOptions, LlvmImportTimes, Module};
use crate::{Error, Result};

/// What LLVM's importer brought into a script.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LlvmImport {
    /// Functions defined (`available_externally`) in the script by the import, by name.
    pub functions: BTreeSet<String>,
    /// Variables defined in the script by the import (copies LLVM made `available_externally`, or internal for
    /// read-only ones).
    pub variables: BTreeSet<String>,
    /// Script functions that were given the helpers' `target-cpu` / `target-features`.
    pub stamped: Vec<String>,
    /// Summary, thin link, import lists and import, all in LLVM.
    pub time: Duration,
    /// The same, step by step.
    #[serde(skip)]
    pub steps: LlvmImportTimes,
}

/// Runs LLVM's importer on `module` with `library` (bitcode with a ThinLTO summary). `preserve_library`: see
/// [`LlvmImportOptions::preserve_library`] (an engine passes `true`).
///
/// Errors: the script does not verify ([`Error::Verify`]); LLVM fails to read a summary or to import, or the
/// result does not verify ([`Error::Import`], with LLVM's message).
pub fn import_with_llvm(
    module: &mut Module<'_>,
    library: &[u8],
    config: &ImportConfig,
    preserve_library: bool,
) -> Result<LlvmImport> {
    module.verify()?;
    import_with_llvm_verified(module, library, config, preserve_library)
}

/// [`import_with_llvm`] for a module the engine's pipeline has verified (no second verification before; the result
/// is verified, as thinjit's importer verifies its own).
pub(crate) fn import_with_llvm_verified(
    module: &mut Module<'_>,
    library: &[u8],
    config: &ImportConfig,
    preserve_library: bool,
) -> Result<LlvmImport> {
    config.validate()?;
    let module_name = module.name();
    let defined_before: BTreeSet<String> = module
        .functions()
        .filter(|f| !f.is_declaration())
        .map(|f| f.name())
        .chain(
            module
                .globals()
                .filter(|g| !g.is_declaration())
                .map(|g| g.name()),
        )
        .collect();
    let script_functions: Vec<String> = module
        .functions()
        .filter(|f| !f.is_declaration())
        .map(|f| f.name())
        .collect();
    let options = LlvmImportOptions {
        import_instr_limit: config.import_instr_limit,
        import_instr_evolution_factor: config.import_instr_evolution_factor,
        import_hot_evolution_factor: config.import_hot_evolution_factor,
        import_hot_multiplier: config.import_hot_multiplier,
        import_critical_multiplier: config.import_critical_multiplier,
        import_cold_multiplier: config.import_cold_multiplier,
        force_import_all: config.force_import_all,
        preserve_library,
    };
    let t = Instant::now();
    let steps = module
        .import_with_llvm_verified(library, &options)
        .map_err(|message| Error::Import {
            module: module_name.clone(),
            message: format!("LLVM's FunctionImporter: {message}"),
        })?;
    let time = t.elapsed();

    let mut out = LlvmImport {
        time,
        steps,
        ..LlvmImport::default()
    };
    let mut targets: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for f in module.functions() {
        let name = f.name();
        if !f.is_declaration() && !defined_before.contains(&name) {
            targets.insert(
                name.clone(),
                (
                    f.string_attribute("target-cpu"),
                    f.string_attribute("target-features"),
                ),
            );
            out.functions.insert(name);
        }
    }
    for g in module.globals() {
        let name = g.name();
        if !g.is_declaration() && !name.starts_with("llvm.") && !defined_before.contains(&name) {
            out.variables.insert(name);
        }
    }
    out.stamped = stamp_targets(module, &script_functions, &targets);
    module.verify().map_err(|e| Error::Import {
        module: module_name,
        message: format!("the module does not verify after LLVM's import: {e}"),
    })?;
    Ok(out)
}

impl LlvmImport {
    /// The import as an [`ImportReport`]: one `Imported` entry per function and variable LLVM brought in (sizes
    /// unknown: LLVM keeps them in its own summary); LLVM's summary, thin link and import lists as the plan
    /// stage, its `importFunctions` as the link stage.
    pub fn to_report(&self, module: &str) -> ImportReport {
        let entry = |name: &String, kind| Considered {
            name: name.clone(),
            kind,
            decision: Decision::Imported,
            size: 0,
            threshold: 0,
            depth: 0,
            local_copy: false,
            not_inlinable: None,
        };
        let entries = self
            .functions
            .iter()
            .map(|n| entry(n, SymbolKind::Function))
            .chain(
                self.variables
                    .iter()
                    .map(|n| entry(n, SymbolKind::Variable)),
            )
            .collect();
        let mut report = ImportReport::new(module, entries);
        report.times.plan =
            self.steps.script_summary + self.steps.thin_link + self.steps.import_lists;
        report.times.link = self.steps.import;
        report.stamped = self.stamped.clone();
        report
    }
}
