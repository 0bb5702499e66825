//! `ImportReport`: what the import pass decided for every callee it considered, and why.
//!
//! In: the [`ImportPlan`](super::ImportPlan)'s decisions, plus what the importer learned (stage times, helpers
//! that were imported but cannot be inlined into the script). Out: a readable table (`Display`) and JSON (serde).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::summary::NotEligible;

/// Whether a considered symbol is a function or a variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SymbolKind {
    Function,
    Variable,
}

/// Why a callee (or a referenced variable) was not imported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// Larger than the threshold of the best call edge that reached it.
    OverThreshold {
        size: u32,
        threshold: u32,
        depth: u32,
    },
    /// `noinline`: importing it would not let the inliner do anything (LLVM refuses it too).
    NoInline,
    /// Weak or linkonce (non-ODR) linkage: the body may be replaced at link time.
    Interposable,
    /// The summary marked it not importable.
    NotEligible(NotEligible),
    /// Host-native mode: the import needs a `static` helper (named) that cannot be copied, for the reason given.
    LocalNotCopyable { local: String, why: String },
    /// The helper library does not define it (a host function, libc, ...): calls stay calls.
    NotInSummary,
    /// Excluded by the configuration's allow/deny lists.
    Denied,
    /// Importing it would exceed the cap on total imported instructions.
    TotalCapReached { cap: u64, size: u32 },
    /// The script defines this name itself; the script's definition wins and nothing is imported.
    DefinedByScript,
    /// A mutable (or thread-local) variable: imported code keeps a declaration of the one instance.
    Mutable,
    /// A constant whose initializer the summary marked not importable.
    InitializerNotImportable,
    /// Planned, but no imported shard carried its definition (it stays a declaration).
    NoDefinitionAvailable,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::OverThreshold {
                size,
                threshold,
                depth,
            } => write!(
                f,
                "over threshold: {size} instructions > {threshold} at depth {depth}"
            ),
            Reason::NoInline => f.write_str("noinline"),
            Reason::Interposable => f.write_str("interposable linkage (weak/linkonce)"),
            Reason::NotEligible(why) => write!(f, "not eligible: {why}"),
            Reason::LocalNotCopyable { local, why } => {
                write!(f, "needs static `{local}`, which cannot be copied: {why}")
            }
            Reason::NotInSummary => f.write_str("not in summary"),
            Reason::Denied => f.write_str("denied by configuration"),
            Reason::TotalCapReached { cap, size } => {
                write!(
                    f,
                    "total import cap of {cap} instructions reached ({size} more)"
                )
            }
            Reason::DefinedByScript => f.write_str("defined by the script"),
            Reason::Mutable => f.write_str("mutable: stays a declaration"),
            Reason::InitializerNotImportable => f.write_str("initializer not importable"),
            Reason::NoDefinitionAvailable => {
                f.write_str("no imported shard carries its definition")
            }
        }
    }
}

/// The decision for one considered symbol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    Imported,
    NotImported(Reason),
}

impl Decision {
    /// `true` for [`Decision::Imported`].
    pub fn is_imported(&self) -> bool {
        matches!(self, Decision::Imported)
    }

    /// The reason, when not imported.
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Decision::Imported => None,
            Decision::NotImported(r) => Some(r),
        }
    }
}

/// One callee (or referenced variable) the planner considered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Considered {
    pub name: String,
    pub kind: SymbolKind,
    pub decision: Decision,
    /// Instruction count (functions) or size in bytes (variables); 0 when unknown.
    pub size: u64,
    /// The threshold of the best call edge that reached it (0 for variables and for names the planner did not
    /// size up).
    pub threshold: u32,
    /// Call depth from the script: 1 for the script's own callees.
    pub depth: u32,
    /// Host-native mode: imported as a private copy of a `static` helper.
    pub local_copy: bool,
    /// Imported, but LLVM's inliner will refuse to inline it into the script, and why.
    pub not_inlinable: Option<String>,
}

/// Wall-clock time of each stage of one import.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTimes {
    pub verify: Duration,
    pub plan: Duration,
    pub parse_shards: Duration,
    pub link: Duration,
    pub stamp: Duration,
}

impl StageTimes {
    /// The sum of all stages.
    pub fn total(&self) -> Duration {
        self.verify + self.plan + self.parse_shards + self.link + self.stamp
    }
}

/// Totals over the report's entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub considered: usize,
    pub imported_functions: usize,
    pub imported_variables: usize,
    pub imported_instructions: u64,
    pub not_imported: usize,
}

/// What the import pass did to one script.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// The script module's name.
    pub module: String,
    /// One entry per considered symbol, sorted by name.
    pub entries: Vec<Considered>,
    pub totals: Totals,
    pub times: StageTimes,
    /// Script functions that got the helpers' `target-cpu` / `target-features` so the inliner accepts them.
    pub stamped: Vec<String>,
}

impl ImportReport {
    /// Builds a report from entries (sorted here) and computes the totals.
    pub fn new(module: impl Into<String>, mut entries: Vec<Considered>) -> Self {
        entries.sort_by(|a, b| a.name.cmp(&b.name).then(a.kind.cmp(&b.kind)));
        let mut totals = Totals {
            considered: entries.len(),
            ..Totals::default()
        };
        for e in &entries {
            match (&e.decision, e.kind) {
                (Decision::Imported, SymbolKind::Function) => {
                    totals.imported_functions += 1;
                    totals.imported_instructions += e.size;
                }
                (Decision::Imported, SymbolKind::Variable) => totals.imported_variables += 1,
                (Decision::NotImported(_), _) => totals.not_imported += 1,
            }
        }
        ImportReport {
            module: module.into(),
            entries,
            totals,
            times: StageTimes::default(),
            stamped: Vec::new(),
        }
    }

    /// The entry for `name`, if it was considered.
    pub fn entry(&self, name: &str) -> Option<&Considered> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Names of imported functions, sorted.
    pub fn imported_functions(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.kind == SymbolKind::Function && e.decision.is_imported())
            .map(|e| e.name.as_str())
            .collect()
    }

    /// Names of imported variables, sorted.
    pub fn imported_variables(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.kind == SymbolKind::Variable && e.decision.is_imported())
            .map(|e| e.name.as_str())
            .collect()
    }
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "import report for `{}`", self.module)?;
        let name_w = self
            .entries
            .iter()
            .map(|e| e.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            f,
            "  {:<name_w$}  {:<4}  {:>6}  {:>9}  {:>5}  decision",
            "name", "kind", "size", "threshold", "depth"
        )?;
        for e in &self.entries {
            let kind = match e.kind {
                SymbolKind::Function => "fn",
                SymbolKind::Variable => "var",
            };
            let decision = match &e.decision {
                Decision::Imported if e.local_copy => "imported (private copy)".to_owned(),
                Decision::Imported => "imported".to_owned(),
                Decision::NotImported(r) => format!("not imported: {r}"),
            };
            let size = match e.kind {
                SymbolKind::Function => e.size.to_string(),
                SymbolKind::Variable => format!("{} B", e.size),
            };
            writeln!(
                f,
                "  {:<name_w$}  {:<4}  {:>6}  {:>9}  {:>5}  {decision}",
                e.name, kind, size, e.threshold, e.depth
            )?;
            if let Some(why) = &e.not_inlinable {
                writeln!(f, "  {:<name_w$}  warning: cannot be inlined: {why}", "")?;
            }
        }
        let t = &self.totals;
        writeln!(
            f,
            "totals: {} considered, {} functions ({} instructions) and {} variables imported, {} not imported",
            t.considered,
            t.imported_functions,
            t.imported_instructions,
            t.imported_variables,
            t.not_imported
        )?;
        if !self.stamped.is_empty() {
            writeln!(
                f,
                "target attributes stamped on: {}",
                self.stamped.join(", ")
            )?;
        }
        write!(
            f,
            "times: verify {}, plan {}, parse shards {}, link {}, stamp {} (total {})",
            micros(self.times.verify),
            micros(self.times.plan),
            micros(self.times.parse_shards),
            micros(self.times.link),
            micros(self.times.stamp),
            micros(self.times.total())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, decision: Decision, size: u64) -> Considered {
        Considered {
            name: name.into(),
            kind: SymbolKind::Function,
            decision,
            size,
            threshold: 100,
            depth: 1,
            local_copy: false,
            not_inlinable: None,
        }
    }

    #[test]
    fn totals_and_table() {
        let mut r = ImportReport::new(
            "script",
            vec![
                entry(
                    "b_big",
                    Decision::NotImported(Reason::OverThreshold {
                        size: 300,
                        threshold: 100,
                        depth: 1,
                    }),
                    300,
                ),
                entry("a_small", Decision::Imported, 5),
            ],
        );
        r.entries[0].not_inlinable = Some("target-features differ".into());
        assert_eq!(r.entries[0].name, "a_small");
        assert_eq!(r.totals.imported_functions, 1);
        assert_eq!(r.totals.imported_instructions, 5);
        assert_eq!(r.totals.not_imported, 1);
        let text = r.to_string();
        assert!(
            text.contains("over threshold: 300 instructions > 100 at depth 1"),
            "{text}"
        );
        assert!(
            text.contains("cannot be inlined: target-features differ"),
            "{text}"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["entries"][0]["decision"], "Imported");
        assert_eq!(
            json["entries"][1]["decision"]["NotImported"]["OverThreshold"]["size"],
            300
        );
    }

    #[test]
    fn reasons_read_well() {
        assert_eq!(
            Reason::NotEligible(NotEligible::VaStart).to_string(),
            "not eligible: variadic (calls va_start)"
        );
        assert_eq!(Reason::NoInline.to_string(), "noinline");
    }
}
