//! Borrowed handles to values inside a module: functions, global variables, basic blocks, instructions.
//!
//! A handle `Value<'m>` (and `Function<'m>`, `GlobalVariable<'m>`, ...) borrows its module: `'m` is the lifetime
//! of the `&'m Module` it was obtained from ([`Module::function`], [`Module::functions`], ...), and every handle
//! reached from it (operands, blocks, instructions, callees) carries the same `'m`. Handles are `Copy` and may
//! change the IR through interior mutability (rename, set linkage, add attributes, add instructions): nothing
//! those edits do frees a value. Whatever frees values — dropping the module, linking it into another
//! ([`Module::link_in`]), handing it to ORC, running passes, LLVM's importer, erasing a global — takes the module
//! by value or by `&mut`, so the borrow checker rejects it while any handle is alive. Erasing one function or
//! variable goes through an exclusive, non-`Copy` handle ([`Module::function_mut`], [`FunctionMut::erase`]).
//!
//! Handles are neither `Send` nor `Sync` (a module is used by one thread at a time).

use std::marker::PhantomData;

use llvm_sys::core as c;
use llvm_sys::prelude::{LLVMBasicBlockRef, LLVMValueRef};
use llvm_sys::{LLVMLinkage, LLVMVisibility};

pub use llvm_sys::LLVMOpcode as Opcode;

use super::message::{borrowed_str, LlvmMessage};
#[cfg(doc)]
use super::Module;

/// Linkage of a global value (mirrors `llvm::GlobalValue::LinkageTypes`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Linkage {
    External,
    AvailableExternally,
    LinkOnceAny,
    LinkOnceOdr,
    WeakAny,
    WeakOdr,
    Appending,
    Internal,
    Private,
    ExternalWeak,
    Common,
    /// A linkage the C API reports that has no meaning in modern LLVM.
    Other,
}

impl Linkage {
    fn from_raw(l: LLVMLinkage) -> Self {
        use LLVMLinkage::*;
        match l {
            LLVMExternalLinkage => Linkage::External,
            LLVMAvailableExternallyLinkage => Linkage::AvailableExternally,
            LLVMLinkOnceAnyLinkage => Linkage::LinkOnceAny,
            LLVMLinkOnceODRLinkage => Linkage::LinkOnceOdr,
            LLVMWeakAnyLinkage => Linkage::WeakAny,
            LLVMWeakODRLinkage => Linkage::WeakOdr,
            LLVMAppendingLinkage => Linkage::Appending,
            LLVMInternalLinkage => Linkage::Internal,
            LLVMPrivateLinkage => Linkage::Private,
            LLVMExternalWeakLinkage => Linkage::ExternalWeak,
            LLVMCommonLinkage => Linkage::Common,
            _ => Linkage::Other,
        }
    }

    fn to_raw(self) -> LLVMLinkage {
        use LLVMLinkage::*;
        match self {
            Linkage::External | Linkage::Other => LLVMExternalLinkage,
            Linkage::AvailableExternally => LLVMAvailableExternallyLinkage,
            Linkage::LinkOnceAny => LLVMLinkOnceAnyLinkage,
            Linkage::LinkOnceOdr => LLVMLinkOnceODRLinkage,
            Linkage::WeakAny => LLVMWeakAnyLinkage,
            Linkage::WeakOdr => LLVMWeakODRLinkage,
            Linkage::Appending => LLVMAppendingLinkage,
            Linkage::Internal => LLVMInternalLinkage,
            Linkage::Private => LLVMPrivateLinkage,
            Linkage::ExternalWeak => LLVMExternalWeakLinkage,
            Linkage::Common => LLVMCommonLinkage,
        }
    }

    /// `internal` or `private`.
    pub fn is_local(self) -> bool {
        matches!(self, Linkage::Internal | Linkage::Private)
    }

    /// A definition another module may replace at link time (`weak`, `linkonce`, `common`, `extern_weak`):
    /// what LLVM calls interposable. The `_odr` forms promise equivalent definitions and are not interposable.
    pub fn is_interposable(self) -> bool {
        matches!(
            self,
            Linkage::WeakAny | Linkage::LinkOnceAny | Linkage::Common | Linkage::ExternalWeak
        )
    }

    /// Whether a definition with this linkage is a symbol an ORC `IRMaterializationUnit` claims (not local,
    /// not `available_externally`, not appending).
    pub fn is_claimed_definition(self) -> bool {
        !matches!(
            self,
            Linkage::Internal
                | Linkage::Private
                | Linkage::AvailableExternally
                | Linkage::Appending
        )
    }
}

/// Symbol visibility.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Visibility {
    Default,
    Hidden,
    Protected,
}

/// A function attribute by LLVM name, e.g. `noinline`, `alwaysinline`, `optnone`, `cold`, `hot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attribute(pub &'static str);

/// Any LLVM value of a module borrowed for `'m` (see the [module docs](self) of `value`).
///
/// A handle cannot outlive the borrow of its module, so the module cannot be dropped, linked away or changed by
/// an operation that frees values while the handle is alive:
///
/// ```compile_fail,E0505
/// use thinjit::llvm::{Context, Module};
/// let ctx = Context::new();
/// let m = Module::parse_ir(&ctx, b"define i32 @f() { ret i32 1 }", "f.ll").unwrap();
/// let f = m.function("f").unwrap();
/// drop(m); // error[E0505]: cannot move out of `m` because it is borrowed
/// f.name();
/// ```
///
/// The same code with the handle's last use before the drop compiles:
///
/// ```
/// use thinjit::llvm::{Context, Module};
/// let ctx = Context::new();
/// let m = Module::parse_ir(&ctx, b"define i32 @f() { ret i32 1 }", "f.ll").unwrap();
/// let f = m.function("f").unwrap();
/// assert_eq!(f.name(), "f");
/// drop(m);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Value<'m> {
    raw: LLVMValueRef,
    _module: PhantomData<&'m ()>,
}

impl<'m> Value<'m> {
    /// # Safety
    /// `raw` must be a non-null value that stays alive for `'m`: a value of a module borrowed for `'m` (which
    /// nothing erases during `'m`), or a constant of that module's context.
    pub(crate) unsafe fn from_raw(raw: LLVMValueRef) -> Self {
        Value {
            raw,
            _module: PhantomData,
        }
    }

    pub(crate) fn as_raw(self) -> LLVMValueRef {
        self.raw
    }

    /// The `LLVMContextRef` the value lives in.
    pub(crate) fn context_raw(self) -> llvm_sys::prelude::LLVMContextRef {
        // SAFETY: a live value; every value has a type, owned by its context.
        unsafe { c::LLVMGetTypeContext(c::LLVMTypeOf(self.raw)) }
    }

    /// The value's name (empty for unnamed values).
    pub fn name(self) -> String {
        let mut len = 0usize;
        // SAFETY: live value; the name is borrowed for `len` bytes.
        unsafe { borrowed_str(c::LLVMGetValueName2(self.raw, &mut len), len) }
    }

    /// Renames the value (LLVM may add a suffix if the name is taken). Returns `false` and changes nothing for
    /// a name with a NUL byte or a value that cannot be named (a constant, inline asm, a `void` instruction such
    /// as `store`): LLVM only asserts against those.
    pub fn set_name(self, name: &str) -> bool {
        // SAFETY: a live value; LLVMTypeOf / LLVMGetTypeKind / LLVMIsA* accept any value.
        let nameable = unsafe {
            let void = c::LLVMGetTypeKind(c::LLVMTypeOf(self.raw))
                == llvm_sys::LLVMTypeKind::LLVMVoidTypeKind;
            !void
                && (!c::LLVMIsAGlobalValue(self.raw).is_null()
                    || !c::LLVMIsAInstruction(self.raw).is_null()
                    || !c::LLVMIsAArgument(self.raw).is_null())
        };
        if !nameable || name.contains('\0') {
            return false;
        }
        // SAFETY: a nameable value; LLVM copies the (ptr, len) name.
        unsafe { c::LLVMSetValueName2(self.raw, name.as_ptr() as *const _, name.len()) };
        true
    }

    /// This value as a global value (function, variable, alias, ifunc), if it is one: what carries linkage,
    /// visibility and `dso_local`.
    pub fn as_global_value(self) -> Option<GlobalValue<'m>> {
        // SAFETY: LLVMIsAGlobalValue accepts any value.
        let g = unsafe { c::LLVMIsAGlobalValue(self.raw) };
        // SAFETY: a global value of the same module.
        (!g.is_null()).then(|| unsafe { GlobalValue::from_raw(g) })
    }

    /// This value as a function, if it is one.
    pub fn as_function(self) -> Option<Function<'m>> {
        // SAFETY: LLVMIsAFunction accepts any value.
        let f = unsafe { c::LLVMIsAFunction(self.raw) };
        // SAFETY: a function of the same module.
        (!f.is_null()).then(|| unsafe { Function::from_raw(f) })
    }

    /// This value as a global variable, if it is one.
    pub fn as_global_variable(self) -> Option<GlobalVariable<'m>> {
        // SAFETY: LLVMIsAGlobalVariable accepts any value.
        let g = unsafe { c::LLVMIsAGlobalVariable(self.raw) };
        // SAFETY: a global of the same module.
        (!g.is_null()).then(|| unsafe { GlobalVariable::from_raw(g) })
    }

    /// `true` for a global alias.
    pub fn is_global_alias(self) -> bool {
        // SAFETY: accepts any value.
        unsafe { !c::LLVMIsAGlobalAlias(self.raw).is_null() }
    }

    /// `true` for any global value (function, variable, alias, ifunc).
    pub fn is_global_value(self) -> bool {
        // SAFETY: accepts any value.
        unsafe { !c::LLVMIsAGlobalValue(self.raw).is_null() }
    }

    /// `true` for inline assembly.
    pub fn is_inline_asm(self) -> bool {
        // SAFETY: accepts any value.
        unsafe { !c::LLVMIsAInlineAsm(self.raw).is_null() }
    }

    /// `true` for a `blockaddress` constant.
    pub fn is_block_address(self) -> bool {
        // SAFETY: accepts any value.
        unsafe { !c::LLVMIsABlockAddress(self.raw).is_null() }
    }

    /// `true` for a constant (including constant expressions and global values).
    pub fn is_constant(self) -> bool {
        // SAFETY: accepts any value.
        unsafe { !c::LLVMIsAConstant(self.raw).is_null() }
    }

    /// `true` for a thread-local global variable.
    pub fn is_thread_local(self) -> bool {
        // SAFETY: checked to be a global variable first.
        unsafe {
            !c::LLVMIsAGlobalVariable(self.raw).is_null() && c::LLVMIsThreadLocal(self.raw) != 0
        }
    }

    /// Operands of a `User` (instruction or constant); empty for other values.
    pub fn operands(self) -> impl Iterator<Item = Value<'m>> {
        // SAFETY: LLVMIsAUser accepts any value; LLVMGetNumOperands requires a User, and metadata-as-value
        // operands are skipped because they are not Users.
        let n = unsafe {
            if c::LLVMIsAUser(self.raw).is_null() {
                0
            } else {
                c::LLVMGetNumOperands(self.raw).max(0) as u32
            }
        };
        let raw = self.raw;
        (0..n).filter_map(move |i| {
            // SAFETY: `i` is in range for this User.
            let op = unsafe { c::LLVMGetOperand(raw, i) };
            // SAFETY: operand of a live user.
            (!op.is_null()).then(|| unsafe { Value::from_raw(op) })
        })
    }

    /// The zero-extended value of a `ConstantInt`; `None` for any other value.
    pub fn const_int_value(self) -> Option<u64> {
        // SAFETY: LLVMIsAConstantInt accepts any value; the value is read only from a ConstantInt.
        unsafe {
            if c::LLVMIsAConstantInt(self.raw).is_null() {
                None
            } else {
                Some(c::LLVMConstIntGetZExtValue(self.raw))
            }
        }
    }

    /// The value printed as IR (for messages and tests).
    pub fn print(self) -> String {
        // SAFETY: live value; the string is ours.
        unsafe { LlvmMessage::take(c::LLVMPrintValueToString(self.raw)) }
    }
}

impl std::fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Value({})", self.name())
    }
}

/// A global value: a function, global variable, alias or ifunc. Linkage, visibility and `dso_local` exist only
/// here (setting them on an instruction would be undefined behaviour in LLVM).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GlobalValue<'m>(Value<'m>);

impl<'m> std::ops::Deref for GlobalValue<'m> {
    type Target = Value<'m>;
    fn deref(&self) -> &Value<'m> {
        &self.0
    }
}

impl std::fmt::Debug for GlobalValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GlobalValue({})", self.name())
    }
}

impl<'m> GlobalValue<'m> {
    /// # Safety
    /// `raw` must be a global value whose module outlives the handle.
    pub(crate) unsafe fn from_raw(raw: LLVMValueRef) -> Self {
        // SAFETY: forwarded.
        GlobalValue(unsafe { Value::from_raw(raw) })
    }

    /// The underlying value.
    pub fn as_value(self) -> Value<'m> {
        self.0
    }

    /// Linkage.
    pub fn linkage(self) -> Linkage {
        // SAFETY: a global value (the type guarantees it).
        Linkage::from_raw(unsafe { c::LLVMGetLinkage(self.as_raw()) })
    }

    /// Sets the linkage.
    pub fn set_linkage(self, linkage: Linkage) {
        // SAFETY: a global value (the type guarantees it).
        unsafe { c::LLVMSetLinkage(self.as_raw(), linkage.to_raw()) }
    }

    /// Visibility.
    pub fn visibility(self) -> Visibility {
        // SAFETY: a global value (the type guarantees it).
        match unsafe { c::LLVMGetVisibility(self.as_raw()) } {
            LLVMVisibility::LLVMDefaultVisibility => Visibility::Default,
            LLVMVisibility::LLVMHiddenVisibility => Visibility::Hidden,
            LLVMVisibility::LLVMProtectedVisibility => Visibility::Protected,
        }
    }

    /// Sets the visibility.
    pub fn set_visibility(self, v: Visibility) {
        let raw = match v {
            Visibility::Default => LLVMVisibility::LLVMDefaultVisibility,
            Visibility::Hidden => LLVMVisibility::LLVMHiddenVisibility,
            Visibility::Protected => LLVMVisibility::LLVMProtectedVisibility,
        };
        // SAFETY: a global value (the type guarantees it).
        unsafe { c::LLVMSetVisibility(self.as_raw(), raw) }
    }

    /// `dso_local` (the C API has no accessor: see the shim).
    pub fn is_dso_local(self) -> bool {
        // SAFETY: a global value (the type guarantees it).
        unsafe { super::shim::thinjit_is_dso_local(self.as_raw()) != 0 }
    }

    /// Sets or clears `dso_local`.
    pub fn set_dso_local(self, dso_local: bool) {
        // SAFETY: a global value (the type guarantees it).
        unsafe { super::shim::thinjit_set_dso_local(self.as_raw(), dso_local as libc::c_int) }
    }

    /// `true` without a body or initializer.
    pub fn is_declaration(self) -> bool {
        // SAFETY: a global value (the type guarantees it).
        unsafe { c::LLVMIsDeclaration(self.as_raw()) != 0 }
    }

    /// The `LLVMModuleRef` the global value belongs to.
    pub(crate) fn parent_raw(self) -> llvm_sys::prelude::LLVMModuleRef {
        // SAFETY: a global value (the type guarantees it).
        unsafe { c::LLVMGetGlobalParent(self.as_raw()) }
    }
}

/// A function in a module.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Function<'m>(GlobalValue<'m>);

impl<'m> std::ops::Deref for Function<'m> {
    type Target = GlobalValue<'m>;
    fn deref(&self) -> &GlobalValue<'m> {
        &self.0
    }
}

impl std::fmt::Debug for Function<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Function({})", self.name())
    }
}

impl<'m> Function<'m> {
    /// # Safety
    /// `raw` must be a function whose module outlives the handle.
    pub(crate) unsafe fn from_raw(raw: LLVMValueRef) -> Self {
        // SAFETY: forwarded.
        Function(unsafe { GlobalValue::from_raw(raw) })
    }

    /// The underlying value.
    pub fn as_value(self) -> Value<'m> {
        self.0 .0
    }

    /// `true` if the function takes variable arguments.
    pub fn is_var_arg(self) -> bool {
        // SAFETY: a function's value type is a function type.
        unsafe { c::LLVMIsFunctionVarArg(c::LLVMGlobalGetValueType(self.as_raw())) != 0 }
    }

    /// `true` for an LLVM intrinsic (`llvm.*`).
    pub fn is_intrinsic(self) -> bool {
        // SAFETY: live function.
        unsafe { c::LLVMGetIntrinsicID(self.as_raw()) != 0 }
    }

    /// Basic blocks in order (empty for declarations).
    pub fn basic_blocks(self) -> impl Iterator<Item = BasicBlock<'m>> {
        // SAFETY: live function.
        let first = unsafe { c::LLVMGetFirstBasicBlock(self.as_raw()) };
        std::iter::successors((!first.is_null()).then_some(BasicBlock::new(first)), |bb| {
            // SAFETY: live block.
            let next = unsafe { c::LLVMGetNextBasicBlock(bb.raw) };
            (!next.is_null()).then_some(BasicBlock::new(next))
        })
    }

    /// Every instruction, block by block.
    pub fn instructions(self) -> impl Iterator<Item = Instruction<'m>> {
        self.basic_blocks().flat_map(|bb| bb.instructions())
    }

    /// Instructions as LLVM's module summary counts them: debug-info and pseudo-probe intrinsics excluded.
    pub fn instruction_count(self) -> u32 {
        self.instructions()
            .filter(|i| !i.is_debug_or_pseudo())
            .count() as u32
    }

    fn enum_kind(name: &str) -> u32 {
        // SAFETY: (ptr, len) name lookup with no side effects.
        unsafe { c::LLVMGetEnumAttributeKindForName(name.as_ptr() as *const _, name.len()) }
    }

    /// `true` if the function carries the enum attribute `name` (e.g. `noinline`).
    pub fn has_attribute(self, name: &str) -> bool {
        let kind = Self::enum_kind(name);
        // SAFETY: live function; kind 0 means "unknown name".
        kind != 0
            && unsafe {
                !c::LLVMGetEnumAttributeAtIndex(
                    self.as_raw(),
                    llvm_sys::LLVMAttributeFunctionIndex,
                    kind,
                )
                .is_null()
            }
    }

    /// Adds the enum attribute `name` (no value) to the function (in the function's own context).
    pub fn add_attribute(self, name: &str) {
        let kind = Self::enum_kind(name);
        if kind == 0 {
            return;
        }
        // SAFETY: a live function; the attribute is created in the function's own context.
        unsafe {
            let attr = c::LLVMCreateEnumAttribute(self.context_raw(), kind, 0);
            c::LLVMAddAttributeAtIndex(self.as_raw(), llvm_sys::LLVMAttributeFunctionIndex, attr);
        }
    }

    /// Removes the enum attribute `name` from the function.
    pub fn remove_attribute(self, name: &str) {
        let kind = Self::enum_kind(name);
        if kind != 0 {
            // SAFETY: live function.
            unsafe {
                c::LLVMRemoveEnumAttributeAtIndex(
                    self.as_raw(),
                    llvm_sys::LLVMAttributeFunctionIndex,
                    kind,
                )
            }
        }
    }

    /// The value of string attribute `key` (e.g. `target-features`), if present.
    pub fn string_attribute(self, key: &str) -> Option<String> {
        // SAFETY: live function; the attribute's value is borrowed for `len` bytes.
        unsafe {
            let attr = c::LLVMGetStringAttributeAtIndex(
                self.as_raw(),
                llvm_sys::LLVMAttributeFunctionIndex,
                key.as_ptr() as *const _,
                key.len() as u32,
            );
            if attr.is_null() {
                return None;
            }
            let mut len = 0u32;
            let ptr = c::LLVMGetStringAttributeValue(attr, &mut len);
            Some(borrowed_str(ptr, len as usize))
        }
    }

    /// Sets string attribute `key` to `value`, replacing any previous value (the attribute is made in the
    /// function's own context).
    pub fn set_string_attribute(self, key: &str, value: &str) {
        // SAFETY: a live function; the attribute is created in its own context; LLVM copies both strings.
        unsafe {
            c::LLVMRemoveStringAttributeAtIndex(
                self.as_raw(),
                llvm_sys::LLVMAttributeFunctionIndex,
                key.as_ptr() as *const _,
                key.len() as u32,
            );
            let attr = c::LLVMCreateStringAttribute(
                self.context_raw(),
                key.as_ptr() as *const _,
                key.len() as u32,
                value.as_ptr() as *const _,
                value.len() as u32,
            );
            c::LLVMAddAttributeAtIndex(self.as_raw(), llvm_sys::LLVMAttributeFunctionIndex, attr);
        }
    }

    /// Reads the function's body from the bitcode of a lazily loaded module (see
    /// [`super::Module::parse_bitcode_lazy`]); a no-op when the body is already there.
    pub fn materialize(self) -> crate::Result<()> {
        // SAFETY: a live function; the shim returns null or a message from LLVMCreateMessage, which
        // LlvmMessage frees with LLVMDisposeMessage.
        let msg = unsafe { super::shim::thinjit_materialize(self.as_raw()) };
        if msg.is_null() {
            return Ok(());
        }
        // SAFETY: as above.
        let text = unsafe { LlvmMessage::take(msg) };
        Err(crate::Error::Parse {
            what: format!("body of `{}`", self.name()),
            message: text,
        })
    }

    /// Profile-based hotness of each call-like instruction (`call`, `invoke`, `callbr`), in instruction order,
    /// as LLVM's module summary computes it (ProfileSummaryInfo + BlockFrequencyInfo): `0` unknown, `1` cold,
    /// `2` none (neither hot nor cold), `3` hot. Empty when the module has no `ProfileSummary`.
    pub fn call_profile_hotness(self) -> Vec<i32> {
        let mut out = vec![0; 16];
        loop {
            // SAFETY: a live function; the shim writes at most `out.len()` entries and returns the call count.
            let n = unsafe {
                super::shim::thinjit_call_profile_hotness(
                    self.as_raw(),
                    out.as_mut_ptr(),
                    out.len(),
                )
            };
            if n <= out.len() {
                out.truncate(n);
                return out;
            }
            out = vec![0; n];
        }
    }
}

/// A global variable in a module.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GlobalVariable<'m>(GlobalValue<'m>);

impl<'m> std::ops::Deref for GlobalVariable<'m> {
    type Target = GlobalValue<'m>;
    fn deref(&self) -> &GlobalValue<'m> {
        &self.0
    }
}

impl std::fmt::Debug for GlobalVariable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GlobalVariable({})", self.name())
    }
}

impl<'m> GlobalVariable<'m> {
    /// # Safety
    /// `raw` must be a global variable whose module outlives the handle.
    pub(crate) unsafe fn from_raw(raw: LLVMValueRef) -> Self {
        // SAFETY: forwarded.
        GlobalVariable(unsafe { GlobalValue::from_raw(raw) })
    }

    /// The underlying value.
    pub fn as_value(self) -> Value<'m> {
        self.0 .0
    }

    /// `true` for a `constant` global.
    pub fn is_constant(self) -> bool {
        // SAFETY: live global variable.
        unsafe { c::LLVMIsGlobalConstant(self.as_raw()) != 0 }
    }

    /// Marks the global `constant` or not.
    pub fn set_constant(self, constant: bool) {
        // SAFETY: live global variable.
        unsafe { c::LLVMSetGlobalConstant(self.as_raw(), constant as i32) }
    }

    /// The initializer, if the global has one.
    pub fn initializer(self) -> Option<Value<'m>> {
        // SAFETY: live global variable.
        let init = unsafe { c::LLVMGetInitializer(self.as_raw()) };
        // SAFETY: a constant owned by the context.
        (!init.is_null()).then(|| unsafe { Value::from_raw(init) })
    }

    /// Drops the initializer, turning the definition into a declaration.
    pub fn remove_initializer(self) {
        // SAFETY: live global; a null initializer makes it a declaration.
        unsafe { c::LLVMSetInitializer(self.as_raw(), std::ptr::null_mut()) }
    }
}

/// The users of `raw` that are not `allowed`: what would be left dangling if `raw` were freed.
///
/// # Safety
/// `raw` must be a live value.
unsafe fn foreign_users(raw: LLVMValueRef, allowed: impl Fn(LLVMValueRef) -> bool) -> usize {
    let mut n = 0;
    // SAFETY: walking the use list of a live value; each use has a live user.
    unsafe {
        let mut u = c::LLVMGetFirstUse(raw);
        while !u.is_null() {
            if !allowed(c::LLVMGetUser(u)) {
                n += 1;
            }
            u = c::LLVMGetNextUse(u);
        }
    }
    n
}

fn still_used(name: String, users: usize) -> crate::Error {
    crate::Error::UnusableSymbol {
        symbol: name,
        message: format!(
            "cannot erase it: {users} use(s) outside it remain (calls, references in constants or \
             initializers); replace or remove them first"
        ),
    }
}

/// A function of a module borrowed exclusively ([`Module::function_mut`] takes `&mut Module`). Not `Copy`: it is
/// the only way to reach the module's values while it lives, so [`FunctionMut::erase`] can free the function
/// knowing that no handle to it, or to anything inside it, survives.
///
/// ```
/// use thinjit::llvm::{Context, Module};
/// let ctx = Context::new();
/// let mut m = Module::parse_ir(&ctx, b"define void @dead() { ret void }", "m.ll").unwrap();
/// let f = m.function_mut("dead").unwrap();
/// assert!(f.get().basic_blocks().count() == 1);
/// f.erase().unwrap();
/// assert!(m.function("dead").is_none());
/// ```
///
/// A `Copy` handle taken from it borrows it, so it cannot be used after the erase:
///
/// ```compile_fail,E0505
/// use thinjit::llvm::{Context, Module};
/// let ctx = Context::new();
/// let mut m = Module::parse_ir(&ctx, b"define void @dead() { ret void }", "m.ll").unwrap();
/// let f = m.function_mut("dead").unwrap();
/// let copy = f.get();
/// f.erase().unwrap(); // error[E0505]: cannot move out of `f` because it is borrowed
/// copy.name();
/// ```
///
/// and no other handle on the module can be alive while it exists:
///
/// ```compile_fail,E0502
/// use thinjit::llvm::{Context, Module};
/// let ctx = Context::new();
/// let mut m = Module::parse_ir(&ctx, b"define void @dead() { ret void }", "m.ll").unwrap();
/// let other = m.function("dead").unwrap();
/// m.function_mut("dead").unwrap().erase().unwrap(); // error[E0502]: `m` is also borrowed as immutable
/// other.name();
/// ```
pub struct FunctionMut<'m> {
    raw: LLVMValueRef,
    _module: PhantomData<&'m mut ()>,
}

impl<'m> FunctionMut<'m> {
    /// # Safety
    /// `raw` must be a function of a module borrowed exclusively for `'m`.
    pub(crate) unsafe fn from_raw(raw: LLVMValueRef) -> Self {
        FunctionMut {
            raw,
            _module: PhantomData,
        }
    }

    /// A `Copy` handle on the function (to read or edit it), borrowing this one.
    pub fn get(&self) -> Function<'_> {
        // SAFETY: a live function, alive at least as long as this borrow.
        unsafe { Function::from_raw(self.raw) }
    }

    /// Removes the function from its module and frees it, with its blocks and instructions. Refuses, changing
    /// nothing, while anything outside the function itself uses it (a call from another function, a reference
    /// in a constant or an initializer): LLVM would free it anyway and leave those uses dangling.
    pub fn erase(self) -> crate::Result<()> {
        let f = self.raw;
        // SAFETY: a live function; LLVMIsAInstruction accepts any value, and an instruction's block and the
        // block's function are live.
        let users = unsafe {
            foreign_users(f, |user| {
                !c::LLVMIsAInstruction(user).is_null()
                    && c::LLVMGetBasicBlockParent(c::LLVMGetInstructionParent(user)) == f
            })
        };
        if users > 0 {
            return Err(still_used(self.get().name(), users));
        }
        // SAFETY: `self` was the only handle on the module's values (exclusive borrow, consumed here); the only
        // uses left are the function's own instructions, which LLVM drops before freeing it.
        unsafe { c::LLVMDeleteFunction(f) };
        Ok(())
    }
}

impl std::fmt::Debug for FunctionMut<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FunctionMut({})", self.get().name())
    }
}

/// A global variable of a module borrowed exclusively ([`Module::global_mut`]); like [`FunctionMut`], not `Copy`,
/// so [`GlobalVariableMut::erase`] can free it.
///
/// ```
/// use thinjit::llvm::{Context, Module};
/// let ctx = Context::new();
/// let mut m = Module::parse_ir(&ctx, b"@g = global i32 1\n@used = global ptr @used", "m.ll").unwrap();
/// m.global_mut("g").unwrap().erase().unwrap();
/// m.global_mut("used").unwrap().erase().unwrap(); // only used by its own initializer
/// assert!(m.globals().next().is_none());
/// ```
///
/// ```compile_fail,E0505
/// use thinjit::llvm::{Context, Module};
/// let ctx = Context::new();
/// let mut m = Module::parse_ir(&ctx, b"@g = global i32 1", "m.ll").unwrap();
/// let g = m.global_mut("g").unwrap();
/// let copy = g.get();
/// g.erase().unwrap(); // error[E0505]: cannot move out of `g` because it is borrowed
/// copy.name();
/// ```
pub struct GlobalVariableMut<'m> {
    raw: LLVMValueRef,
    _module: PhantomData<&'m mut ()>,
}

impl<'m> GlobalVariableMut<'m> {
    /// # Safety
    /// `raw` must be a global variable of a module borrowed exclusively for `'m`.
    pub(crate) unsafe fn from_raw(raw: LLVMValueRef) -> Self {
        GlobalVariableMut {
            raw,
            _module: PhantomData,
        }
    }

    /// A `Copy` handle on the variable, borrowing this one.
    pub fn get(&self) -> GlobalVariable<'_> {
        // SAFETY: a live global variable, alive at least as long as this borrow.
        unsafe { GlobalVariable::from_raw(self.raw) }
    }

    /// Removes the variable from its module and frees it. Refuses, changing nothing, while anything but its own
    /// initializer uses it.
    pub fn erase(self) -> crate::Result<()> {
        let g = self.raw;
        // SAFETY: a live global variable.
        let users = unsafe { foreign_users(g, |user| user == g) };
        if users > 0 {
            return Err(still_used(self.get().name(), users));
        }
        // SAFETY: `self` was the only handle on the module's values (exclusive borrow, consumed here). The
        // initializer goes first, so the variable's own use of itself is gone before LLVM frees it.
        unsafe {
            c::LLVMSetInitializer(g, std::ptr::null_mut());
            c::LLVMDeleteGlobal(g);
        }
        Ok(())
    }
}

impl std::fmt::Debug for GlobalVariableMut<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GlobalVariableMut({})", self.get().name())
    }
}

/// A basic block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BasicBlock<'m> {
    raw: LLVMBasicBlockRef,
    _module: PhantomData<&'m ()>,
}

impl<'m> BasicBlock<'m> {
    fn new(raw: LLVMBasicBlockRef) -> Self {
        BasicBlock {
            raw,
            _module: PhantomData,
        }
    }

    /// Instructions in order.
    pub fn instructions(self) -> impl Iterator<Item = Instruction<'m>> {
        // SAFETY: live block.
        let first = unsafe { c::LLVMGetFirstInstruction(self.raw) };
        std::iter::successors(
            // SAFETY: instruction of a live block.
            (!first.is_null()).then(|| unsafe { Instruction::from_raw(first) }),
            |i| {
                // SAFETY: live instruction.
                let next = unsafe { c::LLVMGetNextInstruction(i.as_raw()) };
                // SAFETY: as above.
                (!next.is_null()).then(|| unsafe { Instruction::from_raw(next) })
            },
        )
    }
}

/// An instruction.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Instruction<'m>(Value<'m>);

impl<'m> std::ops::Deref for Instruction<'m> {
    type Target = Value<'m>;
    fn deref(&self) -> &Value<'m> {
        &self.0
    }
}

impl<'m> Instruction<'m> {
    /// # Safety
    /// `raw` must be an instruction whose module outlives the handle.
    pub(crate) unsafe fn from_raw(raw: LLVMValueRef) -> Self {
        // SAFETY: forwarded.
        Instruction(unsafe { Value::from_raw(raw) })
    }

    /// The opcode.
    pub fn opcode(self) -> Opcode {
        // SAFETY: live instruction.
        unsafe { c::LLVMGetInstructionOpcode(self.as_raw()) }
    }

    /// `true` for `call`, `invoke` and `callbr`.
    pub fn is_call(self) -> bool {
        matches!(
            self.opcode(),
            Opcode::LLVMCall | Opcode::LLVMInvoke | Opcode::LLVMCallBr
        )
    }

    /// The called operand of a call-like instruction (a function, inline asm, or any pointer value).
    pub fn called_value(self) -> Option<Value<'m>> {
        if !self.is_call() {
            return None;
        }
        // SAFETY: a call-like instruction has a called operand.
        let v = unsafe { c::LLVMGetCalledValue(self.as_raw()) };
        // SAFETY: operand of a live instruction.
        (!v.is_null()).then(|| unsafe { Value::from_raw(v) })
    }

    /// The directly called function, looking through nothing (no casts, no aliases).
    pub fn called_function(self) -> Option<Function<'m>> {
        self.called_value().and_then(|v| v.as_function())
    }

    /// `true` for calls to `llvm.dbg.*` and `llvm.pseudoprobe`, which LLVM's summary does not count.
    pub fn is_debug_or_pseudo(self) -> bool {
        match self.called_function() {
            Some(f) => {
                let name = f.name();
                name.starts_with("llvm.dbg.") || name == "llvm.pseudoprobe"
            }
            None => false,
        }
    }

    /// `true` if this call-like instruction carries the enum attribute `name` at the call site (e.g. `cold`).
    pub fn call_site_has_attribute(self, name: &str) -> bool {
        if !self.is_call() {
            return false;
        }
        let kind = Function::enum_kind(name);
        // SAFETY: a live call-like instruction; kind 0 means "unknown name".
        kind != 0
            && unsafe {
                !c::LLVMGetCallSiteEnumAttribute(
                    self.as_raw(),
                    llvm_sys::LLVMAttributeFunctionIndex,
                    kind,
                )
                .is_null()
            }
    }

    /// Whether the instruction has the metadata kind `kind_id` attached.
    pub fn has_metadata(self, kind_id: u32) -> bool {
        // SAFETY: live instruction.
        unsafe { !c::LLVMGetMetadata(self.as_raw(), kind_id).is_null() }
    }

    /// The string operands and integer operands of the metadata node `kind_id` attached to this instruction,
    /// printed (e.g. `!prof !{!"branch_weights", i32 10}` gives `["!\"branch_weights\"", "i32 10"]`).
    pub fn metadata_operands(self, kind_id: u32) -> Vec<String> {
        // SAFETY: live instruction; LLVMGetMetadata returns a metadata-as-value node or null; its operands are
        // read with LLVMGetMDNodeOperands into a buffer of the reported size.
        unsafe {
            let md = c::LLVMGetMetadata(self.as_raw(), kind_id);
            if md.is_null() {
                return Vec::new();
            }
            let n = c::LLVMGetMDNodeNumOperands(md) as usize;
            let mut ops = vec![std::ptr::null_mut(); n];
            c::LLVMGetMDNodeOperands(md, ops.as_mut_ptr());
            ops.into_iter()
                .map(|op| {
                    if op.is_null() {
                        return String::new();
                    }
                    let mut len = 0u32;
                    let s = c::LLVMGetMDString(op, &mut len);
                    if !s.is_null() {
                        borrowed_str(s, len as usize)
                    } else {
                        LlvmMessage::take(c::LLVMPrintValueToString(op))
                    }
                })
                .collect()
        }
    }
}

impl std::fmt::Debug for Instruction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Instruction({:?})", self.opcode())
    }
}
