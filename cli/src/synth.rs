//! Synthetic helper libraries and scripts, for benches and tests at scale.
//!
//! In: a size and a seed. Out: textual LLVM IR (`.ll`) for the host triple, deterministic for a given
//! (size, seed). The library is shaped like a real runtime: mostly small functions with a long tail of big ones,
//! a call graph with fan-out 0–4 mostly to nearby functions, some constant tables and mutable globals, and some
//! `static` (internal) functions and tables that the summary builder must promote.
//!
//! Every function has the signature `i64 (i64 %x, i32 %depth)`; calls pass `depth - 1` and a function returns
//! at once when `depth <= 0`, so running generated code always terminates. Callees always have a larger index
//! than their caller (the call graph is acyclic). Function `i` is named [`function_name`]`(i)`; it is
//! `internal` exactly when [`is_internal`]`(i)`, whatever the seed, so a script generator knows which names are
//! callable from outside.

use std::fmt::Write;

/// Target triple of generated modules (the x86-64 Linux host thinjit runs on).
pub const TRIPLE: &str = "x86_64-pc-linux-gnu";
/// Data layout of generated modules (clang's for [`TRIPLE`]).
pub const DATA_LAYOUT: &str =
    "e-m:e-p270:32:32-p271:32:32-p272:64:64-i64:64-i128:128-f80:128-n8:16:32:64-S128";

/// The name of generated function `i`.
pub fn function_name(i: usize) -> String {
    format!("synth_fn_{i}")
}

/// Whether generated function `i` is `internal` (a `static` helper): one in ten, never function 0.
pub fn is_internal(i: usize) -> bool {
    i % 10 == 7
}

/// A small deterministic PRNG (splitmix64).
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// `true` with probability `p` percent.
    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
}

/// Body size in arithmetic instructions: 70 % small (2–12), 25 % medium (12–80), 5 % large (80–400).
fn body_size(rng: &mut Rng) -> u64 {
    match rng.range(0, 99) {
        0..=69 => rng.range(2, 12),
        70..=94 => rng.range(12, 80),
        _ => rng.range(80, 400),
    }
}

/// Callees of function `i` of `n`: 0–4 of them (mostly 1–2), mostly within the next 16 functions.
fn callees(rng: &mut Rng, i: usize, n: usize) -> Vec<usize> {
    if i + 1 >= n {
        return Vec::new();
    }
    let fan_out = match rng.range(0, 99) {
        0..=24 => 0,
        25..=59 => 1,
        60..=84 => 2,
        85..=94 => 3,
        _ => 4,
    };
    (0..fan_out)
        .map(|_| {
            let far = rng.percent(15);
            let max_step = if far { n - i - 1 } else { (n - i - 1).min(16) };
            i + rng.range(1, max_step as u64) as usize
        })
        .collect()
}

/// A helper library of `n_functions` functions as textual IR.
///
/// ```
/// use thinjit::llvm::{Context, Module};
/// let text = thinjit_cli::synth::generate_library(50, 1);
/// let ctx = Context::new();
/// let m = Module::parse_ir(&ctx, text.as_bytes(), "synth.ll").unwrap();
/// m.verify().unwrap();
/// assert_eq!(m.functions().count(), 50);
/// ```
pub fn generate_library(n_functions: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let n = n_functions.max(1);
    let n_tables = (n / 20).max(1);
    let n_counters = (n / 40).max(1);
    let mut out = String::with_capacity(n * 400);
    let _ = writeln!(
        out,
        "; thinjit synthetic helper library: {n} functions, seed {seed}"
    );
    let _ = writeln!(out, "source_filename = \"synth-{n}-{seed}\"");
    let _ = writeln!(out, "target datalayout = \"{DATA_LAYOUT}\"");
    let _ = writeln!(out, "target triple = \"{TRIPLE}\"\n");
    for t in 0..n_tables {
        let linkage = if t % 3 == 1 { "internal " } else { "" };
        let values: Vec<String> = (0..16)
            .map(|_| format!("i64 {}", rng.next() % 100_000))
            .collect();
        let _ = writeln!(
            out,
            "@synth_table_{t} = {linkage}constant [16 x i64] [{}], align 16",
            values.join(", ")
        );
    }
    for c in 0..n_counters {
        let linkage = if c % 4 == 2 { "internal " } else { "" };
        let _ = writeln!(out, "@synth_counter_{c} = {linkage}global i64 0, align 8");
    }
    out.push('\n');
    for i in 0..n {
        let size = body_size(&mut rng);
        let calls = callees(&mut rng, i, n);
        let table = rng.percent(12).then(|| rng.range(0, n_tables as u64 - 1));
        let counter = rng.percent(6).then(|| rng.range(0, n_counters as u64 - 1));
        let linkage = if is_internal(i) { "internal " } else { "" };
        let _ = writeln!(
            out,
            "define {linkage}i64 @{}(i64 %x, i32 %depth) #0 {{",
            function_name(i)
        );
        out.push_str(
            "entry:\n  %stop = icmp sle i32 %depth, 0\n  br i1 %stop, label %done, label %body\n",
        );
        out.push_str("body:\n  %d1 = sub i32 %depth, 1\n");
        let mut last = "%x".to_string();
        let mut tmp = 0usize;
        let fresh = |tmp: &mut usize| {
            *tmp += 1;
            format!("%t{tmp}")
        };
        for k in 0..size {
            let v = fresh(&mut tmp);
            let op = ["add", "mul", "xor", "sub", "or", "shl", "lshr"][(rng.next() % 7) as usize];
            let c = if op == "shl" || op == "lshr" {
                rng.range(1, 7)
            } else {
                rng.range(1, 1 << 20)
            };
            let _ = writeln!(out, "  {v} = {op} i64 {last}, {c}");
            last = v;
            // Interleave calls through the body.
            if let Some(&callee) = calls.get(k as usize) {
                let r = fresh(&mut tmp);
                let _ = writeln!(
                    out,
                    "  {r} = call i64 @{}(i64 {last}, i32 %d1)",
                    function_name(callee)
                );
                let s = fresh(&mut tmp);
                let _ = writeln!(out, "  {s} = add i64 {last}, {r}");
                last = s;
            }
        }
        for &callee in calls.iter().skip(size as usize) {
            let r = fresh(&mut tmp);
            let _ = writeln!(
                out,
                "  {r} = call i64 @{}(i64 {last}, i32 %d1)",
                function_name(callee)
            );
            let s = fresh(&mut tmp);
            let _ = writeln!(out, "  {s} = add i64 {last}, {r}");
            last = s;
        }
        if let Some(t) = table {
            let idx = fresh(&mut tmp);
            let p = fresh(&mut tmp);
            let v = fresh(&mut tmp);
            let s = fresh(&mut tmp);
            let _ = writeln!(out, "  {idx} = and i64 {last}, 15");
            let _ = writeln!(
                out,
                "  {p} = getelementptr inbounds [16 x i64], ptr @synth_table_{t}, i64 0, i64 {idx}"
            );
            let _ = writeln!(out, "  {v} = load i64, ptr {p}, align 8");
            let _ = writeln!(out, "  {s} = add i64 {last}, {v}");
            last = s;
        }
        if let Some(c) = counter {
            let old = fresh(&mut tmp);
            let new = fresh(&mut tmp);
            let _ = writeln!(out, "  {old} = load i64, ptr @synth_counter_{c}, align 8");
            let _ = writeln!(out, "  {new} = add i64 {old}, 1");
            let _ = writeln!(out, "  store i64 {new}, ptr @synth_counter_{c}, align 8");
        }
        let _ = writeln!(out, "  br label %done");
        let _ = writeln!(
            out,
            "done:\n  %r = phi i64 [ %x, %entry ], [ {last}, %body ]\n  ret i64 %r\n}}\n"
        );
    }
    out.push_str("attributes #0 = { nounwind }\n");
    out
}

/// A script module calling `k_callees` distinct external helpers of a [`generate_library`]`(lib_n, _)` library.
///
/// Defines `i64 @script_main(i64 %x)`, which calls each chosen helper with depth 3 and returns the sum.
///
/// ```
/// let script = thinjit_cli::synth::generate_script(100, 4, 7);
/// assert_eq!(script.matches("declare i64 @synth_fn_").count(), 4);
/// ```
pub fn generate_script(lib_n: usize, k_callees: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed ^ 0xC0FF_EE00);
    let external: Vec<usize> = (0..lib_n.max(1)).filter(|&i| !is_internal(i)).collect();
    let k = k_callees.min(external.len());
    // Partial Fisher-Yates: k distinct picks.
    let mut pool = external;
    for j in 0..k {
        let r = j + (rng.next() % (pool.len() - j) as u64) as usize;
        pool.swap(j, r);
    }
    let mut chosen: Vec<usize> = pool[..k].to_vec();
    chosen.sort_unstable();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "; thinjit synthetic script: {k} callees of a {lib_n}-function library, seed {seed}"
    );
    let _ = writeln!(out, "source_filename = \"script-{lib_n}-{k}-{seed}\"");
    let _ = writeln!(out, "target datalayout = \"{DATA_LAYOUT}\"");
    let _ = writeln!(out, "target triple = \"{TRIPLE}\"\n");
    for &c in &chosen {
        let _ = writeln!(out, "declare i64 @{}(i64, i32)", function_name(c));
    }
    out.push_str("\ndefine i64 @script_main(i64 %x) {\nentry:\n");
    let mut last = "%x".to_string();
    for (j, &c) in chosen.iter().enumerate() {
        let _ = writeln!(
            out,
            "  %c{j} = call i64 @{}(i64 %x, i32 3)",
            function_name(c)
        );
        let _ = writeln!(out, "  %s{j} = add i64 {last}, %c{j}");
        last = format!("%s{j}");
    }
    let _ = writeln!(out, "  ret i64 {last}\n}}");
    out
}
