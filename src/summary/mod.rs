//! The build-time half: a module summary index of the helper library with per-function bitcode shards.
//!
//! In: helper bitcode, textual IR or C/C++ sources. Out: a summary file (header, index, shards, the promoted
//! helper library) that the run-time importer and the engine read.

mod types;

pub use types::*;
