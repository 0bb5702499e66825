//! What the engine does so C/C++ code runs in the JIT as it would in a process: static constructors and
//! destructors, `__cxa_atexit` / `atexit` registrations, a dso handle per script, and scripts' shared
//! definitions kept private.
//!
//! In: a script module on its way through the pipeline. Out: the module with its structors taken out (run by
//! the engine after linking, destructors at removal), its `atexit` references redirected to the script's own
//! registry, and its `linkonce`/`weak` definitions internal. The LLVM edits and the calls into JIT'd code are
//! crate-private primitives of `crate::llvm::resident`; the names and the order live here.
//!
//! A dso handle is a JIT'd `i64` holding its registry's key; the `__cxa_atexit` replacement reads the key
//! through the handle it is given. The engine's support module defines the engine's handle (used by the
//! JIT-resident library); a removable script gets its own, so what it registered runs when it is removed,
//! before its code is freed. Why not LLJIT's own platform support: the C API cannot call `LLJIT::initialize` /
//! `deinitialize`, and the default platform defines `__dso_handle` and `atexit` itself. The dso handle is a
//! JIT'd global, not an absolute symbol: clang references `__dso_handle` as `hidden`, which codegen makes
//! PC-relative (32-bit), so it must live near the JIT'd code.

use super::engine::{Core, Loaded};
use crate::llvm::{Linkage, Module, Visibility};
use crate::{Error, Result};

/// Name the dso handle global gets in the JIT.
pub(crate) const DSO_HANDLE: &str = "__thinjit_dso_handle";
/// Name `__cxa_atexit` is redirected to (an absolute symbol: [`AtExitRegistry::cxa_atexit_address`]).
pub(crate) const CXA_ATEXIT: &str = "__thinjit_cxa_atexit";
/// Name `atexit` is redirected to (an IR wrapper passing the dso handle to the registry).
pub(crate) const ATEXIT: &str = "__thinjit_atexit";
/// The registry's `atexit` entry point the wrapper calls (an absolute symbol).
pub(crate) const ATEXIT_IMPL: &str = "__thinjit_atexit_impl";

/// The engine's runtime-support module: the dso handle (holding the registry key `KEY`), the `atexit` wrapper.
/// Use [`support_ir`].
const SUPPORT_IR: &str = r#"
@__thinjit_dso_handle = global i64 KEY
declare i32 @__thinjit_atexit_impl(ptr, ptr)
define i32 @__thinjit_atexit(ptr %f) {
  %r = call i32 @__thinjit_atexit_impl(ptr %f, ptr @__thinjit_dso_handle)
  ret i32 %r
}
"#;

/// The engine's runtime-support module for an engine whose registry has key `key`.
pub(crate) fn support_ir(key: u64) -> String {
    SUPPORT_IR.replace("KEY", &key.to_string())
}

/// A permanent definition of the personality-routine cell codegen emits (weak, hidden) into every object with
/// C++ landing pads. ORC binds all of them to the first definition; if that were a script that is later
/// removed, every other script's exception tables would point into freed memory. This one is never removed.
pub(crate) const PERSONALITY_PIN_IR: &str = r#"
@"DW.ref.__gxx_personality_v0" = weak hidden global ptr @__gxx_personality_v0
declare i32 @__gxx_personality_v0(...)
"#;

/// Suffix counter for structor functions made visible by [`take_structors`].
static NEXT_STRUCTOR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Static constructors and destructors taken out of a module, in the order they must run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Structors {
    ctors: Vec<String>,
    dtors: Vec<String>,
}

impl Structors {
    /// Constructor function names, in run order (ascending priority, array order within a priority).
    pub fn ctors(&self) -> &[String] {
        &self.ctors
    }

    /// Destructor function names, in run order (descending priority).
    pub fn dtors(&self) -> &[String] {
        &self.dtors
    }

    /// Lists recorded elsewhere (a summary's runtime object).
    pub fn new(ctors: Vec<String>, dtors: Vec<String>) -> Self {
        Structors { ctors, dtors }
    }

    /// Appends another module's lists.
    pub fn extend(&mut self, other: Structors) {
        self.ctors.extend(other.ctors);
        self.dtors.extend(other.dtors);
    }
}

/// Takes `llvm.global_ctors` and `llvm.global_dtors` out of `module` and returns the functions they name, in
/// run order (constructors by ascending priority, destructors by descending priority, array order within a
/// priority). A function with local linkage is made externally visible (`hidden`, so only this JIT sees it)
/// under a process-unique name (`<name>.thinjit.<n>`) so it can be looked up without clashing with another
/// module's.
pub(crate) fn take_structors(module: &mut Module<'_>) -> Structors {
    take_structors_with(module, |name, _| {
        let n = NEXT_STRUCTOR.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{name}.thinjit.{n}")
    })
}

/// [`take_structors`] with deterministic names for local structors: `<name>.thinjit.<tag>.<i>` (`i` counts the
/// structors made visible). For code that is compiled once and loaded later (the precompiled runtime object,
/// cached scripts), where the names are baked into the object.
pub(crate) fn take_structors_tagged(module: &mut Module<'_>, tag: &str) -> Structors {
    take_structors_with(module, |name, i| format!("{name}.thinjit.{tag}.{i}"))
}

fn take_structors_with(
    module: &mut Module<'_>,
    mut rename: impl FnMut(&str, usize) -> String,
) -> Structors {
    let mut renamed = 0;
    let mut result = Structors::default();
    for (array_name, descending) in [("llvm.global_ctors", false), ("llvm.global_dtors", true)] {
        let mut entries = module.take_structor_array(array_name);
        if descending {
            entries.sort_by_key(|(p, _)| std::cmp::Reverse(*p));
        } else {
            entries.sort_by_key(|(p, _)| *p);
        }
        for (_, function) in entries {
            if function.linkage().is_local() {
                function.set_name(&rename(&function.name(), renamed));
                renamed += 1;
                function.set_linkage(Linkage::External);
                function.set_visibility(Visibility::Hidden);
            }
            let names = if descending {
                &mut result.dtors
            } else {
                &mut result.ctors
            };
            names.push(function.name());
        }
    }
    result
}

/// Deletes `llvm.global_ctors` and `llvm.global_dtors` without running or exposing what they name (the
/// functions keep their linkage; unused local ones become dead code).
pub(crate) fn drop_structors(module: &mut Module<'_>) {
    module.erase_appending_arrays(&["llvm.global_ctors", "llvm.global_dtors"]);
}

/// Redirects the module's references to `__cxa_atexit`, `atexit` and `__dso_handle` to the engine's registry
/// ([`CXA_ATEXIT`], [`ATEXIT`], [`DSO_HANDLE`]). Returns whether anything was redirected.
pub(crate) fn redirect_atexit(module: &mut Module<'_>) -> bool {
    let mut changed = false;
    for (from, to) in [("__cxa_atexit", CXA_ATEXIT), ("atexit", ATEXIT)] {
        if let Some(f) = module.function(from) {
            if f.is_declaration() {
                f.set_name(to);
                changed = true;
            }
        }
    }
    if let Some(g) = module.global("__dso_handle") {
        if g.is_declaration() {
            g.set_name(DSO_HANDLE);
            changed = true;
        }
    }
    changed
}

/// Gives the module its own dso handle as an exported (hidden) zero-initialized global named `name`, for
/// objects compiled once and loaded later: the loader writes the registry key into it before any of the
/// module's code runs. Returns whether the module references a dso handle at all.
pub(crate) fn export_dso_handle(module: &mut Module<'_>, name: &str) -> bool {
    module.replace_declaration_with_i64(DSO_HANDLE, name, 0, Linkage::External, Visibility::Hidden)
}

/// Gives the module its own dso handle, holding `key` (after [`redirect_atexit`]): its `__cxa_atexit`
/// registrations then go to the registry with that key. Returns whether the module references a dso handle.
pub(crate) fn localize_dso_handle(module: &mut Module<'_>, key: u64) -> bool {
    module.replace_declaration_with_i64(
        DSO_HANDLE,
        &format!("{DSO_HANDLE}.{key}"),
        key,
        Linkage::Internal,
        Visibility::Default,
    )
}

/// Prepares the promoted helper library for JIT-resident use: takes its static constructors and destructors
/// out (local ones get deterministic names, `<name>.thinjit.rt.<i>`) and redirects `__cxa_atexit` / `atexit` /
/// `__dso_handle` to the engine's registry. The engine applies it to the library bitcode, and
/// `precompute-summary --object` before compiling the runtime object, so both paths define the same symbols.
pub(crate) fn prepare_resident_library(module: &mut Module<'_>) -> Structors {
    let structors = take_structors_tagged(module, "rt");
    redirect_atexit(module);
    structors
}

/// A script's runtime preparation: the names it uses and the structors taken out of it.
pub(super) struct ScriptRuntime {
    /// Deterministic names for code that will be cached (`None`: process-unique names).
    tag: Option<String>,
    /// The key of the script's atexit registry (what its dso handle holds).
    key: u64,
    /// The exported dso handle's name (cached code), else the handle is local and holds `key`.
    dso_name: Option<String>,
    uses_dso: bool,
    /// Constructors and destructors, in run order.
    pub structors: Structors,
}

impl ScriptRuntime {
    pub fn new(tag: Option<String>, key: u64) -> Self {
        let dso_name = tag.as_ref().map(|t| format!("{DSO_HANDLE}.{t}"));
        ScriptRuntime {
            tag,
            key,
            dso_name,
            uses_dso: false,
            structors: Structors::default(),
        }
    }

    /// Before import: structors out, `atexit` redirected, the script's own dso handle, shared definitions
    /// internal.
    pub fn prepare(&mut self, module: &mut Module<'_>) {
        self.structors = match &self.tag {
            Some(t) => take_structors_tagged(module, t),
            None => take_structors(module),
        };
        self.redirect(module);
        internalize_shared_definitions(module);
    }

    /// After import and optimization: what a whole-library link brought along (its structors, new `atexit` and
    /// dso handle references).
    pub fn prepare_linked(&mut self, module: &mut Module<'_>) {
        self.structors.extend(match &self.tag {
            Some(t) => take_structors_tagged(module, &format!("{t}.l")),
            None => take_structors(module),
        });
        self.redirect(module);
    }

    fn redirect(&mut self, module: &mut Module<'_>) {
        redirect_atexit(module);
        self.uses_dso |= match &self.dso_name {
            Some(n) => export_dso_handle(module, n),
            None => localize_dso_handle(module, self.key),
        };
    }

    /// The exported dso handle the loader must write the registry key into, if the script uses one.
    pub fn exported_dso_handle(&self) -> Option<String> {
        self.dso_name.clone().filter(|_| self.uses_dso)
    }
}

/// Makes a script's `linkonce`/`weak` definitions internal. ORC binds every module's copy of such a symbol to
/// the first one loaded; if that script were removed, the others would keep calling freed memory. A script's
/// copies are its own.
pub(super) fn internalize_shared_definitions(module: &Module<'_>) {
    let shared = |l: Linkage| {
        matches!(
            l,
            Linkage::LinkOnceAny | Linkage::LinkOnceOdr | Linkage::WeakAny | Linkage::WeakOdr
        )
    };
    for f in module.functions() {
        if !f.is_declaration() && shared(f.linkage()) {
            f.set_linkage(Linkage::Internal);
        }
    }
    for g in module.globals() {
        if !g.is_declaration() && shared(g.linkage()) {
            g.set_linkage(Linkage::Internal);
        }
    }
}

impl Core {
    /// A script may not define what the helper runtime defines (one instance of every helper).
    pub(super) fn refuse_helper_redefinition<'a>(
        &self,
        name: &str,
        mut defined: impl Iterator<Item = &'a String>,
    ) -> Result<()> {
        match defined.find(|s| self.helper_symbols.contains(*s)) {
            Some(clash) => Err(Error::DuplicateDefinition {
                symbol: clash.clone(),
                first: Some("the helper runtime".into()),
                second: format!("script `{name}`"),
                source: None,
            }),
            None => Ok(()),
        }
    }

    /// Runs a freshly added script's static constructors (lookups of what they name fail as unresolved).
    pub(super) fn run_script_ctors(&self, name: &str, structors: &Structors) -> Result<()> {
        if structors.ctors().is_empty() {
            return Ok(());
        }
        let _compiling = self.compile_guard();
        self.jit.run_structors(structors.ctors()).map_err(|f| {
            self.script_error(
                name,
                format!("running the static constructors of script `{name}`"),
                f,
            )
        })
    }

    /// Runs a script's atexit handlers (last registered first), then its static destructors.
    pub(super) fn run_script_destructors(&self, script: &Loaded) {
        script.atexit.run();
        if !script.dtors.is_empty() {
            let _compiling = self.compile_guard();
            let _ = self.jit.run_structors(&script.dtors);
        }
        script.atexit.run();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llvm::Context;

    fn user(f: &str) -> String {
        format!(
            "@__dso_handle = external hidden global i8\n\
             declare i32 @__cxa_atexit(ptr, ptr, ptr)\n\
             define i32 @{f}(ptr %cb) {{\n\
               %r = call i32 @__cxa_atexit(ptr %cb, ptr null, ptr @__dso_handle)\n\
               ret i32 %r\n\
             }}\n"
        )
    }

    #[test]
    fn an_exported_dso_handle_is_shared_by_references_that_arrive_later() {
        let ctx = Context::new();
        let mut module = Module::parse_ir(&ctx, user("first").as_bytes(), "first").unwrap();
        redirect_atexit(&mut module);
        assert!(export_dso_handle(&mut module, "__thinjit_dso_handle.k"));
        // Imported code brings another reference to the (redirected) dso handle.
        let mut more = Module::parse_ir(&ctx, user("second").as_bytes(), "second").unwrap();
        redirect_atexit(&mut more);
        module.link_in(more).unwrap();
        redirect_atexit(&mut module);
        assert!(export_dso_handle(&mut module, "__thinjit_dso_handle.k"));
        module.verify().unwrap();
        let ir = module.print();
        assert_eq!(ir.matches("hidden global i64 0").count(), 1, "{ir}");
        assert!(
            ir.contains("@__thinjit_dso_handle.k = hidden global i64 0"),
            "{ir}"
        );
        assert!(!ir.contains("@__thinjit_dso_handle ="), "{ir}");
    }

    #[test]
    fn structors_come_out_in_priority_order_with_local_ones_renamed() {
        let ctx = Context::new();
        let ir = r#"
@llvm.global_ctors = appending global [2 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 200, ptr @late, ptr null }, { i32, ptr, ptr } { i32 100, ptr @early, ptr null }]
@llvm.global_dtors = appending global [1 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 100, ptr @bye, ptr null }]
define internal void @early() {
  ret void
}
define void @late() {
  ret void
}
define internal void @bye() {
  ret void
}
"#;
        let mut module = Module::parse_ir(&ctx, ir.as_bytes(), "m").unwrap();
        let s = take_structors_tagged(&mut module, "t");
        assert_eq!(s.ctors(), ["early.thinjit.t.0", "late"]);
        assert_eq!(s.dtors(), ["bye.thinjit.t.1"]);
        assert!(module.global("llvm.global_ctors").is_none());
        module.verify().unwrap();
        let early = module.function("early.thinjit.t.0").unwrap();
        assert_eq!(early.linkage(), Linkage::External);
        assert_eq!(early.visibility(), Visibility::Hidden);
    }
}
