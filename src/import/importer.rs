//! The importer: links the planned helper shards into a script module.
//!
//! In: a script [`Module`], a [`ShardSource`] (the [`Summary`](crate::summary::Summary)) and an
//! [`ImportConfig`]. Out: the same module with the planned helper bodies as `available_externally` definitions
//! (constants with their initializers), script functions stamped with the helpers' target attributes, and an
//! [`ImportReport`].
//!
//! Steps: verify the script (invalid IR is an error before LLVM sees it) → collect its [`ScriptSymbols`] and
//! refuse helper-name clashes → [`plan`] → parse only the planned shards, in the script's context → mark their
//! definitions `available_externally` (host-native local copies stay real definitions until linked, so
//! every shard's reference to them resolves, then become `internal`; they keep their promoted
//! `<name>.llvm.<hash>` names, which cannot clash with a script's) → link → stamp `target-cpu` /
//! `target-features` → verify. All shards are parsed before the script is touched: a damaged shard leaves the
//! script as it was. The script's own definitions
//! are never touched: [`Module::defined_symbols`] is the same before and after.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::config::ImportConfig;
use super::plan::{plan, ImportPlan, ScriptSymbols};
use super::report::{Decision, ImportReport, Reason, SymbolKind};
use crate::jit::RuntimeMode;
use crate::llvm::{Linkage, Module};
use crate::summary::{FunctionSummary, Hotness, SummaryIndex};
use crate::{Error, Result};

/// Where the importer reads the index and the per-function shards from; implemented by
/// [`Summary`](crate::summary::Summary).
pub trait ShardSource {
    /// The summary index.
    fn index(&self) -> &SummaryIndex;
    /// The bitcode of `f`'s shard (verified: a damaged shard is an error, never bytes).
    fn shard(&self, f: &FunctionSummary) -> Result<&[u8]>;
    /// The helper library's target triple (empty when unknown).
    fn triple(&self) -> &str;
    /// Checks that the helpers suit a module with this (non-empty) triple and data layout (empty: unchecked).
    fn check_target(&self, triple: &str, data_layout: &str) -> Result<()> {
        let _ = (triple, data_layout);
        Ok(())
    }
}

impl ShardSource for crate::summary::Summary {
    fn index(&self) -> &SummaryIndex {
        crate::summary::Summary::index(self)
    }

    fn shard(&self, f: &FunctionSummary) -> Result<&[u8]> {
        crate::summary::Summary::shard(self, f)
    }

    fn triple(&self) -> &str {
        &self.header().target_triple
    }

    fn check_target(&self, triple: &str, data_layout: &str) -> Result<()> {
        crate::summary::Summary::check_target(self, triple, data_layout)
    }
}

/// The symbols a module declares and defines, as the planner sees them. Intrinsics are left out. A call edge
/// is `Cold` / `Hot` when call sites to the declaration carry the `cold` / `hot` attribute, `None` for an
/// ordinary call site (the hottest wins, so one ordinary call outweighs a cold one), and `Unknown` for a
/// declaration that is not called: script modules carry no profile.
pub fn script_symbols(module: &Module<'_>) -> ScriptSymbols {
    let mut s = ScriptSymbols::new();
    // Call-site `hot` / `cold` attributes, the same rule the summary applies to helper call sites.
    for f in module.functions() {
        for inst in f.instructions() {
            let Some(callee) = inst.called_function() else {
                continue;
            };
            if !callee.is_declaration() {
                continue;
            }
            let hotness = if inst.call_site_has_attribute("cold") {
                Hotness::Cold
            } else if inst.call_site_has_attribute("hot") {
                Hotness::Hot
            } else {
                // An ordinary call site (multiplier 1) outranks a cold one.
                Hotness::None
            };
            s = s.declare_with_hotness(&callee.name(), hotness);
        }
    }
    for f in module.functions() {
        let name = f.name();
        if f.is_intrinsic() || name.starts_with("llvm.") {
            continue;
        }
        if f.is_declaration() {
            s = s.declare_with_hotness(&name, Hotness::Unknown);
        } else {
            s = s.define(&name, f.linkage());
        }
    }
    for g in module.globals() {
        let name = g.name();
        if name.starts_with("llvm.") {
            continue;
        }
        if g.is_declaration() {
            s = s.declare(&name);
        } else {
            s = s.define(&name, g.linkage());
        }
    }
    for a in module.aliases() {
        s = s.define(&a.name(), a.linkage());
    }
    s
}

/// Imports the helpers the plan selects into `module`. See the module documentation for the steps. `mode` is
/// where the helper runtime lives when `module` runs (the engine's [`RuntimeMode`]; a host with its own JIT says
/// where it put the helpers): host-native imports copy `static` helpers privately and refuse `static` state.
///
/// Errors: the script does not verify ([`Error::Verify`]); the script's triple differs from the summary's, or
/// the script defines a symbol the helper library also defines ([`Error::DuplicateDefinition`]); a shard is damaged
/// ([`Error::Summary`] / [`Error::Parse`]); linking fails ([`Error::Link`]); the result does not verify
/// ([`Error::Import`]).
pub fn import<S: ShardSource + ?Sized>(
    module: &mut Module<'_>,
    summary: &S,
    config: &ImportConfig,
    mode: RuntimeMode,
) -> Result<ImportReport> {
    config.validate()?;
    let t = Instant::now();
    module.verify()?;
    let script_triple = module.triple();
    if !script_triple.is_empty() {
        summary.check_target(&script_triple, &module.data_layout())?;
    }
    let verify_time = t.elapsed();

    let t = Instant::now();
    let planned = plan_verified(module, summary, config, mode, &BTreeMap::new())?;
    let plan_time = t.elapsed();

    let mut report = execute(module, summary, &planned)?;
    report.times.verify += verify_time;
    report.times.plan = plan_time;
    Ok(report)
}

/// [`import`] with the hotness of the script's call edges taken from a profile of the script itself:
/// `hotness[callee]` replaces what the module's call-site attributes say about the edges to `callee` (LLVM's
/// importer does the same with a PGO profile: hot and critical edges get the hot and critical multipliers,
/// cold ones the cold multiplier). Used by tiered compilation, where tier 0 counted the calls.
pub fn import_profiled<S: ShardSource + ?Sized>(
    module: &mut Module<'_>,
    summary: &S,
    config: &ImportConfig,
    mode: RuntimeMode,
    hotness: &BTreeMap<String, Hotness>,
) -> Result<ImportReport> {
    config.validate()?;
    let t = Instant::now();
    module.verify()?;
    let script_triple = module.triple();
    if !script_triple.is_empty() {
        summary.check_target(&script_triple, &module.data_layout())?;
    }
    let verify_time = t.elapsed();
    let t = Instant::now();
    let planned = plan_verified(module, summary, config, mode, hotness)?;
    let plan_time = t.elapsed();
    let mut report = execute(module, summary, &planned)?;
    report.times.verify += verify_time;
    report.times.plan = plan_time;
    Ok(report)
}

/// The import plan for a module the caller has verified (the engine's plan stage): the script's symbols,
/// helper-name clashes refused ([`Error::DuplicateDefinition`]), then [`plan`].
pub fn plan_for<S: ShardSource + ?Sized>(
    module: &Module<'_>,
    summary: &S,
    config: &ImportConfig,
    mode: RuntimeMode,
) -> Result<ImportPlan> {
    config.validate()?;
    let script_triple = module.triple();
    if !script_triple.is_empty() {
        summary.check_target(&script_triple, &module.data_layout())?;
    }
    plan_verified(module, summary, config, mode, &BTreeMap::new())
}

/// Performs `planned` (from [`plan_for`]) on `module`: parse the planned shards, link, stamp, verify (the
/// shards are a second input: the result is verified once, here). The engine's import stage.
pub(crate) fn import_planned<S: ShardSource + ?Sized>(
    module: &mut Module<'_>,
    summary: &S,
    planned: &ImportPlan,
) -> Result<ImportReport> {
    execute(module, summary, planned)
}

fn plan_verified<S: ShardSource + ?Sized>(
    module: &Module<'_>,
    summary: &S,
    config: &ImportConfig,
    mode: RuntimeMode,
    hotness: &BTreeMap<String, Hotness>,
) -> Result<ImportPlan> {
    let module_name = module.name();
    let mut symbols = script_symbols(module);
    for (callee, h) in hotness {
        if let Some(slot) = symbols.declared.get_mut(callee) {
            *slot = *h;
        }
    }
    if let Some(name) = symbols.clashes(summary.index()).into_iter().next() {
        return Err(Error::DuplicateDefinition {
            symbol: name,
            first: Some("the helper library".into()),
            second: format!(
                "script `{module_name}` (rename the script's definition or give it internal linkage)"
            ),
            source: None,
        });
    }
    Ok(plan(summary.index(), &symbols, config, mode))
}

/// Performs an already computed plan (parse, link, stamp, verify) and reports.
fn execute<S: ShardSource + ?Sized>(
    module: &mut Module<'_>,
    summary: &S,
    planned: &ImportPlan,
) -> Result<ImportReport> {
    let module_name = module.name();
    let ctx = module.context();
    let index = summary.index();
    let functions: BTreeMap<&str, bool> = planned
        .functions
        .iter()
        .map(|f| (f.name.as_str(), f.local_copy))
        .collect();
    let variables: BTreeMap<&str, bool> = planned
        .variables
        .iter()
        .map(|v| (v.name.as_str(), v.local_copy))
        .collect();
    let script_functions: Vec<String> = module
        .functions()
        .filter(|f| !f.is_declaration())
        .map(|f| f.name())
        .collect();

    let mut parse_time = std::time::Duration::ZERO;
    let mut link_time = std::time::Duration::ZERO;
    // Target attributes of the imported helpers, by name.
    let mut targets: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    let mut shards = Vec::with_capacity(planned.functions.len());
    for planned_fn in &planned.functions {
        let Some(f) = index.function(&planned_fn.name) else {
            continue;
        };
        let t = Instant::now();
        let bytes = summary.shard(f)?;
        // A context reused across scripts keeps parsed shards and hands out copies.
        let shard = Module::parse_bitcode_cached(ctx, bytes, &format!("shard of `{}`", f.name))?;
        for g in shard.functions() {
            if g.is_declaration() {
                continue;
            }
            let name = g.name();
            g.clear_comdat();
            if !functions.get(name.as_str()).copied().unwrap_or(false) {
                // Imported body: LLVM may inline it; codegen drops it; ORC does not claim it.
                g.set_linkage(Linkage::AvailableExternally);
            } else {
                // Host-native local copy: a real definition, made internal after linking.
                g.set_linkage(Linkage::External);
            }
            if name == f.name {
                targets.insert(
                    name,
                    (
                        g.string_attribute("target-cpu"),
                        g.string_attribute("target-features"),
                    ),
                );
            }
        }
        // Initializers, destructors and `used` lists belong to the runtime's one copy: a script that linked
        // them would run helper constructors again or keep imported bodies alive.
        let mut shard = shard;
        shard.erase_appending_arrays(&[
            "llvm.global_ctors",
            "llvm.global_dtors",
            "llvm.used",
            "llvm.compiler.used",
        ]);
        for v in shard.globals() {
            if v.is_declaration() || v.name().starts_with("llvm.") {
                continue;
            }
            v.clear_comdat();
            match variables.get(v.name().as_str()) {
                Some(false) if v.is_constant() => v.set_linkage(Linkage::AvailableExternally),
                Some(true) if v.is_constant() => v.set_linkage(Linkage::External),
                _ => {
                    // Not planned (mutable, or a constant the plan refused): keep the one instance.
                    v.remove_initializer();
                    v.set_linkage(Linkage::External);
                }
            }
        }
        shards.push(shard);
        parse_time += t.elapsed();
    }
    // Every shard parsed: only now is the script modified.
    let t = Instant::now();
    let linked_any = !shards.is_empty();
    module.link_in_all(shards)?;
    link_time += t.elapsed();

    // Host-native local copies: resolved by name across shards during linking; now private to the script.
    if planned.mode == RuntimeMode::HostNative {
        for (name, local) in &functions {
            if *local {
                if let Some(f) = module.function(name) {
                    if !f.is_declaration() {
                        f.set_linkage(Linkage::Internal);
                    }
                }
            }
        }
        for (name, local) in &variables {
            if *local {
                if let Some(v) = module.global(name) {
                    if !v.is_declaration() {
                        v.set_linkage(Linkage::Internal);
                    }
                }
            }
        }
    }

    let t = Instant::now();
    let stamped = stamp_targets(module, &script_functions, &targets);
    let stamp_time = t.elapsed();

    // The shards are a second input: verified here, once, with the script. Nothing linked: the module is the
    // verified script with thinjit's own edits, not verified again.
    let t = Instant::now();
    if linked_any {
        module.verify().map_err(|e| Error::Import {
            module: module_name.clone(),
            message: format!("the module does not verify after import: {e}"),
        })?;
    }
    let verify_time = t.elapsed();

    let mut entries = planned.considered.clone();
    let script_targets = script_target_attributes(module, &script_functions);
    for e in &mut entries {
        match (e.kind, &e.decision) {
            (SymbolKind::Variable, Decision::Imported) => {
                let defined = module.global(&e.name).is_some_and(|g| !g.is_declaration());
                if !defined {
                    e.decision = Decision::NotImported(Reason::NoDefinitionAvailable);
                }
            }
            (SymbolKind::Function, Decision::Imported) if !e.local_copy => {
                if let Some((cpu, features)) = targets.get(&e.name) {
                    e.not_inlinable =
                        inline_blocker(cpu.as_deref(), features.as_deref(), &script_targets);
                }
            }
            _ => {}
        }
    }
    let mut report = ImportReport::new(module_name, entries);
    report.times.parse_shards = parse_time;
    report.times.link = link_time;
    report.times.stamp = stamp_time;
    report.times.verify = verify_time;
    report.stamped = stamped;
    Ok(report)
}

/// Gives script functions without `target-cpu` / `target-features` those of the imported helpers (the first
/// imported helper, by name, that has them), so LLVM's inliner accepts the helpers. Returns the names stamped.
pub(crate) fn stamp_targets(
    module: &Module<'_>,
    script_functions: &[String],
    targets: &BTreeMap<String, (Option<String>, Option<String>)>,
) -> Vec<String> {
    let cpu = targets.values().find_map(|(c, _)| c.clone());
    let features = targets.values().find_map(|(_, f)| f.clone());
    let mut stamped = Vec::new();
    for name in script_functions {
        let Some(f) = module.function(name) else {
            continue;
        };
        // A function built for another CPU keeps its own target: the helpers' features describe their CPU,
        // and on another CPU they may not even include what the triple needs (64-bit mode).
        if let (Some(own), Some(helpers)) = (f.string_attribute("target-cpu"), &cpu) {
            if &own != helpers {
                continue;
            }
        }
        let mut changed = false;
        if let Some(cpu) = &cpu {
            if f.string_attribute("target-cpu").is_none() {
                f.set_string_attribute("target-cpu", cpu);
                changed = true;
            }
        }
        if let Some(features) = &features {
            if f.string_attribute("target-features").is_none() {
                f.set_string_attribute("target-features", features);
                changed = true;
            }
        }
        if changed {
            stamped.push(name.clone());
        }
    }
    stamped
}

/// The distinct (`target-cpu`, `target-features`) pairs of the script's own functions.
fn script_target_attributes(
    module: &Module<'_>,
    script_functions: &[String],
) -> BTreeSet<(Option<String>, Option<String>)> {
    script_functions
        .iter()
        .filter_map(|n| module.function(n))
        .map(|f| {
            (
                f.string_attribute("target-cpu"),
                f.string_attribute("target-features"),
            )
        })
        .collect()
}

fn enabled_features(features: Option<&str>) -> BTreeSet<&str> {
    features
        .unwrap_or("")
        .split(',')
        .filter_map(|f| f.strip_prefix('+'))
        .collect()
}

/// Why LLVM's inliner will refuse a helper with these target attributes in some script function (LLVM's
/// `areInlineCompatible`: the callee's features must be a subset of the caller's), or `None`.
fn inline_blocker(
    cpu: Option<&str>,
    features: Option<&str>,
    script: &BTreeSet<(Option<String>, Option<String>)>,
) -> Option<String> {
    let callee = enabled_features(features);
    for (caller_cpu, caller_features) in script {
        let caller = enabled_features(caller_features.as_deref());
        let missing: Vec<&str> = callee.difference(&caller).copied().collect();
        if !missing.is_empty() {
            return Some(format!(
                "target-features not a subset of the script's: missing +{}",
                missing.join(",+")
            ));
        }
        if let (Some(a), Some(b)) = (cpu, caller_cpu.as_deref()) {
            if a != b {
                return Some(format!(
                    "target-cpu `{a}` differs from the script's `{b}` (implied features may not be a subset)"
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_subset_rule() {
        let script: BTreeSet<_> = [(Some("x86-64".to_owned()), Some("+sse2,+cx8".to_owned()))]
            .into_iter()
            .collect();
        assert_eq!(inline_blocker(Some("x86-64"), Some("+sse2"), &script), None);
        let why = inline_blocker(Some("x86-64"), Some("+sse2,+avx2,-avx512f"), &script).unwrap();
        assert!(why.contains("+avx2"), "{why}");
        assert!(!why.contains("avx512f"), "{why}");
        let why = inline_blocker(Some("skylake"), Some("+sse2"), &script).unwrap();
        assert!(why.contains("skylake"), "{why}");
        let unstamped: BTreeSet<_> = [(None, None)].into_iter().collect();
        assert!(inline_blocker(None, Some("+sse2"), &unstamped).is_some());
    }
}
