//! Rewriting a script module into its tier-0 and tier-1 forms.
//!
//! In: a parsed, verified script module (after structor extraction, atexit redirection and internalization of
//! shared definitions) and the host addresses of its counters and slots. Out: tier 0 — instrumented, entries
//! behind stubs, mutable globals exported under stable names; tier 1 — entry bodies renamed for the stubs to
//! switch to, the exported globals declared, never-executed helper sites kept out of line.

use crate::llvm::{EntryCounter, ForwardTo, Function, Instruction, Linkage, Module, Visibility};
use crate::summary::{Hotness, NotEligible, SummaryIndex};
use crate::{Error, Result};

/// A call site that reaches a helper the summary defines. It names its instruction by position (function index
/// in module order, instruction index in the function), not by handle: the module is edited (structors taken
/// out, the dso handle replaced) between finding the sites and instrumenting them, and those edits change
/// neither position.
pub(super) struct SiteRef {
    pub at: (usize, usize),
    pub function: String,
    pub ordinal: u32,
    pub callee: String,
}

/// The instructions of `sites` in `module`, in the order of `sites` (which [`collect_sites`] made in module
/// order); an error if the module no longer has one of them.
fn site_instructions<'m>(
    module: &'m Module<'_>,
    sites: &[SiteRef],
) -> Result<Vec<Instruction<'m>>> {
    let mut out = Vec::with_capacity(sites.len());
    let mut wanted = sites.iter().peekable();
    for (fi, f) in module.functions().enumerate() {
        if wanted.peek().is_none() {
            break;
        }
        if wanted.peek().is_some_and(|s| s.at.0 != fi) {
            continue;
        }
        for (ii, inst) in f.instructions().enumerate() {
            if wanted.peek().is_some_and(|s| s.at == (fi, ii)) {
                out.push(inst);
                wanted.next();
            }
        }
    }
    match wanted.next() {
        None => Ok(out),
        Some(site) => Err(Error::Import {
            module: module_name(module),
            message: format!(
                "helper call site {} of `{}` (to `{}`) is gone",
                site.ordinal, site.function, site.callee
            ),
        }),
    }
}

/// Host addresses tier 0's code uses.
pub(super) struct Cells {
    pub entry_counters: Vec<u64>,
    pub site_counters: Vec<u64>,
    pub slots: Vec<u64>,
    pub threshold: u64,
    pub notify: u64,
    pub token: u64,
}

/// The counting thunk of `entry` in script `id` (the slot's first target).
pub(super) fn thunk_name(entry: &str, id: u64) -> String {
    format!("{entry}.tjc.{id}")
}

/// The body of `entry` in `tier` of script `id`.
pub(super) fn body_name(entry: &str, tier: u8, id: u64) -> String {
    format!("{entry}.tj{tier}.{id}")
}

/// Helper call sites in instruction order, function by function. Identical for two parses of one source, so
/// tier 1 finds tier 0's sites by position.
pub(super) fn collect_sites(module: &Module<'_>, index: Option<&SummaryIndex>) -> Vec<SiteRef> {
    let Some(index) = index else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (fi, f) in module.functions().enumerate() {
        if f.is_declaration() {
            continue;
        }
        let function = f.name();
        let mut ordinal = 0;
        for (ii, inst) in f.instructions().enumerate() {
            let Some(callee) = inst.called_function() else {
                continue;
            };
            if !callee.is_declaration() || callee.is_intrinsic() {
                continue;
            }
            let name = callee.name();
            let defined = index
                .function(&name)
                .is_some_and(|s| !s.not_eligible.contains(&NotEligible::Declaration));
            if defined {
                out.push(SiteRef {
                    at: (fi, ii),
                    function: function.clone(),
                    ordinal,
                    callee: name,
                });
                ordinal += 1;
            }
        }
    }
    out
}

/// The script's entries (external function definitions), or why it cannot be tiered.
pub(super) fn entries<'m>(
    module: &'m Module<'_>,
) -> std::result::Result<Vec<Function<'m>>, String> {
    if let Some(alias) = module.aliases().next() {
        return Err(format!(
            "the script defines alias `{}` (a stub cannot redirect an alias)",
            alias.name()
        ));
    }
    let mut out = Vec::new();
    for f in module.functions() {
        if f.is_declaration()
            || f.linkage().is_local()
            || f.linkage() == Linkage::AvailableExternally
        {
            continue;
        }
        if f.name().is_empty() {
            return Err("the script defines an unnamed external function".into());
        }
        if f.is_var_arg() {
            return Err(format!(
                "entry `{}` is variadic (a stub cannot forward `...` through the C API)",
                f.name()
            ));
        }
        out.push(f);
    }
    if out.is_empty() {
        return Err("the script defines no external function".into());
    }
    Ok(out)
}

/// Mutable global definitions (not `llvm.*`), in module order.
fn mutable_globals<'m>(module: &'m Module<'_>) -> Vec<crate::llvm::GlobalVariable<'m>> {
    module
        .globals()
        .filter(|g| !g.is_declaration() && !g.is_constant() && !g.name().starts_with("llvm."))
        .collect()
}

/// Tier 0: counters before every helper site, each entry's body renamed behind a counting thunk and a stub
/// that jumps through its slot; mutable globals exported. Returns (name in the source, exported name) of
/// every mutable global, in module order.
pub(super) fn tier0(
    module: &Module<'_>,
    id: u64,
    entries: &[Function<'_>],
    sites: &[SiteRef],
    cells: &Cells,
) -> Result<Vec<(String, String)>> {
    for (inst, &cell) in site_instructions(module, sites)?
        .into_iter()
        .zip(&cells.site_counters)
    {
        inst.insert_counter_before(cell);
    }
    let mut globals = Vec::new();
    for (n, g) in mutable_globals(module).into_iter().enumerate() {
        let original = g.name();
        if g.linkage().is_local() {
            g.set_name(&format!("{original}.tj.{id}.{n}"));
            g.set_linkage(Linkage::External);
            g.set_visibility(Visibility::Default);
        }
        globals.push((original, g.name()));
    }
    for (i, &f) in entries.iter().enumerate() {
        let entry = f.name();
        f.set_name(&body_name(&entry, 0, id));
        f.set_linkage(Linkage::External);
        let counter = EntryCounter {
            counter: cells.entry_counters[i],
            threshold: cells.threshold,
            notify: cells.notify,
            token: cells.token,
        };
        let thunk = module.add_forwarder(
            &thunk_name(&entry, id),
            f,
            ForwardTo::Function(f),
            Some(counter),
        );
        let stub = module.add_forwarder(&entry, f, ForwardTo::Slot(cells.slots[i]), None);
        if thunk.is_none() || stub.is_none() {
            return Err(Error::InvalidEntry {
                symbol: entry,
                reason: "tier 0 cannot build its stub (a symbol of that name exists)".into(),
            });
        }
    }
    module.verify()?;
    Ok(globals)
}

/// Tier 1: never-executed helper sites `noinline` + `cold`; the entries' bodies renamed `f.tj1.<id>` (other
/// external functions internal); tier 0's mutable globals declared under their exported names; external
/// constants `available_externally` (foldable, the one definition stays tier 0's). Returns (slot index,
/// tier-1 body name) of every entry tier 1 defines.
pub(super) fn tier1(
    module: &Module<'_>,
    id: u64,
    entries: &[String],
    globals: &[(String, String)],
    sites: &[SiteRef],
    hotness: &[Hotness],
) -> Result<Vec<(usize, String)>> {
    let what = || module_name(module);
    if sites.len() != hotness.len() {
        return Err(Error::Import {
            module: what(),
            message: format!(
                "tier 1 of {}: {} helper call sites, tier 0 counted {}",
                what(),
                sites.len(),
                hotness.len()
            ),
        });
    }
    for (inst, &h) in site_instructions(module, sites)?.into_iter().zip(hotness) {
        if h == Hotness::Cold {
            inst.add_call_site_attribute("noinline");
            inst.add_call_site_attribute("cold");
        }
    }
    let mutable = mutable_globals(module);
    if mutable.len() != globals.len() {
        return Err(Error::Import {
            module: what(),
            message: format!(
                "tier 1 of {}: {} mutable globals, tier 0 exported {}",
                what(),
                mutable.len(),
                globals.len()
            ),
        });
    }
    for (g, (original, exported)) in mutable.into_iter().zip(globals) {
        if g.name() != *original {
            return Err(Error::Import {
                module: what(),
                message: format!(
                    "tier 1 of {}: global `{}` where tier 0 had `{original}`",
                    what(),
                    g.name()
                ),
            });
        }
        g.set_name(exported);
        g.remove_initializer();
        g.clear_comdat();
        g.set_linkage(Linkage::External);
        g.set_visibility(Visibility::Default);
    }
    for g in module.globals() {
        if !g.is_declaration()
            && g.is_constant()
            && !g.linkage().is_local()
            && !g.name().starts_with("llvm.")
        {
            g.clear_comdat();
            g.set_linkage(Linkage::AvailableExternally);
        }
    }
    let mut bodies = Vec::new();
    for f in module.functions().collect::<Vec<_>>() {
        if f.is_declaration()
            || f.linkage().is_local()
            || f.linkage() == Linkage::AvailableExternally
        {
            continue;
        }
        let name = f.name();
        match entries.iter().position(|e| *e == name) {
            Some(i) => {
                let body = body_name(&name, 1, id);
                f.set_name(&body);
                f.set_linkage(Linkage::External);
                f.set_visibility(Visibility::Default);
                bodies.push((i, body));
            }
            None => f.set_linkage(Linkage::Internal),
        }
    }
    module.verify()?;
    Ok(bodies)
}

fn module_name(module: &Module<'_>) -> String {
    format!("`{}`", module.name())
}
