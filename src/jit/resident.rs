//! [`ResidentRuntime`]: the JIT-resident helper runtime installed into any LLJIT — thinjit's own, or a C/C++
//! host's (`LlJit::borrow_raw`) — with the engine's invariants and without the engine.
//!
//! In: an [`LlJit`], the [`JitDylib`] the helpers go to, the summary (its precompiled runtime object when it
//! suits the JIT, else its library bitcode), host symbols. Out: the helpers defined once in that JITDylib,
//! `__cxa_atexit` / `atexit` / `__dso_handle` of the helper code redirected to this runtime's
//! [`AtExitRegistry`], static constructors run once in priority order, and [`ResidentRuntime::shutdown`]
//! (also on drop) running the registered atexit handlers in reverse and then the static destructors — before
//! the caller disposes the JIT that holds their code.
//!
//! The LLVM edits (taking structors out, redirecting atexit) are primitives of [`crate::llvm::resident`]; this
//! module decides when they happen and in what order.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::llvm::orc::{JitDylib, LlJit};
use crate::llvm::resident::{self, AtExitRegistry, Structors};
use crate::llvm::{Context, Module};
use crate::summary::{ObjectTarget, Summary};
use crate::{Error, OrcFailure, Result};

use super::startup::RuntimeSource;

/// Prefix of the names of the modules a [`ResidentRuntime`] adds; an IR transform that imports into the
/// caller's modules leaves modules with this prefix alone.
pub const RUNTIME_MODULE_PREFIX: &str = "thinjit.";

/// How a [`ResidentRuntime`] got in, and what it cost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResidentReport {
    /// Object or bitcode.
    pub source: RuntimeSource,
    /// Why the precompiled object was not used, when the bitcode was compiled instead.
    pub notice: Option<String>,
    /// Bytes added (object or bitcode).
    pub bytes: usize,
    /// Reading the object (checksum) or parsing and verifying the bitcode.
    pub load: Duration,
    /// Adding and materializing (linking; code generation for bitcode).
    pub materialize: Duration,
    /// Running the static constructors.
    pub initializers: Duration,
}

/// The JIT-resident helper runtime in one JITDylib of an LLJIT. See the module documentation.
///
/// ```no_run
/// use thinjit::jit::ResidentRuntime;
/// use thinjit::llvm::orc::LlJit;
/// # fn main() -> thinjit::Result<()> {
/// let summary = thinjit::summary::Summary::load("helpers.thinjit".as_ref())?;
/// let jit = LlJit::new_host().map_err(|f| thinjit::Error::Jit { context: "new".into(), source: f })?;
/// let mut runtime = ResidentRuntime::install(&jit, jit.main_jitdylib(), &summary, &[], true)?;
/// // ... add modules that call the helpers, run them ...
/// runtime.shutdown(); // atexit handlers, then static destructors; before the JIT goes
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ResidentRuntime {
    jit: LlJit,
    dylib: JitDylib,
    atexit: AtExitRegistry,
    structors: Structors,
    helper_symbols: BTreeSet<String>,
    report: ResidentReport,
    shut_down: bool,
}

fn jit_error(context: impl Into<String>) -> impl FnOnce(OrcFailure) -> Error {
    let context = context.into();
    move |source| Error::Jit { context, source }
}

impl ResidentRuntime {
    /// Installs the helper runtime of `summary` into `dylib` of `jit`:
    /// 1. defines `host_symbols` (the helpers' host callbacks) and the atexit registry's entry points, and adds
    ///    the support module (this runtime's dso handle, the `atexit` wrapper) — so one runtime per JITDylib;
    /// 2. checks the summary's triple and data layout against the JIT;
    /// 3. adds the precompiled runtime object when `use_object` and its target suits the JIT, else the library
    ///    bitcode (structors taken out, atexit redirected), and links it now, so unresolved references surface
    ///    here;
    /// 4. runs the static constructors once, in priority order.
    pub fn install(
        jit: &LlJit,
        dylib: JitDylib,
        summary: &Summary,
        host_symbols: &[(&str, u64)],
        use_object: bool,
    ) -> Result<Self> {
        summary.check_target(&jit.triple(), &jit.data_layout())?;
        let mut symbols = host_symbols.to_vec();
        symbols.push((resident::CXA_ATEXIT, AtExitRegistry::cxa_atexit_address()));
        symbols.push((resident::ATEXIT_IMPL, AtExitRegistry::atexit_impl_address()));
        jit.define_absolute_in(dylib, &symbols).map_err(jit_error(
            "defining the host symbols and the atexit registry",
        ))?;
        let atexit = AtExitRegistry::new();
        let ctx = Context::new();
        let support = Module::parse_ir(
            &ctx,
            resident::support_ir(atexit.key()).as_bytes(),
            "thinjit.support",
        )?;
        jit.add_module_in(dylib, support)
            .map_err(jit_error("adding the runtime's support module"))?;
        jit.lookup_in(dylib, resident::DSO_HANDLE)
            .map_err(jit_error("materializing the runtime's dso handle"))?;

        let mut runtime = ResidentRuntime {
            jit: jit.clone(),
            dylib,
            atexit,
            structors: Structors::default(),
            helper_symbols: BTreeSet::new(),
            report: ResidentReport::default(),
            shut_down: false,
        };
        let name = summary.path().display().to_string();
        let host = ObjectTarget {
            triple: jit.triple(),
            cpu: crate::llvm::host_cpu_name(),
            features: crate::llvm::host_cpu_features(),
        };
        let object = match summary.runtime_object() {
            _ if !use_object => Err("not used (disabled by the caller)".to_owned()),
            None => Err(format!("{name} has none (precompute-summary --object)")),
            Some(object) => object.target.check_runs_on(&host).map(|()| object),
        };
        match object {
            Ok(object) => {
                let start = Instant::now();
                let bytes = summary.runtime_object_bytes()?.unwrap_or_default();
                runtime.report.load = start.elapsed();
                let start = Instant::now();
                jit.add_object_file_in(dylib, bytes, &format!("{name} (runtime object)"))
                    .map_err(jit_error(format!("adding the runtime object of {name}")))?;
                if let Some(first) = object.defined.first() {
                    jit.lookup_in(dylib, first)
                        .map_err(jit_error(format!("linking the runtime object of {name}")))?;
                }
                runtime.report.materialize = start.elapsed();
                runtime.report.source = RuntimeSource::Object;
                runtime.report.bytes = bytes.len();
                runtime.helper_symbols = object.defined.iter().cloned().collect();
                runtime.structors = Structors::new(object.ctors.clone(), object.dtors.clone());
            }
            Err(why) => {
                runtime.report.notice = Some(format!(
                    "precompiled runtime object {why}; the library bitcode was compiled"
                ));
                runtime.add_bitcode(&name, summary.library_bitcode()?)?;
            }
        }
        let start = Instant::now();
        jit.run_structors_in(dylib, runtime.structors.ctors())
            .map_err(jit_error(format!(
                "running the static constructors of {name}"
            )))?;
        runtime.report.initializers = start.elapsed();
        Ok(runtime)
    }

    /// The bitcode path: parse, verify, take the structors out, redirect atexit, add, link now.
    fn add_bitcode(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let start = Instant::now();
        let ctx = Context::new();
        let mut module = Module::parse(&ctx, bytes, name)?;
        module.verify()?;
        self.structors = resident::prepare_resident_library(&mut module);
        module.set_name(&format!("{RUNTIME_MODULE_PREFIX}runtime"));
        self.helper_symbols = module.defined_symbols().into_iter().collect();
        self.report.load = start.elapsed();
        let start = Instant::now();
        self.jit
            .add_module_in(self.dylib, module)
            .map_err(jit_error(format!("adding {name}")))?;
        if let Some(first) = self.helper_symbols.iter().next() {
            self.jit
                .lookup_in(self.dylib, first)
                .map_err(jit_error(format!("compiling {name}")))?;
        }
        self.report.materialize = start.elapsed();
        self.report.source = RuntimeSource::Bitcode;
        self.report.bytes = bytes.len();
        Ok(())
    }

    /// How the runtime got in.
    pub fn report(&self) -> &ResidentReport {
        &self.report
    }

    /// The symbols the runtime defines (a module added later must not define them again).
    pub fn helper_symbols(&self) -> &BTreeSet<String> {
        &self.helper_symbols
    }

    /// The static constructors that ran, in order.
    pub fn initializers(&self) -> &[String] {
        self.structors.ctors()
    }

    /// The JITDylib the runtime lives in.
    pub fn dylib(&self) -> JitDylib {
        self.dylib
    }

    /// Whether [`ResidentRuntime::shutdown`] ran.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    /// Runs the atexit handlers the helper code registered (last first), then the static destructors, once.
    /// Returns how many handlers and destructors ran. The JIT must still hold the code: call this before the
    /// LLJIT is disposed (dropping the runtime does it too).
    pub fn shutdown(&mut self) -> usize {
        if self.shut_down {
            return 0;
        }
        self.shut_down = true;
        let mut ran = self.atexit.run();
        if self
            .jit
            .run_structors_in(self.dylib, self.structors.dtors())
            .is_ok()
        {
            ran += self.structors.dtors().len();
        }
        ran + self.atexit.run()
    }
}

impl Drop for ResidentRuntime {
    fn drop(&mut self) {
        self.shutdown();
    }
}
