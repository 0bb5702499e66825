#!/usr/bin/env bash
# Fetches PostgreSQL 15's server bitcode as Debian 12 ships it (the `postgresql-15` package holds
# usr/lib/postgresql/15/lib/bitcode/: one `.bc` per translation unit of the server, for its JIT's inliner) and unpacks
# it into a cache directory, without installing anything: `apt-get download` + `dpkg -x`.
#
#   scripts/fetch-postgres-bitcode.sh [CACHE_DIR]    # default: $THINJIT_CACHE or ~/.cache/thinjit, + /postgres-15
#
# Prints the bitcode directory (`.../usr/lib/postgresql/15/lib/bitcode/postgres`) on stdout; progress goes to stderr.
# Idempotent: a cache that already holds the bitcode is reused. Needs Debian's package lists (`apt-get update`).
set -euo pipefail
base="${1:-${THINJIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/thinjit}}"
dir="$base/postgres-15"
bitcode="$dir/root/usr/lib/postgresql/15/lib/bitcode/postgres"
if [ -f "$dir/complete" ] && [ -d "$bitcode" ]; then
  echo "$bitcode"
  exit 0
fi
mkdir -p "$dir"
rm -rf "$dir/root" "$dir"/*.deb "$dir/complete"
cd "$dir"
# apt-get download writes into the current directory as the `_apt` user when it can; a root-only cache directory
# makes it fall back to root with a warning, which is harmless here.
if ! apt-get download postgresql-15 >&2 2>"$dir/apt.log"; then
  echo "fetch-postgres-bitcode: apt-get download postgresql-15 failed (run \`apt-get update\` first?):" >&2
  cat "$dir/apt.log" >&2
  exit 1
fi
deb=$(ls "$dir"/postgresql-15_*.deb | head -n1)
echo "fetch-postgres-bitcode: unpacking $(basename "$deb")" >&2
dpkg -x "$deb" "$dir/root"
count=$(find "$bitcode" -name '*.bc' | wc -l)
if [ "$count" -eq 0 ]; then
  echo "fetch-postgres-bitcode: $(basename "$deb") has no bitcode under usr/lib/postgresql/15/lib/bitcode/postgres" >&2
  exit 1
fi
rm -f "$deb"
echo "fetch-postgres-bitcode: $count bitcode files in $bitcode" >&2
touch "$dir/complete"
echo "$bitcode"
