//! Where thinjit's import list and LLVM's importer's differ for one script, and why.
//!
//! In: the summary, the script, and the two import lists the engine reported (thinjit's `summary@N` and
//! `llvm-importer@N` at the same limit). Out: one [`ImportDifference`] per symbol only one of them imported, with
//! the reason — from thinjit's own plan of the script (pure Rust over the summary index, the decisions the
//! engine's importer made): the documented differences (mutable variables, `optnone`, variadic functions, cold
//! edges without a profile, …) and, for what only thinjit imported, thinjit's size and threshold.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use thinjit::import::{self, Decision, ImportConfig, Reason, SymbolKind};
use thinjit::jit::RuntimeMode;
use thinjit::llvm::{Context, Module};
use thinjit::summary::{NotEligible, Summary};
use thinjit::Result;

/// One symbol imported by one importer and not the other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportDifference {
    pub library: String,
    pub script: String,
    pub symbol: String,
    /// `function` or `variable`.
    pub kind: String,
    /// `llvm-importer` or `thinjit`: the one that imported it.
    pub imported_by: String,
    pub reason: String,
}

/// The two import lists of one script: functions and variables, by name.
#[derive(Clone, Debug, Default)]
pub struct ImportLists<'a> {
    pub functions: &'a [String],
    pub variables: &'a [String],
}

/// The differences between thinjit's and LLVM's import lists of `script_ir` (named `script`) against `summary`,
/// with the reason for each. `config` is the configuration both ran at.
pub fn import_differences(
    library: &str,
    summary: &Summary,
    script: &str,
    script_ir: &str,
    config: &ImportConfig,
    thinjit: ImportLists<'_>,
    llvm: ImportLists<'_>,
) -> Result<Vec<ImportDifference>> {
    let ctx = Context::new();
    let module = Module::parse(&ctx, script_ir.as_bytes(), script)?;
    let plan = import::plan(
        summary.index(),
        &import::script_symbols(&module),
        config,
        RuntimeMode::JitResident,
    );
    let index = summary.index();
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<String>>();
    let (tf, tv) = (set(thinjit.functions), set(thinjit.variables));
    let (lf, lv) = (set(llvm.functions), set(llvm.variables));
    let mut out = Vec::new();
    let mut push = |symbol: &str, kind: &str, by: &str, reason: String| {
        out.push(ImportDifference {
            library: library.to_owned(),
            script: script.to_owned(),
            symbol: symbol.to_owned(),
            kind: kind.to_owned(),
            imported_by: by.to_owned(),
            reason,
        })
    };
    let is_cold = |name: &str| index.function(name).is_some_and(|f| f.attributes.cold);
    // Which LLVM-imported function calls `name` (to explain symbols thinjit's planner never reached).
    let caller_in = |name: &str, among: &BTreeSet<String>| -> Option<String> {
        among
            .iter()
            .find(|c| {
                index
                    .function(c)
                    .is_some_and(|f| f.calls.iter().any(|e| e.callee == name))
            })
            .cloned()
    };
    for (only_llvm, kind) in [
        (lf.difference(&tf), "function"),
        (lv.difference(&tv), "variable"),
    ] {
        for name in only_llvm {
            let reason = match plan.considered(name).map(|c| &c.decision) {
                Some(Decision::NotImported(Reason::Mutable)) => {
                    "mutable variable: thinjit keeps the one instance (a declaration); LLVM copies it \
                     available_externally"
                        .to_owned()
                }
                Some(Decision::NotImported(Reason::NotEligible(NotEligible::OptNone))) => {
                    "optnone: thinjit never imports a body that must not be optimized".to_owned()
                }
                Some(Decision::NotImported(Reason::NotEligible(NotEligible::VaStart))) => {
                    "variadic (calls va_start): thinjit does not import it".to_owned()
                }
                Some(Decision::NotImported(r @ Reason::OverThreshold { .. })) if is_cold(name) => {
                    format!(
                        "cold edge: the callee is `cold`, which thinjit's summary counts as a cold call without \
                         a profile (LLVM: unknown hotness); thinjit: {r}"
                    )
                }
                Some(Decision::NotImported(r)) => format!("thinjit: {r}"),
                Some(Decision::Imported) => {
                    "planned by thinjit, but no imported shard carried it".to_owned()
                }
                None => match caller_in(name, &lf) {
                    Some(caller) if !tf.contains(&caller) => {
                        format!("reached through `{caller}`, which thinjit did not import")
                    }
                    _ if kind == "variable" => {
                        "referenced only by code thinjit did not import".to_owned()
                    }
                    _ => "not reached by thinjit's planner".to_owned(),
                },
            };
            push(name, kind, "llvm-importer", reason);
        }
    }
    for (only_thinjit, kind) in [
        (tf.difference(&lf), "function"),
        (tv.difference(&lv), "variable"),
    ] {
        for name in only_thinjit {
            let reason = match plan.considered(name) {
                Some(c) if c.kind == SymbolKind::Function => format!(
                    "LLVM did not import it; thinjit: {} instructions within threshold {} at depth {}",
                    c.size, c.threshold, c.depth
                ),
                Some(c) => format!(
                    "LLVM did not import it; thinjit: a constant of {} bytes whose initializer it imports",
                    c.size
                ),
                None => "LLVM did not import it".to_owned(),
            };
            push(name, kind, "thinjit", reason);
        }
    }
    Ok(out)
}
