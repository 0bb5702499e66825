#!/usr/bin/env bash
# Installs what thinjit needs that a fresh Debian 12 machine with Rust lacks: LLVM 19 (libLLVM-19.so, headers,
# clang-19, opt/llvm-lto for the conformance tests). Idempotent: does nothing when LLVM 19 is already there.
set -euo pipefail
prefix=/usr/lib/llvm-19
need=()
[ -x "$prefix/bin/llvm-config" ] || need+=(llvm-19-dev)
[ -x "$prefix/bin/clang" ] || need+=(clang-19)
[ -e "$prefix/lib/libPolly.a" ] || [ -e /usr/lib/llvm-19/lib/libPollyISL.a ] || need+=(libpolly-19-dev)
[ -e /usr/include/zstd.h ] || need+=(libzstd-dev)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "bootstrap: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >&2
fi
"$prefix/bin/llvm-config" --version | grep -q '^19\.' || { echo "bootstrap: $prefix is not LLVM 19" >&2; exit 1; }
