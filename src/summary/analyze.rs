//! Per-function and per-variable analysis of the promoted helper library, through the safe LLVM layer only.
//!
//! In: a linked, promoted library module and the record of what promotion renamed. Out: [`FunctionSummary`]s
//! (without shards), [`VariableSummary`]s and the library's [`Initializer`]s.
//!
//! Instruction counts follow LLVM's `ModuleSummaryAnalysis` (every instruction except debug-info and pseudo-probe
//! intrinsics). Call edges are direct calls to non-intrinsic functions (or aliases), one edge per callee with the
//! number of call sites.
//!
//! # Hotness
//! As LLVM's `ModuleSummaryAnalysis`: when the module carries a `ProfileSummary`, a call site's count is its own
//! `!prof` total weight (sample profiles) or its block's count (the function's `function_entry_count` and
//! `branch_weights` through BlockFrequencyInfo, computed by LLVM itself via the shim), classified `Hot`, `Cold` or `None` against the
//! profile summary's thresholds. Without profile data LLVM says `Unknown`; thinjit then also reads what the IR
//! states directly: a call site or callee marked `cold` gives `Cold`, one marked `hot` gives `Hot` (LLVM's
//! importer treats a cold edge with its cold multiplier, so this only ever lowers the threshold for code the
//! author marked cold). Several call sites to one callee merge as LLVM's `updateHotness` does (the greatest in
//! `Unknown < Cold < None < Hot < Critical`).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::llvm::{Function, GlobalVariable, Linkage, Module, Value};

use super::{
    CallEdge, FunctionAttributes, FunctionSummary, Hotness, Initializer, NotEligible,
    VariableSummary,
};

/// What build-time promotion changed, by library name: the source-level local name (when the symbol was a
/// promoted local) and the linkage in the input.
pub(crate) type Origins = HashMap<String, (Option<String>, Linkage)>;

/// True if `c` contains a `blockaddress`, looking through constant expressions and aggregates, not into other
/// globals.
fn contains_block_address<'ctx>(c: Value<'ctx>, seen: &mut HashSet<Value<'ctx>>) -> bool {
    if c.is_block_address() {
        return true;
    }
    if c.is_global_value() || !c.is_constant() || !seen.insert(c) {
        return false;
    }
    c.operands()
        .collect::<Vec<_>>()
        .into_iter()
        .any(|op| contains_block_address(op, seen))
}

/// Whether importing code may carry `g`'s initializer: matches what the shard extractor copies as a definition
/// (`copiesAsDefinition` in the shim).
pub(crate) fn importable_initializer(g: GlobalVariable<'_>) -> bool {
    let linkage = g.linkage();
    g.is_constant()
        && !g.is_thread_local()
        && !linkage.is_interposable()
        && !linkage.is_local()
        && !matches!(linkage, Linkage::AvailableExternally | Linkage::Appending)
        && g.initializer()
            .is_some_and(|init| !contains_block_address(init, &mut HashSet::new()))
}

/// Collects the globals a constant reaches (not looking into other globals' initializers).
fn constant_refs<'ctx>(
    c: Value<'ctx>,
    seen: &mut HashSet<Value<'ctx>>,
    out: &mut Vec<Value<'ctx>>,
) {
    if c.is_global_value() {
        out.push(c);
        return;
    }
    if !c.is_constant() || c.is_block_address() || !seen.insert(c) {
        return;
    }
    for op in c.operands().collect::<Vec<_>>() {
        constant_refs(op, seen, out);
    }
}

struct FunctionWalk<'a, 'ctx> {
    origins: &'a Origins,
    seen: HashSet<Value<'ctx>>,
    refs: Vec<String>,
    locals: Vec<String>,
    reasons: Vec<NotEligible>,
    block_address_vars: HashMap<Value<'ctx>, bool>,
}

impl<'ctx> FunctionWalk<'_, 'ctx> {
    /// Records a referenced global value (`as_ref`: the reference is not the callee of a direct call).
    fn global(&mut self, g: Value<'ctx>, as_ref: bool) {
        let name = g.name();
        if as_ref {
            self.refs.push(name.clone());
        }
        if g.is_thread_local() {
            self.reasons.push(NotEligible::ThreadLocal);
        }
        if g.as_global_value()
            .is_some_and(|gv| gv.linkage().is_local())
        {
            self.reasons
                .push(NotEligible::UnpromotableReference(name.clone()));
        }
        if self
            .origins
            .get(&name)
            .is_some_and(|(original, _)| original.is_some())
        {
            self.locals.push(name);
        }
        if let Some(var) = g.as_global_variable() {
            let has_ba = *self.block_address_vars.entry(g).or_insert_with(|| {
                var.initializer()
                    .is_some_and(|init| contains_block_address(init, &mut HashSet::new()))
            });
            if has_ba {
                self.reasons.push(NotEligible::BlockAddress);
            }
        }
    }

    /// Walks an operand: globals are recorded, constants are looked through.
    fn operand(&mut self, v: Value<'ctx>) {
        if v.is_global_value() {
            self.global(v, true);
        } else if v.is_block_address() {
            self.reasons.push(NotEligible::BlockAddress);
        } else if v.is_constant() && self.seen.insert(v) {
            for op in v.operands().collect::<Vec<_>>() {
                self.operand(op);
            }
        }
    }
}

/// Summarizes one function of the promoted library (the shard is filled in later).
pub(crate) fn analyze_function(f: Function<'_>, origins: &Origins) -> FunctionSummary {
    let name = f.name();
    let linkage = f.linkage();
    let (original_name, original_linkage) = origins.get(&name).cloned().unwrap_or((None, linkage));
    let attributes = FunctionAttributes {
        noinline: f.has_attribute("noinline"),
        alwaysinline: f.has_attribute("alwaysinline"),
        optnone: f.has_attribute("optnone"),
        cold: f.has_attribute("cold"),
        hot: f.has_attribute("hot"),
    };
    let mut walk = FunctionWalk {
        origins,
        seen: HashSet::new(),
        refs: Vec::new(),
        locals: Vec::new(),
        reasons: Vec::new(),
        block_address_vars: HashMap::new(),
    };
    let mut edges: BTreeMap<String, (u32, Hotness)> = BTreeMap::new();
    let mut instruction_count = 0u32;
    let profile = f.call_profile_hotness();
    let mut call_index = 0usize;
    if f.is_declaration() {
        walk.reasons.push(NotEligible::Declaration);
    } else {
        if linkage.is_interposable() {
            walk.reasons.push(NotEligible::Interposable);
        }
        if attributes.optnone {
            walk.reasons.push(NotEligible::OptNone);
        }
        // Personality, prefix and prologue data.
        for op in f.operands().collect::<Vec<_>>() {
            walk.operand(op);
        }
        for inst in f.instructions() {
            // Every call-like instruction has a slot in `profile`, debug intrinsics included.
            let profile_hotness = if inst.is_call() {
                call_index += 1;
                match profile.get(call_index - 1) {
                    Some(1) => Hotness::Cold,
                    Some(2) => Hotness::None,
                    Some(3) => Hotness::Hot,
                    _ => Hotness::Unknown,
                }
            } else {
                Hotness::Unknown
            };
            if inst.is_debug_or_pseudo() {
                continue;
            }
            instruction_count += 1;
            let mut callee: Option<Value<'_>> = None;
            if let Some(called) = inst.called_value() {
                if called.is_inline_asm() {
                    walk.reasons.push(NotEligible::InlineAsm);
                } else if let Some(cf) = called.as_function() {
                    callee = Some(called);
                    let cname = cf.name();
                    if cf.is_intrinsic() {
                        if cname.starts_with("llvm.va_start") {
                            walk.reasons.push(NotEligible::VaStart);
                        }
                        if cname.starts_with("llvm.threadlocal.address") {
                            walk.reasons.push(NotEligible::ThreadLocal);
                        }
                    } else {
                        walk.global(called, false);
                        let hotness = if profile_hotness != Hotness::Unknown {
                            profile_hotness
                        } else if inst.call_site_has_attribute("cold") || cf.has_attribute("cold") {
                            Hotness::Cold
                        } else if inst.call_site_has_attribute("hot") || cf.has_attribute("hot") {
                            Hotness::Hot
                        } else {
                            Hotness::Unknown
                        };
                        let e = edges.entry(cname).or_insert((0, Hotness::Unknown));
                        e.0 += 1;
                        e.1 = e.1.max(hotness);
                    }
                } else if called.is_global_alias() {
                    callee = Some(called);
                    walk.global(called, false);
                    let e = edges.entry(called.name()).or_insert((0, Hotness::Unknown));
                    e.0 += 1;
                    e.1 = e.1.max(profile_hotness);
                }
            }
            for op in inst.operands().collect::<Vec<_>>() {
                if Some(op) != callee {
                    walk.operand(op);
                }
            }
        }
    }
    let mut summary = FunctionSummary {
        name,
        original_name,
        linkage,
        original_linkage,
        instruction_count,
        attributes,
        calls: edges
            .into_iter()
            .map(|(callee, (count, hotness))| CallEdge {
                callee,
                count,
                hotness,
            })
            .collect(),
        refs: walk.refs,
        locals: walk.locals,
        not_eligible: walk.reasons,
        shard: None,
    };
    // Sort and deduplicate now, so the shard decision and the index agree.
    summary.refs.sort();
    summary.refs.dedup();
    summary.locals.sort();
    summary.locals.dedup();
    summary.not_eligible.sort();
    summary.not_eligible.dedup();
    summary
}

/// Summarizes every defined global variable of the library (LLVM's own `llvm.*` globals excluded).
pub(crate) fn analyze_variables(module: &Module<'_>, origins: &Origins) -> Vec<VariableSummary> {
    let mut out = Vec::new();
    for g in module.globals() {
        let name = g.name();
        if g.is_declaration() || name.starts_with("llvm.") {
            continue;
        }
        let mut refs = Vec::new();
        if let Some(init) = g.initializer() {
            let mut values = Vec::new();
            constant_refs(init, &mut HashSet::new(), &mut values);
            refs = values.into_iter().map(|v| v.name()).collect();
            refs.sort();
            refs.dedup();
        }
        out.push(VariableSummary {
            original_name: origins.get(&name).and_then(|(o, _)| o.clone()),
            linkage: g.linkage(),
            constant: g.is_constant(),
            thread_local: g.is_thread_local(),
            size: module.global_size(g),
            importable_initializer: importable_initializer(g),
            refs,
            name,
        });
    }
    out
}

/// The entries of `llvm.global_ctors` whose constructor is a function, in priority order.
pub(crate) fn initializers(module: &Module<'_>) -> Vec<Initializer> {
    let Some(ctors) = module.global("llvm.global_ctors") else {
        return Vec::new();
    };
    let Some(array) = ctors.initializer() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in array.operands() {
        let ops: Vec<Value<'_>> = entry.operands().collect();
        let (Some(priority), Some(function)) = (
            ops.first().and_then(|p| p.const_int_value()),
            ops.get(1).and_then(|f| f.as_function()),
        ) else {
            continue;
        };
        out.push(Initializer {
            priority: u32::try_from(priority).unwrap_or(u32::MAX),
            function: function.name(),
        });
    }
    // Stable sort: equal priorities keep their order in the array, as LLVM runs them.
    out.sort_by_key(|i| i.priority);
    out
}
