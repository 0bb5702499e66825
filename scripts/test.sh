#!/usr/bin/env bash
# The whole test suite: installs LLVM 19 if missing, then formatting, lints, and every test (one integration
# binary, unit tests, doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test
# The `compile_fail,E0505` doc tests of src/llvm (value handles borrow their module) must fail with the borrow
# error they name, which stable rustdoc checks only through this wrapper.
RUSTDOC="$PWD/scripts/rustdoc-error-codes" cargo test -p thinjit --doc llvm::
