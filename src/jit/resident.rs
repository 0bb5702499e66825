//! [`ResidentRuntime`]: the JIT-resident helper runtime installed into any LLJIT — thinjit's own, or a C/C++
//! host's (`LlJit::borrow_raw`) — with the engine's invariants and without the engine.
//!
//! In: an [`LlJit`], the [`JitDylib`] the helpers go to, the summary (its precompiled runtime object when it
//! suits the JIT, else its library bitcode), host symbols. Out: the helpers defined once in that JITDylib,
//! `__cxa_atexit` / `atexit` / `__dso_handle` of the helper code redirected to this runtime's
//! atexit registry, static constructors run once in priority order, and [`ResidentRuntime::shutdown`]
//! (also on drop) running the registered atexit handlers in reverse and then the static destructors — before
//! the caller disposes the JIT that holds their code.
//!
//! The names and the preparation (taking structors out, redirecting atexit) are the engine's
//! ([`super::runtime`]); the calls into JIT'd code are crate-private primitives of `crate::llvm::resident`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::runtime::{self as resident, Structors};
use crate::llvm::dylib::PrivateImage;
use crate::llvm::orc::{JitDylib, LlJit};
use crate::llvm::resident::AtExitRegistry;
use crate::llvm::{Context, Module};
use crate::summary::shared::{SharedImage, SlotKind};
use crate::summary::{ObjectTarget, Summary};
use crate::{Error, OrcErrorKind, OrcFailure, Result};

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
    use_shared: bool,
    /// The mapped shared runtime (dropped, so unmapped, after [`ResidentRuntime::shutdown`]).
    image: Option<PrivateImage>,
}

fn jit_error(context: impl Into<String>) -> impl FnOnce(OrcFailure) -> Error {
    let context = context.into();
    move |source| Error::Jit { context, source }
}

/// An ORC failure while adding, linking or initializing the runtime `name`: references nothing resolves are
/// [`Error::RuntimeUnresolvedSymbols`] naming it, a clash is [`Error::DuplicateDefinition`].
fn runtime_failure(name: &str, context: String, failure: OrcFailure) -> Error {
    let missing = failure.symbols(OrcErrorKind::SymbolsNotFound);
    if !missing.is_empty() {
        return Error::RuntimeUnresolvedSymbols {
            summary: name.to_owned(),
            symbols: missing,
            source: Some(failure),
        };
    }
    if let Some(symbol) = failure
        .symbols(OrcErrorKind::DuplicateDefinition)
        .into_iter()
        .next()
    {
        return Error::DuplicateDefinition {
            symbol,
            first: None,
            second: format!("the helper runtime of {name}"),
            source: Some(failure),
        };
    }
    Error::Jit {
        context,
        source: failure,
    }
}

impl ResidentRuntime {
    /// Installs the helper runtime of `summary` into `dylib` of `jit` ([`ResidentRuntime::new`], then
    /// [`ResidentRuntime::add_from_summary`] for the host): the precompiled object when `use_object` and it
    /// suits the host, else the library bitcode; constructors run once.
    pub fn install(
        jit: &LlJit,
        dylib: JitDylib,
        summary: &Summary,
        host_symbols: &[(&str, u64)],
        use_object: bool,
    ) -> Result<Self> {
        summary.check_target(&jit.triple(), &jit.data_layout())?;
        let mut runtime = Self::new(jit, dylib, host_symbols)?;
        let host = ObjectTarget {
            triple: jit.triple(),
            cpu: crate::llvm::host_cpu_name(),
            features: crate::llvm::host_cpu_features(),
        };
        runtime.add_from_summary(summary, use_object, &host)?;
        Ok(runtime)
    }

    /// The runtime's support in `dylib`, without helper code yet: `host_symbols` (the helpers' host
    /// callbacks), the atexit registry's entry points and the support module (this runtime's dso handle and
    /// the `atexit` wrapper). One runtime per JITDylib. Add the helpers with
    /// [`ResidentRuntime::add_from_summary`] or [`ResidentRuntime::add_library`].
    pub fn new(jit: &LlJit, dylib: JitDylib, host_symbols: &[(&str, u64)]) -> Result<Self> {
        let mut symbols = host_symbols.to_vec();
        symbols.push((resident::CXA_ATEXIT, AtExitRegistry::cxa_atexit_address()));
        symbols.push((resident::ATEXIT_IMPL, AtExitRegistry::atexit_impl_address()));
        jit.define_absolute_in(&dylib, &symbols).map_err(jit_error(
            "defining the host symbols and the atexit registry's entry points",
        ))?;
        let atexit = AtExitRegistry::new();
        let ctx = Context::new();
        let support = Module::parse_ir(
            &ctx,
            resident::support_ir(atexit.key()).as_bytes(),
            &format!("{RUNTIME_MODULE_PREFIX}support"),
        )?;
        jit.add_module_in(&dylib, support)
            .map_err(jit_error("adding the runtime's support module"))?;
        jit.lookup_in(&dylib, resident::DSO_HANDLE)
            .map_err(jit_error("materializing the runtime's dso handle"))?;
        Ok(ResidentRuntime {
            jit: jit.clone(),
            dylib,
            atexit,
            structors: Structors::default(),
            helper_symbols: BTreeSet::new(),
            report: ResidentReport::default(),
            shut_down: false,
            use_shared: true,
            image: None,
        })
    }

    /// Whether [`ResidentRuntime::add_from_summary`] maps the summary's shared runtime when it has one (default
    /// `true`).
    pub fn set_shared_runtime(&mut self, enabled: bool) {
        self.use_shared = enabled;
    }

    /// Adds the summary's helper code: with `use_object`, when the object runs on `target` (the JIT's), its
    /// shared runtime if it has one and [`ResidentRuntime::set_shared_runtime`] allows it, else its precompiled
    /// runtime object; otherwise its library bitcode. [`ResidentReport::notice`] says why a faster form was not
    /// used. Then runs the static constructors.
    pub fn add_from_summary(
        &mut self,
        summary: &Summary,
        use_object: bool,
        target: &ObjectTarget,
    ) -> Result<()> {
        let name = summary.path().display().to_string();
        let notice = match (use_object, summary.runtime_object()) {
            (false, _) => "precompiled runtime object not used (disabled by the host)".to_owned(),
            (true, None) => format!(
                "{name} has no precompiled runtime object (precompute-summary --object): the library bitcode \
                 was compiled at start-up"
            ),
            (true, Some(object)) => {
                let start = Instant::now();
                let runs = object.target.check_runs_on(target);
                self.report.load = start.elapsed();
                if runs.is_ok() && self.use_shared && object.shared.is_some() {
                    match self.add_shared_runtime(summary) {
                        Ok(()) => return Ok(()),
                        Err(e) => {
                            self.report.notice = Some(format!(
                                "shared runtime not used: {e}; the runtime object was linked by JITLink"
                            ))
                        }
                    }
                }
                let start = Instant::now();
                let checked = runs.and_then(|()| match summary.runtime_object_bytes() {
                    Ok(bytes) => Ok(bytes.unwrap_or_default()),
                    Err(e) => Err(e.to_string()),
                });
                self.report.load = start.elapsed();
                match checked {
                    Ok(bytes) => {
                        return self.add_object(
                            &name,
                            bytes,
                            &object.defined,
                            Structors::new(object.ctors.clone(), object.dtors.clone()),
                        )
                    }
                    Err(why) => format!(
                        "precompiled runtime object of {name} (for {}) not used: {why}; the library bitcode \
                         was compiled at start-up",
                        object.target
                    ),
                }
            }
        };
        self.add_library(&name, summary.library_bitcode()?)?;
        self.report.notice = Some(notice);
        Ok(())
    }

    /// Maps a private instance of the summary's shared runtime and makes it this runtime's helper code: reads
    /// and checks the image, has the system loader map it (no code of it runs), binds each import to what the
    /// JIT resolves for that name (host symbols first, as for JIT'd code) by writing every relocation target of
    /// the import, writes this runtime's registry key into the image's dso handle, defines each of the
    /// summary's helper symbols in the JITDylib at its address in the image (so scripts use the one instance),
    /// and runs the constructors. A summary without a shared runtime, a damaged or mismatched image, or one the
    /// loader refuses is an [`Error::Summary`] naming the summary file, raised before anything is defined in
    /// the JIT. Does not check the object's target: [`ResidentRuntime::add_from_summary`] does.
    pub fn add_shared_runtime(&mut self, summary: &Summary) -> Result<()> {
        let path = summary.path();
        let name = path.display().to_string();
        let fail = |message: String| Error::summary(path, format!("shared runtime: {message}"));
        let start = Instant::now();
        let (object, shared) = match summary.runtime_object() {
            Some(o) => match &o.shared {
                Some(s) => (o, s),
                None => {
                    return Err(fail(
                        "the summary has none (precompute-summary --shared-runtime)".into(),
                    ))
                }
            },
            None => return Err(fail("the summary has no runtime object".into())),
        };
        let bytes = summary
            .shared_runtime_bytes()?
            .ok_or_else(|| fail("missing".into()))?;
        let image = SharedImage::parse(bytes).map_err(fail)?;
        let missing: Vec<&str> = object
            .defined
            .iter()
            .chain(object.ctors.iter().chain(object.dtors.iter()))
            .filter(|n| {
                !image.exports.contains_key(n.as_str()) && !image.thread_locals.contains(n.as_str())
            })
            .map(String::as_str)
            .take(5)
            .collect();
        if !missing.is_empty() {
            return Err(fail(format!(
                "it does not export what the summary records: {}",
                missing.join(", ")
            )));
        }
        let dso = *image
            .exports
            .get(resident::DSO_HANDLE)
            .filter(|&&o| image.is_writable(o))
            .ok_or_else(|| fail(format!("no writable `{}`", resident::DSO_HANDLE)))?;
        self.report.load += start.elapsed();

        let start = Instant::now();
        let mapped = PrivateImage::open(bytes, "thinjit-runtime", resident::DSO_HANDLE, dso)
            .map_err(|e| fail(format!("cannot be mapped: {e}")))?;
        let weak: BTreeSet<&str> = shared.weak.iter().map(String::as_str).collect();
        let wanted: Vec<(&str, bool)> = image
            .imports
            .iter()
            .map(|n| (*n, weak.contains(n)))
            .collect();
        let resolved = self.jit.lookup_many_in(&self.dylib, &wanted).map_err(|f| {
            runtime_failure(
                &name,
                format!("binding the imports of the shared runtime of {name}"),
                f,
            )
        })?;
        let mut words: Vec<(u64, u64)> = image
            .slots
            .iter()
            .map(|slot| {
                let address = resolved.get(slot.import).copied().flatten().unwrap_or(0);
                let value = match slot.kind {
                    SlotKind::Address => address,
                    SlotKind::AddressPlusAddend => address.wrapping_add(slot.addend as u64),
                };
                (slot.offset, value)
            })
            .collect();
        words.push((dso, self.atexit.key()));
        mapped.write_words(&words);
        // Thread-local variables stay the loader's: scripts cannot refer to thread-local storage.
        let symbols: Vec<(&str, u64)> = object
            .defined
            .iter()
            .filter_map(|n| Some((n.as_str(), mapped.address(*image.exports.get(n.as_str())?))))
            .collect();
        self.jit
            .define_absolute_in(&self.dylib, &symbols)
            .map_err(|f| {
                runtime_failure(
                    &name,
                    format!("defining the symbols of the shared runtime of {name}"),
                    f,
                )
            })?;
        self.helper_symbols.extend(object.defined.iter().cloned());
        self.image = Some(mapped);
        self.report.materialize = start.elapsed();
        self.report.source = RuntimeSource::SharedObject;
        self.report.bytes = bytes.len();
        self.run_ctors(
            &name,
            Structors::new(object.ctors.clone(), object.dtors.clone()),
        )
    }

    /// Adds a precompiled runtime object (its defined symbols and structors recorded at build time).
    fn add_object(
        &mut self,
        name: &str,
        bytes: &[u8],
        defined: &[String],
        structors: Structors,
    ) -> Result<()> {
        let start = Instant::now();
        self.jit
            .add_object_file_in(&self.dylib, bytes, &format!("{name} (runtime object)"))
            .map_err(|f| {
                runtime_failure(name, format!("adding the runtime object of {name}"), f)
            })?;
        self.helper_symbols.extend(defined.iter().cloned());
        if let Some(first) = defined.first() {
            self.jit.lookup_in(&self.dylib, first).map_err(|f| {
                runtime_failure(name, format!("linking the runtime object of {name}"), f)
            })?;
        }
        self.report.materialize = start.elapsed();
        self.report.source = RuntimeSource::Object;
        self.report.bytes = bytes.len();
        self.run_ctors(name, structors)
    }

    /// Adds helper library bitcode (`name` names it in errors): parse, verify, check its target against the
    /// JIT's, take the structors out, redirect atexit, add, link now (unresolved references surface here),
    /// then run the static constructors in priority order.
    pub fn add_library(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let start = Instant::now();
        let ctx = Context::new();
        let mut module = Module::parse(&ctx, bytes, name)?;
        module.verify()?;
        let (jit_triple, jit_layout) = (self.jit.triple(), self.jit.data_layout());
        let layout = module.data_layout();
        if !layout.is_empty() && layout != jit_layout {
            return Err(Error::Target {
                triple: jit_triple,
                message: format!(
                    "{name}: data layout `{layout}` does not match the JIT's `{jit_layout}`"
                ),
            });
        }
        let triple = module.triple();
        if !triple.is_empty() && !crate::llvm::same_target(&triple, &jit_triple) {
            return Err(Error::Target {
                message: format!(
                    "{name}: target triple `{triple}` does not match the JIT's `{jit_triple}`"
                ),
                triple: jit_triple,
            });
        }
        let structors = resident::prepare_resident_library(&mut module);
        module.set_name(&format!("{RUNTIME_MODULE_PREFIX}runtime"));
        let defined = module.defined_symbols();
        let first = defined.iter().next().cloned();
        self.helper_symbols.extend(defined);
        self.report.load = start.elapsed();
        let start = Instant::now();
        self.jit
            .add_module_in_verified(&self.dylib, module)
            .map_err(|f| runtime_failure(name, format!("adding {name}"), f))?;
        drop(ctx);
        if let Some(first) = first {
            self.jit
                .lookup_in(&self.dylib, &first)
                .map_err(|f| runtime_failure(name, format!("compiling {name}"), f))?;
        }
        self.report.materialize = start.elapsed();
        self.report.source = RuntimeSource::Bitcode;
        self.report.bytes = bytes.len();
        self.run_ctors(name, structors)
    }

    /// Runs the constructors (timed) and keeps the destructors for [`ResidentRuntime::shutdown`].
    fn run_ctors(&mut self, name: &str, structors: Structors) -> Result<()> {
        let start = Instant::now();
        self.jit
            .run_structors_in(&self.dylib, structors.ctors())
            .map_err(|f| {
                runtime_failure(
                    name,
                    format!("running the static constructors of {name}"),
                    f,
                )
            })?;
        self.report.initializers = start.elapsed();
        self.structors.extend(structors);
        Ok(())
    }

    /// The key of the runtime's atexit registry (what its dso handle holds).
    pub fn atexit_key(&self) -> u64 {
        self.atexit.key()
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
        self.dylib.clone()
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
            .run_structors_in(&self.dylib, self.structors.dtors())
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
