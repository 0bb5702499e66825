//! The pre-codegen check: can the JIT's target compile this module?
//!
//! In: a verified [`Module`], the JIT's [`ObjectTarget`] (triple, CPU, features), the script's name. Out: `Ok`,
//! or an [`Error::Unsupported`] naming the script, the function and what LLVM would have done with it — end
//! the process (`report_fatal_error`: "Cannot select", "unsupported GC", "64-bit code requested on a subtarget
//! that doesn't support it"), crash, hang or compile wrong code. The classes, each measured on LLVM 19
//! (`docs/robustness.md` has the figures):
//!
//! - intrinsics LLVM does not know, intrinsics of another target (`llvm.aarch64.*` on x86-64), and target
//!   intrinsics whose features the calling function's subtarget lacks (`llvm.x86.tilerelease` without
//!   `amx-tile`), or that LLVM cannot select on x86-64 at all: [`x86_intrinsic_requirement`], a table generated
//!   from LLVM 19 by compiling a call of every x86 intrinsic with `llc` (`cli/src/x86_features.rs`);
//! - integer-only vector-predicated reductions (`llvm.vp.reduce.and`) on floating-point vectors, which the
//!   verifier accepts and instruction selection cannot compile;
//! - scalable vectors (`<vscale x 4 x i32>`, `llvm.vscale.*`) on a target without them;
//! - `gc` strategies LLVM has not registered;
//! - `target-cpu` and `target-features` LLVM does not know for the triple, and (x86-64) a function whose
//!   subtarget cannot generate 64-bit code or whose features change the mode (`-64bit-mode`);
//! - integers wider than [`MAX_INT_BITS`], first-class aggregate or vector values of more than
//!   [`MAX_AGGREGATE_SCALARS`] scalars, types larger than [`MAX_TYPE_BYTES`] (nesting deeper than
//!   [`MAX_NESTING`](crate::llvm::facts::MAX_NESTING) is refused by [`Module::verify`] already);
//! - debug types whose `baseType:` chain leads back to themselves (code generation loops forever);
//! - thread-local variables: JIT'd code has no TLS support (no ORC runtime), so a script's own thread-local
//!   variable reads as zero and a host's is addressed wrongly.
//!
//! What slips through (a backend crash this table does not know) is what isolated compilation
//! ([`crate::jit::EngineBuilder::isolate_codegen`]) is for.
//!
//! Also here: [`regular_file`], which refuses FIFOs, devices and directories before anything opens them
//! (reading a FIFO blocks forever; `/dev/zero` never ends).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use crate::llvm::facts::{self, ModuleFacts};
use crate::llvm::Module;
use crate::summary::ObjectTarget;
use crate::{Error, Result};

/// The widest integer type thinjit lets reach the code generator. Measured with `llc -O3` (LLVM 19, x86-64):
/// a `mul` and `udiv` of `i1024` compile in 0.25 s, `i4096` in 3.2 s, `i16384` did not finish in 60 s, and
/// `ret i8000000 1` overflows the stack.
pub const MAX_INT_BITS: u64 = 1024;

/// The most scalars one first-class aggregate or vector value (an SSA value, argument or return value) may
/// hold. Measured with `llc -O3`: a load and store of `[1024 x i32]` compile in 0.75 s, `[8192 x i32]` in
/// 4.4 s, `[65536 x i32]` overflows a 1 MiB stack. Aggregates in memory (globals, `alloca`) are not limited
/// by this.
pub const MAX_AGGREGATE_SCALARS: u64 = 1024;

/// The largest type (in bytes) a script may use: 2^47, the x86-64 user address space. Larger sizes overflow
/// LLVM's 64-bit size arithmetic or can never be allocated.
pub const MAX_TYPE_BYTES: u64 = 1 << 47;

/// Target prefixes of LLVM 19's target intrinsics (`llvm.<prefix>.*`, from the `TargetPrefix` of each
/// `Intrinsics*.td`).
const TARGET_PREFIXES: &[&str] = &[
    "aarch64",
    "amdgcn",
    "arm",
    "bpf",
    "dx",
    "hexagon",
    "loongarch",
    "mips",
    "nvvm",
    "ppc",
    "r600",
    "riscv",
    "s390",
    "spv",
    "ve",
    "wasm",
    "x86",
    "xcore",
];

/// The target an intrinsic belongs to (`"x86"` for `llvm.x86.sse2.pause`), or `None` for a target-independent
/// one (`llvm.memcpy.p0.p0.i64`).
///
/// ```
/// use thinjit::check::intrinsic_target;
/// assert_eq!(intrinsic_target("llvm.x86.sse2.pause"), Some("x86"));
/// assert_eq!(intrinsic_target("llvm.aarch64.crc32b"), Some("aarch64"));
/// assert_eq!(intrinsic_target("llvm.memcpy.p0.p0.i64"), None);
/// ```
pub fn intrinsic_target(name: &str) -> Option<&str> {
    let prefix = name.strip_prefix("llvm.")?.split('.').next()?;
    TARGET_PREFIXES.contains(&prefix).then_some(prefix)
}

mod x86_codegen_gaps;
mod x86_intrinsic_features;

/// What a call of one x86 intrinsic needs on x86-64 (the generated table in `check/x86_intrinsic_features.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum X86Requirement {
    /// Instruction selection succeeds when the calling function's subtarget has all of these features (none:
    /// baseline x86-64) and, without any one of them, ends the process ("Cannot select").
    Needs(&'static [&'static str]),
    /// LLVM 19 cannot select a call on x86-64 with any feature set (LLVM's error).
    Never(&'static str),
    /// The table's generator could make no call the verifier accepts (why); [`X86_INTRINSIC_FAMILIES`] decides.
    Unprobed(&'static str),
}

/// What LLVM 19 needs to compile a call of the x86 intrinsic `name` on x86-64, from the generated table
/// (derived by compiling a call of every x86 intrinsic with `llc`; `cli/src/x86_features.rs` regenerates it).
/// `None` for a name the table does not list (not an x86 intrinsic LLVM 19 knows).
pub fn x86_intrinsic_requirement(name: &str) -> Option<X86Requirement> {
    let table = x86_intrinsic_features::X86_INTRINSIC_REQUIREMENTS;
    by_base_name(table, name, |(n, _)| n).map(|(_, r)| *r)
}

/// The entry of `table` (sorted by `key`) for intrinsic `name`, or for an overloaded intrinsic the entry of its
/// base name (`llvm.x86.foo` for `llvm.x86.foo.v4i32`).
fn by_base_name<'t, T>(table: &'t [T], name: &str, key: impl Fn(&T) -> &str) -> Option<&'t T> {
    let mut base = name;
    loop {
        if let Ok(i) = table.binary_search_by(|e| key(e).cmp(base)) {
            return Some(&table[i]);
        }
        base = base.rsplit_once('.')?.0;
    }
}

/// The generated table of x86 intrinsic operands that take only rounding / exception-suppression modes:
/// (intrinsic base name, operand index, the values LLVM 19 compiles there), sorted by name.
pub fn x86_rounding_operands() -> &'static [(&'static str, u32, &'static [u32])] {
    x86_codegen_gaps::X86_ROUNDING_OPERANDS
}

/// The generated table of vector-predicated intrinsics LLVM 19 cannot compile on x86-64 for some vector type:
/// (base name, a call that failed, LLVM's error), sorted by name.
pub fn x86_uncompilable_vp() -> &'static [(&'static str, &'static str, &'static str)] {
    x86_codegen_gaps::X86_UNCOMPILABLE_VP
}

/// The generated table of target-independent intrinsic signatures LLVM 19 cannot compile on x86-64 through O3:
/// (full name, LLVM's error), sorted by name.
pub fn x86_uncompilable_generic() -> &'static [(&'static str, &'static str)] {
    x86_codegen_gaps::X86_UNCOMPILABLE_GENERIC
}

/// The generated table: (x86 intrinsic, requirement) for every x86 intrinsic LLVM 19 knows, sorted by name.
pub fn x86_intrinsic_table() -> &'static [(&'static str, X86Requirement)] {
    x86_intrinsic_features::X86_INTRINSIC_REQUIREMENTS
}

/// Fallback for intrinsics the generated table could not probe: x86 intrinsic families and the subtarget
/// feature each needs (longest prefix first; hand-written).
pub const X86_INTRINSIC_FAMILIES: &[(&str, &str)] = &[
    ("llvm.x86.avx512bf16.", "avx512bf16"),
    ("llvm.x86.avx512fp16.", "avx512fp16"),
    ("llvm.x86.avx512.", "avx512f"),
    ("llvm.x86.avx2.", "avx2"),
    ("llvm.x86.avx.", "avx"),
    ("llvm.x86.fma.", "fma"),
    ("llvm.x86.fma4.", "fma4"),
    ("llvm.x86.xop.", "xop"),
    ("llvm.x86.sse42.", "sse4.2"),
    ("llvm.x86.sse41.", "sse4.1"),
    ("llvm.x86.ssse3.", "ssse3"),
    ("llvm.x86.sse3.", "sse3"),
    ("llvm.x86.sse2.", "sse2"),
    ("llvm.x86.sse.", "sse"),
    ("llvm.x86.aesni.", "aes"),
    ("llvm.x86.pclmulqdq", "pclmul"),
    ("llvm.x86.sha1", "sha"),
    ("llvm.x86.sha256", "sha"),
    ("llvm.x86.rdrand.", "rdrnd"),
    ("llvm.x86.rdseed.", "rdseed"),
    ("llvm.x86.bmi.bextr.", "bmi"),
    ("llvm.x86.bmi.", "bmi2"),
    ("llvm.x86.tbm.", "tbm"),
    ("llvm.x86.vgf2p8", "gfni"),
    ("llvm.x86.tdpbf16ps", "amx-bf16"),
    ("llvm.x86.tdpfp16ps", "amx-fp16"),
    ("llvm.x86.tdpb", "amx-int8"),
    ("llvm.x86.tile", "amx-tile"),
    ("llvm.x86.ldtilecfg", "amx-tile"),
    ("llvm.x86.sttilecfg", "amx-tile"),
    ("llvm.x86.xsave", "xsave"),
    ("llvm.x86.xrstor", "xsave"),
    ("llvm.x86.rdpid", "rdpid"),
    ("llvm.x86.wrpkru", "pku"),
    ("llvm.x86.rdpkru", "pku"),
];

/// Coroutine intrinsics that only the body of a coroutine may call: the coroutine passes lower them while
/// splitting a `presplitcoroutine` function that has `llvm.coro.id*` and `llvm.coro.begin`. Anywhere else LLVM 19
/// leaves them to instruction selection, which ends the process (`Cannot select: intrinsic %llvm.coro.save`,
/// "Do not know how to promote this operator!", or a segmentation fault), and splitting a coroutine without
/// `llvm.coro.begin` crashes the optimizer; `.size` and `.align` (the frame's) outside a coroutine are lowered in
/// simple functions but not always (`Cannot select: intrinsic %llvm.coro.size`, found by the script fuzzer). The
/// others (`llvm.coro.resume`, `.destroy`, `.done`, `.promise`, `.noop`, `.id*`, `.begin`, `.free`, `.alloc`,
/// `.frame`, `.subfn.addr`, `.prepare.*`, `.async.resume`, `.async.size.replace`) are lowered or compiled
/// wherever they appear.
const COROUTINE_BODY_INTRINSICS: &[&str] = &[
    "llvm.coro.suspend",
    "llvm.coro.save",
    "llvm.coro.end",
    "llvm.coro.size.",
    "llvm.coro.align.",
    "llvm.coro.alloca.",
    "llvm.coro.async.context.",
    "llvm.coro.await.suspend.",
];

/// Vector-predicated operations LangRef defines on integer vectors only (the name's first overload suffix is the
/// vector type). LLVM 19's verifier accepts them on floating-point vectors; code generation then ends the process
/// (`Cannot select: f32 = and`, "Do not know how to promote this operator's operand!").
const INTEGER_ONLY_VP: &[&str] = &[
    "add",
    "sub",
    "mul",
    "sdiv",
    "udiv",
    "srem",
    "urem",
    "ashr",
    "lshr",
    "shl",
    "and",
    "or",
    "xor",
    "smin",
    "smax",
    "umin",
    "umax",
    "abs",
    "bswap",
    "bitreverse",
    "ctpop",
    "ctlz",
    "cttz",
    "fshl",
    "fshr",
    "sadd.sat",
    "uadd.sat",
    "ssub.sat",
    "usub.sat",
    "reduce.add",
    "reduce.mul",
    "reduce.and",
    "reduce.or",
    "reduce.xor",
    "reduce.smax",
    "reduce.smin",
    "reduce.umax",
    "reduce.umin",
];

/// Vector-predicated operations LangRef defines on floating-point vectors only; on integer vectors the same as
/// [`INTEGER_ONLY_VP`] the other way round.
const FP_ONLY_VP: &[&str] = &[
    "fadd",
    "fsub",
    "fmul",
    "fdiv",
    "frem",
    "fneg",
    "fabs",
    "sqrt",
    "fma",
    "fmuladd",
    "copysign",
    "minnum",
    "maxnum",
    "minimum",
    "maximum",
    "ceil",
    "floor",
    "round",
    "roundeven",
    "roundtozero",
    "rint",
    "nearbyint",
    "reduce.fadd",
    "reduce.fmul",
    "reduce.fmin",
    "reduce.fmax",
    "reduce.fminimum",
    "reduce.fmaximum",
];

/// For `llvm.vp.<op>.<vector type>...` whose operation and element type disagree: which kind of operation on
/// which kind of vector (`("an integer operation", "a floating-point vector")`).
pub fn vp_element_mismatch(intrinsic: &str) -> Option<(&'static str, &'static str)> {
    let rest = intrinsic.strip_prefix("llvm.vp.")?;
    let suffix = |ops: &[&str]| {
        ops.iter()
            .find_map(|op| rest.strip_prefix(op)?.strip_prefix('.'))
    };
    if let Some(ty) = suffix(INTEGER_ONLY_VP) {
        if vector_element(ty) == Some('f') {
            return Some(("an integer operation", "a floating-point vector"));
        }
    }
    if let Some(ty) = suffix(FP_ONLY_VP) {
        if vector_element(ty) == Some('i') {
            return Some(("a floating-point operation", "an integer vector"));
        }
    }
    None
}

/// `llvm.fptoui.sat.<scalar>.<vector>` / `llvm.fptosi.sat.…`: a scalar result from a vector operand.
fn saturating_conversion_to_scalar(intrinsic: &str) -> bool {
    let Some(types) = intrinsic
        .strip_prefix("llvm.fptoui.sat.")
        .or_else(|| intrinsic.strip_prefix("llvm.fptosi.sat."))
    else {
        return false;
    };
    let mut it = types.split('.');
    let (Some(result), Some(operand)) = (it.next(), it.next()) else {
        return false;
    };
    vector_element(result).is_none() && vector_element(operand).is_some()
}

/// The element kind of the vector an overload suffix starts with: `f` for `v4f32`, `nxv2f64`, `v8bf16`; `i` for
/// `v4i32`, `nxv16i1`; `None` for anything else (pointers, scalars).
fn vector_element(suffix: &str) -> Option<char> {
    let ty = suffix.split('.').next()?;
    let elem = ty.strip_prefix("nx").unwrap_or(ty).strip_prefix('v')?;
    let elem = elem.trim_start_matches(|c: char| c.is_ascii_digit());
    if elem.starts_with('f') || elem.starts_with("bf") {
        Some('f')
    } else if elem.starts_with('i') {
        Some('i')
    } else {
        None
    }
}

/// The registers LLVM 19 compiles `llvm.read_register` / `llvm.write_register` for on x86-64 (without a frame
/// pointer), with the only width each takes; any other name is "Invalid register name global variable", another
/// width "Cannot emit physreg copy instruction", `rbp`/`ebp` "register rbp is allocatable" (all process exits).
const X86_NAMED_REGISTERS: &[(&str, u32)] = &[("rsp", 64), ("esp", 32), ("r14", 64), ("r15", 64)];

/// Target-independent intrinsics LLVM 19's x86 code generator cannot select: constrained maximum/minimum (no
/// lowering for `strict_fmaximum`) and the hardware-loop intrinsics (only targets with hardware loops lower
/// them).
const X86_UNSELECTABLE_GENERIC: &[&str] = &[
    "llvm.experimental.constrained.maximum.",
    "llvm.experimental.constrained.minimum.",
    "llvm.start.loop.iterations.",
    "llvm.test.start.loop.iterations.",
    "llvm.set.loop.iterations.",
    "llvm.test.set.loop.iterations.",
    "llvm.loop.decrement.",
    "llvm.loop.decrement.reg.",
];

/// The architecture part of a triple (`x86_64` of `x86_64-pc-linux-gnu`).
fn arch(triple: &str) -> &str {
    triple.split('-').next().unwrap_or("")
}

/// The intrinsic target prefixes `triple` can compile.
fn own_prefixes(triple: &str) -> &'static [&'static str] {
    match arch(triple) {
        "x86_64" | "i386" | "i486" | "i586" | "i686" => &["x86"],
        "aarch64" | "aarch64_be" | "arm64" => &["aarch64"],
        "arm" | "armeb" | "thumb" | "thumbeb" => &["arm"],
        "riscv32" | "riscv64" => &["riscv"],
        "powerpc" | "powerpc64" | "powerpc64le" | "powerpcle" => &["ppc"],
        "mips" | "mipsel" | "mips64" | "mips64el" => &["mips"],
        "s390x" => &["s390"],
        "wasm32" | "wasm64" => &["wasm"],
        "loongarch32" | "loongarch64" => &["loongarch"],
        "amdgcn" => &["amdgcn"],
        "nvptx" | "nvptx64" => &["nvvm"],
        "hexagon" => &["hexagon"],
        _ => &[],
    }
}

/// Answers about a target, cached for the process (each query builds an `MCSubtargetInfo`).
fn cached(key: (&str, &str, &str, &str), query: impl FnOnce() -> Option<bool>) -> Option<bool> {
    type Cache = Mutex<HashMap<(String, String, String, String), Option<bool>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let owned = (
        key.0.to_owned(),
        key.1.to_owned(),
        key.2.to_owned(),
        key.3.to_owned(),
    );
    if let Some(answer) = cache.lock().ok().and_then(|c| c.get(&owned).copied()) {
        return answer;
    }
    let answer = query();
    if let Ok(mut c) = cache.lock() {
        c.insert(owned, answer);
    }
    answer
}

fn cpu_valid(triple: &str, cpu: &str) -> bool {
    cached(("cpu", triple, cpu, ""), || {
        facts::target_cpu_valid(triple, cpu)
    })
    .unwrap_or(false)
}

fn feature_valid(triple: &str, feature: &str) -> bool {
    cached(("feature", triple, feature, ""), || {
        facts::target_feature_valid(triple, feature)
    })
    .unwrap_or(false)
}

fn has_feature(triple: &str, cpu: &str, features: &str, feature: &str) -> bool {
    // The cache key needs the triple too; the CPU and feature string identify the subtarget.
    let key = format!("{triple}\u{0}{feature}");
    cached(("has", &key, cpu, features), || {
        facts::target_has_feature(triple, cpu, features, feature)
    })
    .unwrap_or(false)
}

/// A function's subtarget: its own `target-cpu` / `target-features`, else the target machine's.
struct Subtargets<'a> {
    target: &'a ObjectTarget,
    cpu: BTreeMap<&'a str, &'a str>,
    features: BTreeMap<&'a str, &'a str>,
}

impl<'a> Subtargets<'a> {
    fn new(target: &'a ObjectTarget, facts: &'a ModuleFacts) -> Self {
        let map = |v: &'a [(String, String)]| {
            v.iter()
                .map(|(f, a)| (f.as_str(), a.as_str()))
                .collect::<BTreeMap<_, _>>()
        };
        Subtargets {
            target,
            cpu: map(&facts.target_cpu),
            features: map(&facts.target_features),
        }
    }

    fn of(&self, function: &str) -> (&str, &str) {
        (
            self.cpu
                .get(function)
                .copied()
                .unwrap_or(self.target.cpu.as_str()),
            self.features
                .get(function)
                .copied()
                .unwrap_or(self.target.features.as_str()),
        )
    }

    fn has(&self, function: &str, feature: &str) -> bool {
        let (cpu, features) = self.of(function);
        has_feature(&self.target.triple, cpu, features, feature)
    }

    /// Whether code generation gives `function` 512-bit registers (x86 `evex512`). Not what the subtarget's
    /// feature bits say: LLVM 19's MC layer turns `evex512` on with any AVX-512 feature, but its code generator
    /// only for the default CPUs (`generic`, `x86-64`, `pentium4`) given a `+avx512…` feature, CPUs that have
    /// it, or an explicit `+evex512` — `+avx512vnni` on `znver1` has AVX-512 without 512-bit registers there.
    fn x86_evex512(&self, function: &str) -> bool {
        let (cpu, features) = self.of(function);
        match (features.rfind("+evex512"), features.rfind("-evex512")) {
            (Some(on), Some(off)) => on > off,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            // The default CPUs get it from a `+avx512…` entry (not from `+avx10.1-256`).
            (None, None) if matches!(cpu, "" | "generic" | "x86-64" | "pentium4") => {
                features.contains("+avx512")
            }
            (None, None) => has_feature(&self.target.triple, cpu, "", "evex512"),
        }
    }

    /// Whether `function`'s subtarget supports scalable vectors.
    fn scalable(&self, function: &str) -> bool {
        match arch(&self.target.triple) {
            "aarch64" | "aarch64_be" | "arm64" => self.has(function, "sve"),
            "riscv32" | "riscv64" => self.has(function, "v"),
            _ => false,
        }
    }
}

/// Checks that the JIT's `target` can compile `module` (see the module documentation for what is refused).
/// `script` names the module in errors. The module must have passed [`Module::verify`].
pub fn module(module: &Module<'_>, script: &str, target: &ObjectTarget) -> Result<()> {
    let facts = module.facts();
    let fail = |function: &str, message: String| Error::Unsupported {
        script: script.to_owned(),
        function: (!function.is_empty()).then(|| function.to_owned()),
        message,
    };
    let triple = target.triple.as_str();
    let subtargets = Subtargets::new(target, &facts);
    let calls = |caller: &str, prefix: &str| {
        facts
            .intrinsic_calls
            .iter()
            .any(|(c, i)| c == caller && i.starts_with(prefix))
    };

    // Target attributes first: every later question asks about a function's subtarget.
    for (function, cpu) in &facts.target_cpu {
        if !cpu.is_empty() && !cpu_valid(triple, cpu) {
            return Err(fail(
                function,
                format!(
                    "target-cpu `{cpu}` is not a CPU LLVM {} knows for `{triple}`",
                    crate::llvm::llvm_version()
                ),
            ));
        }
    }
    for (function, features) in &facts.target_features {
        for feature in features.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let name = feature.trim_start_matches(['+', '-']);
            if name.len() == feature.len() || !feature_valid(triple, name) {
                return Err(fail(
                    function,
                    format!(
                        "target-features entry `{feature}` is not a `+`/`-` feature of `{triple}`"
                    ),
                ));
            }
        }
    }
    if arch(triple) == "x86_64" {
        let own: std::collections::BTreeSet<&str> = facts
            .target_cpu
            .iter()
            .chain(&facts.target_features)
            .map(|(f, _)| f.as_str())
            .collect();
        for function in own {
            // The mode is the triple's: a function that turns 64-bit mode off (or 32/16-bit mode on) gets
            // code generated for another mode, and instruction selection fails on the first 64-bit value.
            let mode = ["64bit-mode", "32bit-mode", "16bit-mode"]
                .into_iter()
                .find(|m| subtargets.has(function, m) != (*m == "64bit-mode"));
            if let Some(mode) = mode {
                let (cpu, features) = subtargets.of(function);
                return Err(fail(
                    function,
                    format!(
                        "its target-features (`{features}`, target-cpu `{cpu}`) change `{mode}`; the mode is the \
                         triple's (`{triple}`)"
                    ),
                ));
            }
            if subtargets.has(function, "avx512f")
                && !subtargets.x86_evex512(function)
                && !subtargets.has(function, "avx10.1-256")
            {
                let (cpu, features) = subtargets.of(function);
                return Err(fail(
                    function,
                    format!(
                        "its subtarget (target-cpu `{cpu}`, target-features `{features}`) has AVX-512 without \
                         `evex512` (AVX-512 features on a CPU without AVX-512 give that); LLVM {} supports that \
                         only as AVX10/256 (`+avx10.1-256`) and otherwise aborts on vector code",
                        crate::llvm::llvm_version()
                    ),
                ));
            }
            if !subtargets.has(function, "64bit") {
                let (cpu, features) = subtargets.of(function);
                return Err(fail(
                    function,
                    format!(
                        "its subtarget (target-cpu `{cpu}`, target-features `{features}`) cannot generate 64-bit \
                         code for `{triple}`"
                    ),
                ));
            }
        }
    }

    let prefixes = own_prefixes(triple);
    for (name, known) in &facts.intrinsics {
        if !known {
            return Err(fail(
                name,
                format!("`{name}` is not an intrinsic LLVM knows"),
            ));
        }
        if let Some(prefix) = intrinsic_target(name).filter(|p| !prefixes.contains(p)) {
            return Err(fail(
                name,
                format!("`{name}` is an intrinsic of target `{prefix}`; the JIT compiles for `{triple}`"),
            ));
        }
    }
    for (caller, intrinsic) in &facts.intrinsic_calls {
        if intrinsic.starts_with("llvm.vscale.") && !subtargets.scalable(caller) {
            return Err(fail(
                caller,
                format!("calls `{intrinsic}`, but `{triple}` has no scalable vectors"),
            ));
        }
        if saturating_conversion_to_scalar(intrinsic) {
            return Err(fail(
                caller,
                format!(
                    "calls `{intrinsic}`, a saturating conversion of a vector to a scalar (LLVM {}'s verifier \
                     accepts it; its code generator crashes on it)",
                    crate::llvm::llvm_version()
                ),
            ));
        }
        if let Some((operation, vector)) = vp_element_mismatch(intrinsic) {
            return Err(fail(
                caller,
                format!(
                    "calls `{intrinsic}`, {operation} on {vector} (LLVM {}'s verifier accepts it; its code \
                     generator cannot compile it)",
                    crate::llvm::llvm_version()
                ),
            ));
        }
        if arch(triple) == "x86_64" {
            if X86_UNSELECTABLE_GENERIC
                .iter()
                .any(|p| intrinsic.starts_with(p))
            {
                return Err(fail(
                    caller,
                    format!(
                        "calls `{intrinsic}`, which LLVM {}'s x86 code generator cannot select",
                        crate::llvm::llvm_version()
                    ),
                ));
            }
            let generic = x86_codegen_gaps::X86_UNCOMPILABLE_GENERIC;
            if let Ok(i) = generic.binary_search_by(|(n, _)| (*n).cmp(intrinsic.as_str())) {
                return Err(fail(
                    caller,
                    format!(
                        "calls `{intrinsic}`, which LLVM {}'s x86 code generator cannot compile ({})",
                        crate::llvm::llvm_version(),
                        generic[i].1
                    ),
                ));
            }
            if let Some((_, example, error)) =
                by_base_name(x86_codegen_gaps::X86_UNCOMPILABLE_VP, intrinsic, |e| e.0)
            {
                return Err(fail(
                    caller,
                    format!(
                        "calls `{intrinsic}`, a vector-predicated operation LLVM {}'s x86 code generator cannot \
                         compile for every vector type (`{example}`: {error})",
                        crate::llvm::llvm_version()
                    ),
                ));
            }
        }
        if prefixes.contains(&"x86") && intrinsic.starts_with("llvm.x86.") {
            let needed: Vec<&str> = match x86_intrinsic_requirement(intrinsic) {
                Some(X86Requirement::Needs(features)) => features.to_vec(),
                Some(X86Requirement::Never(why)) => {
                    return Err(fail(
                        caller,
                        format!(
                            "calls `{intrinsic}`, which LLVM {} cannot select on x86-64 with any target \
                             features ({why})",
                            crate::llvm::llvm_version()
                        ),
                    ))
                }
                Some(X86Requirement::Unprobed(_)) | None => X86_INTRINSIC_FAMILIES
                    .iter()
                    .find(|(p, _)| intrinsic.starts_with(p))
                    .map(|(_, f)| vec![*f])
                    .unwrap_or_default(),
            };
            for feature in needed {
                if !subtargets.has(caller, feature) {
                    let (cpu, _) = subtargets.of(caller);
                    return Err(fail(
                        caller,
                        format!(
                            "calls `{intrinsic}`, which needs target feature `{feature}`, not enabled for this \
                             function (target-cpu `{cpu}`)"
                        ),
                    ));
                }
            }
        }
    }
    if arch(triple) == "x86_64" {
        for (caller, intrinsic, register, bits) in &facts.named_registers {
            let fits = X86_NAMED_REGISTERS
                .iter()
                .any(|(name, width)| name == register && width == bits);
            if !fits {
                return Err(fail(
                    caller,
                    format!(
                        "calls `{intrinsic}` on register `{register}` as a {bits}-bit value; LLVM {} compiles \
                         named-register access on x86-64 only for {}",
                        crate::llvm::llvm_version(),
                        X86_NAMED_REGISTERS
                            .iter()
                            .map(|(n, w)| format!("`{n}` (i{w})"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        for (caller, intrinsic) in &facts.intrinsic_calls {
            if intrinsic.starts_with("llvm.x86.")
                && intrinsic.contains(".512")
                && subtargets.has(caller, "avx512f")
                && !subtargets.x86_evex512(caller)
            {
                let (cpu, features) = subtargets.of(caller);
                return Err(fail(
                    caller,
                    format!(
                        "calls `{intrinsic}`, a 512-bit intrinsic, but its subtarget (target-cpu `{cpu}`, \
                         target-features `{features}`) turns `evex512` off: no 512-bit registers"
                    ),
                ));
            }
        }
    }
    if prefixes.contains(&"x86") {
        for imm in &facts.x86_immediates {
            let Some((_, operand, accepted)) = by_base_name(
                x86_codegen_gaps::X86_ROUNDING_OPERANDS,
                &imm.intrinsic,
                |e| e.0,
            ) else {
                continue;
            };
            if *operand == imm.operand && !accepted.contains(&imm.value) {
                return Err(fail(
                    &imm.caller,
                    format!(
                        "calls `{}` with {} as operand {}, a rounding / exception-suppression mode: LLVM {} \
                         compiles only {accepted:?} there",
                        imm.intrinsic,
                        imm.value as i32,
                        imm.operand,
                        crate::llvm::llvm_version()
                    ),
                ));
            }
        }
    }
    for (caller, intrinsic) in &facts.intrinsic_calls {
        if !COROUTINE_BODY_INTRINSICS
            .iter()
            .any(|p| intrinsic.starts_with(p))
        {
            continue;
        }
        let why = if !facts.coroutines.contains(caller) {
            "a function that is not a coroutine (no `presplitcoroutine` attribute)"
        } else if !calls(caller, "llvm.coro.id") || !calls(caller, "llvm.coro.begin") {
            "a coroutine without `llvm.coro.id*` and `llvm.coro.begin`"
        } else {
            continue;
        };
        return Err(fail(
            caller,
            format!(
                "calls `{intrinsic}` in {why}; LLVM {}'s coroutine passes and code generator crash on it",
                crate::llvm::llvm_version()
            ),
        ));
    }
    for function in &facts.scalable_vectors {
        if !subtargets.scalable(function) {
            return Err(fail(
                function,
                format!(
                    "uses scalable vectors (`<vscale x ...>`), which `{triple}` does not support"
                ),
            ));
        }
    }
    for (function, gc) in &facts.gc {
        if !facts::gc_strategy_known(gc) {
            return Err(fail(
                function,
                format!("garbage collector `{gc}` is not registered with LLVM"),
            ));
        }
    }
    let limits = [
        (&facts.int_width, MAX_INT_BITS, "an integer type", "bits"),
        (
            &facts.aggregate_value,
            MAX_AGGREGATE_SCALARS,
            "a first-class aggregate or vector value",
            "scalars",
        ),
        (&facts.type_size, MAX_TYPE_BYTES, "a type", "bytes"),
    ];
    for (found, limit, what, unit) in limits {
        if found.value > limit {
            return Err(fail(
                &found.at,
                format!(
                    "{what} of {} {unit}; thinjit's limit is {limit} {unit}",
                    found.value
                ),
            ));
        }
    }
    if let Some(name) = facts.debug_type_cycles.first() {
        return Err(fail(
            "",
            format!(
                "debug type `{name}` is its own base type (through its `baseType:` chain); code generation \
                 would loop forever"
            ),
        ));
    }
    if let Some((name, declared)) = facts.thread_locals.first() {
        let whose = if *declared {
            "another module's"
        } else {
            "its own"
        };
        return Err(fail(
            name,
            format!(
                "thread-local variable `{name}` ({whose}): JIT'd code cannot address thread-local storage \
                 (no ORC runtime); use an accessor function"
            ),
        ));
    }
    Ok(())
}

/// Refuses anything at `path` but a regular file (following symlinks): FIFOs, sockets, devices and
/// directories are errors naming the path and what it is, before anything opens it (opening a FIFO blocks
/// until a writer comes; `/dev/zero` never ends).
pub fn regular_file(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let kind = file_kind(&meta.file_type());
    match kind {
        None => Ok(()),
        Some(kind) => Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("not a regular file (a {kind})"),
            ),
        )),
    }
}

/// What a non-regular file is (`None` for a regular file).
pub fn file_kind(t: &std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("directory")
    } else if t.is_fifo() {
        Some("FIFO")
    } else if t.is_char_device() {
        Some("character device")
    } else if t.is_block_device() {
        Some("block device")
    } else if t.is_socket() {
        Some("socket")
    } else {
        Some("special file")
    }
}

/// Reads the regular file at `path` (see [`regular_file`]).
pub fn read_regular_file(path: &Path) -> Result<Vec<u8>> {
    regular_file(path)?;
    std::fs::read(path).map_err(|e| Error::io(path, e))
}
