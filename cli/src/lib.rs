//! thinjit's tools beside the library: the strategy benchmark harness ([`bench`]) and the synthetic helper
//! libraries it and the tests use at scale ([`synth`]). Not published: the `thinjit` library carries none of
//! this, and none of the CLI's dependencies.

#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod bench;
pub mod script_fuzz;
pub mod synth;
pub mod x86_features;
pub mod x86_gaps;

/// Paths of the bundled sample helper runtime (`helpers/`), compiled by this crate's build script for the
/// repository's tests, demo and benches.
pub mod bundled {
    use std::path::{Path, PathBuf};

    /// The repository root (the directory holding `helpers/`, `examples/`, `tests/`).
    pub fn repo_root() -> &'static Path {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
    }

    /// Directory of the bundled helpers' bitcode (`<stem>.bc` per `helpers/*.c|cpp`).
    pub fn bitcode_dir() -> &'static Path {
        Path::new(env!("THINJIT_HELPERS_BC_DIR"))
    }

    /// The bundled helpers' bitcode files, sorted by name.
    pub fn bitcode_files() -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(bitcode_dir())
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "bc"));
        files.sort();
        files
    }

    /// The native shared library of the bundled helpers and their host stand-in (host-native mode).
    pub fn shared_library() -> &'static Path {
        Path::new(env!("THINJIT_HELPERS_SO"))
    }

    /// LLVM 19's `bin` directory, found through `LLVM_SYS_191_PREFIX` at build time.
    pub fn llvm_bin() -> &'static Path {
        Path::new(env!("THINJIT_LLVM_BIN"))
    }
}
