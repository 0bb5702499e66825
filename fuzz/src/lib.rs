//! The fuzz targets' bodies, shared with the regression test that replays the saved corpus
//! (`tests/it/robustness.rs` includes this file).
//!
//! In: arbitrary bytes. Out: nothing; a broken invariant panics (which is what the fuzzer reports).

use arbitrary::{Arbitrary, Result, Unstructured};
use thinjit::import::{plan, ImportConfig, ScriptSymbols};
use thinjit::jit::RuntimeMode;
use thinjit::summary::{
    checksum64, CallEdge, FunctionAttributes, FunctionSummary, Hotness, Initializer, Linkage,
    NotEligible, ShardRef, Summary, SummaryIndex, VariableSummary,
};

/// Length of the fixed prefix of a summary file (magic, version, header length, index length, checksum).
const PREFIX_LEN: usize = 36;

/// `summary_decode`: decode, and when that succeeds fetch every shard.
pub fn decode_one(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        let _ = Summary::from_bytes(Vec::new(), "fuzz");
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 {
        fix_prefix_checksum(&mut bytes);
    }
    if let Ok(summary) = Summary::from_bytes(bytes, "fuzz") {
        for f in &summary.index().functions {
            let _ = summary.shard(f);
        }
        let _ = summary.library_bitcode();
        for f in &summary.index().functions {
            let _ = summary.index().function(&f.name);
        }
    }
}

/// Recomputes the checksum over the header and index bytes when the claimed lengths fit in the file.
pub fn fix_prefix_checksum(bytes: &mut [u8]) {
    if bytes.len() < PREFIX_LEN {
        return;
    }
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let (h, i) = (u64_at(bytes, 12), u64_at(bytes, 20));
    let available = (bytes.len() - PREFIX_LEN) as u64;
    if let Some(meta) = h.checked_add(i).filter(|&n| n <= available) {
        let sum = checksum64(&bytes[PREFIX_LEN..PREFIX_LEN + meta as usize]);
        bytes[28..36].copy_from_slice(&sum.to_le_bytes());
    }
}

/// A small pool of names so that calls, refs, declarations and definitions collide often.
fn name(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0u8..=11)? {
        11 => String::arbitrary(u)?,
        n => format!("h{n}"),
    })
}

fn hotness(u: &mut Unstructured<'_>) -> Result<Hotness> {
    u.choose(&[
        Hotness::Unknown,
        Hotness::Cold,
        Hotness::None,
        Hotness::Hot,
        Hotness::Critical,
    ])
    .copied()
}

fn linkage(u: &mut Unstructured<'_>) -> Result<Linkage> {
    u.choose(&[
        Linkage::External,
        Linkage::AvailableExternally,
        Linkage::LinkOnceAny,
        Linkage::LinkOnceOdr,
        Linkage::WeakAny,
        Linkage::WeakOdr,
        Linkage::Appending,
        Linkage::Internal,
        Linkage::Private,
        Linkage::ExternalWeak,
        Linkage::Common,
        Linkage::Other,
    ])
    .copied()
}

fn not_eligible(u: &mut Unstructured<'_>) -> Result<NotEligible> {
    Ok(match u.int_in_range(0u8..=8)? {
        0 => NotEligible::InlineAsm,
        1 => NotEligible::BlockAddress,
        2 => NotEligible::VaStart,
        3 => NotEligible::ThreadLocal,
        4 => NotEligible::Interposable,
        5 => NotEligible::OptNone,
        6 => NotEligible::UnpromotableReference(name(u)?),
        7 => NotEligible::LocalState(name(u)?),
        _ => NotEligible::Declaration,
    })
}

fn list<T>(
    u: &mut Unstructured<'_>,
    max: usize,
    mut f: impl FnMut(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let n = u.int_in_range(0..=max)?;
    (0..n).map(|_| f(u)).collect()
}

fn function(u: &mut Unstructured<'_>) -> Result<FunctionSummary> {
    Ok(FunctionSummary {
        name: name(u)?,
        original_name: if bool::arbitrary(u)? {
            Some(name(u)?)
        } else {
            None
        },
        linkage: linkage(u)?,
        original_linkage: linkage(u)?,
        instruction_count: if bool::arbitrary(u)? {
            u.int_in_range(0..=300)?
        } else {
            u32::arbitrary(u)?
        },
        attributes: FunctionAttributes {
            noinline: bool::arbitrary(u)?,
            alwaysinline: bool::arbitrary(u)?,
            optnone: bool::arbitrary(u)?,
            cold: bool::arbitrary(u)?,
            hot: bool::arbitrary(u)?,
        },
        calls: list(u, 6, |u| {
            Ok(CallEdge {
                callee: name(u)?,
                count: u32::arbitrary(u)?,
                hotness: hotness(u)?,
            })
        })?,
        refs: list(u, 4, name)?,
        locals: list(u, 3, name)?,
        not_eligible: if u.ratio(2u8, 3u8)? {
            Vec::new()
        } else {
            list(u, 2, not_eligible)?
        },
        shard: if bool::arbitrary(u)? {
            Some(ShardRef {
                offset: u64::arbitrary(u)?,
                len: u64::arbitrary(u)?,
                checksum: u64::arbitrary(u)?,
            })
        } else {
            None
        },
    })
}

fn variable(u: &mut Unstructured<'_>) -> Result<VariableSummary> {
    Ok(VariableSummary {
        name: name(u)?,
        original_name: if bool::arbitrary(u)? {
            Some(name(u)?)
        } else {
            None
        },
        linkage: linkage(u)?,
        constant: bool::arbitrary(u)?,
        thread_local: bool::arbitrary(u)?,
        size: u64::arbitrary(u)?,
        importable_initializer: bool::arbitrary(u)?,
        refs: list(u, 3, name)?,
    })
}

fn factor(u: &mut Unstructured<'_>) -> Result<f32> {
    Ok(match u.int_in_range(0u8..=7)? {
        0 => 0.0,
        1 => 0.7,
        2 => 1.0,
        3 => 10.0,
        4 => 100.0,
        5 => f32::MAX,
        6 => f32::INFINITY,
        _ => f32::arbitrary(u)?,
    })
}

/// Builds the planner's three inputs from fuzzer bytes.
pub fn planner_inputs(
    u: &mut Unstructured<'_>,
) -> Result<(SummaryIndex, ScriptSymbols, ImportConfig, RuntimeMode)> {
    let mut index = SummaryIndex {
        functions: list(u, 14, function)?,
        variables: list(u, 6, variable)?,
        initializers: list(u, 2, |u| {
            Ok(Initializer {
                priority: u32::arbitrary(u)?,
                function: name(u)?,
            })
        })?,
    };
    // Mostly the shape a real file has (sorted); sometimes whatever a hostile file says.
    if u.ratio(3u8, 4u8)? {
        index.canonicalize();
    }
    let mut script = ScriptSymbols::new();
    for _ in 0..u.int_in_range(0..=6)? {
        let n = name(u)?;
        script = script.declare_with_hotness(&n, hotness(u)?);
    }
    for _ in 0..u.int_in_range(0..=3)? {
        let n = name(u)?;
        script = script.define(&n, linkage(u)?);
    }
    let mut config = ImportConfig {
        import_instr_limit: if bool::arbitrary(u)? {
            u.int_in_range(0..=300)?
        } else {
            u32::arbitrary(u)?
        },
        import_instr_evolution_factor: factor(u)?,
        import_hot_evolution_factor: factor(u)?,
        import_hot_multiplier: factor(u)?,
        import_critical_multiplier: factor(u)?,
        import_cold_multiplier: factor(u)?,
        always_import_alwaysinline: bool::arbitrary(u)?,
        force_import_all: bool::arbitrary(u)?,
        max_total_instructions: Option::<u64>::arbitrary(u)?,
        ..ImportConfig::default()
    };
    // Where the runtime lives is the engine's, not a config knob; drawn here, where the config drew it before.
    let mode = if bool::arbitrary(u)? {
        RuntimeMode::JitResident
    } else {
        RuntimeMode::HostNative
    };
    for _ in 0..u.int_in_range(0..=2)? {
        config.allow.insert(name(u)?);
    }
    for _ in 0..u.int_in_range(0..=2)? {
        config.deny.insert(name(u)?);
    }
    Ok((index, script, config, mode))
}

/// `planner`: plan, and check the invariants. Configurations `validate()` refuses are still planned (the
/// planner must not panic on them), but the invariants are only checked for valid ones.
pub fn plan_one(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok((index, script, config, mode)) = planner_inputs(&mut u) else {
        return;
    };
    let p = plan(&index, &script, &config, mode);
    assert_eq!(
        p,
        plan(&index, &script, &config, mode),
        "plan is not deterministic"
    );
    for f in &p.functions {
        assert!(
            !script.defines(&f.name),
            "`{}` is defined by the script but was imported",
            f.name
        );
        let found = index.functions.iter().filter(|s| s.name == f.name);
        assert!(
            found
                .clone()
                .any(|s| s.is_eligible() && !s.linkage.is_interposable()),
            "`{}` imported but not an eligible, non-interposable helper",
            f.name
        );
        if config.validate().is_ok() && !f.local_copy {
            assert!(
                config.permits(&f.name),
                "`{}` imported against the allow/deny lists",
                f.name
            );
        }
    }
    for v in &p.variables {
        assert!(
            !script.defines(&v.name),
            "variable `{}` is defined by the script",
            v.name
        );
        assert!(
            index
                .variables
                .iter()
                .any(|s| s.name == v.name && s.constant),
            "variable `{}` imported but not a constant helper variable",
            v.name
        );
    }
}
