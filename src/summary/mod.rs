//! The build-time half: a module summary index of the helper library with per-function bitcode shards.
//!
//! In: helper bitcode, textual IR or C/C++ sources ([`Summary::build`]), or a summary file ([`Summary::load`]).
//! Out: a [`Summary`]: its [`SummaryHeader`], its [`SummaryIndex`], and checksummed byte slices of each
//! function's shard and of the promoted helper library, read straight from the loaded file.
//!
//! ```no_run
//! use thinjit::summary::{BuildOptions, Summary};
//! # fn main() -> thinjit::Result<()> {
//! let summary = Summary::build(&["helpers/".into()], &BuildOptions::default())?;
//! summary.write("helpers.thinjit".as_ref())?;
//! let loaded = Summary::load("helpers.thinjit".as_ref())?;
//! let f = loaded.index().function("CreateWrappedValueFromInt").unwrap();
//! let shard_bitcode: &[u8] = loaded.shard(f)?;
//! # let _ = shard_bitcode; Ok(()) }
//! ```

mod analyze;
mod builder;
pub(crate) use builder::promote_library_with_summary;
pub use shared::default_linker;
mod file;
pub mod inputs;
pub(crate) mod shared;
mod types;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use file::{
    checksum64, InputInfo, ObjectTarget, RuntimeObject, SharedRuntime, SummaryHeader, SummaryKind,
    FORMAT_VERSION, MAGIC,
};
pub use types::*;

use crate::llvm::MemoryBuffer;
use crate::{Error, Result};

/// A stage of [`Summary::build`], for progress reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Reading inputs and compiling C/C++ sources.
    Compile,
    /// The per-input work: parsing, verifying, promoting and analyzing each input, extracting its shards.
    Parse,
    /// Merging: resolving symbols across inputs and combining the partial summaries.
    Link,
    /// Merging: extracting again the shards that read a constant defined in another input.
    Analyze,
}

/// A progress report: `done` of `total` items of `stage`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub stage: Stage,
    pub done: usize,
    pub total: usize,
}

/// A progress callback; called from rayon worker threads.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// How to build a summary.
#[derive(Clone, Default)]
pub struct BuildOptions {
    /// Extra arguments for clang when compiling C/C++ inputs (after `-O2 -fPIC` and each input's own flags;
    /// relative include paths are relative to the current directory). See [`inputs`] for the whole command.
    pub clang_args: Vec<String>,
    /// Extra arguments for clang on C sources only (after `clang_args`), e.g. `-std=c11`.
    pub c_args: Vec<String>,
    /// Extra arguments for clang on C++ sources only (after `clang_args`), e.g. `-std=c++17`.
    pub cxx_args: Vec<String>,
    /// `compile_commands.json` databases: every C/C++ entry is an input, compiled with its own flags.
    pub compile_commands: Vec<PathBuf>,
    /// Worker threads; `None` uses rayon's default (one per core).
    pub jobs: Option<usize>,
    /// Called as work progresses.
    pub progress: Option<ProgressFn>,
    /// Also compile the promoted helper library to a native object for this target and store it in the
    /// summary (for engines that JIT the runtime: adding an object skips code generation at start-up).
    pub object: Option<ObjectTarget>,
    /// With `object`: also link the runtime into a shared object the system loader maps at engine start-up
    /// (instead of JITLink linking the object), stored in the summary. ELF x86-64 only.
    pub shared_runtime: bool,
    /// The linker for `shared_runtime` (default: [`default_linker`], `ld.lld` beside LLVM's tools or
    /// else `ld`).
    pub linker: Option<PathBuf>,
}

impl std::fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildOptions")
            .field("clang_args", &self.clang_args)
            .field("c_args", &self.c_args)
            .field("cxx_args", &self.cxx_args)
            .field("compile_commands", &self.compile_commands)
            .field("jobs", &self.jobs)
            .field("progress", &self.progress.is_some())
            .field("object", &self.object)
            .field("shared_runtime", &self.shared_runtime)
            .field("linker", &self.linker)
            .finish()
    }
}

impl BuildOptions {
    fn report(&self, stage: Stage, done: usize, total: usize) {
        if let Some(p) = &self.progress {
            p(Progress { stage, done, total });
        }
    }

    /// Runs `f` on a rayon pool with `jobs` threads (or the global pool).
    fn run<T: Send>(&self, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        match self.jobs {
            None => f(),
            Some(n) => rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .build()
                .map_err(|e| Error::Config {
                    message: format!("cannot start {n} worker threads: {e}"),
                })?
                .install(f),
        }
    }
}

/// The bytes of a summary file: mapped by LLVM from disk, or owned.
enum Storage {
    Mapped(MemoryBuffer),
    Owned(Vec<u8>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped(b) => b.as_bytes(),
            Storage::Owned(v) => v,
        }
    }
}

/// A summary: header and index decoded, shards and library left in the file's bytes until asked for.
///
/// `Send + Sync`: share one behind an `Arc` across threads.
pub struct Summary {
    storage: Storage,
    path: PathBuf,
    header: SummaryHeader,
    index: SummaryIndex,
    shard_area_start: usize,
    /// The library linked from its parts, once asked for (summaries with more than one part).
    linked: std::sync::OnceLock<Vec<u8>>,
}

impl std::fmt::Debug for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Summary")
            .field("path", &self.path)
            .field("kind", &self.header.kind)
            .field("functions", &self.index.functions.len())
            .field("variables", &self.index.variables.len())
            .field("bytes", &self.storage.bytes().len())
            .finish()
    }
}

impl Summary {
    /// Builds a summary from files (`.bc`, `.ll`, `.c`, `.cpp`) and directories of them.
    /// See [`inputs`] for how directories and `compile_commands.json` databases are expanded.
    pub fn build(inputs: &[PathBuf], options: &BuildOptions) -> Result<Summary> {
        Self::build_reported(inputs, options).map(|(summary, _)| summary)
    }

    /// [`Summary::build`], also returning which files were picked (with their flags) and which were skipped
    /// and why.
    pub fn build_reported(
        inputs: &[PathBuf],
        options: &BuildOptions,
    ) -> Result<(Summary, inputs::InputReport)> {
        options.run(|| {
            let mut report = inputs::select_inputs(inputs, options)?;
            let units = builder::load_inputs(&mut report, options)?;
            // The one-shot build is the distributed one in one process: the same partials, the same merge,
            // so both give the same bytes.
            let partials = builder::build_parts(units, options)?;
            let built = builder::merge(&partials, options)?;
            Ok((Self::from_built(built, "<built summary>")?, report))
        })
    }

    /// Per-input mode: one partial summary per input (after expanding directories), for [`Summary::merge`].
    /// Each carries all the per-input work: the input checked, promoted and analyzed, its shards extracted, its
    /// promoted bitcode. Partial summaries can be made on different machines, in any grouping.
    pub fn build_partials(inputs: &[PathBuf], options: &BuildOptions) -> Result<Vec<Summary>> {
        options.run(|| {
            let mut report = inputs::select_inputs(inputs, options)?;
            let units = builder::load_inputs(&mut report, options)?;
            builder::build_parts(units, options)
        })
    }

    /// Combines partial summaries into the summary a one-shot [`Summary::build`] over the same inputs gives,
    /// byte for byte. Inputs may come in any order. Only cross-input work is done here: symbol resolution
    /// (strong definitions once, the winning copy of weak ones), the index, the few shards that read a constant
    /// defined in another input (re-extracted with its definition), and the file layout. The library parts are
    /// not linked (see [`Summary::library_bitcode`]) unless a runtime object is asked for.
    pub fn merge(partials: &[Summary], options: &BuildOptions) -> Result<Summary> {
        options.run(|| Self::from_built(builder::merge(partials, options)?, "<merged summary>"))
    }

    fn from_built(built: builder::Built, name: &str) -> Result<Summary> {
        let bytes = file::encode(&built.header, &built.index, &built.shard_area);
        Self::from_bytes(bytes, name)
    }

    /// Loads a summary file. LLVM maps the file; only the header and index are decoded (time proportional to
    /// the index), shards are checked when asked for. Checks the magic number, the format version and the LLVM
    /// version.
    pub fn load(path: &Path) -> Result<Summary> {
        let buffer = MemoryBuffer::from_file(path)?;
        Self::from_storage(Storage::Mapped(buffer), path.to_owned())
    }

    /// A summary from bytes in memory; `name` stands for the path in errors.
    pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Result<Summary> {
        Self::from_storage(Storage::Owned(bytes), PathBuf::from(name))
    }

    fn from_storage(storage: Storage, path: PathBuf) -> Result<Summary> {
        let decoded = file::decode(storage.bytes()).map_err(|m| Error::summary(&path, m))?;
        let ours = crate::llvm::llvm_version();
        if decoded.header.llvm_version != ours {
            return Err(Error::summary(
                &path,
                format!(
                    "written by LLVM {}, but thinjit runs LLVM {ours}; rebuild the summary",
                    decoded.header.llvm_version
                ),
            ));
        }
        Ok(Summary {
            storage,
            path,
            header: decoded.header,
            index: decoded.index,
            shard_area_start: decoded.shard_area_start,
            linked: std::sync::OnceLock::new(),
        })
    }

    /// Writes the summary atomically: a temporary file in the same directory (unique per process and call),
    /// fsync, rename over `path`, fsync of the directory. Readers see the old file or the new one, never a
    /// mix; a failed write removes its temporary file and leaves `path` as it was. Temporary files left by a
    /// writer that was killed (its process no longer exists) are removed first.
    pub fn write(&self, path: &Path) -> Result<()> {
        use crate::atomic_file::{parent_dir, temporary_prefix, write_atomically};
        remove_stale_temporaries(&parent_dir(path), &temporary_prefix(path));
        write_atomically(path, self.storage.bytes()).map_err(|e| Error::io(path, e))
    }

    /// The file's bytes (deterministic: equal inputs give equal bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.storage.bytes().to_vec()
    }

    /// The header.
    pub fn header(&self) -> &SummaryHeader {
        &self.header
    }

    /// The index.
    pub fn index(&self) -> &SummaryIndex {
        &self.index
    }

    /// The file this summary was loaded from (or the name given for an in-memory summary).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn area_slice(&self, r: &ShardRef, what: &str) -> Result<&[u8]> {
        let area = &self.storage.bytes()[self.shard_area_start..];
        let bytes = usize::try_from(r.offset)
            .ok()
            .zip(usize::try_from(r.len).ok())
            .and_then(|(o, l)| area.get(o..o.checked_add(l)?))
            .ok_or_else(|| Error::summary(&self.path, format!("{what}: lies outside the file")))?;
        if checksum64(bytes) != r.checksum {
            return Err(Error::summary(
                &self.path,
                format!("{what}: damaged (checksum mismatch)"),
            ));
        }
        Ok(bytes)
    }

    /// The bitcode of `f`'s shard, checksum verified.
    pub fn shard(&self, f: &FunctionSummary) -> Result<&[u8]> {
        let r = f.shard.as_ref().ok_or_else(|| {
            Error::summary(
                &self.path,
                format!("function `{}` has no shard (not importable)", f.name),
            )
        })?;
        self.area_slice(r, &format!("shard of function `{}`", f.name))
    }

    /// The bitcode of the whole promoted helper library (for engines that JIT the runtime), checksum verified,
    /// with its ThinLTO module summary. It keeps its `llvm.global_ctors`; [`SummaryIndex::initializers`] lists
    /// the same constructors by name. A library of several parts (one per input) is linked, in input order, on
    /// the first call, and kept.
    pub fn library_bitcode(&self) -> Result<&[u8]> {
        if let Some(linked) = self.linked.get() {
            return Ok(linked);
        }
        let parts = self.library_parts()?;
        if let [one] = parts.as_slice() {
            return Ok(one.1);
        }
        let linked = builder::link_library(&parts, &self.header)?;
        // Another thread may have linked it first: the same bytes either way.
        let _ = self.linked.set(linked);
        self.linked
            .get()
            .map(Vec::as_slice)
            .ok_or_else(|| Error::summary(&self.path, "library bitcode not kept"))
    }

    /// The library's parts, checksum verified: per input (name as given) its promoted bitcode.
    pub fn library_parts(&self) -> Result<Vec<(&str, &[u8])>> {
        let names = self.header.inputs.iter().map(|i| i.name.as_str());
        if self.header.library_parts.len() != self.header.inputs.len() {
            return Err(Error::summary(
                &self.path,
                format!(
                    "damaged header: {} library parts for {} inputs",
                    self.header.library_parts.len(),
                    self.header.inputs.len()
                ),
            ));
        }
        names
            .zip(&self.header.library_parts)
            .map(|(name, r)| {
                let what = format!("library bitcode (the part of `{name}`)");
                Ok((name, self.area_slice(r, &what)?))
            })
            .collect()
    }

    /// The precompiled runtime object's description, if the summary has one.
    pub fn runtime_object(&self) -> Option<&RuntimeObject> {
        self.header.runtime_object.as_ref()
    }

    /// The bytes of the shared runtime (`precompute-summary --shared-runtime`), checksum verified (`None` when
    /// the summary has none).
    pub fn shared_runtime_bytes(&self) -> Result<Option<&[u8]>> {
        match self
            .header
            .runtime_object
            .as_ref()
            .and_then(|o| o.shared.as_ref())
        {
            Some(s) => self.area_slice(&s.image, "shared runtime").map(Some),
            None => Ok(None),
        }
    }

    /// The bytes of the precompiled runtime object, checksum verified (`None` when the summary has none).
    pub fn runtime_object_bytes(&self) -> Result<Option<&[u8]>> {
        match &self.header.runtime_object {
            Some(o) => self.area_slice(&o.object, "runtime object").map(Some),
            None => Ok(None),
        }
    }

    /// The summary's identity: a SHA-256 over its header and index (which hold the checksums of every shard,
    /// of the library and of the runtime object). Two summaries with equal identities give equal imports.
    pub fn identity(&self) -> [u8; 32] {
        use sha2::Digest;
        let meta = &self.storage.bytes()[file::PREFIX_LEN..self.shard_area_start];
        sha2::Sha256::digest(meta).into()
    }

    /// Checks that shards suit a JIT for `triple` and `data_layout`. Triples match when equal or when they
    /// differ only in the vendor field; an empty `data_layout` is not checked.
    pub fn check_target(&self, triple: &str, data_layout: &str) -> Result<()> {
        let ours = &self.header.target_triple;
        if !triples_match(ours, triple) {
            return Err(Error::summary(
                &self.path,
                format!("target triple mismatch: the summary is for `{ours}`, the JIT targets `{triple}`"),
            ));
        }
        let dl = &self.header.data_layout;
        if !data_layout.is_empty() && !dl.is_empty() && dl != data_layout {
            return Err(Error::summary(
                &self.path,
                format!(
                    "data layout mismatch: the summary has `{dl}`, the JIT uses `{data_layout}`"
                ),
            ));
        }
        Ok(())
    }
}

/// Removes `<prefix><pid>-<n>` files in `dir` whose writer process no longer exists (Linux: no `/proc/<pid>`).
/// Elsewhere, or when anything is unclear, nothing is removed.
fn remove_stale_temporaries(dir: &Path, prefix: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Triples match when they name the same target ([`crate::llvm::same_target`]).
pub(crate) fn triples_match(a: &str, b: &str) -> bool {
    crate::llvm::same_target(a, b)
}
