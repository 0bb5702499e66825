//! The run-time half: import helper bodies into a script module so LLVM can inline them.

pub mod config;

pub use config::{ImportConfig, RuntimeMode};
