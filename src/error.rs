//! The crate's one error type.
//!
//! Every variant names the stage that failed (parse, verify, link, optimize, summary, plan, import, jit), the
//! file, module or symbol involved, and — where LLVM produced one — LLVM's own message, unchanged. Nothing in
//! the library panics on bad input; everything comes back as an [`Error`].

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

    /// A symbol-level problem: missing, clashing, or unusable.
    #[error("symbol `{symbol}`: {message}")]
    Symbol { symbol: String, message: String },

    /// ORC reported an error while adding, materializing, looking up or removing code.
    #[error("jit: {message}")]
    Jit { message: String },

    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration: {message}")]
    Config { message: String },

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
