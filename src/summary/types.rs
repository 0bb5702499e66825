//! The summary's index types: what the build step records about every helper function and variable, and what
//! the planner reads. Plain serde data, constructible by hand (the planner is tested without LLVM).
//!
//! Names are the names scripts and the JIT-resident library use: a `static` function or variable that an
//! importable function references has been promoted to `<name>.llvm.<hash>` (external, default visibility); its
//! source name is kept in `original_name` for host-native mode, where promoted names do not exist.

use serde::{Deserialize, Serialize};

pub use crate::llvm::Linkage;

/// Hotness of a call edge, as LLVM's `CalleeInfo::HotnessType` (ordered: `Unknown < Cold < None < Hot <
/// Critical` for "higher wins" merging, matching LLVM's `updateHotness`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Hotness {
    Unknown,
    Cold,
    None,
    Hot,
    Critical,
}

/// A direct call from one helper to another (or to anything else by name).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEdge {
    /// Callee symbol name (after promotion).
    pub callee: String,
    /// Number of call sites in the caller.
    pub count: u32,
    /// The hottest hotness over those call sites.
    pub hotness: Hotness,
}

/// Function attributes that decide importing and inlining.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionAttributes {
    pub noinline: bool,
    pub alwaysinline: bool,
    pub optnone: bool,
    pub cold: bool,
    pub hot: bool,
}

/// Why a function may not be imported (LLVM's `NotEligibleToImport` and thinjit's own checks).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NotEligible {
    /// The body contains inline assembly (it may define symbols or rely on the defining module).
    InlineAsm,
    /// The body takes a `blockaddress` (not importable in LLVM either).
    BlockAddress,
    /// The function is variadic and calls `va_start`.
    VaStart,
    /// The body accesses thread-local storage.
    ThreadLocal,
    /// Weak or linkonce (non-ODR) linkage: the definition can be replaced at link time.
    Interposable,
    /// `optnone`: the author asked for the body not to be optimized.
    OptNone,
    /// References a local symbol that could not be promoted (named).
    UnpromotableReference(String),
    /// Reaches `static` mutable or thread-local state, which does not exist under a promoted name in a
    /// host-native runtime (named). Only applies in host-native mode.
    LocalState(String),
    /// No body in the helper library.
    Declaration,
}

impl std::fmt::Display for NotEligible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotEligible::InlineAsm => f.write_str("contains inline asm"),
            NotEligible::BlockAddress => f.write_str("takes a blockaddress"),
            NotEligible::VaStart => f.write_str("variadic (calls va_start)"),
            NotEligible::ThreadLocal => f.write_str("accesses thread-local storage"),
            NotEligible::Interposable => f.write_str("interposable linkage (weak/linkonce)"),
            NotEligible::OptNone => f.write_str("optnone"),
            NotEligible::UnpromotableReference(n) => {
                write!(f, "references local `{n}` that cannot be promoted")
            }
            NotEligible::LocalState(n) => {
                write!(
                    f,
                    "uses static mutable or thread-local state `{n}` (host-native runtime)"
                )
            }
            NotEligible::Declaration => {
                f.write_str("declaration only (no body in the helper library)")
            }
        }
    }
}

/// Where a shard lives in the summary file: a byte range of the shard area and its checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRef {
    /// Offset from the start of the shard area.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// Checksum of the bytes (verified before they reach LLVM's bitcode reader).
    pub checksum: u64,
}

/// Everything the planner and importer know about one helper function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionSummary {
    /// Symbol name in the helper library (promoted name for promoted locals).
    pub name: String,
    /// The source-level local name when this was a `static` function promoted at build time.
    pub original_name: Option<String>,
    /// Linkage in the helper library after promotion and `linkonce_odr` → `weak_odr`.
    pub linkage: Linkage,
    /// Linkage in the input before thinjit changed it.
    pub original_linkage: Linkage,
    /// Instructions, counted as LLVM's module summary counts them.
    pub instruction_count: u32,
    pub attributes: FunctionAttributes,
    /// Direct calls, sorted by callee name.
    pub calls: Vec<CallEdge>,
    /// Global variables (and functions taken by address) referenced, sorted, deduplicated.
    pub refs: Vec<String>,
    /// Locals (promoted names) this function reaches directly: callees and variables that were `static`.
    pub locals: Vec<String>,
    /// Reasons this function cannot be imported; empty when eligible.
    pub not_eligible: Vec<NotEligible>,
    /// The function's shard, when eligible.
    pub shard: Option<ShardRef>,
}

impl FunctionSummary {
    /// `true` when the function may be imported (in JIT-resident mode).
    pub fn is_eligible(&self) -> bool {
        self.not_eligible.is_empty()
    }
}

/// Everything the planner and importer know about one helper global variable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableSummary {
    pub name: String,
    pub original_name: Option<String>,
    pub linkage: Linkage,
    /// `constant` in IR.
    pub constant: bool,
    pub thread_local: bool,
    /// Size in bytes under the library's data layout.
    pub size: u64,
    /// Whether importing code may carry the initializer along (`available_externally` constant, so O3 folds it).
    pub importable_initializer: bool,
    /// Globals referenced from the initializer, sorted.
    pub refs: Vec<String>,
}

/// A static initializer of the helper library (`llvm.global_ctors` entry), after promotion.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Initializer {
    pub priority: u32,
    /// The constructor function's (promoted, external) name.
    pub function: String,
}

/// The index: every function and variable, sorted by name, plus the initializers in priority order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryIndex {
    pub functions: Vec<FunctionSummary>,
    pub variables: Vec<VariableSummary>,
    pub initializers: Vec<Initializer>,
}

impl SummaryIndex {
    /// When no function can be imported, why: the reasons found, most common first, with a hint for the
    /// usual cause (sources compiled at `-O0` make every function `optnone`). `None` when something is
    /// importable.
    pub fn nothing_importable(&self) -> Option<String> {
        if self.functions.iter().any(FunctionSummary::is_eligible) {
            return None;
        }
        let defined: Vec<&FunctionSummary> = self
            .functions
            .iter()
            .filter(|f| !f.not_eligible.contains(&NotEligible::Declaration))
            .collect();
        if defined.is_empty() {
            return Some("no function is importable: the inputs define no functions".into());
        }
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for f in &defined {
            for reason in &f.not_eligible {
                let key = match reason {
                    NotEligible::UnpromotableReference(_) => {
                        "references a local that cannot be promoted".into()
                    }
                    NotEligible::LocalState(_) => {
                        "uses static mutable or thread-local state (host-native runtime)".into()
                    }
                    other => other.to_string(),
                };
                *counts.entry(key).or_default() += 1;
            }
        }
        let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let reasons = counts
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect::<Vec<_>>()
            .join(", ");
        let all_optnone = defined
            .iter()
            .all(|f| f.not_eligible.contains(&NotEligible::OptNone));
        let hint = if all_optnone {
            " (compiled at -O0? clang marks every function optnone at -O0: build the helpers with -O1 or higher)"
        } else {
            ""
        };
        Some(format!(
            "no function is importable among {} defined: {reasons}{hint}",
            defined.len()
        ))
    }

    /// Sorts everything so that equal inputs give equal bytes.
    pub fn canonicalize(&mut self) {
        self.functions.sort_by(|a, b| a.name.cmp(&b.name));
        self.variables.sort_by(|a, b| a.name.cmp(&b.name));
        self.initializers.sort();
        for f in &mut self.functions {
            f.calls.sort_by(|a, b| a.callee.cmp(&b.callee));
            f.refs.sort();
            f.refs.dedup();
            f.locals.sort();
            f.locals.dedup();
            f.not_eligible.sort();
            f.not_eligible.dedup();
        }
        for v in &mut self.variables {
            v.refs.sort();
            v.refs.dedup();
        }
    }

    /// The function named `name` (binary search: the index is sorted).
    pub fn function(&self, name: &str) -> Option<&FunctionSummary> {
        self.functions
            .binary_search_by(|f| f.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.functions[i])
    }

    /// The variable named `name`.
    pub fn variable(&self, name: &str) -> Option<&VariableSummary> {
        self.variables
            .binary_search_by(|v| v.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.variables[i])
    }
}
