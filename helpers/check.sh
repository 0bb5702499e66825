#!/usr/bin/env bash
# helpers/check.sh — self-check of the sample helper runtime against LLVM 19.
#
# Compiles every top-level helpers/*.c / *.cpp to bitcode exactly as build.rs does
# (clang -O2 -fPIC -emit-llvm -c, C11 / C++17) and checks the IR properties the
# summary / importer tests rely on; links the bitcode with llvm-link and verifies
# it; builds the host-native shared library (+ host/host_native.c) and checks it
# has no undefined symbols beyond libc / libstdc++; runs a functional smoke test
# natively and JIT-resident (lli -jit-kind=orc).
#
# Usage: helpers/check.sh [-v]        (LLVM_BIN overrides /usr/lib/llvm-19/bin)
# Not used by the build; nothing here is compiled into the library.
set -euo pipefail

LLVM_BIN=${LLVM_BIN:-/usr/lib/llvm-19/bin}
VERBOSE=0
[[ "${1:-}" == "-v" ]] && VERBOSE=1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(mktemp -d "${TMPDIR:-/tmp}/thinjit-helpers.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
CC="$LLVM_BIN/clang"
CXX="$LLVM_BIN/clang++"
INC="-I$HERE/include"
FAILS=0

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { [[ $VERBOSE == 1 ]] && echo "ok:   $*"; return 0; }
check() { # check "<description>" <command...>
    local what=$1; shift
    if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi
}

# ---- bitcode, as build.rs builds it ---------------------------------------------------------
BCS=()
for f in "$HERE"/*.c; do
    "$CC" -std=c11 -O2 -fPIC -emit-llvm -c -Wall -Wextra $INC "$f" -o "$OUT/$(basename "$f").bc"
    BCS+=("$OUT/$(basename "$f").bc")
done
for f in "$HERE"/*.cpp; do
    "$CXX" -std=c++17 -O2 -fPIC -emit-llvm -c -Wall -Wextra $INC "$f" -o "$OUT/$(basename "$f").bc"
    BCS+=("$OUT/$(basename "$f").bc")
done
for b in "${BCS[@]}"; do "$LLVM_BIN/llvm-dis" "$b" -o "${b%.bc}.ll"; done
ALL_LL=("$OUT"/*.ll)

# file defining function $1
deffile() { grep -l -E "^define [^@]*@\"?$1\"?\(" "${ALL_LL[@]}" | head -1; }
# IR instruction count of function $1, as LLVM's module summary counts it (`insts:`)
icount() {
    local f; f=$(deffile "$1") || true
    [[ -z "$f" ]] && { echo -1; return; }
    awk -v fn="$1" '
        index($0, "define ") == 1 && index($0, "@" fn "(") > 0 { infn = 1; n = 0; next }
        infn && /^}/ { print n; exit }
        infn {
            l = $0; sub(/^[ \t]+/, "", l)
            if (l == "" || l ~ /^;/ || l ~ /^[A-Za-z0-9_.$-]+:/) next              # blank, comment, label
            if (l ~ /^(to label|catch |cleanup|filter |\]|i[0-9]+ -?[0-9]+, label)/) next  # continuation lines
            n++
        }
    ' "$f"
}
# the define line of $1
defline() { local f; f=$(deffile "$1"); grep -m1 -E "^define [^@]*@\"?$1\"?\(" "$f"; }
# attribute group text of function $1
fattrs() {
    local f g; f=$(deffile "$1"); g=$(defline "$1" | grep -o '#[0-9]\+' | head -1)
    grep -m1 "^attributes $g = " "$f"
}
has_attr() { fattrs "$1" | grep -qw -- "$2"; }
linkage_is() { defline "$1" | grep -qE "^define $2 "; }
body() { local f; f=$(deffile "$1"); awk -v fn="$1" 'index($0,"define ")==1 && index($0,"@" fn "(")>0 {p=1} p {print} p && /^}/ {exit}' "$f"; }
calls() { body "$1" | grep -qE "call [^@]*@$2\("; }
body_has() { body "$1" | grep -q -- "$2"; }

# ---- every exported symbol is defined --------------------------------------------------------
EXPORTS=(
    CreateWrappedValueFromInt CreateWrappedValueFromDouble CreateWrappedValueFromString
    WrappedValueTag WrappedValueGetInt WrappedValueGetDouble WrappedValueGetString
    WrappedValueAdd WrappedValueSub WrappedValueMul WrappedValueCompare WrappedValueConcat
    rt_intern rt_intern_count rt_intern_ctor_runs rt_checked_div
    rt_alloc rt_get_alloc_count rt_counter_increment rt_counter_get rt_next_object_id
    rt_clamp_add rt_square_lookup rt_crc32 rt_noinline_add rt_always_inline_mix rt_big_checksum
    rt_sum_varargs rt_fib rt_asm_barrier rt_tls_enter rt_tls_leave rt_dispatch rt_weak_hook
    rt_report_error rt_hot_add rt_debug_identity rt_chain_a rt_chain_b rt_chain_c rt_log
)
for s in "${EXPORTS[@]}"; do check "defined: $s" test -n "$(deffile "$s")"; done
for g in rt_alloc_count rt_shared_counter rt_squares rt_tls_depth; do
    check "global defined: $g" grep -qE "^@$g = " "$OUT/runtime.c.ll"
done

# ---- attributes and linkage ------------------------------------------------------------------
check "rt_noinline_add noinline"        has_attr rt_noinline_add noinline
check "clamp_small internal"            linkage_is clamp_small "internal( fastcc)?"
check "clamp_small noinline"            has_attr clamp_small noinline
check "rt_clamp_add calls clamp_small"  calls rt_clamp_add clamp_small
check "rt_always_inline_mix alwaysinline" has_attr rt_always_inline_mix alwaysinline
check "rt_debug_identity optnone"       has_attr rt_debug_identity optnone
check "rt_debug_identity noinline"      has_attr rt_debug_identity noinline
check "rt_report_error cold"            has_attr rt_report_error cold
check "rt_report_error noinline"        has_attr rt_report_error noinline
check "rt_hot_add hot"                  has_attr rt_hot_add hot
check "rt_weak_hook weak"               linkage_is rt_weak_hook weak
check "wv_hash linkonce_odr"            linkage_is _Z7wv_hashPKc linkonce_odr
check "rt_squares external constant"    grep -qE '^@rt_squares = (local_unnamed_addr )?constant' "$OUT/runtime.c.ll"
check "crc_table internal constant"     grep -qE '^@crc_table = internal (unnamed_addr )?constant \[256 x i32\]' "$OUT/runtime.c.ll"
check "rt_next_id internal mutable"     grep -qE '^@rt_next_id = internal (unnamed_addr )?global' "$OUT/runtime.c.ll"

# ---- constructs ------------------------------------------------------------------------------
V="$OUT/values.cpp.ll"; R="$OUT/runtime.c.ll"
check "values: llvm.global_ctors"       grep -q '^@llvm.global_ctors = appending global' "$V"
check "values: __cxa_atexit called"     grep -qE 'call i32 @__cxa_atexit\(' "$V"
check "values: linkonce_odr definition" grep -qE '^define linkonce_odr ' "$V"
check "blockaddress in rt_dispatch"     grep -q 'blockaddress(@rt_dispatch' "$R"
check "llvm.va_start in rt_sum_varargs" body_has rt_sum_varargs llvm.va_start
check "thread_local rt_tls_depth"       grep -qE '^@rt_tls_depth = thread_local ' "$R"
check "inline asm in rt_asm_barrier"    body_has rt_asm_barrier 'asm sideeffect'
check "rt_fib calls itself"             calls rt_fib rt_fib
check "rt_chain_a calls rt_chain_b"     calls rt_chain_a rt_chain_b
check "rt_chain_b calls rt_chain_c"     calls rt_chain_b rt_chain_c
check "rt_checked_div invoke"           body_has rt_checked_div '= invoke '
check "rt_checked_div landingpad"       body_has rt_checked_div landingpad

# ---- sizes -----------------------------------------------------------------------------------
n=$(icount rt_big_checksum);           [[ $n -gt 300 ]] && pass "rt_big_checksum $n > 300" || fail "rt_big_checksum $n > 300"
n=$(icount rt_always_inline_mix);      [[ $n -gt 100 ]] && pass "rt_always_inline_mix $n > 100" || fail "rt_always_inline_mix $n > 100"
n=$(icount CreateWrappedValueFromInt); [[ $n -gt 0 && $n -lt 50 ]] && pass "CreateWrappedValueFromInt $n < 50" || fail "CreateWrappedValueFromInt $n < 50"
for c in rt_chain_a rt_chain_b rt_chain_c; do
    n=$(icount $c); [[ $n -ge 15 && $n -le 60 ]] && pass "$c $n in 15..60" || fail "$c $n in 15..60"
done

# ---- one library: no duplicate strong definitions, verifier-clean ------------------------------
"$LLVM_BIN/llvm-link" "${BCS[@]}" -o "$OUT/helpers.bc" && pass "llvm-link" || fail "llvm-link"
check "opt -passes=verify" "$LLVM_BIN/opt" -passes=verify -disable-output "$OUT/helpers.bc"

# ---- host-native shared library -----------------------------------------------------------------
mkdir -p "$OUT/obj"
for f in "$HERE"/*.c "$HERE"/host/host_native.c; do
    "$CC" -std=c11 -O2 -fPIC -Wall -Wextra $INC -c "$f" -o "$OUT/obj/$(basename "$f").o"
done
for f in "$HERE"/*.cpp; do
    "$CXX" -std=c++17 -O2 -fPIC -Wall -Wextra $INC -c "$f" -o "$OUT/obj/$(basename "$f").o"
done
if "$CXX" -O2 -fPIC -shared -Wl,--no-undefined -o "$OUT/libthinjit_helpers.so" "$OUT"/obj/*.o -lstdc++; then
    pass "native .so links (--no-undefined)"
    bad=$(nm -D --undefined-only "$OUT/libthinjit_helpers.so" | awk '$1 == "U" && $2 !~ /@(GLIBC|GLIBCXX|CXXABI)_/ {print $2}')
    [[ -z "$bad" ]] && pass "only libc/libstdc++ undefined" || fail "unexpected undefined symbols: $bad"
else
    fail "native .so links"
fi

# ---- functional smoke test: natively, and JIT-resident under lli's ORC -------------------------
cat >"$OUT/smoke.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include "thinjit_host.h"
#include "thinjit_runtime.h"
#include "wrapped_value.h"
static int fails;
#define CHECK(c) do { if (!(c)) { printf("smoke FAIL line %d: %s\n", __LINE__, #c); fails++; } } while (0)
int main(void) {
    CHECK(rt_intern_ctor_runs() == 1);
    CHECK(thinjit_host_event_count(THINJIT_EVENT_INTERN_CTOR) == 1);
    CHECK(thinjit_host_event_count(THINJIT_EVENT_INTERN_DTOR) == 0);
    WrappedValue *a = CreateWrappedValueFromInt(23333);
    CHECK(WrappedValueTag(a) == WV_INT && WrappedValueGetInt(a) == 23333 && rt_get_alloc_count() == 1);
    WrappedValue *b = CreateWrappedValueFromDouble(1.5);
    CHECK(WrappedValueGetDouble(WrappedValueAdd(a, b)) == 23334.5);
    CHECK(WrappedValueGetInt(WrappedValueMul(a, CreateWrappedValueFromInt(2))) == 46666);
    CHECK(WrappedValueGetInt(WrappedValueSub(CreateWrappedValueFromInt(INT32_MIN), CreateWrappedValueFromInt(1))) == INT32_MAX);
    CHECK(WrappedValueCompare(a, b) == 1 && WrappedValueCompare(b, a) == -1);
    char buf[8]; strcpy(buf, "hello");
    WrappedValue *x = CreateWrappedValueFromString("hello"), *y = CreateWrappedValueFromString(buf);
    CHECK(WrappedValueGetString(x) == WrappedValueGetString(y) && WrappedValueCompare(a, x) == -1);
    CHECK(strcmp(WrappedValueGetString(WrappedValueConcat(x, a)), "hello23333") == 0);
    CHECK(strcmp(WrappedValueGetString(WrappedValueConcat(b, x)), "1.5hello") == 0);
    CHECK(rt_intern_count() == 3);
    for (int k = 0; k < 3000; k++) { char t[16]; snprintf(t, sizeof t, "s%d", k); rt_intern(t); }
    CHECK(rt_intern_count() == 3003 && rt_intern("hello") == WrappedValueGetString(x));
    CHECK(rt_checked_div(7, 2) == 3 && rt_checked_div(7, 0) == INT32_MIN && rt_checked_div(INT32_MIN, -1) == INT32_MIN);
    CHECK(rt_counter_increment() == 1 && rt_counter_increment() == 2 && rt_shared_counter == 2);
    CHECK(rt_next_object_id() == 1 && rt_next_object_id() == 2);
    CHECK(rt_clamp_add(600, 600) == 1000 && rt_clamp_add(3, 4) == 7);
    CHECK(rt_square_lookup(7) == 49 && rt_square_lookup(73) == 81);
    CHECK(rt_crc32((const uint8_t *)"123456789", 9) == 0xCBF43926u);
    CHECK(rt_noinline_add(2, 3) == 5 && rt_hot_add(2, 3) == 5 && rt_debug_identity(42) == 42);
    uint8_t d[200]; for (int k = 0; k < 200; k++) d[k] = (uint8_t)k;
    CHECK(rt_big_checksum(d, 200) != rt_big_checksum(d, 199) && rt_always_inline_mix(1) != rt_always_inline_mix(2));
    CHECK(rt_sum_varargs(4, 1, 2, 3, -10) == -4 && rt_fib(20) == 6765 && rt_asm_barrier(77) == 77);
    CHECK(rt_tls_enter() == 1 && rt_tls_enter() == 2 && rt_tls_leave() == 1);
    const uint8_t ops[] = {0, 0, 2, 1, 3, 0};
    CHECK(rt_dispatch(ops, 6) == 3 && rt_dispatch(ops, 3) == 4 && rt_weak_hook(5) == 11);
    CHECK(rt_chain_a(5) == rt_chain_a(5));
    return fails != 0;
}
EOF
if "$CC" -std=c11 -O2 $INC "$OUT/smoke.c" -L"$OUT" -lthinjit_helpers -Wl,-rpath,"$OUT" -o "$OUT/smoke" 2>/dev/null \
    && "$OUT/smoke"; then pass "smoke test (native .so)"; else fail "smoke test (native .so)"; fi
"$CC" -std=c11 -O2 -fPIC -emit-llvm -c $INC "$HERE/host/host_native.c" -o "$OUT/host.bc"
"$CC" -std=c11 -O2 -fPIC -emit-llvm -c $INC "$OUT/smoke.c" -o "$OUT/smoke.bc"
if "$LLVM_BIN/llvm-link" "$OUT/helpers.bc" "$OUT/host.bc" "$OUT/smoke.bc" -o "$OUT/jit.bc" \
    && "$LLVM_BIN/lli" -jit-kind=orc "$OUT/jit.bc"; then
    pass "smoke test (JIT-resident, lli -jit-kind=orc)"
else
    fail "smoke test (JIT-resident, lli -jit-kind=orc)"
fi

# ---- table ----------------------------------------------------------------------------------
if [[ $VERBOSE == 1 ]]; then
    printf '\n%-34s %6s  %-16s %s\n' function instrs linkage "attributes (inlining-relevant)"
    for f in "${ALL_LL[@]}"; do
        grep -oE '^define [^@]*@"?[^"(]+' "$f" | sed -E 's/.*@"?//' | while read -r fn; do
            link=$(defline "$fn" | sed -E 's/^define ((internal|linkonce_odr|weak_odr|weak|private|available_externally)?).*/\1/' || true)
            attrs=$(fattrs "$fn" | grep -oE '\b(noinline|alwaysinline|optnone|cold|hot|optsize)\b' | sort -u | tr '\n' ' ' || true)
            printf '%-34s %6s  %-16s %s\n' "$fn" "$(icount "$fn")" "${link:-external}" "$attrs"
        done
    done
fi

if [[ $FAILS -ne 0 ]]; then echo "helpers/check.sh: $FAILS check(s) failed"; exit 1; fi
echo "helpers/check.sh: all checks passed"
