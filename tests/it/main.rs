//! thinjit's one integration-test binary (every test binary links LLVM, so there is only one).

mod bench_harness;
mod common;
mod conformance;
mod engine;
mod helpers;
mod import;
mod llvm_layer;
mod orc;
mod robustness;
mod startup;
mod summary;
