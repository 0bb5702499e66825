//! thinjit's one integration-test binary (every test binary links LLVM, so there is only one).

#[macro_use]
mod common;
mod bench_harness;
mod build_inputs;
mod capi;
mod conformance;
mod context_reuse;
mod engine;
mod failed_adds;
mod helpers;
mod host_crate;
mod import;
mod inlining;
mod interop;
mod llvm_importer;
mod llvm_layer;
mod orc;
mod pipeline;
mod robustness;
mod script_safety;
mod shard_bitcode;
mod startup;
mod summary;
mod tiering;
