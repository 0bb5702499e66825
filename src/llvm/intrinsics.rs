//! LLVM's own lists: every intrinsic with one concrete callable signature, and a target's CPU and feature names.
//!
//! In: a variant number (which candidate overload types to choose), a target triple. Out: owned Rust data. Used by
//! the script fuzzer (`thinjit_cli::script_fuzz`, random calls to every intrinsic LLVM 19 knows) and by the
//! generator of the x86 intrinsic feature table that [`crate::check`] uses; thinjit's compilation path does not.

use std::ffi::CStr;

use super::message::cstring;

/// One intrinsic as LLVM 19 knows it, with one concrete signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntrinsicSignature {
    /// LLVM's intrinsic ID.
    pub id: u32,
    /// The function name, mangled with the chosen overload types (`llvm.ctpop.i32`).
    pub name: String,
    /// LLVM's base name (`llvm.ctpop`; the same as `name` when not overloaded).
    pub base: String,
    /// Whether the intrinsic is overloaded (its name depends on the types chosen).
    pub overloaded: bool,
    /// The return type as IR text (`void`, `i32`, `{ i32, i1 }`); empty when `skipped`.
    pub ret: String,
    /// Parameter types as IR text, and whether each must be an immediate (`immarg`).
    pub params: Vec<(String, bool)>,
    /// Whether the intrinsic is variadic.
    pub vararg: bool,
    /// Why no signature was chosen (then `ret` and `params` are empty); `None` when one was.
    pub skipped: Option<String>,
}

extern "C" {
    fn thinjit_intrinsic_catalog(variant: libc::c_uint, fn_: IntrinsicFn, ctx: *mut libc::c_void);
    fn thinjit_target_names(
        triple: *const libc::c_char,
        cpus: libc::c_int,
        fn_: extern "C" fn(*mut libc::c_void, *const libc::c_char),
        ctx: *mut libc::c_void,
    ) -> libc::c_int;
}

type IntrinsicFn = extern "C" fn(
    ctx: *mut libc::c_void,
    id: libc::c_uint,
    name: *const libc::c_char,
    base: *const libc::c_char,
    overloaded: libc::c_int,
    ret: *const libc::c_char,
    nparams: libc::c_uint,
    params: *const *const libc::c_char,
    immarg: *const u8,
    vararg: libc::c_int,
    skipped: *const libc::c_char,
);

fn text(p: *const libc::c_char) -> String {
    // SAFETY: the shim passes NUL-terminated strings that live for the callback.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

#[allow(clippy::too_many_arguments)]
extern "C" fn collect_intrinsic(
    ctx: *mut libc::c_void,
    id: libc::c_uint,
    name: *const libc::c_char,
    base: *const libc::c_char,
    overloaded: libc::c_int,
    ret: *const libc::c_char,
    nparams: libc::c_uint,
    params: *const *const libc::c_char,
    immarg: *const u8,
    vararg: libc::c_int,
    skipped: *const libc::c_char,
) {
    // SAFETY: `ctx` is the vector `intrinsic_catalog` passes, for the duration of the call.
    let out = unsafe { &mut *(ctx as *mut Vec<IntrinsicSignature>) };
    let params = (0..nparams as usize)
        .map(|i| {
            // SAFETY: `params` and `immarg` hold `nparams` entries when `nparams > 0`.
            unsafe { (text(*params.add(i)), *immarg.add(i) != 0) }
        })
        .collect();
    let skipped = text(skipped);
    out.push(IntrinsicSignature {
        id,
        name: text(name),
        base: text(base),
        overloaded: overloaded != 0,
        ret: text(ret),
        params,
        vararg: vararg != 0,
        skipped: (!skipped.is_empty()).then_some(skipped),
    });
}

/// Every intrinsic LLVM knows (IDs 1 to `num_intrinsics - 1`, in ID order), each with one concrete signature.
/// Overloaded intrinsics get overload types from small candidate pools (`<4 x i32>`, `float`, `ptr`, ...),
/// chosen by `variant`, that satisfy the intrinsic's type constraints; a signature is not a promise that the
/// verifier accepts every call (some intrinsics have rules beyond their types).
pub fn intrinsic_catalog(variant: u32) -> Vec<IntrinsicSignature> {
    let mut out: Vec<IntrinsicSignature> = Vec::new();
    // SAFETY: the callback only appends to `out`, which outlives the call.
    unsafe {
        thinjit_intrinsic_catalog(
            variant,
            collect_intrinsic,
            &mut out as *mut Vec<IntrinsicSignature> as *mut libc::c_void,
        )
    };
    out
}

extern "C" fn collect_name(ctx: *mut libc::c_void, name: *const libc::c_char) {
    // SAFETY: `ctx` is the vector `target_names` passes, for the duration of the call.
    let out = unsafe { &mut *(ctx as *mut Vec<String>) };
    out.push(text(name));
}

fn target_names(triple: &str, cpus: bool) -> Option<Vec<String>> {
    super::initialize();
    let ctriple = cstring(triple).ok()?;
    let mut out: Vec<String> = Vec::new();
    // SAFETY: `ctriple` is NUL-terminated; the callback only appends to `out`, which outlives the call.
    let status = unsafe {
        thinjit_target_names(
            ctriple.as_ptr(),
            cpus as libc::c_int,
            collect_name,
            &mut out as *mut Vec<String> as *mut libc::c_void,
        )
    };
    (status == 0).then_some(out)
}

/// The CPU names LLVM knows for `triple`'s target, or `None` when the target is not registered (only the
/// native target is).
pub fn target_cpus(triple: &str) -> Option<Vec<String>> {
    target_names(triple, true)
}

/// The feature names (without sign) LLVM knows for `triple`'s target, or `None` when it is not registered.
pub fn target_features(triple: &str) -> Option<Vec<String>> {
    target_names(triple, false)
}
