//! `EngineBuilder`: everything an [`Engine`] is made from, set before it exists.

use std::path::PathBuf;
use std::sync::Arc;

use super::tier::TieringConfig;
use super::Engine;
use crate::cache::ScriptCache;
use crate::import::ImportConfig;
use crate::optimize::OptLevel;
use crate::summary::Summary;
use crate::Result;

/// Where the helper runtime lives at run time: an engine setting ([`EngineBuilder::runtime_mode`]), which also
/// decides what an import may rely on (the planner and importer take it as an argument, e.g.
/// [`crate::import::import`]).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum RuntimeMode {
    /// The summary's promoted helper library is JIT'd once into the engine: promoted `<name>.llvm.<hash>`
    /// symbols exist, so imports may reference them.
    #[default]
    JitResident,
    /// The helpers are compiled natively into the host: promoted names do not exist. A `static` callee or
    /// `static const` table an import needs is copied in as a private/internal copy; a function that reaches
    /// `static` mutable or thread-local state is not importable ([`crate::summary::NotEligible::LocalState`]).
    HostNative,
}

impl std::fmt::Display for RuntimeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RuntimeMode::JitResident => "jit-resident",
            RuntimeMode::HostNative => "host-native",
        })
    }
}

impl std::str::FromStr for RuntimeMode {
    type Err = String;

    /// `jit-resident` or `host-native` (what [`RuntimeMode`]'s `Display` prints).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "jit-resident" => Ok(RuntimeMode::JitResident),
            "host-native" => Ok(RuntimeMode::HostNative),
            other => Err(format!(
                "unknown runtime mode `{other}` (jit-resident, host-native)"
            )),
        }
    }
}

/// How helper bodies get into a script before optimization.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// No import: every helper call goes to the one runtime copy.
    None,
    /// thinjit: summary-driven import of the helpers worth inlining.
    #[default]
    Summary,
    /// The whole helper library linked in as `available_externally`, then optimized.
    FullLink,
    /// The seed's first attempt: the whole helper library linked in with strong definitions, then everything
    /// that came from it internalized. Every script gets private copies of the helpers' globals and runs the
    /// helpers' static initializers again: it breaks "one instance" and "initializers once" (kept to measure
    /// and to show that breakage).
    FullLinkInternalize,
    /// LLVM's own summary-based `FunctionImporter`, run in-process the way `llvm-lto -thinlto-action=import`
    /// runs it ([`import_with_llvm`](crate::import::import_with_llvm)) on the library bitcode with its ThinLTO
    /// summary, at the import configuration's thresholds: the reference thinjit's importer is measured against.
    /// JIT-resident mode only (LLVM's imports refer to the promoted names only the resident library defines).
    LlvmImporter,
}

impl std::str::FromStr for Strategy {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "none" => Ok(Strategy::None),
            "summary" => Ok(Strategy::Summary),
            "full-link" => Ok(Strategy::FullLink),
            "full-link-internalize" => Ok(Strategy::FullLinkInternalize),
            "llvm-importer" => Ok(Strategy::LlvmImporter),
            other => Err(format!(
                "unknown strategy `{other}` (expected none, summary, full-link, full-link-internalize or \
                 llvm-importer)"
            )),
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Strategy::None => "none",
            Strategy::Summary => "summary",
            Strategy::FullLink => "full-link",
            Strategy::FullLinkInternalize => "full-link-internalize",
            Strategy::LlvmImporter => "llvm-importer",
        })
    }
}

/// The C and C++ runtime libraries JIT'd code may call into (found with `dlopen`, normally already loaded).
pub const DEFAULT_RUNTIME_LIBRARIES: &[&str] =
    &["libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1"];

/// Configures and builds an [`Engine`] (in the style of cranelift-jit's `JITBuilder`).
///
/// ```no_run
/// use thinjit::jit::EngineBuilder;
/// use thinjit::jit::RuntimeMode;
/// let engine = EngineBuilder::new()
///     .runtime_mode(RuntimeMode::HostNative)
///     .shared_library("/path/to/libhelpers.so")
///     .build()
///     .unwrap();
/// ```
#[derive(Clone)]
pub struct EngineBuilder {
    pub(crate) host_symbols: Vec<(String, u64)>,
    pub(crate) process_symbols: bool,
    pub(crate) shared_libraries: Vec<PathBuf>,
    pub(crate) runtime_libraries: Vec<PathBuf>,
    pub(crate) helper_library: Option<(String, Vec<u8>)>,
    pub(crate) summary: Option<Arc<Summary>>,
    pub(crate) import_config: ImportConfig,
    pub(crate) mode: RuntimeMode,
    pub(crate) opt_level: OptLevel,
    pub(crate) strategy: Strategy,
    pub(crate) lazy: bool,
    pub(crate) keep_optimized_ir: bool,
    pub(crate) save_temps: Option<PathBuf>,
    pub(crate) runtime_object: bool,
    pub(crate) shared_runtime: bool,
    pub(crate) cache: Option<Arc<ScriptCache>>,
    pub(crate) cache_dir: Option<(PathBuf, u64, u64)>,
    pub(crate) isolation: Option<super::Isolation>,
    pub(crate) target_check: bool,
    pub(crate) tiering: Option<TieringConfig>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("host_symbols", &self.host_symbols)
            .field("process_symbols", &self.process_symbols)
            .field("shared_libraries", &self.shared_libraries)
            .field(
                "summary",
                &self.summary.as_ref().map(|s| s.path().to_owned()),
            )
            .field("mode", &self.mode)
            .field("strategy", &self.strategy)
            .field("lazy", &self.lazy)
            .finish_non_exhaustive()
    }
}

impl Default for EngineBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EngineBuilder {
    /// Defaults: JIT-resident, summary strategy, O3, eager, no process symbols, the C/C++ runtime libraries.
    pub fn new() -> Self {
        EngineBuilder {
            host_symbols: Vec::new(),
            process_symbols: false,
            shared_libraries: Vec::new(),
            runtime_libraries: DEFAULT_RUNTIME_LIBRARIES
                .iter()
                .map(PathBuf::from)
                .collect(),
            helper_library: None,
            summary: None,
            import_config: ImportConfig::default(),
            mode: RuntimeMode::JitResident,
            opt_level: OptLevel::O3,
            strategy: Strategy::Summary,
            lazy: false,
            keep_optimized_ir: false,
            save_temps: None,
            runtime_object: true,
            shared_runtime: true,
            cache: None,
            cache_dir: None,
            isolation: None,
            target_check: true,
            tiering: None,
        }
    }

    /// Registers a host symbol: JIT'd code referring to `name` gets `address` (a function or data address).
    pub fn host_symbol(mut self, name: &str, address: u64) -> Self {
        self.host_symbols.push((name.to_owned(), address));
        self
    }

    /// Also resolves from every symbol the host process has loaded (off by default).
    pub fn process_symbols(mut self, enabled: bool) -> Self {
        self.process_symbols = enabled;
        self
    }

    /// Resolves from the shared library at `path` (host-native helpers, for example).
    pub fn shared_library(mut self, path: impl Into<PathBuf>) -> Self {
        self.shared_libraries.push(path.into());
        self
    }

    /// Replaces the C/C++ runtime libraries searched for symbols no other source defines
    /// ([`DEFAULT_RUNTIME_LIBRARIES`]).
    pub fn runtime_libraries(mut self, libraries: Vec<PathBuf>) -> Self {
        self.runtime_libraries = libraries;
        self
    }

    /// The helper summary: the index and shards imports are planned from, and (JIT-resident mode) the promoted
    /// helper library that is JIT'd once. Checked against the JIT's target when the engine is built.
    pub fn summary(mut self, summary: Arc<Summary>) -> Self {
        self.summary = Some(summary);
        self
    }

    /// The helper library to JIT once in JIT-resident mode, as bitcode or textual IR, named `name` in errors.
    /// Overrides the summary's library.
    pub fn helper_library(mut self, name: &str, bitcode: Vec<u8>) -> Self {
        self.helper_library = Some((name.to_owned(), bitcode));
        self
    }

    /// The import pass configuration (LLVM's FunctionImporter knobs, allow/deny lists, the instruction cap).
    pub fn import_config(mut self, config: ImportConfig) -> Self {
        self.import_config = config;
        self
    }

    /// Where the helper runtime lives (default [`RuntimeMode::JitResident`]); every script's import is planned
    /// for it.
    pub fn runtime_mode(mut self, mode: RuntimeMode) -> Self {
        self.mode = mode;
        self
    }

    /// The optimization level run on every script.
    pub fn opt_level(mut self, level: OptLevel) -> Self {
        self.opt_level = level;
        self
    }

    /// The import strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Import and optimize inside ORC's IR transform, when a script's symbol is first looked up (`true`), or
    /// eagerly in [`Engine::add_script`] (`false`, the default).
    pub fn lazy(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }

    /// Keeps each script's optimized IR in its [`super::ScriptReport`] (for tests and `--save-temps`).
    pub fn keep_optimized_ir(mut self, keep: bool) -> Self {
        self.keep_optimized_ir = keep;
        self
    }

    /// Writes what each stage of every script produced into `dir` (created when the engine is built), one file
    /// per stage named `<script>.<NN>-<stage>.<ext>` ([`Stage::temp_file_name`](super::Stage::temp_file_name)):
    /// bitcode after parse, verify, plan, import and optimize, the object after codegen, the linked symbols'
    /// addresses after link (rustc's `-C save-temps`). The files are listed in
    /// [`ScriptReport::temps`](super::ScriptReport::temps).
    pub fn save_temps(mut self, dir: impl Into<PathBuf>) -> Self {
        self.save_temps = Some(dir.into());
        self
    }

    /// In JIT-resident mode, add the summary's precompiled runtime object (`precompute-summary --object`)
    /// when its target suits the JIT (`true`, the default), instead of compiling the library bitcode. With
    /// `false`, or when the object does not suit, the bitcode is compiled and
    /// [`StartupReport::notice`](super::StartupReport::notice) says why.
    pub fn runtime_object(mut self, enabled: bool) -> Self {
        self.runtime_object = enabled;
        self
    }

    /// In JIT-resident mode, with the runtime object in use: map the summary's shared runtime
    /// (`precompute-summary --shared-runtime`) with the system loader when it has one (`true`, the default)
    /// instead of linking the object with JITLink. When it cannot be used, the object is linked and
    /// [`StartupReport::notice`](super::StartupReport::notice) says why.
    pub fn shared_runtime(mut self, enabled: bool) -> Self {
        self.shared_runtime = enabled;
        self
    }

    /// Caches compiled scripts (eager mode): a script whose IR, summary, import configuration, strategy,
    /// optimization level and target were compiled before is added from its cached object, skipping import,
    /// optimization and code generation. The cache may be shared by several engines.
    pub fn cache(mut self, cache: impl Into<Arc<ScriptCache>>) -> Self {
        self.cache = Some(cache.into());
        self
    }

    /// Caches compiled scripts in `dir` (created when the engine is built) bounded to `disk_limit` bytes on
    /// disk, and `memory_limit` bytes in memory; safe to share between processes. See [`EngineBuilder::cache`].
    pub fn cache_dir(
        mut self,
        dir: impl Into<PathBuf>,
        memory_limit: u64,
        disk_limit: u64,
    ) -> Self {
        self.cache_dir = Some((dir.into(), memory_limit, disk_limit));
        self
    }

    /// Optimizes and compiles scripts in helper processes ([`Isolation`](super::Isolation): the
    /// `thinjit-worker` executable, how many, the time limit per script): an LLVM crash, abort or hang while
    /// compiling a script is then an [`Error::CompileAborted`](crate::Error::CompileAborted) or
    /// [`Error::Timeout`](crate::Error::Timeout), never the host's end. The engine links the returned object
    /// itself. Eager mode only.
    pub fn isolate_codegen(mut self, isolation: super::Isolation) -> Self {
        self.isolation = Some(isolation);
        self
    }

    /// Runs the pre-codegen target check ([`crate::check::module`]) on every script (default `true`). Turning
    /// it off lets scripts the check would refuse reach LLVM: only for testing isolated compilation.
    pub fn target_check(mut self, enabled: bool) -> Self {
        self.target_check = enabled;
        self
    }

    /// Tiered compilation: scripts start without import, with a cheap pipeline, behind redirectable stubs
    /// that count their calls; a script whose entry reaches `config.threshold_calls` calls is recompiled in the
    /// background with summary import guided by its own call-site counts, and its stubs are switched (see
    /// [`super::tier`]). Eager mode only, no cache; strategy `summary` (or `none`).
    pub fn tiering(mut self, config: TieringConfig) -> Self {
        self.tiering = Some(config);
        self
    }

    /// Builds the engine: creates the LLJIT, registers symbol sources, and in JIT-resident mode adds the helper
    /// library and runs its static constructors.
    pub fn build(self) -> Result<Engine> {
        Engine::new(self)
    }
}
