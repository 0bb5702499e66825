#!/usr/bin/env bash
# The whole test suite: installs LLVM 19 if missing, then formatting, lints, and every test (one integration
# binary, unit tests, doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test
