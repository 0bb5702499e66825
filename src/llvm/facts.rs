//! What a module asks of a code generator, measured without recursion; what a target offers.
//!
//! In: a [`Module`]; target triples, CPU names and feature names. Out: [`ModuleFacts`] (widest integer, deepest
//! nesting, largest first-class aggregate, intrinsics and who calls them, scalable vectors, GC strategies,
//! per-function target attributes, cyclic debug types, thread-local variables) and yes/no answers about
//! targets. Judging them (limits, what the JIT's target supports) is [`crate::check`]'s job; this layer only
//! measures, through the C++ shim (`src/llvm/shim/check.cpp`), whose walks use explicit stacks so that no
//! input can overflow the native stack.

use std::ffi::CStr;

use llvm_sys::prelude::{LLVMDiagnosticInfoRef, LLVMModuleRef};

use super::message::cstring;
use super::Module;

/// Kinds of facts the shim reports (`FactKind` in `check.cpp`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)] // constructed by C++
pub(crate) enum FactKind {
    IntWidth = 0,
    TypeDepth = 1,
    ConstantDepth = 2,
    AggregateValue = 3,
    TypeSize = 4,
    Intrinsic = 5,
    IntrinsicCall = 6,
    ScalableVector = 7,
    Gc = 8,
    TargetCpu = 9,
    TargetFeatures = 10,
    DebugTypeCycle = 11,
    ThreadLocal = 12,
    Coroutine = 13,
    Immediate = 14,
    NamedRegister = 15,
}

type FactFn = extern "C" fn(
    ctx: *mut libc::c_void,
    kind: FactKind,
    function: *const libc::c_char,
    detail: *const libc::c_char,
    value: u64,
);

/// Reports a code generation failure of a module ORC compiled: (ctx, module identity, module name, function
/// or "", message).
pub(crate) type CodegenErrorFn = extern "C" fn(
    ctx: *mut libc::c_void,
    module: usize,
    name: *const libc::c_char,
    function: *const libc::c_char,
    message: *const libc::c_char,
);

extern "C" {
    fn thinjit_module_nesting(m: LLVMModuleRef, out: *mut u64);
    fn thinjit_module_facts(m: LLVMModuleRef, emit: FactFn, ctx: *mut libc::c_void);
    fn thinjit_target_cpu_valid(
        triple: *const libc::c_char,
        cpu: *const libc::c_char,
    ) -> libc::c_int;
    fn thinjit_target_feature_valid(
        triple: *const libc::c_char,
        feature: *const libc::c_char,
    ) -> libc::c_int;
    fn thinjit_target_has_feature(
        triple: *const libc::c_char,
        cpu: *const libc::c_char,
        features: *const libc::c_char,
        feature: *const libc::c_char,
    ) -> libc::c_int;
    fn thinjit_gc_strategy_known(name: *const libc::c_char) -> libc::c_int;
    fn thinjit_tag_inline_asm(m: LLVMModuleRef);
    fn thinjit_diagnostic_function(
        info: LLVMDiagnosticInfoRef,
        module: LLVMModuleRef,
    ) -> *const libc::c_char;
    pub(crate) fn thinjit_lljit_lookup_flags(
        jit: llvm_sys::orc2::lljit::LLVMOrcLLJITRef,
        name: *const libc::c_char,
        address: *mut u64,
        callable: *mut libc::c_int,
    ) -> llvm_sys::error::LLVMErrorRef;
    pub(crate) fn thinjit_lljit_builder_install_checked_compiler(
        builder: llvm_sys::orc2::lljit::LLVMOrcLLJITBuilderRef,
        fn_: CodegenErrorFn,
        ctx: *mut libc::c_void,
        release: Option<extern "C" fn(*mut libc::c_void)>,
    );
}

/// The deepest nesting [`Module::nesting`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Nesting {
    /// Deepest type nesting (`[1 x [1 x i8]]` is 3); `u64::MAX` for a type that contains itself.
    pub types: u64,
    /// Deepest nesting of constant expressions and constant aggregates (not entering other globals).
    pub constants: u64,
}

/// A measured maximum and where it was found (a function or global name; empty when nowhere).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Maximum {
    /// The value.
    pub value: u64,
    /// The function or global it was found in.
    pub at: String,
}

/// What a module asks of the code generator (see [`Module::facts`]).
#[derive(Clone, Debug, Default)]
pub struct ModuleFacts {
    /// The widest integer type, in bits.
    pub int_width: Maximum,
    /// The most scalars held in one first-class aggregate or vector value (an SSA value, argument or return).
    pub aggregate_value: Maximum,
    /// The largest type's size in bytes, without padding, saturating at `u64::MAX`.
    pub type_size: Maximum,
    /// Declared `llvm.*` functions and whether LLVM knows each as an intrinsic.
    pub intrinsics: Vec<(String, bool)>,
    /// (caller, intrinsic) pairs.
    pub intrinsic_calls: Vec<(String, String)>,
    /// Functions (or globals) whose types involve scalable vectors.
    pub scalable_vectors: Vec<String>,
    /// (function, GC strategy).
    pub gc: Vec<(String, String)>,
    /// (function, `target-cpu`) for defined functions that carry one.
    pub target_cpu: Vec<(String, String)>,
    /// (function, `target-features`) for defined functions that carry one.
    pub target_features: Vec<(String, String)>,
    /// Names of debug types whose `baseType:` chain leads back to themselves.
    pub debug_type_cycles: Vec<String>,
    /// Thread-local variables, and whether each is only declared.
    pub thread_locals: Vec<(String, bool)>,
    /// Defined functions with `presplitcoroutine`: coroutines LLVM's coroutine passes will split.
    pub coroutines: Vec<String>,
    /// Immediate (`immarg`) operands of x86 intrinsic calls: caller, intrinsic, operand index, the low 32 bits of
    /// the value.
    pub x86_immediates: Vec<X86Immediate>,
    /// Calls of `llvm.read_register.*` / `llvm.read_volatile_register.*` / `llvm.write_register.*`: caller,
    /// intrinsic, register name, the value's bit width (0 when not an integer).
    pub named_registers: Vec<(String, String, String, u32)>,
}

/// One immediate operand of an x86 intrinsic call ([`ModuleFacts::x86_immediates`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct X86Immediate {
    pub caller: String,
    pub intrinsic: String,
    pub operand: u32,
    pub value: u32,
}

extern "C" fn collect_fact(
    ctx: *mut libc::c_void,
    kind: FactKind,
    function: *const libc::c_char,
    detail: *const libc::c_char,
    value: u64,
) {
    // SAFETY: `ctx` is the `ModuleFacts` passed by `Module::facts` for the duration of the call; the strings are
    // NUL-terminated and live for this callback.
    let (facts, function, detail) = unsafe {
        (
            &mut *(ctx as *mut ModuleFacts),
            CStr::from_ptr(function).to_string_lossy().into_owned(),
            CStr::from_ptr(detail).to_string_lossy().into_owned(),
        )
    };
    let max = |value: u64, at: String| Maximum { value, at };
    match kind {
        FactKind::IntWidth => facts.int_width = max(value, function),
        FactKind::AggregateValue => facts.aggregate_value = max(value, function),
        FactKind::TypeSize => facts.type_size = max(value, function),
        FactKind::Intrinsic => facts.intrinsics.push((detail, value != 0)),
        FactKind::IntrinsicCall => facts.intrinsic_calls.push((function, detail)),
        FactKind::ScalableVector => facts.scalable_vectors.push(function),
        FactKind::Gc => facts.gc.push((function, detail)),
        FactKind::TargetCpu => facts.target_cpu.push((function, detail)),
        FactKind::TargetFeatures => facts.target_features.push((function, detail)),
        FactKind::DebugTypeCycle => facts.debug_type_cycles.push(detail),
        FactKind::ThreadLocal => facts.thread_locals.push((detail, value != 0)),
        FactKind::Coroutine => facts.coroutines.push(function),
        FactKind::NamedRegister => {
            let (intrinsic, register) = detail.split_once(' ').unwrap_or((detail.as_str(), ""));
            facts.named_registers.push((
                function,
                intrinsic.to_owned(),
                register.to_owned(),
                value as u32,
            ))
        }
        FactKind::Immediate => facts.x86_immediates.push(X86Immediate {
            caller: function,
            intrinsic: detail,
            operand: (value >> 32) as u32,
            value: value as u32,
        }),
        FactKind::TypeDepth | FactKind::ConstantDepth => {}
    }
}

impl Module<'_> {
    /// The deepest type and constant nesting, measured without recursion (linear in the module's size).
    pub fn nesting(&self) -> Nesting {
        let mut out = [0u64; 2];
        // SAFETY: the module is live; `out` has the two slots the shim writes.
        unsafe { thinjit_module_nesting(self.as_raw(), out.as_mut_ptr()) };
        Nesting {
            types: out[0],
            constants: out[1],
        }
    }

    /// What the module asks of a code generator. Walks types and constants, so call it only on a module whose
    /// [`nesting`](Module::nesting) is within bounds ([`Module::verify`] checks that).
    pub fn facts(&self) -> ModuleFacts {
        let mut facts = ModuleFacts::default();
        // SAFETY: the module is live; `collect_fact` receives `&mut facts` only for this call.
        unsafe {
            thinjit_module_facts(
                self.as_raw(),
                collect_fact,
                &mut facts as *mut ModuleFacts as *mut libc::c_void,
            )
        };
        facts
    }

    /// Gives inline asm calls without `!srcloc` a cookie naming their function, so that the assembler's error
    /// diagnostics can say which function they are about.
    pub(crate) fn tag_inline_asm(&self) {
        // SAFETY: the module is live and not used by another thread (`&self` in a `!Sync` context).
        unsafe { thinjit_tag_inline_asm(self.as_raw()) }
    }
}

/// The function an error diagnostic is about, when LLVM says (`module`: the module being compiled, to resolve
/// inline-asm cookies).
///
/// # Safety
/// `info` must be the live diagnostic of the current diagnostic callback; `module` null or a live module.
pub(crate) unsafe fn diagnostic_function(
    info: LLVMDiagnosticInfoRef,
    module: LLVMModuleRef,
) -> Option<String> {
    // SAFETY: forwarded to the caller; the returned name is owned by the module and copied here.
    let p = unsafe { thinjit_diagnostic_function(info, module) };
    // SAFETY: null or a NUL-terminated name that lives during the callback.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

fn answer(r: libc::c_int) -> Option<bool> {
    match r {
        1 => Some(true),
        0 => Some(false),
        _ => None,
    }
}

/// Whether `triple`'s target knows CPU `cpu` (`None`: no such target, or a string with a NUL byte).
pub fn target_cpu_valid(triple: &str, cpu: &str) -> Option<bool> {
    super::initialize();
    let (t, c) = (cstring(triple).ok()?, cstring(cpu).ok()?);
    // SAFETY: valid C strings.
    answer(unsafe { thinjit_target_cpu_valid(t.as_ptr(), c.as_ptr()) })
}

/// Whether `feature` (without `+`/`-`) is one of `triple`'s target features.
pub fn target_feature_valid(triple: &str, feature: &str) -> Option<bool> {
    super::initialize();
    let (t, f) = (cstring(triple).ok()?, cstring(feature).ok()?);
    // SAFETY: valid C strings.
    answer(unsafe { thinjit_target_feature_valid(t.as_ptr(), f.as_ptr()) })
}

/// Whether the subtarget (`cpu`, `features`) of `triple` has `feature` (without sign). `cpu` and every
/// feature must have been validated ([`target_cpu_valid`], [`target_feature_valid`]): LLVM prints a warning for
/// unknown ones.
pub fn target_has_feature(triple: &str, cpu: &str, features: &str, feature: &str) -> Option<bool> {
    super::initialize();
    let t = cstring(triple).ok()?;
    let c = cstring(cpu).ok()?;
    let fs = cstring(features).ok()?;
    let f = cstring(feature).ok()?;
    // SAFETY: valid C strings.
    answer(unsafe { thinjit_target_has_feature(t.as_ptr(), c.as_ptr(), fs.as_ptr(), f.as_ptr()) })
}

/// Whether a garbage-collection strategy named `name` is registered with LLVM (code generation of a function
/// with an unknown `gc` ends the process).
pub fn gc_strategy_known(name: &str) -> bool {
    let Ok(n) = cstring(name) else {
        return false;
    };
    // SAFETY: a valid C string; the registry is only read.
    unsafe { thinjit_gc_strategy_known(n.as_ptr()) == 1 }
}

/// The deepest nesting of types and constants thinjit lets reach LLVM (textual brackets, type nesting,
/// constant-expression nesting). Measured with LLVM 19 on x86-64: with a 1 MiB stack, 256 nested constant
/// `getelementptr`s or `[1 x ...]` types parse, optimize at O3 and compile; 1,000 nested `getelementptr`s
/// overflow `llc`'s stack and the IR parser needs about 1.1 KiB of stack per level (`docs/robustness.md`).
pub const MAX_NESTING: u64 = 256;

/// The first line of textual IR where brackets (`(`, `[`, `{`, `<`) nest deeper than `limit`, ignoring
/// comments and quoted strings; `None` if they never do. Linear, no recursion: run before LLVM's parser, which
/// recurses once per level.
pub fn text_nesting_exceeds(text: &[u8], limit: u64) -> Option<usize> {
    let (mut depth, mut line) = (0u64, 1usize);
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\n' => line += 1,
            b';' => {
                while i < text.len() && text[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    if text[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' | b'<' => {
                depth += 1;
                if depth > limit {
                    return Some(line);
                }
            }
            b')' | b']' | b'}' | b'>' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::text_nesting_exceeds;

    #[test]
    fn text_nesting_ignores_comments_and_strings() {
        assert_eq!(text_nesting_exceeds(b"((()))", 3), None);
        assert_eq!(text_nesting_exceeds(b"x\n((((", 3), Some(2));
        assert_eq!(text_nesting_exceeds(b"; ((((\n\"((((\" ()", 1), None);
        assert_eq!(text_nesting_exceeds(b")))(((", 3), None);
    }
}

/// A code generation failure of an IR module ORC compiled (lazy scripts, the JIT-resident library).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodegenFailure {
    /// The module's identity while ORC owned it (its address; see the engine's IR transform).
    pub module: usize,
    /// The module's name.
    pub name: String,
    /// The function, when LLVM said.
    pub function: Option<String>,
    /// LLVM's message.
    pub message: String,
}

/// Where ORC's checked compiler reports failures; drained by [`crate::llvm::orc::LlJit::take_codegen_failures`].
#[derive(Default)]
pub(crate) struct CodegenSink {
    failures: std::sync::Mutex<Vec<CodegenFailure>>,
}

impl CodegenSink {
    /// The failures so far (kept).
    pub(crate) fn snapshot(&self) -> Vec<CodegenFailure> {
        self.failures
            .lock()
            .map(|f| f.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    pub(crate) fn take(&self) -> Vec<CodegenFailure> {
        self.failures
            .lock()
            .map(|mut f| std::mem::take(&mut *f))
            .unwrap_or_default()
    }

    /// The callback and context to hand to `thinjit_lljit_builder_install_checked_compiler`; `self` must outlive
    /// the LLJIT.
    pub(crate) fn callback(&self) -> (CodegenErrorFn, *mut libc::c_void) {
        (
            report_codegen_failure,
            self as *const CodegenSink as *mut libc::c_void,
        )
    }
}

extern "C" fn report_codegen_failure(
    ctx: *mut libc::c_void,
    module: usize,
    name: *const libc::c_char,
    function: *const libc::c_char,
    message: *const libc::c_char,
) {
    // SAFETY: `ctx` is the `CodegenSink` the LLJIT was built with, alive as long as the LLJIT; the strings are
    // NUL-terminated and live for this call.
    let (sink, name, function, mut message) = unsafe {
        (
            &*(ctx as *const CodegenSink),
            CStr::from_ptr(name).to_string_lossy().into_owned(),
            CStr::from_ptr(function).to_string_lossy().into_owned(),
            CStr::from_ptr(message).to_string_lossy().into_owned(),
        )
    };
    super::context::strip_cookie_line(&mut message);
    if let Ok(mut f) = sink.failures.lock() {
        f.push(CodegenFailure {
            module,
            name,
            function: (!function.is_empty()).then_some(function),
            message,
        });
    }
}
