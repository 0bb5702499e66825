//! What the engine does so C/C++ code runs in the JIT as it would in a process: static constructors and
//! destructors, `__cxa_atexit` / `atexit` registrations, a dso handle per script, and scripts' shared
//! definitions kept private.
//!
//! In: a script module on its way through the pipeline. Out: the module with its structors taken out (run by
//! the engine after linking, destructors at removal), its `atexit` references redirected to the script's own
//! registry, and its `linkonce`/`weak` definitions internal. The LLVM edits themselves are primitives of
//! [`crate::llvm::resident`].

use super::engine::{Core, Loaded};
use crate::llvm::resident::{self, Structors};
use crate::llvm::{Linkage, Module};
use crate::{Error, Result};

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
        let dso_name = tag
            .as_ref()
            .map(|t| format!("{}.{t}", resident::DSO_HANDLE));
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
            Some(t) => module.take_structors_tagged(t),
            None => module.take_structors(),
        };
        self.redirect(module);
        internalize_shared_definitions(module);
    }

    /// After import and optimization: what a whole-library link brought along (its structors, new `atexit` and
    /// dso handle references).
    pub fn prepare_linked(&mut self, module: &mut Module<'_>) {
        self.structors.extend(match &self.tag {
            Some(t) => module.take_structors_tagged(&format!("{t}.l")),
            None => module.take_structors(),
        });
        self.redirect(module);
    }

    fn redirect(&mut self, module: &mut Module<'_>) {
        module.redirect_atexit();
        self.uses_dso |= match &self.dso_name {
            Some(n) => module.export_dso_handle(n),
            None => module.localize_dso_handle(self.key),
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
