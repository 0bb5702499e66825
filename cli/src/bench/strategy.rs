//! The import strategies the benchmark compares, as per-script compile pipelines.
//!
//! In: a script's textual IR, a [`PreparedLibrary`] (the helper library's summary and its promoted library
//! bitcode) and a [`Strategy`]. Out: the optimized script module, ready for ORC, with the time each stage took
//! and the size of the object code it compiles to.
//!
//! | strategy | per script |
//! |---|---|
//! | `none` | O3 only: every helper call goes to the runtime's one copy |
//! | `full-link` | parse the whole (promoted) helper library into the script's context, make every definition `available_externally`, link, O3 |
//! | `full-link-internalize` | the seed's attempt: link the whole library and internalize everything but the script's own definitions, O3 — each script gets private copies of the helper globals |
//! | `summary@N` | thinjit: summary-driven import at `import-instr-limit` N, O3 |
//!
//! Every strategy stamps script functions that carry no `target-cpu` / `target-features` with the helper
//! library's (the inliner refuses callees whose features are not a subset of the caller's), so the difference
//! between strategies is only what gets linked in.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use thinjit::import::{self, ImportConfig};
use thinjit::llvm::{Context, Linkage, Module, TargetMachine};
use thinjit::summary::Summary;
use thinjit::Result;

/// One way of getting helper bodies into a script before O3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Strategy {
    /// No import.
    None,
    /// The whole library linked in as `available_externally`.
    FullLink,
    /// The whole library linked in and internalized (private copies of everything).
    FullLinkInternalize,
    /// thinjit's summary-driven import at the given `import-instr-limit`.
    Summary { import_instr_limit: u32 },
}

impl Strategy {
    /// The label used in tables: `none`, `full-link`, `full-link-internalize`, `summary@100`.
    pub fn label(&self) -> String {
        match self {
            Strategy::None => "none".into(),
            Strategy::FullLink => "full-link".into(),
            Strategy::FullLinkInternalize => "full-link-internalize".into(),
            Strategy::Summary { import_instr_limit } => format!("summary@{import_instr_limit}"),
        }
    }

    /// Parses a [`label`](Self::label); `summary` alone means `summary@100`.
    pub fn parse(label: &str) -> Option<Strategy> {
        match label {
            "none" => Some(Strategy::None),
            "full-link" => Some(Strategy::FullLink),
            "full-link-internalize" => Some(Strategy::FullLinkInternalize),
            "summary" => Some(Strategy::Summary {
                import_instr_limit: 100,
            }),
            _ => label
                .strip_prefix("summary@")
                .and_then(|n| n.parse().ok())
                .map(|import_instr_limit| Strategy::Summary { import_instr_limit }),
        }
    }

    /// The strategies a full run compares: none, both full links, and the summary at limits 30, 100 and 300.
    pub fn all() -> Vec<Strategy> {
        vec![
            Strategy::None,
            Strategy::FullLink,
            Strategy::FullLinkInternalize,
            Strategy::Summary {
                import_instr_limit: 30,
            },
            Strategy::Summary {
                import_instr_limit: 100,
            },
            Strategy::Summary {
                import_instr_limit: 300,
            },
        ]
    }
}

/// A helper library ready for per-script compiles: its summary and the promoted library bitcode.
#[derive(Debug)]
pub struct PreparedLibrary {
    /// Library name (`helpers`, `zlib`, ...).
    pub name: String,
    /// The summary (index + shards + promoted library).
    pub summary: Summary,
    /// Number of function definitions in the library (the x axis of the latency plot).
    pub functions: usize,
    /// Size of the promoted library bitcode in bytes.
    pub bitcode_bytes: usize,
    /// `target-cpu` / `target-features` the library's functions were built with.
    pub target_cpu: Option<String>,
    pub target_features: Option<String>,
    /// A native object of the runtime module (see `bench::prepare_library`): linked into each runtime instead
    /// of JIT-compiling the whole library in every benchmark process. `None`: compile from the bitcode.
    pub runtime_object: Option<std::path::PathBuf>,
}

impl PreparedLibrary {
    /// Wraps a built summary, reading the library's size and target attributes from its promoted bitcode.
    pub fn new(name: &str, summary: Summary) -> Result<PreparedLibrary> {
        let bitcode = summary.library_bitcode()?;
        let ctx = Context::new();
        let module = Module::parse_bitcode(&ctx, bitcode, name)?;
        let mut functions = 0;
        let (mut target_cpu, mut target_features) = (None, None);
        for f in module.functions().filter(|f| !f.is_declaration()) {
            functions += 1;
            if target_cpu.is_none() {
                target_cpu = f.string_attribute("target-cpu");
                target_features = f.string_attribute("target-features");
            }
        }
        Ok(PreparedLibrary {
            name: name.to_owned(),
            functions,
            bitcode_bytes: bitcode.len(),
            summary,
            target_cpu,
            target_features,
            runtime_object: None,
        })
    }
}

/// The optimized script and what producing it cost.
#[derive(Debug)]
pub struct CompiledScript<'ctx> {
    pub module: Module<'ctx>,
    /// Plan + import (summary), or parse + prepare + link of the whole library (full link).
    pub import_time: Duration,
    /// O3 (`optimize::optimize`).
    pub optimize_time: Duration,
    /// Helper functions linked into the script before O3 (definitions of any linkage).
    pub linked_functions: usize,
    /// Helper functions still defined in the optimized module (internalized copies, local copies).
    pub defined_functions_after: usize,
}

/// A script after its strategy's import step, before O3.
#[derive(Debug)]
pub struct ImportedScript<'ctx> {
    pub module: Module<'ctx>,
    /// The script's own function definitions.
    pub own: BTreeSet<String>,
    pub import_time: Duration,
    pub linked_functions: usize,
}

/// Parses a script and applies `strategy`'s import step (the timed part: plan + import, or parse + prepare +
/// link of the whole library), then stamps the library's target attributes on the script's functions.
pub fn import_script<'ctx>(
    ctx: &'ctx Context,
    name: &str,
    ir: &str,
    strategy: Strategy,
    lib: &PreparedLibrary,
    tm: &TargetMachine,
) -> Result<ImportedScript<'ctx>> {
    let mut module = Module::parse_ir(ctx, ir.as_bytes(), name)?;
    module.set_triple(tm.triple());
    module.set_data_layout(&tm.data_layout());
    let own: BTreeSet<String> = module
        .functions()
        .filter(|f| !f.is_declaration())
        .map(|f| f.name())
        .collect();

    let t = Instant::now();
    let linked_functions = match strategy {
        Strategy::None => 0,
        Strategy::FullLink | Strategy::FullLinkInternalize => {
            let library = Module::parse_bitcode(ctx, lib.summary.library_bitcode()?, &lib.name)?;
            let n = library.functions().filter(|f| !f.is_declaration()).count();
            if strategy == Strategy::FullLink {
                make_available_externally(&library);
            }
            module.link_in(library)?;
            if strategy == Strategy::FullLinkInternalize {
                internalize_except(&module, &own);
            }
            n
        }
        Strategy::Summary { import_instr_limit } => {
            let config = ImportConfig {
                import_instr_limit,
                ..ImportConfig::default()
            };
            let report = import::import(&mut module, &lib.summary, &config)?;
            report.imported_functions().len()
        }
    };
    stamp_target(ctx, &module, &own, lib);
    let import_time = t.elapsed();
    Ok(ImportedScript {
        module,
        own,
        import_time,
        linked_functions,
    })
}

/// Runs O3 ([`thinjit::optimize::optimize`], the same pipeline for every strategy) on an imported script; returns
/// how long it took.
pub fn optimize_script(module: &mut Module<'_>, tm: &TargetMachine) -> Result<Duration> {
    let t = Instant::now();
    thinjit::optimize::optimize(module, tm, thinjit::optimize::OptLevel::O3)?;
    Ok(t.elapsed())
}

/// Compiles one script with `strategy`: parse, import, stamp target attributes, O3.
pub fn compile_script<'ctx>(
    ctx: &'ctx Context,
    name: &str,
    ir: &str,
    strategy: Strategy,
    lib: &PreparedLibrary,
    tm: &TargetMachine,
) -> Result<CompiledScript<'ctx>> {
    let ImportedScript {
        mut module,
        own,
        import_time,
        linked_functions,
    } = import_script(ctx, name, ir, strategy, lib, tm)?;
    let optimize_time = optimize_script(&mut module, tm)?;
    let defined_functions_after = module
        .functions()
        .filter(|f| !f.is_declaration() && !own.contains(&f.name()))
        .count();
    Ok(CompiledScript {
        module,
        import_time,
        optimize_time,
        linked_functions,
        defined_functions_after,
    })
}

/// Gives the script's own functions the library's target attributes where they have none (what the summary
/// importer does for its imports; done here for every strategy so that all of them can inline).
fn stamp_target(ctx: &Context, module: &Module<'_>, own: &BTreeSet<String>, lib: &PreparedLibrary) {
    for f in module.functions().filter(|f| own.contains(&f.name())) {
        if f.string_attribute("target-cpu").is_none() {
            if let Some(cpu) = &lib.target_cpu {
                f.set_string_attribute(ctx, "target-cpu", cpu);
            }
        }
        if f.string_attribute("target-features").is_none() {
            if let Some(features) = &lib.target_features {
                f.set_string_attribute(ctx, "target-features", features);
            }
        }
    }
}

/// `full-link`: every non-local definition of the library becomes `available_externally` (the runtime's copy
/// is the real one); constructor and `used` lists are dropped (the engine runs the runtime's initializers).
#[allow(unsafe_code)] // `GlobalVariable::erase` is `unsafe`: see the SAFETY line.
fn make_available_externally(library: &Module<'_>) {
    for f in library.functions() {
        if !f.is_declaration() && !f.linkage().is_local() {
            f.set_linkage(Linkage::AvailableExternally);
            f.clear_comdat();
        }
    }
    let mut erase = Vec::new();
    for g in library.globals() {
        let name = g.name();
        if name.starts_with("llvm.") {
            if matches!(
                name.as_str(),
                "llvm.global_ctors" | "llvm.global_dtors" | "llvm.used" | "llvm.compiler.used"
            ) {
                erase.push(g);
            }
            continue;
        }
        if !g.is_declaration() && !g.linkage().is_local() {
            g.set_linkage(Linkage::AvailableExternally);
            g.clear_comdat();
        }
    }
    for g in erase {
        // SAFETY: `library` was parsed by this function and no other handle to these arrays exists; LLVM's
        // `llvm.*` appending arrays have no uses in IR.
        unsafe { g.erase() };
    }
}

/// `full-link-internalize`: every definition except the script's own becomes `internal` — the callback the
/// seed passed to `Linker::linkModules`. Internalized functions get the module's name as a suffix: the JIT
/// gives a script's static constructors external names to run them, and those must not clash with the
/// runtime's.
fn internalize_except(module: &Module<'_>, own: &BTreeSet<String>) {
    let suffix = module.name();
    for f in module.functions() {
        if !f.is_declaration() && !f.linkage().is_local() && !own.contains(&f.name()) {
            f.set_linkage(Linkage::Internal);
            f.clear_comdat();
            f.set_name(&format!("{}.{suffix}", f.name()));
        }
    }
    for g in module.globals() {
        if !g.is_declaration() && !g.linkage().is_local() && !g.name().starts_with("llvm.") {
            g.set_linkage(Linkage::Internal);
            g.clear_comdat();
        }
    }
}

/// Size in bytes of the object file `module` compiles to.
pub fn object_size(module: &Module<'_>, tm: &TargetMachine) -> Result<usize> {
    Ok(tm.emit_object(module)?.len())
}
