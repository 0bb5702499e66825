//! thinjit's one integration-test binary (every test binary links LLVM, so there is only one).

mod common;
mod helpers;
mod llvm_layer;
mod orc;
mod summary;
