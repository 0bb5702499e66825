//! thinjit's one integration-test binary (every test binary links LLVM, so there is only one).

#[macro_use]
mod common;
mod bench_harness;
mod conformance;
mod engine;
mod helpers;
mod import;
mod llvm_layer;
mod orc;
mod robustness;
mod script_safety;
mod startup;
mod summary;
