//! The crate's one error type.
//!
//! Every variant names the stage that failed (parse, verify, link, optimize, summary, plan, import, jit), the
//! file, module or symbol involved, and — where LLVM produced one — LLVM's own message, unchanged. Nothing in
//! the library panics on bad input; everything comes back as an [`Error`].
//!
//! Errors a program branches on are variants with fields (cranelift-jit's `ModuleError` is the model):
//! [`Error::UnresolvedSymbols`], [`Error::UndefinedSymbol`], [`Error::DuplicateDefinition`], [`Error::Codegen`],
//! [`Error::CompileAborted`], [`Error::Timeout`], [`Error::InvalidEntry`]. What ORC said comes back as data
//! ([`OrcFailure`]: each error's [`OrcErrorKind`] and the symbols it names, handed over by the C++ shim), through
//! [`std::error::Error::source`]; nothing in thinjit parses LLVM's English.
//!
//! ```
//! use thinjit::jit::EngineBuilder;
//! use thinjit::Error;
//! let engine = EngineBuilder::new().build().unwrap();
//! let script = b"declare i32 @nowhere()\ndefine i32 @f() {\n %r = call i32 @nowhere()\n ret i32 %r\n}\n";
//! match engine.add_script("s", script) {
//!     Err(Error::UnresolvedSymbols { script, symbols, .. }) => {
//!         assert_eq!(script, "s");
//!         assert_eq!(symbols, ["nowhere"]);
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```

use std::path::PathBuf;
use std::time::Duration;

/// Result alias used throughout thinjit.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, where, and LLVM's own words for it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// LLVM could not parse textual IR or bitcode. `what` is the file name or a description of the buffer.
    #[error("cannot parse {what}: {message}")]
    Parse { what: String, message: String },

    /// A module failed LLVM's verifier; `message` is the verifier's text.
    #[error("{what} does not verify: {message}")]
    Verify { what: String, message: String },

    /// Linking two modules failed (for example, both define the same strong symbol).
    #[error("linking {what} failed: {message}")]
    Link { what: String, message: String },

    /// A new-pass-manager pipeline could not be parsed or run.
    #[error("pass pipeline `{pipeline}` failed on {what}: {message}")]
    Passes {
        pipeline: String,
        what: String,
        message: String,
    },

    /// Target lookup, target machine creation or code generation failed.
    #[error("target {triple}: {message}")]
    Target { triple: String, message: String },

    /// A summary file is corrupt, truncated, stale, or does not match the running LLVM or target.
    #[error("summary {}: {message}", path.display())]
    Summary { path: PathBuf, message: String },

    /// Building a summary from helper inputs failed.
    #[error("building summary from {what}: {message}")]
    SummaryBuild { what: String, message: String },

    /// Planning or performing imports into a script failed.
    #[error("importing into {module}: {message}")]
    Import { module: String, message: String },

    /// Symbols `script` references that no script, helper, host symbol or library defines (found when the
    /// script was linked, or when its static constructors were looked up).
    #[error("script `{script}`: unresolved symbol{} {}", plural(symbols.len()), quoted(symbols))]
    UnresolvedSymbols {
        /// The script (or helper library) that references them.
        script: String,
        /// The names, as ORC reported them.
        symbols: Vec<String>,
        /// ORC's own errors, when ORC found them.
        #[source]
        source: Option<OrcFailure>,
    },

    /// Symbols the JIT-resident runtime library of `summary` references that no host symbol, shared library or
    /// (opt-in) process symbol defines: typically the host callbacks the runtime calls, which the host must
    /// register ([`crate::jit::EngineBuilder::host_symbol`], `shared_library`, `process_symbols`).
    #[error(
        "the runtime library of summary `{summary}`: unresolved symbol{} {} (register the host callbacks it calls)",
        plural(symbols.len()),
        quoted(symbols)
    )]
    RuntimeUnresolvedSymbols {
        /// The summary whose runtime library references them.
        summary: String,
        /// The names, as ORC reported them.
        symbols: Vec<String>,
        /// ORC's own errors.
        #[source]
        source: Option<OrcFailure>,
    },

    /// A name was looked up that nothing in the engine defines.
    #[error("symbol `{symbol}` is not defined by any script, helper or host symbol")]
    UndefinedSymbol {
        /// The name looked up.
        symbol: String,
    },

    /// A symbol was defined a second time: a script redefining a helper or another script's symbol.
    #[error("symbol `{symbol}` is defined by {} and again by {second}", first.as_deref().unwrap_or("an earlier module"))]
    DuplicateDefinition {
        /// The symbol.
        symbol: String,
        /// Who defined it first, when known (the helper runtime, a script).
        first: Option<String>,
        /// Who tried to define it again.
        second: String,
        /// ORC's error, when ORC found the clash.
        #[source]
        source: Option<OrcFailure>,
    },

    /// Code generation of a script failed (an LLVM error-severity diagnostic or a code generator error).
    #[error("code generation of `{script}`{} failed: {message}", function.as_deref().map(|f| format!(" (function `{f}`)")).unwrap_or_default())]
    Codegen {
        /// The script.
        script: String,
        /// The function being compiled, when LLVM said.
        function: Option<String>,
        /// LLVM's message.
        message: String,
    },

    /// LLVM aborted or crashed while compiling a script in an isolated helper process.
    #[error("LLVM aborted compiling `{script}`: {message}")]
    CompileAborted {
        /// The script.
        script: String,
        /// What the helper process reported (LLVM's fatal-error reason, or the signal).
        message: String,
    },

    /// Compiling a script took longer than allowed (isolated compilation).
    #[error("compiling `{script}` timed out after {limit:?}")]
    Timeout {
        /// The script.
        script: String,
        /// The time limit.
        limit: Duration,
    },

    /// A symbol asked for as an entry point is not a function.
    #[error("`{symbol}` cannot be an entry point: {reason}")]
    InvalidEntry {
        /// The symbol.
        symbol: String,
        /// Why (for example: it is a variable).
        reason: String,
    },

    /// A symbol cannot be used as asked (for example, extracting the body of a declaration).
    #[error("symbol `{symbol}`: {message}")]
    UnusableSymbol { symbol: String, message: String },

    /// ORC reported an error while adding, materializing, looking up or removing code.
    #[error("jit: {context}: {source}")]
    Jit {
        /// What thinjit was doing (and with which script, library or symbol).
        context: String,
        /// ORC's errors, as data.
        #[source]
        source: OrcFailure,
    },

    /// State shared between threads became unusable because a thread panicked while holding its lock; the
    /// operation was not done (nothing was half-registered).
    #[error("internal state ({what}) is unusable: a thread panicked while holding its lock")]
    Poisoned {
        /// Which state.
        what: &'static str,
    },

    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration: {message}")]
    Config { message: String },

    /// The JIT's target cannot compile the script (found by [`crate::check`] before code generation, where
    /// LLVM would end the process, crash, hang or miscompile).
    #[error("the target cannot compile `{script}`{}: {message}", function.as_deref().map(|f| format!(" (function `{f}`)")).unwrap_or_default())]
    Unsupported {
        /// The script.
        script: String,
        /// The function (or global) concerned, when there is one.
        function: Option<String>,
        /// What is unsupported, and the limit or target it exceeds.
        message: String,
    },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A summary-file error naming the file.
    pub fn summary(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Summary {
            path: path.into(),
            message: message.into(),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn quoted(symbols: &[String]) -> String {
    symbols
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kinds of ORC error thinjit tells apart (ORC's error classes in `llvm/ExecutionEngine/Orc/Core.h` and
/// `Shared/OrcError.h`). Crosses the C++ shim (`enum class ThinjitOrcErrorKind`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrcErrorKind {
    /// Any other error (a string error, a JITLink error, ...).
    Other = 0,
    /// `SymbolsNotFound`: a lookup or a link found no definition for these names.
    SymbolsNotFound = 1,
    /// `SymbolsCouldNotBeRemoved`.
    SymbolsCouldNotBeRemoved = 2,
    /// `DuplicateDefinition`: the name is already defined in the JITDylib.
    DuplicateDefinition = 3,
    /// `FailedToMaterialize`: these symbols' materialization failed (the cause was reported separately).
    FailedToMaterialize = 4,
    /// `MissingSymbolDefinitions`: an object defined fewer symbols than its unit claimed.
    MissingSymbolDefinitions = 5,
    /// `UnexpectedSymbolDefinitions`: an object defined symbols its unit did not claim.
    UnexpectedSymbolDefinitions = 6,
    /// `ResourceTrackerDefunct`: the tracker was already removed.
    ResourceTrackerDefunct = 7,
}

/// One ORC error: its kind, the symbols it names, and ORC's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrcError {
    /// Which ORC error class.
    pub kind: OrcErrorKind,
    /// The symbol names it carries (empty for kinds that carry none).
    pub symbols: Vec<String>,
    /// ORC's message.
    pub message: String,
}

/// What ORC said about one failed operation: the error(s) the call returned, and the errors the session
/// reported asynchronously while it ran (a failed link reports the missing symbols there and returns
/// `FailedToMaterialize`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrcFailure {
    /// The errors the call returned (an ORC error list has several).
    pub errors: Vec<OrcError>,
    /// Errors ORC reported through the session's error reporter meanwhile.
    pub reported: Vec<OrcError>,
}

impl OrcFailure {
    /// A failure that did not come from ORC's error classes (for example a name with a NUL byte).
    pub fn other(message: impl Into<String>) -> Self {
        OrcFailure {
            errors: vec![OrcError {
                kind: OrcErrorKind::Other,
                symbols: Vec::new(),
                message: message.into(),
            }],
            reported: Vec::new(),
        }
    }

    /// Every error, returned then reported.
    pub fn all(&self) -> impl Iterator<Item = &OrcError> {
        self.errors.iter().chain(&self.reported)
    }

    /// The symbols named by errors of `kind`, in order, without repeats.
    pub fn symbols(&self, kind: OrcErrorKind) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in self.all().filter(|e| e.kind == kind) {
            for s in &e.symbols {
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
        }
        out
    }

    /// Whether any error is of `kind`.
    pub fn has(&self, kind: OrcErrorKind) -> bool {
        self.all().any(|e| e.kind == kind)
    }
}

impl std::fmt::Display for OrcFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for e in self.all() {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            f.write_str(&e.message)?;
        }
        if first {
            f.write_str("(ORC gave no message)")?;
        }
        Ok(())
    }
}

impl std::error::Error for OrcFailure {}
