//! Conformance with LLVM's own importer (issue 5): for multi-module `.ll` fixtures in
//! `tests/it/fixtures/conformance/`, LLVM 19's tools decide what to import —
//! `opt -module-summary` on every module, `llvm-lto -thinlto-action=thinlink`, then
//! `opt -passes=function-import -summary-file index.bc` with the same thresholds — and thinjit's planner, on a
//! summary built by `Summary::build` from the same helper files, must import the same functions.
//!
//! Where thinjit differs on purpose, the case lists the difference and says why:
//! - mutable variables: LLVM imports a mutable variable without references as an `available_externally`
//!   copy (harmless for LLVM, it cannot be folded); thinjit keeps a declaration so the one instance is visible;
//! - `optnone` under `-force-import-all`: LLVM imports it; thinjit never does (an `optnone` body is not to be
//!   optimized, and it is also `noinline`, so importing it could only duplicate it);
//! - a refused callee under `-force-import-all`: LLVM stops evaluating the caller's remaining edges, thinjit
//!   goes on;
//! - hotness without a profile: LLVM says `Unknown`; thinjit's summary reads `hot` / `cold` attributes of call
//!   sites and callees, so a helper's call to a `cold` function is a cold edge (refused at the default cold
//!   multiplier 0). With a profile both derive hotness from counts (the summary asks LLVM's own PSI/BFI).
//!   Script edges come from the script module, which thinjit does not profile: `None`, or the call site's
//!   `hot` / `cold` attribute. Critical edges come only from sample profiles in LLVM and are not covered.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use thinjit::import::{plan, script_symbols, ImportConfig};
use thinjit::jit::RuntimeMode;
use thinjit::llvm::{Context, Linkage, Module};
use thinjit::summary::{BuildOptions, Summary};

use crate::common;

/// What an importer brought into the script: function names and variable names (source-level names for
/// promoted locals).
#[derive(Debug, Default, PartialEq, Eq)]
struct Imports {
    functions: BTreeSet<String>,
    variables: BTreeSet<String>,
}

fn fixture(name: &str) -> PathBuf {
    common::fixture(&format!("conformance/{name}"))
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// LLVM's FunctionImporter options for `config`, every knob spelled out.
fn llvm_flags(config: &ImportConfig) -> Vec<String> {
    let mut flags = vec![
        format!("-import-instr-limit={}", config.import_instr_limit),
        format!(
            "-import-instr-evolution-factor={}",
            config.import_instr_evolution_factor
        ),
        format!(
            "-import-hot-evolution-factor={}",
            config.import_hot_evolution_factor
        ),
        format!("-import-hot-multiplier={}", config.import_hot_multiplier),
        format!(
            "-import-critical-multiplier={}",
            config.import_critical_multiplier
        ),
        format!("-import-cold-multiplier={}", config.import_cold_multiplier),
    ];
    if config.force_import_all {
        flags.push("-force-import-all".into());
    }
    flags
}

/// Strips LLVM's promotion suffix (`.llvm.<digits>`) so promoted locals compare by source name.
fn source_name(name: &str) -> String {
    match name.find(".llvm.") {
        Some(i) => name[..i].to_owned(),
        None => name.to_owned(),
    }
}

/// LLVM's decisions: what `opt -passes=function-import` made `available_externally` in the script.
fn llvm_imports(dir: &Path, helpers: &[&str], script: &str, config: &ImportConfig) -> Imports {
    let mut bitcode = Vec::new();
    for name in helpers.iter().chain(std::iter::once(&script)) {
        let out = dir.join(name.replace(".ll", ".bc"));
        run(Command::new(common::llvm_tool("opt"))
            .arg("-module-summary")
            .arg(fixture(name))
            .arg("-o")
            .arg(&out));
        bitcode.push(out);
    }
    let index = dir.join("index.bc");
    run(Command::new(common::llvm_tool("llvm-lto"))
        .arg("-thinlto-action=thinlink")
        .arg("-o")
        .arg(&index)
        .args(&bitcode));
    let out = dir.join("imported.bc");
    run(Command::new(common::llvm_tool("opt"))
        .arg("-passes=function-import")
        .arg("-summary-file")
        .arg(&index)
        .args(llvm_flags(config))
        .arg(bitcode.last().unwrap())
        .arg("-o")
        .arg(&out));
    let ctx = Context::new();
    let m = Module::parse_file(&ctx, &out).unwrap();
    Imports {
        functions: m
            .functions()
            .filter(|f| !f.is_declaration() && f.linkage() == Linkage::AvailableExternally)
            .map(|f| source_name(&f.name()))
            .collect(),
        variables: m
            .globals()
            .filter(|g| !g.is_declaration() && g.linkage() == Linkage::AvailableExternally)
            .map(|g| source_name(&g.name()))
            .collect(),
    }
}

/// thinjit's decisions for the same fixture and thresholds.
fn thinjit_imports(helpers: &[&str], script: &str, config: &ImportConfig) -> Imports {
    let inputs: Vec<PathBuf> = helpers.iter().map(|h| fixture(h)).collect();
    let summary = Summary::build(&inputs, &BuildOptions::default()).unwrap();
    let ctx = Context::new();
    let m = Module::parse_file(&ctx, &fixture(script)).unwrap();
    let p = plan(
        summary.index(),
        &script_symbols(&m),
        config,
        RuntimeMode::JitResident,
    );
    let name = |n: &str| {
        let f = summary.index().function(n);
        let v = summary.index().variable(n);
        f.and_then(|f| f.original_name.clone())
            .or_else(|| v.and_then(|v| v.original_name.clone()))
            .unwrap_or_else(|| n.to_owned())
    };
    Imports {
        functions: p.functions.iter().map(|f| name(&f.name)).collect(),
        variables: p.variables.iter().map(|v| name(&v.name)).collect(),
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// Compares both importers on one case; returns LLVM's result for case-specific checks. `llvm_only_variables`
/// are the documented mutable-variable differences.
fn compare(
    helpers: &[&str],
    script: &str,
    config: &ImportConfig,
    expected_functions: &[&str],
    llvm_only_variables: &[&str],
) -> Imports {
    compare_with(
        helpers,
        script,
        config,
        expected_functions,
        &[],
        llvm_only_variables,
    )
}

/// As [`compare`], with documented functions LLVM imports and thinjit does not.
fn compare_with(
    helpers: &[&str],
    script: &str,
    config: &ImportConfig,
    expected_functions: &[&str],
    llvm_only_functions: &[&str],
    llvm_only_variables: &[&str],
) -> Imports {
    let dir = tempfile::TempDir::new().unwrap();
    let llvm = llvm_imports(dir.path(), helpers, script, config);
    let ours = thinjit_imports(helpers, script, config);
    let flags = llvm_flags(config).join(" ");
    let mut ours_plus = ours.functions.clone();
    ours_plus.extend(set(llvm_only_functions));
    assert!(
        ours.functions.is_disjoint(&set(llvm_only_functions)),
        "thinjit imported {llvm_only_functions:?} on {script} with {flags}"
    );
    assert_eq!(
        ours_plus, llvm.functions,
        "functions differ from LLVM's on {script} with {flags}"
    );
    assert_eq!(
        llvm.functions,
        set(expected_functions),
        "LLVM's own decision on {script} with {flags} is not what the fixture was made for"
    );
    let mut ours_plus_mutables = ours.variables.clone();
    ours_plus_mutables.extend(set(llvm_only_variables));
    assert_eq!(
        ours_plus_mutables, llvm.variables,
        "variables differ from LLVM's on {script} with {flags}"
    );
    llvm
}

fn limit(n: u32) -> ImportConfig {
    ImportConfig {
        import_instr_limit: n,
        ..ImportConfig::default()
    }
}

#[test]
fn thresholds_match_llvm() {
    let lib = ["thresholds_lib.ll"];
    let script = "thresholds_script.ll";
    compare(&lib, script, &limit(100), &["size_10", "size_100"], &[]);
    compare(
        &lib,
        script,
        &limit(101),
        &["size_10", "size_100", "size_101"],
        &[],
    );
    compare(
        &lib,
        script,
        &limit(150),
        &["size_10", "size_100", "size_101", "size_150"],
        &[],
    );
    compare(&lib, script, &limit(9), &[], &[]);
}

#[test]
fn evolution_matches_llvm() {
    let lib = ["evolution_lib_a.ll", "evolution_lib_b.ll"];
    let script = "evolution_script.ll";
    // 100 -> 70 -> 49 -> 34: chain_d (35) is one instruction too many.
    compare(
        &lib,
        script,
        &ImportConfig::default(),
        &["chain_a", "chain_b", "chain_c"],
        &[],
    );
    let flat = ImportConfig {
        import_instr_evolution_factor: 1.0,
        ..ImportConfig::default()
    };
    compare(
        &lib,
        script,
        &flat,
        &["chain_a", "chain_b", "chain_c", "chain_d"],
        &[],
    );
    // 103 -> 72 -> 50 -> 35 (each truncated, as LLVM stores an unsigned): chain_d just fits.
    compare(
        &lib,
        script,
        &limit(103),
        &["chain_a", "chain_b", "chain_c", "chain_d"],
        &[],
    );
    // 102 -> 71 -> 49 -> 34: truncation at every level keeps chain_d out.
    compare(
        &lib,
        script,
        &limit(102),
        &["chain_a", "chain_b", "chain_c"],
        &[],
    );
    let steep = ImportConfig {
        import_instr_evolution_factor: 0.5,
        ..ImportConfig::default()
    };
    compare(&lib, script, &steep, &["chain_a"], &[]);
}

#[test]
fn attributes_and_linkage_match_llvm() {
    let lib = ["attributes_lib.ll"];
    let script = "attributes_script.ll";
    // noinline: refused; alwaysinline: imported whatever its size; weak: interposable, refused;
    // linkonce_odr: importable (thinjit makes it weak_odr, still not interposable); the script's own call to
    // the `cold` function carries no profile and no call-site attribute, so both treat it as an ordinary edge.
    // Without a profile, thinjit's summary marks the helper edge calls_cold -> cold_inner cold because the
    // callee is `cold` (the author said so), and the cold multiplier (0) refuses it; LLVM sees `Unknown`.
    compare_with(
        &lib,
        script,
        &ImportConfig::default(),
        &[
            "always_big",
            "calls_cold",
            "cold_helper",
            "cold_inner",
            "odr_helper",
            "plain",
        ],
        &["cold_inner"],
        &[],
    );
    // -force-import-all also takes noinline callees. Two differences on purpose:
    // - LLVM imports `opt_none`; thinjit refuses optnone bodies (see the module docs);
    // - under -force-import-all LLVM treats a refused callee as an error and stops evaluating the rest of that
    //   caller's edges (`computeImportForFunction`'s `break`): after `weak_hook` (interposable) it never looks
    //   at `odr_helper` and `cold_helper`. thinjit reports the refusal and goes on with the remaining edges.
    let force = ImportConfig {
        force_import_all: true,
        ..ImportConfig::default()
    };
    let dir = tempfile::TempDir::new().unwrap();
    let llvm = llvm_imports(dir.path(), &lib, script, &force);
    let ours = thinjit_imports(&lib, script, &force);
    assert_eq!(
        llvm.functions,
        set(&["always_big", "no_inline", "opt_none", "plain"])
    );
    assert_eq!(
        ours.functions,
        set(&[
            "always_big",
            "calls_cold",
            "cold_helper",
            "cold_inner",
            "no_inline",
            "odr_helper",
            "plain"
        ])
    );
}

#[test]
fn globals_match_llvm_except_mutable_copies() {
    let lib = ["globals_lib.ll"];
    let script = "globals_script.ll";
    // Constants (and a constant pointing at a constant) come along with their initializers in both; LLVM also
    // copies the mutable `counter` as available_externally, thinjit keeps it a declaration on purpose.
    let llvm = compare(
        &lib,
        script,
        &ImportConfig::default(),
        &["bump", "indirect_lookup", "table_lookup"],
        &["counter"],
    );
    assert!(llvm.variables.contains("table_ref"));
}

#[test]
fn hot_and_cold_edges_match_llvm() {
    let lib = ["hotness_lib.ll"];
    let script = "hotness_script.ll";
    // hot_root -> hot_big is hot: 70 * 10 = 700 admits 500 instructions; hot_big's callees get hot_root's
    // threshold * the hot evolution factor (1.0) = 70, which admits hot_next (60). cold_root -> cold_callee is
    // cold: 70 * 0 refuses even 5 instructions.
    compare(
        &lib,
        script,
        &ImportConfig::default(),
        &["cold_root", "hot_big", "hot_next", "hot_root"],
        &[],
    );
    let no_bonus = ImportConfig {
        import_hot_multiplier: 1.0,
        import_cold_multiplier: 1.0,
        ..ImportConfig::default()
    };
    compare(
        &lib,
        script,
        &no_bonus,
        &["cold_callee", "cold_root", "hot_root"],
        &[],
    );
    let cooling = ImportConfig {
        import_hot_evolution_factor: 0.5,
        ..ImportConfig::default()
    };
    // hot_big's callees now get 70 * 0.5 = 35 < 60.
    compare(
        &lib,
        script,
        &cooling,
        &["cold_root", "hot_big", "hot_root"],
        &[],
    );
}

#[test]
fn revisits_at_higher_threshold_and_statics_match_llvm() {
    let lib = ["diamond_lib.ll"];
    let script = "diamond_script.ll";
    // `mid` is reached at 49 (through p -> q) and at 70 (through a); LLVM re-evaluates it at the higher
    // threshold, so `leaf` (40) is imported at 70 * 0.7 = 49, whatever the visiting order. The static
    // function and the static constant table that `uses_static` needs are imported under promoted names.
    let llvm = compare(
        &lib,
        script,
        &ImportConfig::default(),
        &["a", "leaf", "mid", "p", "q", "static_helper", "uses_static"],
        &[],
    );
    assert!(llvm.variables.contains("static_table"));
    // At 80 -> 56 -> 39 -> 27: through a, mid is at 56 and leaf at 39 < 40.
    compare(
        &lib,
        script,
        &limit(80),
        &["a", "mid", "p", "q", "static_helper", "uses_static"],
        &[],
    );
}

// ---- The `llvm-importer` strategy against `llvm-lto -thinlto-action=import` ----

/// What an import defined in the script, by the names the module has after it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Defined {
    functions: BTreeSet<String>,
    variables: BTreeSet<String>,
}

/// Definitions in `after` that `script` (the module before import) does not have.
fn new_definitions(script: &Module<'_>, after: &Module<'_>) -> Defined {
    let own: BTreeSet<String> = script
        .functions()
        .filter(|f| !f.is_declaration())
        .map(|f| f.name())
        .chain(
            script
                .globals()
                .filter(|g| !g.is_declaration())
                .map(|g| g.name()),
        )
        .collect();
    Defined {
        functions: after
            .functions()
            .filter(|f| !f.is_declaration() && !own.contains(&f.name()))
            .map(|f| f.name())
            .collect(),
        variables: after
            .globals()
            .filter(|g| {
                !g.is_declaration() && !g.name().starts_with("llvm.") && !own.contains(&g.name())
            })
            .map(|g| g.name())
            .collect(),
    }
}

/// LLVM 19's command-line ThinLTO import, on the promoted library thinjit's summary stores (with its ThinLTO
/// summary, as written by the build step): `opt -module-summary` on the script, `llvm-lto -thinlto-action=thinlink`
/// of library and script, `llvm-lto -thinlto-action=import -exported-symbol=<each script definition>`.
fn llvm_lto_import(
    dir: &Path,
    library_bitcode: &[u8],
    script: &str,
    config: &ImportConfig,
) -> Defined {
    let lib = dir.join("library.bc");
    std::fs::write(&lib, library_bitcode).unwrap();
    let script_bc = dir.join("script.bc");
    run(Command::new(common::llvm_tool("opt"))
        .arg("-module-summary")
        .arg(fixture(script))
        .arg("-o")
        .arg(&script_bc));
    let index = dir.join("index.bc");
    run(Command::new(common::llvm_tool("llvm-lto"))
        .arg("-thinlto-action=thinlink")
        .arg("-o")
        .arg(&index)
        .arg(&lib)
        .arg(&script_bc));
    let ctx = Context::new();
    let before = Module::parse_file(&ctx, &fixture(script)).unwrap();
    let exported: Vec<String> = before
        .functions()
        .filter(|f| !f.is_declaration() && !f.linkage().is_local())
        .map(|f| format!("-exported-symbol={}", f.name()))
        .collect();
    let out = dir.join("imported.bc");
    run(Command::new(common::llvm_tool("llvm-lto"))
        .arg("-thinlto-action=import")
        .arg("-thinlto-index")
        .arg(&index)
        .args(&exported)
        .args(llvm_flags(config))
        .arg(&script_bc)
        .arg("-o")
        .arg(&out));
    let after = Module::parse_file(&ctx, &out).unwrap();
    new_definitions(&before, &after)
}

/// The `llvm-importer` strategy's import (in-process, through the shim) on the same library and script.
fn in_process_import(
    library_bitcode: &[u8],
    script: &str,
    config: &ImportConfig,
    preserve_library: bool,
) -> Defined {
    let ctx = Context::new();
    let before = Module::parse_file(&ctx, &fixture(script)).unwrap();
    let mut module = Module::parse_file(&ctx, &fixture(script)).unwrap();
    let report =
        thinjit::import::import_with_llvm(&mut module, library_bitcode, config, preserve_library)
            .unwrap();
    let defined = new_definitions(&before, &module);
    assert_eq!(report.functions, defined.functions);
    assert_eq!(report.variables, defined.variables);
    defined
}

#[test]
fn llvm_importer_strategy_imports_what_llvm_lto_imports() {
    let force = ImportConfig {
        force_import_all: true,
        ..ImportConfig::default()
    };
    let flat = ImportConfig {
        import_instr_evolution_factor: 1.0,
        ..ImportConfig::default()
    };
    let no_bonus = ImportConfig {
        import_hot_multiplier: 1.0,
        import_cold_multiplier: 1.0,
        ..ImportConfig::default()
    };
    let cases: Vec<(&[&str], &str, ImportConfig)> = vec![
        (&["thresholds_lib.ll"], "thresholds_script.ll", limit(100)),
        (&["thresholds_lib.ll"], "thresholds_script.ll", limit(150)),
        (&["thresholds_lib.ll"], "thresholds_script.ll", limit(9)),
        (
            &["evolution_lib_a.ll", "evolution_lib_b.ll"],
            "evolution_script.ll",
            ImportConfig::default(),
        ),
        (
            &["evolution_lib_a.ll", "evolution_lib_b.ll"],
            "evolution_script.ll",
            flat,
        ),
        (
            &["evolution_lib_a.ll", "evolution_lib_b.ll"],
            "evolution_script.ll",
            limit(102),
        ),
        (
            &["attributes_lib.ll"],
            "attributes_script.ll",
            ImportConfig::default(),
        ),
        (&["attributes_lib.ll"], "attributes_script.ll", force),
        (
            &["globals_lib.ll"],
            "globals_script.ll",
            ImportConfig::default(),
        ),
        (
            &["hotness_lib.ll"],
            "hotness_script.ll",
            ImportConfig::default(),
        ),
        (&["hotness_lib.ll"], "hotness_script.ll", no_bonus),
        (
            &["diamond_lib.ll"],
            "diamond_script.ll",
            ImportConfig::default(),
        ),
        (&["diamond_lib.ll"], "diamond_script.ll", limit(80)),
    ];
    let mut imported_any = 0;
    for (helpers, script, config) in &cases {
        let inputs: Vec<PathBuf> = helpers.iter().map(|h| fixture(h)).collect();
        let summary = Summary::build(&inputs, &BuildOptions::default()).unwrap();
        let library = summary.library_bitcode().unwrap();
        assert_eq!(thinjit::llvm::bitcode_has_summary(library), Some(true));
        let dir = tempfile::TempDir::new().unwrap();
        let oracle = llvm_lto_import(dir.path(), library, script, config);
        let flags = llvm_flags(config).join(" ");
        // The same preserved symbols as llvm-lto: equal, functions and variables.
        assert_eq!(
            in_process_import(library, script, config, false),
            oracle,
            "{script} with {flags}"
        );
        // As the engine runs it (the whole runtime preserved): the same list on every fixture.
        assert_eq!(
            in_process_import(library, script, config, true),
            oracle,
            "{script} with {flags}, library preserved"
        );
        imported_any += oracle.functions.len();
    }
    assert!(imported_any > 20, "the fixtures import something");
}

#[test]
fn llvm_importer_refuses_a_library_without_a_thinlto_summary() {
    let summary =
        Summary::build(&[fixture("thresholds_lib.ll")], &BuildOptions::default()).unwrap();
    let ctx = Context::new();
    // The library as plain bitcode (what `llvm-link` or LLVMWriteBitcodeToMemoryBuffer write): no summary.
    let plain = Module::parse_bitcode(&ctx, summary.library_bitcode().unwrap(), "lib")
        .unwrap()
        .write_bitcode();
    assert_eq!(thinjit::llvm::bitcode_has_summary(&plain), Some(false));
    assert_eq!(thinjit::llvm::bitcode_has_summary(b"not bitcode"), None);
    let mut module = Module::parse_file(&ctx, &fixture("thresholds_script.ll")).unwrap();
    let err =
        thinjit::import::import_with_llvm(&mut module, &plain, &ImportConfig::default(), true)
            .unwrap_err()
            .to_string();
    assert!(err.contains("no ThinLTO summary"), "{err}");
}
