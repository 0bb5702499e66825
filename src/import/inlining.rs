//! What O3 made of an import: which imported helpers were inlined everywhere, and which helpers the optimized
//! script still calls (and why).
//!
//! In: the script module after optimization and its [`ImportReport`]. Out: an [`InlineOutcome`], read from the
//! module's call instructions (not from printed IR).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::llvm::Module;

use super::report::{Decision, ImportReport, SymbolKind};

/// One helper the optimized script still calls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemainingCall {
    pub name: String,
    /// Why it is still a call: `imported, not inlined` (with the inliner's obstacle when known), or the import
    /// decision's reason.
    pub why: String,
}

/// The imported helpers O3 inlined (no call left in the script), and the helper calls that stayed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineOutcome {
    /// Imported functions with no call left in the optimized script, sorted.
    pub inlined: Vec<String>,
    /// Functions the import report considered that the optimized script still calls, sorted by name.
    pub still_called: Vec<RemainingCall>,
}

impl InlineOutcome {
    /// Reads `optimized` (the script after import and O3) against the import `report`.
    pub fn of(optimized: &Module<'_>, report: &ImportReport) -> Self {
        let called = called_functions(optimized);
        let mut out = InlineOutcome::default();
        for e in report
            .entries
            .iter()
            .filter(|e| e.kind == SymbolKind::Function)
        {
            let is_called = called.contains(&e.name);
            match &e.decision {
                Decision::Imported if !is_called => out.inlined.push(e.name.clone()),
                Decision::Imported => out.still_called.push(RemainingCall {
                    name: e.name.clone(),
                    why: match &e.not_inlinable {
                        Some(why) => format!("imported, not inlined: {why}"),
                        None => "imported, not inlined (the inliner's cost model declined)".into(),
                    },
                }),
                Decision::NotImported(reason) if is_called => {
                    out.still_called.push(RemainingCall {
                        name: e.name.clone(),
                        why: format!("not imported: {reason}"),
                    })
                }
                Decision::NotImported(_) => {}
            }
        }
        out.inlined.sort();
        out.still_called.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

impl std::fmt::Display for InlineOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.inlined.is_empty() {
            writeln!(f, "inlined by O3: (none)")?;
        } else {
            writeln!(f, "inlined by O3: {}", self.inlined.join(", "))?;
        }
        if self.still_called.is_empty() {
            write!(f, "still calls: (no helper)")
        } else {
            write!(f, "still calls:")?;
            for c in &self.still_called {
                write!(f, "\n  {}: {}", c.name, c.why)?;
            }
            Ok(())
        }
    }
}

/// Names of the functions directly called (or invoked) by the module's own definitions.
pub fn called_functions(module: &Module<'_>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in module.functions().filter(|f| !f.is_declaration()) {
        for i in f.instructions() {
            if let Some(callee) = i.called_function() {
                out.insert(callee.name());
            }
        }
    }
    out
}
