//! The mixed generator: seeded random modules that reach what the pre-codegen check is about.
//!
//! Each module mixes, at random: calls to real LLVM intrinsics (every intrinsic LLVM 19 knows, from
//! [`thinjit::llvm::intrinsics::intrinsic_catalog`]: x86 ones, other targets' ones, generic ones), random
//! `target-cpu` / `target-features` on functions (known and unknown names, subsets of the x86 features),
//! odd integer widths, vectors of odd sizes, scalable vectors, first-class aggregates and huge types, `gc`
//! strategies, debug info (compile unit, subprograms, variables, typedef chains, some cyclic), deep
//! constant-expression and type nesting, inline asm (valid, invalid, impossible constraints) and, optionally,
//! an `llvm-stress` body. The same seed gives the same module.
//!
//! Every module is meant to be valid IR: the runner verifies it before use and counts a module that fails as a
//! generator bug, not a finding. Intrinsic calls are pre-verified one by one ([`Catalog::load`]); intrinsics
//! whose calls the verifier refuses with the generator's arguments are left out (counted in
//! [`Catalog::excluded`]).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use thinjit::llvm::intrinsics::{
    intrinsic_catalog, target_cpus, target_features, IntrinsicSignature,
};
use thinjit::llvm::{Context, Module};

/// A small deterministic generator (SplitMix64): the same seed gives the same module on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `true` with probability `1 / n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// One element of `items` (not empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// How immediate (`immarg`) arguments are chosen; a call is pre-verified with each. `four` and `eight` are
/// x86's "current rounding direction" and "suppress all exceptions" rounding-mode operands.
const IMM_MODES: [&str; 5] = ["zero", "one", "random", "four", "eight"];

/// An intrinsic the generator can call, with the immediate modes the verifier accepted for it.
#[derive(Clone, Debug)]
pub struct Callable {
    /// Its signature.
    pub signature: IntrinsicSignature,
    /// Bit `i` set: [`IMM_MODES`]`[i]` verifies.
    pub imm_modes: u8,
}

/// The intrinsics, CPUs and features the generator draws from.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// Intrinsics whose generated call passes the verifier (several signatures for overloaded ones).
    pub callable: Vec<Callable>,
    /// Indices into `callable`: `llvm.x86.*`, other targets' intrinsics, target-independent ones.
    pub x86: Vec<usize>,
    pub other_targets: Vec<usize>,
    pub generic: Vec<usize>,
    /// Intrinsic IDs LLVM knows (`num_intrinsics - 1`).
    pub known: usize,
    /// Distinct intrinsic names with at least one callable signature.
    pub covered: usize,
    /// Intrinsics with no signature the verifier accepts from the generator (name, why), one per intrinsic ID.
    pub excluded: Vec<(String, String)>,
    /// x86-64 CPU and feature names LLVM knows.
    pub cpus: Vec<String>,
    pub features: Vec<String>,
}

/// The value passed for a parameter of IR type `ty` that must be an immediate, in mode `mode`.
fn immediate(ty: &str, mode: &str, salt: u64) -> String {
    let v: i64 = match mode {
        "zero" => 0,
        "one" => 1,
        "four" => 4,
        "eight" => 8,
        _ => [2, 3, 4, 7, 8, 15, 16, 31, 255, -1][(salt % 10) as usize],
    };
    match ty {
        "i1" => format!("i1 {}", v & 1),
        "float" | "double" | "half" => format!("{ty} {v}.0"),
        _ if ty.starts_with('i') => format!("{ty} {v}"),
        _ => format!("{ty} zeroinitializer"),
    }
}

/// Arguments for the metadata parameters of `name` (constrained FP intrinsics take a rounding mode and an
/// exception behaviour, compares a predicate first; register intrinsics a register name).
fn metadata_args(name: &str, count: usize) -> Vec<String> {
    if name.contains(".constrained.") {
        let mut v = vec!["metadata !\"fpexcept.strict\"".to_owned()];
        if count >= 2 {
            v.insert(
                0,
                if name.contains("fcmp") {
                    "metadata !\"oeq\"".to_owned()
                } else {
                    "metadata !\"round.dynamic\"".to_owned()
                },
            );
        }
        while v.len() < count {
            v.insert(0, "metadata !\"round.dynamic\"".to_owned());
        }
        v
    } else {
        vec!["metadata !{!\"rsp\"}".to_owned(); count]
    }
}

/// A function named `fname` whose body calls `sig`: non-immediate parameters are the function's own (so
/// the optimizer cannot fold the call), immediates follow `imm_mode`. Returns (function text, declaration).
fn call_function(
    sig: &IntrinsicSignature,
    fname: &str,
    attrs: &str,
    imm_mode: &str,
    salt: u64,
) -> (String, String) {
    // `MODE@K=V`: immediates in MODE, but operand K is V.
    let (imm_mode, imm_override) = match imm_mode.split_once('@') {
        Some((mode, rest)) => {
            let parsed = rest
                .split_once('=')
                .and_then(|(k, v)| Some((k.parse::<usize>().ok()?, v.parse::<i64>().ok()?)));
            (mode, parsed)
        }
        None => (imm_mode, None),
    };
    let mut params = Vec::new();
    let mut args = Vec::new();
    let metas = sig.params.iter().filter(|(t, _)| t == "metadata").count();
    let mut meta_args = metadata_args(&sig.name, metas).into_iter();
    for (i, (ty, imm)) in sig.params.iter().enumerate() {
        if ty == "metadata" {
            args.push(meta_args.next().unwrap_or_default());
        } else if ty == "token" {
            args.push("token none".to_owned());
        } else if *imm {
            match imm_override {
                Some((k, v)) if k == i => args.push(format!("{ty} {v}")),
                _ => args.push(immediate(ty, imm_mode, salt.wrapping_add(i as u64))),
            }
        } else {
            params.push(format!("{ty} %p{i}"));
            args.push(format!("{ty} %p{i}"));
        }
    }
    let returns = !matches!(sig.ret.as_str(), "void" | "token" | "metadata");
    let ret_ty = if returns { sig.ret.as_str() } else { "void" };
    let call = format!(
        "call {} @{}({})",
        if sig.vararg {
            format!(
                "{} ({}, ...)",
                sig.ret,
                sig.params
                    .iter()
                    .map(|(t, _)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            sig.ret.clone()
        },
        sig.name,
        args.join(", ")
    );
    let mut body = String::new();
    if returns {
        let _ = writeln!(body, "  %r = {call}\n  ret {ret_ty} %r");
    } else {
        let _ = writeln!(body, "  {call}\n  ret void");
    }
    let decl = format!(
        "declare {} @{}({}{})",
        sig.ret,
        sig.name,
        sig.params
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        if sig.vararg { ", ..." } else { "" }
    );
    (
        format!(
            "define {ret_ty} @{fname}({}) {attrs} {{\n{body}}}\n",
            params.join(", ")
        ),
        decl,
    )
}

fn verifies(ctx: &Context, text: &str) -> Result<(), String> {
    let m = Module::parse_ir(ctx, text.as_bytes(), "catalog-probe").map_err(|e| e.to_string())?;
    m.verify().map_err(|e| e.to_string())
}

impl Callable {
    /// The immediate modes (`zero`, `one`, `random`, `four`, `eight`) whose calls verify.
    pub fn imm_mode_names(&self) -> Vec<&'static str> {
        (0..IMM_MODES.len())
            .filter(|i| self.imm_modes & (1 << i) != 0)
            .map(|i| IMM_MODES[i])
            .collect()
    }
}

/// A function `@probe` calling `sig` (parameters its own, immediates in `imm_mode`: one of `zero`, `one`,
/// `random`, `four`, `eight`, optionally `@K=V` for operand K set to V instead), and the intrinsic's declaration.
pub fn probe_function(sig: &IntrinsicSignature, imm_mode: &str) -> (String, String) {
    call_function(sig, "probe", "", imm_mode, sig.id as u64)
}

impl Catalog {
    /// Enumerates LLVM's intrinsics with `variants` choices of overload types each, keeps the calls the
    /// verifier accepts, and lists the x86-64 CPUs and features.
    pub fn load(variants: u32) -> Catalog {
        let mut cat = Catalog::default();
        let ctx = Context::new();
        let mut seen_names = BTreeSet::new();
        let mut covered_ids = BTreeSet::new();
        let mut why: std::collections::BTreeMap<u32, (String, String)> = Default::default();
        for variant in 0..variants {
            for sig in intrinsic_catalog(variant) {
                cat.known = cat.known.max(sig.id as usize);
                if let Some(reason) = &sig.skipped {
                    why.entry(sig.id)
                        .or_insert((sig.name.clone(), reason.clone()));
                    continue;
                }
                if !seen_names.insert(sig.name.clone()) {
                    continue;
                }
                let mut modes = 0u8;
                let mut last_error = String::new();
                let has_imm = sig.params.iter().any(|(_, imm)| *imm);
                for (i, mode) in IMM_MODES.iter().enumerate() {
                    if i > 0 && !has_imm {
                        break;
                    }
                    let (f, d) = call_function(&sig, "probe", "", mode, sig.id as u64);
                    match verifies(&ctx, &format!("{d}\n{f}")) {
                        Ok(()) => modes |= 1 << i,
                        Err(e) => last_error = e,
                    }
                }
                if !has_imm && modes == 1 {
                    modes = (1 << IMM_MODES.len()) - 1;
                }
                if modes == 0 {
                    let first = last_error.lines().take(2).collect::<Vec<_>>().join(" ");
                    why.entry(sig.id).or_insert((sig.name.clone(), first));
                    continue;
                }
                covered_ids.insert(sig.id);
                let index = cat.callable.len();
                match thinjit::check::intrinsic_target(&sig.name) {
                    Some("x86") => cat.x86.push(index),
                    Some(_) => cat.other_targets.push(index),
                    None => cat.generic.push(index),
                }
                cat.callable.push(Callable {
                    signature: sig,
                    imm_modes: modes,
                });
            }
        }
        cat.covered = covered_ids.len();
        cat.excluded = why
            .into_iter()
            .filter(|(id, _)| !covered_ids.contains(id))
            .map(|(_, v)| v)
            .collect();
        let triple = "x86_64-unknown-linux-gnu";
        cat.cpus = target_cpus(triple).unwrap_or_default();
        cat.features = target_features(triple).unwrap_or_default();
        cat
    }
}

/// Integer widths the generator uses (ordinary, odd, around the check's limit, far past it).
const INT_WIDTHS: &[u32] = &[
    1, 7, 8, 24, 33, 63, 64, 65, 127, 128, 129, 256, 257, 500, 512, 1000, 1023, 1024, 1025, 2048,
];
/// Vector lengths (odd, around the check's aggregate limit).
const VECTOR_LENGTHS: &[u32] = &[
    1, 2, 3, 4, 5, 7, 16, 17, 33, 64, 100, 1000, 1024, 1025, 4096,
];
const VECTOR_ELEMENTS: &[&str] = &[
    "i1", "i7", "i8", "i24", "i32", "i64", "i129", "float", "double", "half",
];
const ARRAY_LENGTHS: &[u64] = &[0, 1, 3, 100, 1000, 1024, 1025, 5000];
const GC_STRATEGIES: &[&str] = &[
    "statepoint-example",
    "shadow-stack",
    "erlang",
    "ocaml",
    "coreclr",
    "no-such-gc",
    "",
];
const UNKNOWN_CPUS: &[&str] = &[
    "diamondrapids",
    "no-such-cpu",
    "cortex-a53",
    "generic",
    "i386",
    "pentium",
    "x86-64-v4",
];
const UNKNOWN_FEATURES: &[&str] = &[
    "+neon",
    "+nosuchfeature",
    "avx2",
    "+sve",
    "-64bit-mode",
    "+v",
];
/// Feature names the generator favours: the ISA extensions intrinsics depend on.
const ISA_HINTS: &[&str] = &[
    "sse",
    "sse2",
    "sse3",
    "ssse3",
    "sse4.1",
    "sse4.2",
    "avx",
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512dq",
    "avx512bf16",
    "avx512fp16",
    "fma",
    "fma4",
    "xop",
    "aes",
    "pclmul",
    "sha",
    "bmi",
    "bmi2",
    "amx-tile",
    "amx-int8",
    "gfni",
    "rdrnd",
    "rdseed",
    "xsave",
    "64bit",
    "x87",
    "mmx",
    "avx512vnni",
    "avxvnni",
    "f16c",
    "popcnt",
    "lzcnt",
    "tbm",
    "sse4a",
    "vaes",
    "vpclmulqdq",
    "kl",
    "widekl",
    "sha512",
    "cmpccxadd",
    "raoint",
    "avx10.1-256",
    "evex512",
];

/// The parts of a module under construction.
struct Builder<'a> {
    rng: Rng,
    cat: &'a Catalog,
    functions: String,
    globals: String,
    decls: BTreeSet<String>,
    metadata: Vec<String>,
    named_metadata: Vec<String>,
    dbg_cu: Option<(usize, usize)>,
    next_function: usize,
    /// Names of the functions defined (lookups for lazy runs).
    defined: Vec<String>,
    /// What went in, for the report (`intrinsic:x86`, `int-width`, ...).
    kinds: BTreeSet<&'static str>,
}

/// A generated module.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The module's IR text.
    pub text: String,
    /// Functions it defines.
    pub defined: Vec<String>,
    /// What went into it.
    pub kinds: Vec<&'static str>,
}

impl<'a> Builder<'a> {
    fn md(&mut self, text: String) -> usize {
        self.metadata.push(text);
        self.metadata.len() - 1
    }

    fn fname(&mut self) -> String {
        let n = format!("f{}", self.next_function);
        self.next_function += 1;
        self.defined.push(n.clone());
        n
    }

    /// Random function attributes: none, a `target-cpu`, `target-features`, or both.
    fn target_attrs(&mut self) -> String {
        let mut attrs = String::new();
        if self.rng.one_in(3) {
            return attrs;
        }
        self.kinds.insert("target-attrs");
        if self.rng.one_in(2) {
            let cpu = if self.rng.one_in(5) || self.cat.cpus.is_empty() {
                self.rng.pick(UNKNOWN_CPUS).to_string()
            } else {
                self.rng.pick(&self.cat.cpus).clone()
            };
            let _ = write!(attrs, " \"target-cpu\"=\"{cpu}\"");
        }
        if self.rng.one_in(2) || attrs.is_empty() {
            let n = 1 + self.rng.below(6);
            let mut list = Vec::new();
            for _ in 0..n {
                if self.rng.one_in(12) {
                    list.push(self.rng.pick(UNKNOWN_FEATURES).to_string());
                    continue;
                }
                let name = if self.rng.one_in(3) && !self.cat.features.is_empty() {
                    self.rng.pick(&self.cat.features).clone()
                } else {
                    self.rng.pick(ISA_HINTS).to_string()
                };
                let sign = if self.rng.one_in(3) { '-' } else { '+' };
                list.push(format!("{sign}{name}"));
            }
            let _ = write!(attrs, " \"target-features\"=\"{}\"", list.join(","));
        }
        attrs
    }

    fn intrinsic_call(&mut self) {
        let pool = match self.rng.below(10) {
            0..=4 => &self.cat.x86,
            5..=6 => &self.cat.other_targets,
            _ => &self.cat.generic,
        };
        if pool.is_empty() {
            return;
        }
        let callable = &self.cat.callable[*self.rng.pick(pool)];
        self.kinds.insert(
            match thinjit::check::intrinsic_target(&callable.signature.name) {
                Some("x86") => "intrinsic:x86",
                Some(_) => "intrinsic:other-target",
                None => "intrinsic:generic",
            },
        );
        let modes = callable.imm_mode_names();
        let mode = *self.rng.pick(&modes);
        let attrs = self.target_attrs();
        let name = self.fname();
        // The salt the catalog verified the `random` immediates with.
        let salt = callable.signature.id as u64;
        let (f, d) = call_function(&callable.signature, &name, &attrs, mode, salt);
        self.functions.push_str(&f);
        self.decls.insert(d);
    }

    fn int_function(&mut self) {
        self.kinds.insert("int-width");
        let w = *self.rng.pick(INT_WIDTHS);
        let t = format!("i{w}");
        let attrs = self.target_attrs();
        let name = self.fname();
        let mut body = String::new();
        let ops = [
            "add", "sub", "mul", "udiv", "sdiv", "urem", "srem", "shl", "lshr", "ashr", "and",
            "or", "xor",
        ];
        let mut last = "%a".to_owned();
        let n = 1 + self.rng.below(5);
        for i in 0..n {
            let op = self.rng.pick(&ops);
            let _ = writeln!(body, "  %v{i} = {op} {t} {last}, %b");
            last = format!("%v{i}");
        }
        if self.rng.one_in(2) {
            let _ = writeln!(
                body,
                "  %c = icmp ult {t} {last}, %a\n  %s = select i1 %c, {t} {last}, {t} %b\n  %m = alloca {t}\n  store {t} %s, ptr %m\n  %l = load {t}, ptr %m"
            );
            last = "%l".into();
        }
        let _ = write!(
            self.functions,
            "define {t} @{name}({t} %a, {t} %b){attrs} {{\n{body}  ret {t} {last}\n}}\n"
        );
    }

    fn vector_function(&mut self) {
        self.kinds.insert("vector");
        let n = *self.rng.pick(VECTOR_LENGTHS);
        let e = *self.rng.pick(VECTOR_ELEMENTS);
        let t = format!("<{n} x {e}>");
        let fp = matches!(e, "float" | "double" | "half");
        let attrs = self.target_attrs();
        let name = self.fname();
        let mut body = String::new();
        let op = if fp {
            *self.rng.pick(&["fadd", "fmul", "fdiv"])
        } else {
            *self.rng.pick(&["add", "mul", "xor", "udiv", "shl"])
        };
        let _ = writeln!(body, "  %x = {op} {t} %a, %b");
        let k = self.rng.below(n as u64);
        let _ = writeln!(body, "  %e = extractelement {t} %x, i32 {k}");
        let _ = writeln!(body, "  %y = insertelement {t} %a, {e} %e, i32 0");
        let m = 1 + self.rng.below(2 * n as u64).min(64);
        let mask: Vec<String> = (0..m)
            .map(|_| {
                if self.rng.one_in(8) {
                    "i32 poison".to_owned()
                } else {
                    format!("i32 {}", self.rng.below(2 * n as u64))
                }
            })
            .collect();
        let _ = writeln!(
            body,
            "  %s = shufflevector {t} %y, {t} %b, <{m} x i32> <{}>",
            mask.join(", ")
        );
        let cmp = if fp { "fcmp olt" } else { "icmp slt" };
        let _ = writeln!(
            body,
            "  %c = {cmp} {t} %x, %b\n  %z = select <{n} x i1> %c, {t} %x, {t} %y"
        );
        let _ = write!(
            self.functions,
            "define {t} @{name}({t} %a, {t} %b, ptr %out){attrs} {{\n{body}  store <{m} x {e}> %s, ptr %out\n  ret {t} %z\n}}\n"
        );
    }

    fn scalable_function(&mut self) {
        self.kinds.insert("scalable-vector");
        let attrs = self.target_attrs();
        let name = self.fname();
        if self.rng.one_in(2) {
            self.decls.insert("declare i64 @llvm.vscale.i64()".into());
            let _ = write!(
                self.functions,
                "define i64 @{name}(i64 %n){attrs} {{\n  %v = call i64 @llvm.vscale.i64()\n  %r = mul i64 %v, %n\n  ret i64 %r\n}}\n"
            );
        } else {
            let e = *self.rng.pick(&["i32", "i8", "float", "i64"]);
            let k = *self.rng.pick(&[1, 2, 4, 16]);
            let t = format!("<vscale x {k} x {e}>");
            let op = if e == "float" { "fadd" } else { "add" };
            let _ = write!(
                self.functions,
                "define void @{name}(ptr %p){attrs} {{\n  %a = load {t}, ptr %p\n  %b = {op} {t} %a, %a\n  store {t} %b, ptr %p\n  ret void\n}}\n"
            );
        }
    }

    fn aggregate_function(&mut self) {
        self.kinds.insert("aggregate");
        let n = *self.rng.pick(ARRAY_LENGTHS);
        let e = *self.rng.pick(&["i32", "i8", "i64", "float", "ptr", "i129"]);
        let t = if self.rng.one_in(2) {
            format!("[{n} x {e}]")
        } else {
            format!("{{ i8, [{n} x {e}], <3 x float> }}")
        };
        let attrs = self.target_attrs();
        let name = self.fname();
        let idx = if t.starts_with('[') {
            if n == 0 {
                None
            } else {
                Some(format!("{}", self.rng.below(n)))
            }
        } else {
            Some("0".to_owned())
        };
        let elem = if t.starts_with('[') { e } else { "i8" };
        let insert = match idx {
            Some(i) => format!("  %v = insertvalue {t} %a, {elem} %x, {i}\n"),
            None => "  %v = select i1 true, {t} %a, {t} %a\n".replace("{t}", &t),
        };
        let _ = write!(
            self.functions,
            "define {t} @{name}({t} %a, {elem} %x, ptr %p){attrs} {{\n{insert}  store {t} %v, ptr %p\n  %l = load {t}, ptr %p\n  ret {t} %l\n}}\n"
        );
        if self.rng.one_in(3) {
            // Huge types in memory: globals past the type-size limit or close to it.
            let outer = *self.rng.pick(&[1u64 << 20, 1 << 31, 1 << 32, 1 << 40]);
            let g = self.next_function;
            self.next_function += 1;
            let _ = writeln!(
                self.globals,
                "@huge{g} = global [{outer} x [65536 x i8]] zeroinitializer"
            );
        }
    }

    fn gc_function(&mut self) {
        self.kinds.insert("gc");
        let gc = *self.rng.pick(GC_STRATEGIES);
        let attrs = self.target_attrs();
        let name = self.fname();
        let gc = if gc.is_empty() {
            String::new()
        } else {
            format!(" gc \"{gc}\"")
        };
        let _ = write!(
            self.functions,
            "define ptr @{name}(ptr %p){attrs}{gc} {{\n  %q = getelementptr i8, ptr %p, i64 8\n  ret ptr %q\n}}\n"
        );
    }

    fn compile_unit(&mut self) -> (usize, usize) {
        if let Some(cu) = self.dbg_cu {
            return cu;
        }
        let file = self.md("!DIFile(filename: \"fuzz.c\", directory: \"/fuzz\")".into());
        let cu = self.md(format!(
            "distinct !DICompileUnit(language: DW_LANG_C99, file: !{file}, producer: \"thinjit-fuzz\", isOptimized: true, runtimeVersion: 0, emissionKind: FullDebug)"
        ));
        let v = self.md("!{i32 2, !\"Debug Info Version\", i32 3}".into());
        let d = self.md("!{i32 7, !\"Dwarf Version\", i32 5}".into());
        self.named_metadata
            .push(format!("!llvm.dbg.cu = !{{!{cu}}}"));
        self.named_metadata
            .push(format!("!llvm.module.flags = !{{!{v}, !{d}}}"));
        self.dbg_cu = Some((cu, file));
        (cu, file)
    }

    fn debug_function(&mut self) {
        self.kinds.insert("debug-info");
        let (cu, file) = self.compile_unit();
        let base = self.md("!DIBasicType(name: \"int\", size: 32, encoding: DW_ATE_signed)".into());
        // A typedef chain over `int`; sometimes its last link points back into the chain (a cycle).
        let depth = *self.rng.pick(&[1usize, 2, 5, 50]);
        let cyclic = self.rng.one_in(4);
        if cyclic {
            self.kinds.insert("debug-cycle");
        }
        let first = self.metadata.len();
        let mut top = base;
        for i in 0..depth {
            let target = if cyclic && i + 1 == depth {
                first + self.rng.below(depth as u64) as usize
            } else {
                top
            };
            top = self.md(format!(
                "!DIDerivedType(tag: DW_TAG_typedef, name: \"t{i}\", file: !{file}, baseType: !{target})"
            ));
        }
        // A struct with a member pointing to itself (a cycle through `elements:`, which is fine).
        let var_type = if self.rng.one_in(2) {
            let s = self.metadata.len();
            let (ptr, member, elems) = (s + 1, s + 2, s + 3);
            self.md(format!(
                "distinct !DICompositeType(tag: DW_TAG_structure_type, name: \"node\", file: !{file}, size: 64, elements: !{elems})"
            ));
            self.md(format!(
                "!DIDerivedType(tag: DW_TAG_pointer_type, baseType: !{s}, size: 64)"
            ));
            self.md(format!(
                "!DIDerivedType(tag: DW_TAG_member, name: \"next\", scope: !{s}, file: !{file}, baseType: !{ptr}, size: 64)"
            ));
            self.md(format!("!{{!{member}}}"));
            if self.rng.one_in(2) {
                top
            } else {
                ptr
            }
        } else {
            top
        };
        let name = self.fname();
        let sp_type = self.md(format!("!DISubroutineType(types: !{{!{base}, !{base}}})"));
        let s = self.metadata.len();
        let (sp, var, arg, loc) = (s, s + 1, s + 2, s + 3);
        self.md(format!(
            "distinct !DISubprogram(name: \"{name}\", scope: !{file}, file: !{file}, line: 1, type: !{sp_type}, scopeLine: 1, spFlags: DISPFlagDefinition | DISPFlagOptimized, unit: !{cu})"
        ));
        self.md(format!(
            "!DILocalVariable(name: \"v\", scope: !{sp}, file: !{file}, line: 2, type: !{var_type})"
        ));
        self.md(format!(
            "!DILocalVariable(name: \"a\", arg: 1, scope: !{sp}, file: !{file}, line: 1, type: !{top})"
        ));
        self.md(format!("!DILocation(line: 2, column: 3, scope: !{sp})"));
        self.decls
            .insert("declare void @llvm.dbg.declare(metadata, metadata, metadata)".into());
        self.decls
            .insert("declare void @llvm.dbg.value(metadata, metadata, metadata)".into());
        let attrs = self.target_attrs();
        let _ = write!(
            self.functions,
            "define i32 @{name}(i32 %a){attrs} !dbg !{sp} {{\n  %p = alloca i64, align 8\n  call void @llvm.dbg.declare(metadata ptr %p, metadata !{var}, metadata !DIExpression()), !dbg !{loc}\n  call void @llvm.dbg.value(metadata i32 %a, metadata !{arg}, metadata !DIExpression()), !dbg !{loc}\n  store i64 1, ptr %p, align 8, !dbg !{loc}\n  %r = add i32 %a, 1, !dbg !{loc}\n  ret i32 %r, !dbg !{loc}\n}}\n"
        );
    }

    fn deep_constants(&mut self) {
        let g = self.next_function;
        self.next_function += 1;
        if self.rng.one_in(2) {
            self.kinds.insert("deep-constant");
            let depth = *self.rng.pick(&[3usize, 50, 500, 2000, 5000, 12000]);
            let mut c = format!("@base{g}");
            for _ in 0..depth {
                c = format!("getelementptr (i8, ptr {c}, i64 1)");
            }
            let _ = writeln!(self.globals, "@base{g} = global [4 x i8] zeroinitializer");
            let _ = writeln!(self.globals, "@deep{g} = global ptr {c}");
        } else {
            self.kinds.insert("deep-type");
            let depth = *self.rng.pick(&[3usize, 100, 1000, 5000, 20000]);
            let t = format!("{}i8{}", "[1 x ".repeat(depth), "]".repeat(depth));
            let _ = writeln!(self.globals, "@nested{g} = global {t} zeroinitializer");
        }
    }

    fn inline_asm(&mut self) {
        self.kinds.insert("inline-asm");
        let (ret, asm, constraints, args) = *self.rng.pick(&[
            ("i32", "mov $1, $0", "=r,r", "i32 %a"),
            ("void", "nop", "", ""),
            ("i32", "bogus_instruction $0", "=r", ""),
            ("i32", "", "={notareg}", ""),
            ("void", "vpaddd %zmm0, %zmm1, %zmm2", "~{zmm0}", ""),
            ("void", "vaddps %ymm0, %ymm1, %ymm2", "~{ymm2}", ""),
            ("i32", "movl $$1, $0", "=r", ""),
            ("i32", "addl $1, $0", "=r,0", "i32 %a"),
            ("float", "", "={xmm0},{xmm1}", "float %f"),
            ("i64", "rdtsc", "=A", ""),
            ("void", ".byte 0x0f, 0x0b", "", ""),
            ("void", "tilerelease", "", ""),
        ]);
        let attrs = self.target_attrs();
        let name = self.fname();
        let call = format!("call {ret} asm sideeffect \"{asm}\", \"{constraints}\"({args})");
        let body = if ret == "void" {
            format!("  {call}\n  ret i32 %a\n")
        } else if ret == "float" {
            format!("  %r = {call}\n  %i = fptosi float %r to i32\n  ret i32 %i\n")
        } else if ret == "i64" {
            format!("  %r = {call}\n  %i = trunc i64 %r to i32\n  ret i32 %i\n")
        } else {
            format!("  %r = {call}\n  ret i32 %r\n")
        };
        let _ = write!(
            self.functions,
            "define i32 @{name}(i32 %a, float %f){attrs} {{\n{body}}}\n"
        );
    }

    fn stress_body(&mut self, stress: &str) {
        self.kinds.insert("llvm-stress");
        let attrs = self.target_attrs();
        for line in stress.lines() {
            if line.starts_with("; ModuleID")
                || line.starts_with("source_filename")
                || line.starts_with("target ")
            {
                continue;
            }
            if let Some(rest) = line.strip_prefix("define ") {
                if let Some(head) = rest.strip_suffix(" {") {
                    if let Some(n) = head.split('@').nth(1).and_then(|s| s.split('(').next()) {
                        self.defined.push(n.to_owned());
                    }
                    let _ = writeln!(self.functions, "define {head}{attrs} {{");
                    continue;
                }
            }
            self.functions.push_str(line);
            self.functions.push('\n');
        }
    }

    fn finish(self) -> Generated {
        let mut text = String::new();
        for d in &self.decls {
            let _ = writeln!(text, "{d}");
        }
        text.push_str(&self.globals);
        text.push_str(&self.functions);
        for n in &self.named_metadata {
            let _ = writeln!(text, "{n}");
        }
        for (i, m) in self.metadata.iter().enumerate() {
            let _ = writeln!(text, "!{i} = {m}");
        }
        Generated {
            text,
            defined: self.defined,
            kinds: self.kinds.into_iter().collect(),
        }
    }
}

/// The module of `seed`: 1 to 6 random parts; `stress` (an `llvm-stress` module's text), when given, is
/// appended with random target attributes on its function.
pub fn module(cat: &Catalog, seed: u64, stress: Option<&str>) -> Generated {
    let mut b = Builder {
        rng: Rng::new(seed),
        cat,
        functions: String::new(),
        globals: String::new(),
        decls: BTreeSet::new(),
        metadata: Vec::new(),
        named_metadata: Vec::new(),
        dbg_cu: None,
        next_function: 0,
        defined: Vec::new(),
        kinds: BTreeSet::new(),
    };
    let parts = 1 + b.rng.below(6);
    for _ in 0..parts {
        match b.rng.below(20) {
            0..=7 => b.intrinsic_call(),
            8 => b.int_function(),
            9 => b.vector_function(),
            10 => b.scalable_function(),
            11 => b.aggregate_function(),
            12 => b.gc_function(),
            13..=14 => b.debug_function(),
            15 => b.deep_constants(),
            16..=17 => b.inline_asm(),
            _ => {
                // Several intrinsic calls under one set of target attributes.
                b.intrinsic_call();
                b.intrinsic_call();
            }
        }
    }
    if let Some(s) = stress {
        b.stress_body(s);
    }
    if b.defined.is_empty() {
        b.int_function();
    }
    b.finish()
}
