#!/usr/bin/env bash
# The main job: installs LLVM 19 if missing, builds thinjit in release mode, and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
cargo run --release --quiet -p thinjit-cli --bin thinjit -- demo "$@"
