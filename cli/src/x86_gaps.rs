//! Derives, from LLVM 19 itself, two tables of calls its verifier accepts but its x86-64 code generator ends
//! the process on, for the pre-codegen check (`src/check/x86_codegen_gaps.rs`):
//!
//! - **Rounding and exception-suppression operands**: for every x86 intrinsic whose last `i32` immediate
//!   operand, probed with the values 0–16 (the rest of the call as the feature table's probe, with the features
//!   that table says it needs), compiles only with some of 4 (current direction), 8–11 (suppress exceptions,
//!   static rounding) and 12 (suppress exceptions): the values that compile. Any other value there makes instruction selection fail
//!   (`Cannot select: intrinsic %llvm.x86.avx512.mask.cvtps2udq.512`).
//! - **Vector-predicated operations**: every `llvm.vp.*` intrinsic, called with a variable mask and explicit
//!   vector length for each vector type the intrinsic catalog offers (fixed-length vectors whose element type
//!   suits the operation: the check refuses the others by name, [`thinjit::check::vp_element_mismatch`]),
//!   compiled for baseline x86-64: those that fail for at least one type, with LLVM's error ("Do not know how
//!   to promote this operator's operand!").
//!
//! - **Other target-independent intrinsics**: every other generic intrinsic signature of the catalog (up to three
//!   overload variants each, fixed-length types; not `llvm.coro.*` or the named-register intrinsics, which the
//!   check judges by caller and register), through
//!   the engine's path — `opt -passes=default<O3>`, then `llc -O3` for baseline x86-64 — with each immediate
//!   mode whose call verifies: the exact signatures that fail in every mode, with LLVM's error
//!   (`llvm.objc.arc.annotation.*`: "Cannot select", `llvm.memcpy.inline` from another address space: a crash).
//!   What O3 lowers (`llvm.expect.with.probability`, `llvm.ssa.copy`) is not listed, though it may fail at O0.
//!
//! `cargo run -p thinjit-cli --release --bin x86-intrinsic-features -- --gaps src/check/x86_codegen_gaps.rs`
//! regenerates the table.

use std::path::Path;

use crate::script_fuzz::generate::Catalog;
use crate::x86_features::{in_chunks, llc_selects, o3_compiles, probe};
use thinjit::check::{x86_intrinsic_requirement, X86Requirement};
use thinjit::llvm::intrinsics::IntrinsicSignature;

/// Values probed at a candidate rounding operand.
const PROBED: std::ops::RangeInclusive<i64> = 0..=16;
/// Values a rounding or exception-suppression operand can take: 4 (current direction), 8–11 (no exceptions,
/// static rounding), 12 (no exceptions, current direction).
const ROUNDING_VALUES: [i64; 6] = [4, 8, 9, 10, 11, 12];

/// An x86 intrinsic operand that takes only rounding / exception-suppression modes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundingOperand {
    /// The intrinsic's base name.
    pub name: String,
    /// The operand's index.
    pub operand: usize,
    /// The values LLVM 19 compiles there.
    pub accepted: Vec<i64>,
}

/// A vector-predicated intrinsic LLVM 19 cannot compile on x86-64 for some vector type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpGap {
    /// The intrinsic's base name (`llvm.vp.ctpop`).
    pub name: String,
    /// The first failing call's full name and LLVM's error.
    pub example: String,
    pub error: String,
}

/// Probes one x86 intrinsic's last `i32` immediate; `Some` when only rounding values compile there.
fn rounding_operand(
    llc: &Path,
    sig: &IntrinsicSignature,
    modes: &[&str],
) -> std::io::Result<Option<RoundingOperand>> {
    let Some(X86Requirement::Needs(features)) = x86_intrinsic_requirement(&sig.name) else {
        return Ok(None);
    };
    let Some(k) = sig.params.iter().rposition(|(ty, imm)| *imm && ty == "i32") else {
        return Ok(None);
    };
    let features: Vec<String> = features.iter().map(|f| f.to_string()).collect();
    let mut base = None;
    for mode in modes {
        if llc_selects(llc, &probe(sig, mode), &features)?.is_ok() {
            base = Some(*mode);
            break;
        }
    }
    let Some(base) = base else {
        return Ok(None);
    };
    let compiles = |v: i64| -> std::io::Result<bool> {
        Ok(llc_selects(llc, &probe(sig, &format!("{base}@{k}={v}")), &features)?.is_ok())
    };
    // Most immediates (shuffle controls, predicates) take 0; rounding operands never do.
    if compiles(0)? {
        return Ok(None);
    }
    let mut accepted = Vec::new();
    for v in PROBED.skip(1) {
        if compiles(v)? {
            accepted.push(v);
        }
    }
    let rounding = !accepted.is_empty() && accepted.iter().all(|v| ROUNDING_VALUES.contains(v));
    Ok(rounding.then(|| RoundingOperand {
        name: sig.base.clone(),
        operand: k,
        accepted,
    }))
}

/// The rounding-operand table over every x86 intrinsic of the catalog, sorted by name.
pub fn derive_rounding(
    llc: &Path,
    catalog: &Catalog,
    jobs: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> std::io::Result<Vec<RoundingOperand>> {
    let mut work: Vec<(IntrinsicSignature, Vec<&'static str>)> = catalog
        .x86
        .iter()
        .map(|i| &catalog.callable[*i])
        .filter(|c| c.signature.params.iter().any(|(t, imm)| *imm && t == "i32"))
        .map(|c| (c.signature.clone(), c.imm_mode_names()))
        .collect();
    work.sort_by(|a, b| a.0.base.cmp(&b.0.base));
    work.dedup_by(|a, b| a.0.base == b.0.base);
    let mut table = in_chunks(&work, jobs, progress, |_: &mut (), (sig, modes)| {
        rounding_operand(llc, sig, modes)
    })?;
    table.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(table)
}

/// The vector-predicated intrinsics that fail on baseline x86-64 for some fixed-length vector type of the
/// catalog, sorted by name.
pub fn derive_vp(
    llc: &Path,
    catalog: &Catalog,
    jobs: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> std::io::Result<Vec<VpGap>> {
    let mut work: Vec<&IntrinsicSignature> = catalog
        .generic
        .iter()
        .map(|i| &catalog.callable[*i].signature)
        .filter(|s| {
            s.name.starts_with("llvm.vp.")
                && !s.name.contains("nxv")
                && thinjit::check::vp_element_mismatch(&s.name).is_none()
        })
        .collect();
    work.sort_by(|a, b| a.name.cmp(&b.name));
    let failures = in_chunks(&work, jobs, progress, |_: &mut (), sig| {
        Ok(match llc_selects(llc, &probe(sig, "zero"), &[])? {
            Ok(()) => None,
            Err(error) => Some(VpGap {
                name: sig.base.clone(),
                example: sig.name.clone(),
                error: short_error(error),
            }),
        })
    })?;
    let mut table: Vec<VpGap> = Vec::new();
    for gap in failures {
        if !table.iter().any(|g| g.name == gap.name) {
            table.push(gap);
        }
    }
    table.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(table)
}

/// A target-independent intrinsic signature LLVM 19 cannot compile on x86-64 with any immediate tried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenericGap {
    /// The full name, overload suffixes included (`llvm.memcpy.inline.p1.p0.i64`).
    pub name: String,
    pub error: String,
}

/// LLVM's error line, shortened: a crash says so instead of the bug-report banner.
fn short_error(error: String) -> String {
    if error.starts_with("PLEASE submit") {
        "LLVM crashed".to_owned()
    } else {
        error.trim_start_matches("LLVM ERROR: ").to_owned()
    }
}

/// The target-independent intrinsic signatures (other than `llvm.vp.*`) that fail on baseline x86-64 with every
/// immediate mode whose call verifies, sorted by name.
pub fn derive_generic(
    llc: &Path,
    catalog: &Catalog,
    jobs: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> std::io::Result<Vec<GenericGap>> {
    let mut work: Vec<(IntrinsicSignature, Vec<&'static str>)> = catalog
        .generic
        .iter()
        .map(|i| &catalog.callable[*i])
        .filter(|c| {
            let name = &c.signature.name;
            // Coroutine and named-register intrinsics are judged by where they are called and which register
            // they name (rules of the check), not by signature.
            !name.starts_with("llvm.vp.")
                && !name.starts_with("llvm.coro.")
                && !name.starts_with("llvm.read_register.")
                && !name.starts_with("llvm.read_volatile_register.")
                && !name.starts_with("llvm.write_register.")
                && !name.contains("nxv")
                && !name.contains("vscale")
        })
        .map(|c| (c.signature.clone(), c.imm_mode_names()))
        .collect();
    work.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    work.dedup_by(|a, b| a.0.name == b.0.name);
    in_chunks(&work, jobs, progress, |_: &mut (), (sig, modes)| {
        let mut last = String::new();
        for mode in modes {
            match o3_compiles(llc, &probe(sig, mode))? {
                Ok(()) => return Ok(None),
                Err(e) => last = e,
            }
        }
        Ok(Some(GenericGap {
            name: sig.name.clone(),
            error: short_error(last),
        }))
    })
}

/// Writes the tables as the Rust source of `src/check/x86_codegen_gaps.rs`.
pub fn write_gaps(
    path: &Path,
    rounding: &[RoundingOperand],
    vp: &[VpGap],
    generic: &[GenericGap],
    command: &str,
) -> std::io::Result<()> {
    let mut out = format!(
        "//! Calls LLVM {} verifies but cannot compile on x86-64, derived from LLVM itself: generated by\n\
         //! `{command}` ({} rounding operands, {} vector-predicated intrinsics, {} other intrinsic\n\
         //! signatures). Do not edit; see `cli/src/x86_gaps.rs` for how each entry is found.\n\n",
        thinjit::llvm::llvm_version(),
        rounding.len(),
        vp.len(),
        generic.len()
    );
    out.push_str(
        "/// (x86 intrinsic base name, operand index, the only values LLVM compiles there), sorted by name.\n",
    );
    out.push_str("pub(crate) const X86_ROUNDING_OPERANDS: &[(&str, u32, &[u32])] = &[\n");
    for r in rounding {
        let values: Vec<String> = r.accepted.iter().map(|v| v.to_string()).collect();
        out.push_str(&format!(
            "    ({:?}, {}, &[{}]),\n",
            r.name,
            r.operand,
            values.join(", ")
        ));
    }
    out.push_str("];\n\n");
    out.push_str(
        "/// (vector-predicated intrinsic base name, a call that failed, LLVM's error), sorted by name.\n",
    );
    out.push_str("pub(crate) const X86_UNCOMPILABLE_VP: &[(&str, &str, &str)] = &[\n");
    for g in vp {
        out.push_str(&format!(
            "    ({:?}, {:?}, {:?}),\n",
            g.name, g.example, g.error
        ));
    }
    out.push_str("];\n\n");
    out.push_str("/// (target-independent intrinsic signature, LLVM's error), sorted by name.\n");
    out.push_str("pub(crate) const X86_UNCOMPILABLE_GENERIC: &[(&str, &str)] = &[\n");
    for g in generic {
        out.push_str(&format!("    ({:?}, {:?}),\n", g.name, g.error));
    }
    out.push_str("];\n");
    std::fs::write(path, out)
}
