//! Derives the x86 intrinsic → feature table that the pre-codegen check uses
//! (`src/check/x86_intrinsic_features.rs`) from LLVM 19 itself.
//!
//! For every `llvm.x86.*` intrinsic LLVM knows ([`thinjit::llvm::intrinsics::intrinsic_catalog`]), a call is
//! compiled with `llc -O3 -mtriple=x86_64-unknown-linux-gnu -mcpu=x86-64` in a child process (instruction
//! selection ends the process when it cannot select the call): first with no extra features; if that fails,
//! with every x86 ISA feature; if that selects, the feature set is shrunk (chunks, then single features, most
//! implying features tried first) to a set without which no feature can be removed. The verdict per intrinsic:
//! the features it needs (empty: selectable on baseline x86-64), never selectable on x86-64 (fails even with
//! every feature and every immediate mode tried), or not probed (no call the verifier accepts).
//!
//! `cargo run -p thinjit-cli --release --bin x86-intrinsic-features -- src/check/x86_intrinsic_features.rs`
//! regenerates the table; the test suite re-checks a bounded sample of it ([`verify_entry`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::script_fuzz::generate::{probe_function, Catalog};
use thinjit::llvm::intrinsics::IntrinsicSignature;

/// The triple and CPU the table is derived for.
pub const TRIPLE: &str = "x86_64-unknown-linux-gnu";
pub const BASE_CPU: &str = "x86-64";

/// What a call of one intrinsic needs on x86-64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Selectable when the function's subtarget has all of these features (none: baseline x86-64).
    Features(Vec<String>),
    /// Not selectable with any feature set tried (every ISA feature at once), with LLVM's error.
    Never(String),
    /// No call the verifier accepts could be generated.
    Unprobed(String),
}

/// Features that are not instruction-set extensions (tuning, modes, mitigations): never part of a verdict.
fn is_isa_feature(name: &str) -> bool {
    const NOT_ISA: &[&str] = &[
        "tuning",
        "slow-",
        "fast-",
        "prefer-",
        "false-deps-",
        "retpoline",
        "lvi-",
        "harden-",
        "16bit-mode",
        "32bit-mode",
        "64bit-mode",
        "soft-float",
        "idivl-",
        "idivq-",
        "use-",
        "allow-light",
        "branch-hint",
        "pad-short",
        "macrofusion",
        "branchfusion",
        "lea-",
        "ermsb",
        "fsrm",
        "sbb-dep",
        "vzeroupper",
        "x86-64-v",
        "inline-asm-use-gpr32",
        "zu",
        "sse-unaligned-mem",
        "avx-unaligned",
        "unaligned",
        "cf",
        "nf",
        "ndd",
        "ccmp",
        "ppx",
        "push2pop2",
        "egpr",
    ];
    !NOT_ISA.iter().any(|p| name.starts_with(p))
}

/// Runs `llc` on `ir` with `features` (`+`-prefixed names joined) and says whether it compiled; `Err` carries
/// LLVM's first error line when it did not.
pub fn llc_selects(
    llc: &Path,
    ir: &str,
    features: &[String],
) -> std::io::Result<Result<(), String>> {
    let mattr = features
        .iter()
        .map(|f| format!("+{f}"))
        .collect::<Vec<_>>()
        .join(",");
    run_tool(
        Command::new(llc)
            .args(["-O3", "-filetype=obj", "-o", "/dev/null"])
            .arg(format!("-mtriple={TRIPLE}"))
            .arg(format!("-mcpu={BASE_CPU}"))
            .arg(format!("-mattr={mattr}")),
        ir.as_bytes(),
    )
    .map(|r| r.map(|_| ()))
}

/// Whether `ir` survives the engine's path on baseline x86-64: `opt -passes=default<O3>`, then `llc -O3`. `Err`
/// carries the first error line of whichever failed.
pub fn o3_compiles(llc: &Path, ir: &str) -> std::io::Result<Result<(), String>> {
    let opt = llc.with_file_name("opt");
    let optimized = match run_tool(
        Command::new(opt)
            .args(["-passes=default<O3>", "-o", "-"])
            .arg(format!("-mtriple={TRIPLE}"))
            .arg(format!("-mcpu={BASE_CPU}")),
        ir.as_bytes(),
    )? {
        Ok(bitcode) => bitcode,
        Err(e) => return Ok(Err(e)),
    };
    run_tool(
        Command::new(llc)
            .args(["-O3", "-filetype=obj", "-o", "/dev/null"])
            .arg(format!("-mtriple={TRIPLE}"))
            .arg(format!("-mcpu={BASE_CPU}")),
        &optimized,
    )
    .map(|r| r.map(|_| ()))
}

/// Runs an LLVM tool with `input` on stdin (60 s at most); `Ok(stdout)` when it succeeded, else LLVM's first
/// error line.
fn run_tool(cmd: &mut Command, input: &[u8]) -> std::io::Result<Result<Vec<u8>, String>> {
    let mut child = cmd
        .env("LLVM_DISABLE_SYMBOLIZATION", "1")
        .env("LLVM_DISABLE_CRASH_REPORT", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let feed = {
        let input = input.to_vec();
        std::thread::spawn(move || stdin.write_all(&input))
    };
    // stdout and stderr are drained by `wait_with_output` on a helper thread; the caller polls the time limit.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output?,
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            return Ok(Err("the tool did not finish in 60 s".into()));
        }
    };
    let _ = feed.join();
    if output.status.success() {
        return Ok(Ok(output.stdout));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("LLVM ERROR") || l.contains("error:"))
        .or_else(|| stderr.lines().next())
        .unwrap_or("llc failed")
        .trim()
        .to_owned();
    Ok(Err(line))
}

/// The IR of a probe: one function calling `sig` with its own parameters and immediates in `imm_mode`.
pub fn probe(sig: &IntrinsicSignature, imm_mode: &str) -> String {
    let (f, d) = probe_function(sig, imm_mode);
    format!("{d}\n{f}")
}

/// x86 ISA features LLVM 19 knows, those implying the most other features first.
pub fn isa_features() -> Vec<String> {
    let all = thinjit::llvm::intrinsics::target_features(TRIPLE).unwrap_or_default();
    let mut isa: Vec<(usize, String)> = all
        .iter()
        .filter(|f| is_isa_feature(f))
        .map(|f| {
            let implied = all
                .iter()
                .filter(|g| {
                    thinjit::llvm::facts::target_has_feature(TRIPLE, BASE_CPU, &format!("+{f}"), g)
                        == Some(true)
                })
                .count();
            (implied, f.clone())
        })
        .collect();
    isa.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    isa.into_iter().map(|(_, f)| f).collect()
}

/// Shrinks `set` (which selects) to a set from which no single feature can be removed: chunks first, halving.
fn minimize(
    llc: &Path,
    ir: &str,
    mut set: Vec<String>,
    runs: &mut u64,
) -> std::io::Result<Vec<String>> {
    let mut chunk = set.len().div_ceil(2).max(1);
    loop {
        let mut i = 0;
        while i < set.len() {
            let end = (i + chunk).min(set.len());
            let candidate: Vec<String> = set[..i].iter().chain(&set[end..]).cloned().collect();
            *runs += 1;
            if !candidate.is_empty() && llc_selects(llc, ir, &candidate)?.is_ok() {
                set = candidate;
            } else {
                i = end;
            }
        }
        if chunk == 1 {
            return Ok(set);
        }
        chunk = chunk.div_ceil(2);
    }
}

/// A minimal set made of the least implying features: the features `set` implies (with itself), removed one at
/// a time from the most implying (`isa` order), so `{vaes}` (which implies `avx2`) becomes `{avx2}` when
/// `avx2` is what the call needs.
fn canonical(
    llc: &Path,
    ir: &str,
    set: &[String],
    isa: &[String],
    runs: &mut u64,
) -> std::io::Result<Vec<String>> {
    let explicit = set
        .iter()
        .map(|f| format!("+{f}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut closure: Vec<String> = isa
        .iter()
        .filter(|g| {
            set.contains(g)
                || thinjit::llvm::facts::target_has_feature(TRIPLE, BASE_CPU, &explicit, g)
                    == Some(true)
        })
        .cloned()
        .collect();
    let mut i = 0;
    while i < closure.len() {
        let without: Vec<String> = closure
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, f)| f.clone())
            .collect();
        *runs += 1;
        if !without.is_empty() && llc_selects(llc, ir, &without)?.is_ok() {
            closure = without;
        } else {
            i += 1;
        }
    }
    Ok(closure)
}

/// Whether no feature of `set` can be replaced by the features it implies (`{avx512fp16}` is not the base set
/// of a call that `avx512bw`, which it implies, already selects).
fn is_base(
    llc: &Path,
    ir: &str,
    set: &[String],
    isa: &[String],
    runs: &mut u64,
) -> std::io::Result<bool> {
    for f in set {
        let mut replaced: Vec<String> = set.iter().filter(|g| *g != f).cloned().collect();
        for g in isa {
            if g != f
                && !replaced.contains(g)
                && thinjit::llvm::facts::target_has_feature(TRIPLE, BASE_CPU, &format!("+{f}"), g)
                    == Some(true)
            {
                replaced.push(g.clone());
            }
        }
        *runs += 1;
        if !replaced.is_empty() && llc_selects(llc, ir, &replaced)?.is_ok() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether `set` selects and every feature in it is needed.
fn is_minimal(llc: &Path, ir: &str, set: &[String], runs: &mut u64) -> std::io::Result<bool> {
    *runs += 1;
    if llc_selects(llc, ir, set)?.is_err() {
        return Ok(false);
    }
    for i in 0..set.len() {
        let without: Vec<String> = set
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, f)| f.clone())
            .collect();
        *runs += 1;
        if llc_selects(llc, ir, &without)?.is_ok() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One derived table entry.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The intrinsic's name (base name for overloaded ones).
    pub name: String,
    pub verdict: Verdict,
    /// `llc` runs spent on it.
    pub runs: u64,
}

/// Derives the verdict for one intrinsic; `recent` holds feature sets found for earlier intrinsics, tried first.
pub fn derive_one(
    llc: &Path,
    sig: &IntrinsicSignature,
    imm_modes: &[&str],
    isa: &[String],
    recent: &[Vec<String>],
) -> std::io::Result<Entry> {
    let mut runs = 0;
    let name = base_name(sig);
    let mut last_error = String::new();
    for mode in imm_modes {
        let ir = probe(sig, mode);
        runs += 1;
        if llc_selects(llc, &ir, &[])?.is_ok() {
            return Ok(Entry {
                name,
                verdict: Verdict::Features(Vec::new()),
                runs,
            });
        }
        for set in recent {
            if is_minimal(llc, &ir, set, &mut runs)? && is_base(llc, &ir, set, isa, &mut runs)? {
                return Ok(Entry {
                    name,
                    verdict: Verdict::Features(sorted(set.clone())),
                    runs,
                });
            }
        }
        runs += 1;
        match llc_selects(llc, &ir, isa)? {
            Ok(()) => {
                let set = minimize(llc, &ir, isa.to_vec(), &mut runs)?;
                let set = canonical(llc, &ir, &set, isa, &mut runs)?;
                return Ok(Entry {
                    name,
                    verdict: Verdict::Features(sorted(set)),
                    runs,
                });
            }
            Err(e) => last_error = e,
        }
    }
    Ok(Entry {
        name,
        verdict: Verdict::Never(last_error),
        runs,
    })
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The name the table keys on: the full name, or for an overloaded intrinsic the name without its overload
/// suffix (LLVM's base name).
fn base_name(sig: &IntrinsicSignature) -> String {
    sig.base.clone()
}

/// One intrinsic to derive: (table name, probe signature and its immediate modes, or why there is none).
type Work = (
    String,
    Option<(IntrinsicSignature, Vec<&'static str>)>,
    String,
);

/// Derives the whole table (x86 intrinsics in name order; `only`: those whose name starts with it) with `jobs`
/// concurrent `llc` processes.
pub fn derive(
    llc: &Path,
    only: Option<&str>,
    jobs: usize,
    progress: impl Fn(usize, usize) + Sync,
) -> std::io::Result<Vec<Entry>> {
    let catalog = Catalog::load(1);
    let isa = isa_features();
    let mut work: Vec<Work> = Vec::new();
    for i in &catalog.x86 {
        let c = &catalog.callable[*i];
        work.push((
            c.signature.base.clone(),
            Some((c.signature.clone(), c.imm_mode_names())),
            String::new(),
        ));
    }
    for (name, why) in &catalog.excluded {
        if name.starts_with("llvm.x86.") {
            work.push((name.clone(), None, why.clone()));
        }
    }
    if let Some(prefix) = only {
        work.retain(|w| w.0.starts_with(prefix));
    }
    work.sort_by(|a, b| a.0.cmp(&b.0));
    work.dedup_by(|a, b| a.0 == b.0);
    // Contiguous slices per job, so neighbouring intrinsics (same family) share `recent`.
    in_chunks(
        &work,
        jobs,
        &progress,
        |recent: &mut Vec<Vec<String>>, (name, probe, why)| {
            let entry = match probe {
                None => Entry {
                    name: name.clone(),
                    verdict: Verdict::Unprobed(why.clone()),
                    runs: 0,
                },
                Some((sig, modes)) => derive_one(llc, sig, modes, &isa, recent)?,
            };
            if let Verdict::Features(set) = &entry.verdict {
                if !set.is_empty() && !recent.contains(set) {
                    recent.insert(0, set.clone());
                    recent.truncate(3);
                }
            }
            Ok(Some(entry))
        },
    )
}

/// Runs `f` over `items` on `jobs` threads, each taking one contiguous slice with its own state `S` (fresh per
/// slice); results in input order, `None`s dropped. `progress(done, total)` after each item.
pub fn in_chunks<T: Sync, S: Default, R: Send>(
    items: &[T],
    jobs: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
    f: impl Fn(&mut S, &T) -> std::io::Result<Option<R>> + Sync,
) -> std::io::Result<Vec<R>> {
    let done = std::sync::atomic::AtomicUsize::new(0);
    let per = items.len().div_ceil(jobs.max(1)).max(1);
    let results: Vec<std::io::Result<Vec<R>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|slice| {
                let (f, done) = (&f, &done);
                scope.spawn(move || {
                    let mut state = S::default();
                    let mut out = Vec::new();
                    for item in slice {
                        if let Some(r) = f(&mut state, item)? {
                            out.push(r);
                        }
                        let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        progress(k, items.len());
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker"))
            .collect()
    });
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}

/// Checks one table entry against `llc`: with its features a call selects; without (baseline x86-64) it does
/// not, when the entry needs any. `Err` says how the table and LLVM disagree.
pub fn verify_entry(
    llc: &Path,
    sig: &IntrinsicSignature,
    imm_mode: &str,
    features: &[&str],
) -> std::io::Result<Result<(), String>> {
    let ir = probe(sig, imm_mode);
    let with: Vec<String> = features.iter().map(|f| f.to_string()).collect();
    if let Err(e) = llc_selects(llc, &ir, &with)? {
        return Ok(Err(format!(
            "{}: does not select with {features:?}: {e}",
            sig.name
        )));
    }
    if !features.is_empty() && llc_selects(llc, &ir, &[])?.is_ok() {
        return Ok(Err(format!(
            "{}: selects on baseline x86-64 though the table needs {features:?}",
            sig.name
        )));
    }
    Ok(Ok(()))
}

/// Writes `entries` as the Rust source of the table.
pub fn write_table(path: &Path, entries: &[Entry], command: &str) -> std::io::Result<()> {
    let mut out = String::new();
    let count = |f: fn(&Verdict) -> bool| entries.iter().filter(|e| f(&e.verdict)).count();
    out.push_str(&format!(
        "//! What each x86 intrinsic LLVM {} knows needs on x86-64, derived from LLVM itself: generated by\n\
         //! `{command}` ({} intrinsics: {} selectable on baseline x86-64, {} need features, {} never selectable,\n\
         //! {} not probed). Do not edit; see `cli/src/x86_features.rs` for how each verdict is found.\n\n",
        thinjit::llvm::llvm_version(),
        entries.len(),
        count(|v| matches!(v, Verdict::Features(f) if f.is_empty())),
        count(|v| matches!(v, Verdict::Features(f) if !f.is_empty())),
        count(|v| matches!(v, Verdict::Never(_))),
        count(|v| matches!(v, Verdict::Unprobed(_))),
    ));
    let mut used = vec!["self"];
    for (variant, present) in [
        ("Needs", count(|v| matches!(v, Verdict::Features(_))) > 0),
        ("Never", count(|v| matches!(v, Verdict::Never(_))) > 0),
        ("Unprobed", count(|v| matches!(v, Verdict::Unprobed(_))) > 0),
    ] {
        if present {
            used.push(variant);
        }
    }
    out.push_str(&format!(
        "use super::X86Requirement::{{{}}};\n\n",
        used.join(", ")
    ));
    out.push_str("/// (intrinsic, requirement), sorted by name.\n");
    out.push_str("pub(crate) const X86_INTRINSIC_REQUIREMENTS: &[(&str, X86Requirement)] = &[\n");
    for e in entries {
        let v = match &e.verdict {
            Verdict::Features(f) => format!(
                "Needs(&[{}])",
                f.iter()
                    .map(|x| format!("{x:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Verdict::Never(why) => format!("Never({why:?})"),
            Verdict::Unprobed(why) => format!("Unprobed({why:?})"),
        };
        out.push_str(&format!("    ({:?}, {v}),\n", e.name));
    }
    out.push_str("];\n");
    std::fs::write(path, out)
}

/// `llc` of the LLVM thinjit links against.
pub fn llc() -> PathBuf {
    Path::new(env!("THINJIT_LLVM_BIN")).join("llc")
}
