//! The inlined set per bundled workload script (issue 17): which helper calls O3 inlines after a summary
//! import at the default `import-instr-limit`, and which calls are left to the runtime's one copy.
//!
//! Speed work on the import and optimize stages (cheaper pipelines, fewer passes over imported bodies) must
//! not be bought by inlining less: these tests pin, per script, the helper functions the script called before
//! import and the helper calls that remain after `optimize`. A change that inlines less leaves more calls
//! behind and fails here; a change that inlines more fails too, and the pin is updated on purpose.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use thinjit::import::{import, ImportConfig};
use thinjit::jit::RuntimeMode;
use thinjit::llvm::{CodeGenOpt, Context, Module, TargetMachine};
use thinjit::optimize::{optimize, OptLevel};
use thinjit::summary::{BuildOptions, Summary};
use thinjit_cli::bench::workload::{helper_scripts, synthetic_workload};

use crate::common;

fn helpers() -> &'static Summary {
    static S: OnceLock<Summary> = OnceLock::new();
    S.get_or_init(|| Summary::build(&common::helper_bitcode(), &BuildOptions::default()).unwrap())
}

/// The synthetic 1k-function library of the bundled `synth-1k` workload (seed 1).
fn synth_1k() -> &'static Summary {
    static S: OnceLock<Summary> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("synth-1k.ll");
        std::fs::write(&path, thinjit_cli::synth::generate_library(1000, 1)).unwrap();
        Summary::build(&[path], &BuildOptions::default()).unwrap()
    })
}

/// Names of the non-intrinsic functions called anywhere in `m`'s defined functions that `summary` defines.
fn helper_calls(m: &Module<'_>, summary: &Summary) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in m.functions().filter(|f| !f.is_declaration()) {
        for inst in f.instructions() {
            if let Some(callee) = inst.called_function() {
                let name = callee.name();
                if summary.index().function(&name).is_some() {
                    // Promoted locals keep their source name; the hash suffix depends on the build inputs.
                    let plain = name.split(".llvm.").next().unwrap_or(&name).to_owned();
                    out.insert(plain);
                }
            }
        }
    }
    out
}

/// Imports and optimizes `ir` the way the engine does (host target machine, O3, default config) and returns
/// (helpers the script calls before import, helper calls left after optimization).
fn inlined_sets(summary: &Summary, name: &str, ir: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let ctx = Context::new();
    let mut m = Module::parse_ir(&ctx, ir.as_bytes(), name).unwrap();
    let before = helper_calls(&m, summary);
    import(
        &mut m,
        summary,
        &ImportConfig::default(),
        RuntimeMode::JitResident,
    )
    .unwrap();
    let tm = TargetMachine::host(CodeGenOpt::Aggressive).unwrap();
    optimize(&mut m, &tm, OptLevel::O3).unwrap();
    (before, helper_calls(&m, summary))
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn check(summary: &Summary, name: &str, ir: &str, called: &[&str], left: &[&str]) {
    let (before, after) = inlined_sets(summary, name, ir);
    assert_eq!(before, set(called), "{name}: helpers the script calls");
    assert_eq!(
        after,
        set(left),
        "{name}: helper calls left after import + O3 (inlined: {:?})",
        before.difference(&after).collect::<Vec<_>>()
    );
}

#[test]
fn helper_workload_scripts_inline_the_pinned_calls() {
    let scripts = helper_scripts(1.0);
    let names: Vec<&str> = scripts.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["seed", "arith", "strings", "tables", "mix", "accessors"],
        "a new bundled script needs its pin here"
    );
    let alloc = ["rt_report_error", "thinjit_host_alloc"];
    for s in &scripts {
        let (called, left): (&[&str], Vec<&str>) = match s.name.as_str() {
            "seed" => (&["CreateWrappedValueFromInt"], alloc.to_vec()),
            "arith" => (
                &[
                    "CreateWrappedValueFromInt",
                    "WrappedValueAdd",
                    "WrappedValueGetInt",
                ],
                [&alloc[..], &["WrappedValueAdd", "strtod"]].concat(),
            ),
            "strings" => (
                &[
                    "CreateWrappedValueFromInt",
                    "CreateWrappedValueFromString",
                    "WrappedValueConcat",
                    "WrappedValueGetString",
                    "rt_intern",
                    "strlen",
                ],
                [
                    &alloc[..],
                    &[
                        "WrappedValueConcat",
                        "_ZN11InternTable6internEPKc",
                        "strlen",
                    ],
                ]
                .concat(),
            ),
            "tables" => (&["rt_crc32", "rt_square_lookup"], vec![]),
            "mix" => (
                &[
                    "CreateWrappedValueFromDouble",
                    "CreateWrappedValueFromInt",
                    "WrappedValueCompare",
                    "WrappedValueGetDouble",
                    "WrappedValueMul",
                    "WrappedValueSub",
                    "rt_always_inline_mix",
                    "rt_chain_a",
                    "rt_checked_div",
                    "rt_clamp_add",
                    "rt_dispatch",
                    "rt_fib",
                    "rt_hot_add",
                    "rt_noinline_add",
                    "rt_sum_varargs",
                    "rt_weak_hook",
                ],
                [
                    &alloc[..],
                    &[
                        "WrappedValueCompare",
                        "WrappedValueMul",
                        "WrappedValueSub",
                        "_ZL20checked_div_or_throwii",
                        "__cxa_begin_catch",
                        "__cxa_end_catch",
                        "clamp_small",
                        "rt_chain_b",
                        "rt_dispatch",
                        "rt_fib",
                        "rt_noinline_add",
                        "rt_sum_varargs",
                        "rt_weak_hook",
                        "strtod",
                    ],
                ]
                .concat(),
            ),
            "accessors" => (
                &[
                    "CreateWrappedValueFromInt",
                    "WrappedValueGetInt",
                    "WrappedValueTag",
                    "rt_hot_add",
                    "rt_square_lookup",
                ],
                [&alloc[..], &["strtod"]].concat(),
            ),
            other => unreachable!("unpinned script {other}"),
        };
        check(helpers(), &s.name, &s.ir, called, &left);
    }
}

#[test]
fn synthetic_workload_scripts_inline_the_pinned_calls() {
    let workload = synthetic_workload(1000, 1, 1.0);
    assert_eq!(workload.scripts.len(), 2);
    for s in &workload.scripts {
        let (called, left): (&[&str], &[&str]) = match s.name.as_str() {
            "synth-call3" => (&["synth_fn_286", "synth_fn_479", "synth_fn_690"], &[]),
            "synth-call10" => (
                &[
                    "synth_fn_13",
                    "synth_fn_285",
                    "synth_fn_542",
                    "synth_fn_55",
                    "synth_fn_666",
                    "synth_fn_758",
                    "synth_fn_761",
                    "synth_fn_796",
                    "synth_fn_803",
                    "synth_fn_815",
                ],
                &[
                    "synth_fn_13",
                    "synth_fn_69",
                    "synth_fn_780",
                    "synth_fn_789",
                    "synth_fn_817",
                    "synth_fn_818",
                ],
            ),
            other => unreachable!("unpinned script {other}"),
        };
        check(synth_1k(), &s.name, &s.ir, called, left);
    }
}
