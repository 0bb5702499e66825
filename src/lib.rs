//! thinjit: ThinLTO-style cross-module inlining of a precompiled C/C++ runtime library into LLVM ORCv2 JIT code.
//!
//! The flow reads from the module names: [`llvm`] (safe LLVM 19 layer) → [`summary`] (build-time index and
//! shards) → [`import`] (plan, import, explain) → [`optimize`] → [`jit`] (ORC engine).

#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

mod atomic_file;
mod error;
#[allow(unsafe_code)]
pub mod llvm;

pub mod cache;
pub mod check;
pub mod import;
pub mod jit;
pub mod optimize;
pub mod summary;

pub use error::{Error, OrcError, OrcErrorKind, OrcFailure, Result};

/// The README's Rust snippets, compiled and run as doc tests (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doctests {}

/// The path of a summary built by `thinjit-build` in the crate's `build.rs` (`Build::compile(name)`), as a
/// `&'static str`: `env!("THINJIT_SUMMARY_<name>")`, set by the build script with `cargo:rustc-env`.
///
/// ```ignore
/// let summary = thinjit::summary::Summary::load(thinjit::summary_path!("runtime").as_ref())?;
/// ```
#[macro_export]
macro_rules! summary_path {
    ($name:literal) => {
        env!(concat!("THINJIT_SUMMARY_", $name))
    };
}
