//! The import planner: which helper functions and constants to import into one script.
//!
//! In: the summary's [`SummaryIndex`], the script's [`ScriptSymbols`] (what it declares and defines) and an
//! [`ImportConfig`] and where the helper runtime lives ([`RuntimeMode`], the engine's setting). Out: an [`ImportPlan`] — the functions and variables to import, and a decision with a
//! reason for every symbol considered. Pure Rust, no LLVM: testable on hand-made indexes.
//!
//! The walk mirrors LLVM's `ModuleImportsManager::computeImportForModule` / `computeImportForFunction`
//! (`llvm/lib/Transforms/IPO/FunctionImport.cpp`, LLVM 19):
//! - every call edge from the script is evaluated at `import-instr-limit` × the edge's hotness multiplier
//!   (hot, critical, cold; 1 otherwise); the script's edges are evaluated first, in name order;
//! - an imported callee is pushed on a stack (LIFO, as LLVM) with the *caller's* threshold × the evolution
//!   factor (the hot evolution factor for hot edges) for its own callees; thresholds are truncated to whole
//!   instructions exactly where LLVM stores them in an `unsigned`;
//! - a callee already imported at a threshold ≥ the new one is not re-evaluated; one imported at a lower
//!   threshold is pushed again so its callees get the higher threshold; one that failed at a threshold ≥ the
//!   new one is not retried;
//! - a callee is refused, in LLVM's order, for interposable linkage, not being eligible, size over the
//!   threshold (unless `alwaysinline`, or `force-import-all`) and `noinline` (unless `force-import-all`);
//!   thinjit adds the allow/deny lists (checked first), the total-instruction cap (checked last) and, in
//!   host-native mode, the `static` helpers an import would need (see [`RuntimeMode::HostNative`]);
//! - variables referenced by imported functions are imported when constant with an importable initializer
//!   (recursively through their initializers' references); mutable and thread-local ones stay declarations.
//!   LLVM also imports mutable variables without references as `available_externally` copies, which cannot
//!   be folded; thinjit keeps them declarations so there is visibly one instance.
//!
//! A name the script defines is never imported (as in LLVM, where a callee the module defines is skipped);
//! [`ScriptSymbols::clashes`] lists script definitions that collide with helper definitions, which the
//! importer rejects.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::config::ImportConfig;
use super::report::{Considered, Decision, Reason, SymbolKind};
use crate::jit::RuntimeMode;
use crate::summary::{FunctionSummary, Hotness, Linkage, NotEligible, SummaryIndex};

/// What the planner needs to know about a script module.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScriptSymbols {
    /// Names the script declares (functions and variables), with the hottest call edge from the script to
    /// each (`Unknown` without profile data).
    pub declared: BTreeMap<String, Hotness>,
    /// Names the script defines, with their linkage.
    pub defined: BTreeMap<String, Linkage>,
}

impl ScriptSymbols {
    /// No symbols.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a declaration reached with unknown hotness.
    pub fn declare(self, name: &str) -> Self {
        self.declare_with_hotness(name, Hotness::Unknown)
    }

    /// Adds a declaration reached by a call edge of the given hotness (the hottest one wins).
    pub fn declare_with_hotness(mut self, name: &str, hotness: Hotness) -> Self {
        let h = self.declared.entry(name.to_owned()).or_insert(hotness);
        *h = (*h).max(hotness);
        self
    }

    /// Adds a definition.
    pub fn define(mut self, name: &str, linkage: Linkage) -> Self {
        self.defined.insert(name.to_owned(), linkage);
        self
    }

    /// Whether the script defines `name` (with any linkage).
    pub fn defines(&self, name: &str) -> bool {
        self.defined.contains_key(name)
    }

    /// Script definitions with non-local linkage that the helper library also defines: linking both would
    /// give two definitions of one symbol (or silently shadow the helper), so the importer refuses them.
    /// `available_externally` definitions (an earlier import) and local ones are not clashes.
    pub fn clashes(&self, index: &SummaryIndex) -> Vec<String> {
        let helper_defines = |name: &str| {
            index
                .function(name)
                .is_some_and(|f| !f.not_eligible.contains(&NotEligible::Declaration))
                || index.variable(name).is_some()
        };
        self.defined
            .iter()
            .filter(|(name, linkage)| {
                !linkage.is_local()
                    && **linkage != Linkage::AvailableExternally
                    && helper_defines(name)
            })
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// A function the plan imports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedFunction {
    pub name: String,
    pub instruction_count: u32,
    /// The threshold it was imported under (0 for host-native local copies pulled in by a caller).
    pub threshold: u32,
    /// Call depth from the script (1: called by the script).
    pub depth: u32,
    /// Host-native mode: a private copy of a `static` helper (the native binary has no symbol for it).
    pub local_copy: bool,
}

/// A constant variable the plan imports with its initializer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedVariable {
    pub name: String,
    pub size: u64,
    /// Host-native mode: a private copy of a `static const` table.
    pub local_copy: bool,
}

/// The planner's output: what to import, and a decision for everything considered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImportPlan {
    /// Functions to import, sorted by name.
    pub functions: Vec<PlannedFunction>,
    /// Constant variables to import with their initializers, sorted by name.
    pub variables: Vec<PlannedVariable>,
    /// Every function and variable considered, sorted by name.
    pub considered: Vec<Considered>,
    /// Where the helper runtime lives: what the plan was made for (the importer performs it accordingly).
    pub mode: RuntimeMode,
}

impl ImportPlan {
    /// Total instructions of the imported functions.
    pub fn imported_instructions(&self) -> u64 {
        self.functions
            .iter()
            .map(|f| u64::from(f.instruction_count))
            .sum()
    }

    /// Names of the imported functions, sorted.
    pub fn function_names(&self) -> Vec<&str> {
        self.functions.iter().map(|f| f.name.as_str()).collect()
    }

    /// Names of the imported variables, sorted.
    pub fn variable_names(&self) -> Vec<&str> {
        self.variables.iter().map(|v| v.name.as_str()).collect()
    }

    /// The decision for `name`, if it was considered.
    pub fn considered(&self, name: &str) -> Option<&Considered> {
        self.considered
            .binary_search_by(|c| c.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.considered[i])
    }
}

/// Plans the imports of one script. Deterministic: equal inputs give equal plans.
///
/// ```
/// use thinjit::import::{plan, ImportConfig, ScriptSymbols};
/// use thinjit::jit::RuntimeMode;
/// use thinjit::summary::SummaryIndex;
/// let script = ScriptSymbols::new().declare("printf");
/// let p = plan(&SummaryIndex::default(), &script, &ImportConfig::default(), RuntimeMode::JitResident);
/// assert!(p.functions.is_empty());
/// assert!(!p.considered("printf").unwrap().decision.is_imported());
/// ```
pub fn plan(
    index: &SummaryIndex,
    script: &ScriptSymbols,
    config: &ImportConfig,
    mode: RuntimeMode,
) -> ImportPlan {
    let mut planner = Planner {
        index,
        script,
        config,
        mode,
        visits: BTreeMap::new(),
        functions: BTreeMap::new(),
        variables: BTreeMap::new(),
        considered: BTreeMap::new(),
        total: 0,
        stack: Vec::new(),
    };
    planner.run();
    planner.finish()
}

/// LLVM's `ImportThresholds` entry: the highest threshold seen (truncated, as LLVM stores an `unsigned`) and
/// whether the callee was imported.
struct Visit {
    processed: u32,
    imported: bool,
}

struct Planner<'a> {
    index: &'a SummaryIndex,
    script: &'a ScriptSymbols,
    config: &'a ImportConfig,
    mode: RuntimeMode,
    visits: BTreeMap<&'a str, Visit>,
    functions: BTreeMap<&'a str, PlannedFunction>,
    variables: BTreeMap<&'a str, PlannedVariable>,
    considered: BTreeMap<&'a str, Considered>,
    total: u64,
    /// Imported functions whose callees are still to be evaluated, with their threshold and depth.
    stack: Vec<(&'a FunctionSummary, u32, u32)>,
}

/// Host-native requirements of a function: the `static` functions and constants it needs copied.
#[derive(Default)]
struct LocalCopies<'a> {
    functions: BTreeSet<&'a str>,
    variables: BTreeSet<&'a str>,
}

impl<'a> Planner<'a> {
    fn run(&mut self) {
        let limit = self.config.import_instr_limit;
        for (name, &hotness) in &self.script.declared {
            let name = name.as_str();
            if self.script.defines(name) || name.starts_with("llvm.") {
                continue;
            }
            if self.index.variable(name).is_some() {
                self.consider_variable(name, 1);
            } else {
                self.edge(name, hotness, limit, 1);
            }
        }
        while let Some((f, threshold, depth)) = self.stack.pop() {
            for call in &f.calls {
                if call.callee.starts_with("llvm.") {
                    continue;
                }
                self.edge(&call.callee, call.hotness, threshold, depth + 1);
            }
        }
    }

    fn multiplier(&self, hotness: Hotness) -> f32 {
        match hotness {
            Hotness::Hot => self.config.import_hot_multiplier,
            Hotness::Cold => self.config.import_cold_multiplier,
            Hotness::Critical => self.config.import_critical_multiplier,
            Hotness::None | Hotness::Unknown => 1.0,
        }
    }

    /// One call edge to `callee` from a caller whose threshold is `threshold`, found at `depth`.
    fn edge(&mut self, callee: &'a str, hotness: Hotness, threshold: u32, depth: u32) {
        if self.script.defines(callee) {
            self.note_function(
                callee,
                0,
                0,
                depth,
                Decision::NotImported(Reason::DefinedByScript),
            );
            return;
        }
        let Some(summary) = self.index.function(callee) else {
            self.note_function(
                callee,
                0,
                0,
                depth,
                Decision::NotImported(Reason::NotInSummary),
            );
            return;
        };
        let new_threshold = threshold as f32 * self.multiplier(hotness);
        // Truncated where LLVM converts to `unsigned` (`selectCallee`'s parameter, `ImportThresholds`).
        let new_unsigned = new_threshold as u32;
        let hot = hotness == Hotness::Hot;
        match self.visits.get_mut(callee) {
            Some(v) if v.imported => {
                // Revisit only when the stored (truncated, saturated) threshold grows: compared in `f32`
                // alone, a fraction that truncates to the stored value (a tiny multiplier), a threshold past
                // `u32::MAX` (evolution factors above 1) or NaN would look higher every time, and a call cycle
                // would be revisited forever (found by the `planner` fuzz target).
                if new_threshold <= v.processed as f32 || new_unsigned <= v.processed {
                    return;
                }
                v.processed = new_unsigned;
                if let Some(c) = self.considered.get_mut(callee) {
                    c.threshold = new_unsigned;
                    c.depth = c.depth.min(depth);
                }
                if let Some(p) = self.functions.get_mut(callee) {
                    p.threshold = new_unsigned;
                    p.depth = p.depth.min(depth);
                }
            }
            Some(v) if new_threshold <= v.processed as f32 => return,
            _ => {
                let decision = self.select(summary, new_unsigned, depth);
                let imported = decision.is_ok();
                self.visits.insert(
                    callee,
                    Visit {
                        processed: new_unsigned,
                        imported,
                    },
                );
                match decision {
                    Err(reason) => {
                        self.note_function(
                            callee,
                            summary.instruction_count,
                            new_unsigned,
                            depth,
                            Decision::NotImported(reason),
                        );
                        return;
                    }
                    Ok(copies) => {
                        self.import_function(summary, new_unsigned, depth, false);
                        self.import_copies(copies, depth);
                    }
                }
            }
        }
        let factor = if hot {
            self.config.import_hot_evolution_factor
        } else {
            self.config.import_instr_evolution_factor
        };
        let adjusted = (threshold as f32 * factor) as u32;
        self.stack.push((summary, adjusted, depth));
    }

    /// LLVM's `selectCallee` plus thinjit's own checks; `Ok` carries the host-native local copies needed.
    fn select(
        &self,
        f: &'a FunctionSummary,
        threshold: u32,
        depth: u32,
    ) -> Result<LocalCopies<'a>, Reason> {
        if !self.config.permits(&f.name) {
            return Err(Reason::Denied);
        }
        if f.linkage.is_interposable() {
            return Err(Reason::Interposable);
        }
        if let Some(why) = first_reason(&f.not_eligible) {
            return Err(match why {
                NotEligible::Interposable => Reason::Interposable,
                other => Reason::NotEligible(other.clone()),
            });
        }
        let copies = match self.mode {
            RuntimeMode::JitResident => LocalCopies::default(),
            RuntimeMode::HostNative => self.local_copies(f)?,
        };
        let force = self.config.force_import_all;
        let always = f.attributes.alwaysinline && self.config.always_import_alwaysinline;
        if f.instruction_count > threshold && !always && !force {
            return Err(Reason::OverThreshold {
                size: f.instruction_count,
                threshold,
                depth,
            });
        }
        if f.attributes.noinline && !force {
            return Err(Reason::NoInline);
        }
        if let Some(cap) = self.config.max_total_instructions {
            let extra: u64 = u64::from(f.instruction_count)
                + copies
                    .functions
                    .iter()
                    .filter(|n| !self.functions.contains_key(*n) && **n != f.name)
                    .filter_map(|n| self.index.function(n))
                    .map(|g| u64::from(g.instruction_count))
                    .sum::<u64>();
            if self.total + extra > cap {
                return Err(Reason::TotalCapReached {
                    cap,
                    size: f.instruction_count,
                });
            }
        }
        Ok(copies)
    }

    /// Host-native mode: the `static` functions and constants `f` needs copied into the script, or why it
    /// cannot have them. Follows `locals` of copied functions and promoted references of copied constants.
    fn local_copies(&self, f: &'a FunctionSummary) -> Result<LocalCopies<'a>, Reason> {
        let mut copies = LocalCopies::default();
        let mut work: Vec<&'a str> = Vec::new();
        if f.original_name.is_some() {
            copies.functions.insert(f.name.as_str());
        }
        work.extend(f.locals.iter().map(String::as_str));
        while let Some(name) = work.pop() {
            if self.script.defines(name) {
                continue;
            }
            if let Some(v) = self.index.variable(name) {
                if v.original_name.is_none() || !copies.variables.insert(v.name.as_str()) {
                    continue;
                }
                if v.thread_local || !v.constant {
                    return Err(Reason::NotEligible(NotEligible::LocalState(
                        name.to_owned(),
                    )));
                }
                if !v.importable_initializer {
                    return Err(Reason::LocalNotCopyable {
                        local: name.to_owned(),
                        why: "initializer not importable".into(),
                    });
                }
                work.extend(v.refs.iter().map(String::as_str));
            } else if let Some(g) = self.index.function(name) {
                if g.original_name.is_none() || !copies.functions.insert(g.name.as_str()) {
                    continue;
                }
                // A consistent index never gives a promoted `static` an interposable linkage; a damaged
                // or hand-made one may, and such a body is not the one the program runs.
                if g.linkage.is_interposable() {
                    return Err(Reason::LocalNotCopyable {
                        local: name.to_owned(),
                        why: NotEligible::Interposable.to_string(),
                    });
                }
                if let Some(why) = first_reason(&g.not_eligible) {
                    return Err(match why {
                        NotEligible::ThreadLocal => {
                            Reason::NotEligible(NotEligible::LocalState(name.to_owned()))
                        }
                        other => Reason::LocalNotCopyable {
                            local: name.to_owned(),
                            why: other.to_string(),
                        },
                    });
                }
                work.extend(g.locals.iter().map(String::as_str));
            } else if name != f.name {
                return Err(Reason::LocalNotCopyable {
                    local: name.to_owned(),
                    why: "not in summary".into(),
                });
            }
        }
        Ok(copies)
    }

    fn import_function(&mut self, f: &'a FunctionSummary, threshold: u32, depth: u32, copy: bool) {
        let local_copy =
            copy || (self.mode == RuntimeMode::HostNative && f.original_name.is_some());
        if self.functions.contains_key(f.name.as_str()) {
            return;
        }
        self.total += u64::from(f.instruction_count);
        self.functions.insert(
            f.name.as_str(),
            PlannedFunction {
                name: f.name.clone(),
                instruction_count: f.instruction_count,
                threshold,
                depth,
                local_copy,
            },
        );
        let mut entry = considered(
            &f.name,
            SymbolKind::Function,
            u64::from(f.instruction_count),
            threshold,
            depth,
            Decision::Imported,
        );
        entry.local_copy = local_copy;
        self.considered.insert(f.name.as_str(), entry);
        for r in &f.refs {
            self.consider_variable(r, depth);
        }
    }

    /// Adds host-native local copies (functions are also pushed so their callees are considered).
    fn import_copies(&mut self, copies: LocalCopies<'a>, depth: u32) {
        for name in copies.variables {
            if let Some(v) = self.index.variable(name) {
                self.import_variable(v.name.as_str(), v.size, depth, true);
            }
        }
        for name in copies.functions {
            if self.functions.contains_key(name) {
                continue;
            }
            if let Some(g) = self.index.function(name) {
                self.visits.insert(
                    name,
                    Visit {
                        processed: 0,
                        imported: true,
                    },
                );
                self.import_function(g, 0, depth + 1, true);
            }
        }
    }

    /// A variable referenced by the script or by imported code.
    fn consider_variable(&mut self, name: &'a str, depth: u32) {
        let mut work = vec![name];
        while let Some(name) = work.pop() {
            let Some(v) = self.index.variable(name) else {
                continue;
            };
            if self.considered.contains_key(name) {
                continue;
            }
            if self.mode == RuntimeMode::HostNative && v.original_name.is_some() {
                // Copied (or refused) together with the function that needs it.
                continue;
            }
            let decision = if self.script.defines(name) {
                Decision::NotImported(Reason::DefinedByScript)
            } else if self.config.deny.contains(name) {
                Decision::NotImported(Reason::Denied)
            } else if v.thread_local || !v.constant {
                Decision::NotImported(Reason::Mutable)
            } else if !v.importable_initializer || v.linkage.is_interposable() {
                Decision::NotImported(Reason::InitializerNotImportable)
            } else {
                Decision::Imported
            };
            if decision.is_imported() {
                self.import_variable(name, v.size, depth, false);
                work.extend(v.refs.iter().map(String::as_str));
            } else {
                self.considered.insert(
                    name,
                    considered(name, SymbolKind::Variable, v.size, 0, depth, decision),
                );
            }
        }
    }

    fn import_variable(&mut self, name: &'a str, size: u64, depth: u32, local_copy: bool) {
        self.variables
            .entry(name)
            .or_insert_with(|| PlannedVariable {
                name: name.to_owned(),
                size,
                local_copy,
            });
        let mut entry = considered(
            name,
            SymbolKind::Variable,
            size,
            0,
            depth,
            Decision::Imported,
        );
        entry.local_copy = local_copy;
        self.considered.insert(name, entry);
    }

    /// Records a (not-imported) decision for a function, keeping the latest one.
    fn note_function(
        &mut self,
        name: &'a str,
        size: u32,
        threshold: u32,
        depth: u32,
        decision: Decision,
    ) {
        if self
            .considered
            .get(name)
            .is_some_and(|c| c.decision.is_imported())
        {
            return;
        }
        let depth = self
            .considered
            .get(name)
            .map_or(depth, |c| c.depth.min(depth));
        self.considered.insert(
            name,
            considered(
                name,
                SymbolKind::Function,
                u64::from(size),
                threshold,
                depth,
                decision,
            ),
        );
    }

    fn finish(self) -> ImportPlan {
        ImportPlan {
            functions: self.functions.into_values().collect(),
            variables: self.variables.into_values().collect(),
            considered: self.considered.into_values().collect(),
            mode: self.mode,
        }
    }
}

/// The reason to report first: anything but `Interposable` (reported from the linkage), else that.
fn first_reason(reasons: &[NotEligible]) -> Option<&NotEligible> {
    reasons
        .iter()
        .find(|r| **r != NotEligible::Interposable)
        .or_else(|| reasons.first())
}

fn considered(
    name: &str,
    kind: SymbolKind,
    size: u64,
    threshold: u32,
    depth: u32,
    decision: Decision,
) -> Considered {
    Considered {
        name: name.to_owned(),
        kind,
        decision,
        size,
        threshold,
        depth,
        local_copy: false,
        not_inlinable: None,
    }
}

#[cfg(test)]
mod tests;
