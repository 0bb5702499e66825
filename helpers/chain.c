/*
 * chain.c — the middle link of the transitive-import chain
 * rt_chain_a (runtime.c) -> rt_chain_b (here) -> rt_chain_c (runtime.c).
 *
 * Kept in its own translation unit so that clang -O2 cannot inline the chain
 * away: every link stays a separate, importable, inlinable function and the
 * call edges a->b and b->c survive in the bitcode. Sizes differ on purpose
 * (a < c < b) so that import-instr-limit / import-instr-evolution-factor cut
 * the chain at different depths.
 */
#include <stdint.h>

#include "thinjit_runtime.h"

int32_t rt_chain_b(int32_t x) {
    uint32_t v = (uint32_t)x;
    uint32_t s = 0x811c9dc5u;
    s = (s ^ (v & 0xffu)) * 0x01000193u;
    s = (s ^ ((v >> 8) & 0xffu)) * 0x01000193u;
    s = (s ^ ((v >> 16) & 0xffu)) * 0x01000193u;
    s = (s ^ (v >> 24)) * 0x01000193u;
    if (s % 3u == 0u)
        s = (s << 7) | (s >> 25);
    else if (s % 3u == 1u)
        s ^= s >> 11;
    else
        s += v * 0x2545f491u;
    int32_t c = rt_chain_c((int32_t)(s ^ v));
    uint32_t r = (uint32_t)c ^ (s >> 3);
    r = r * 0x9e3779b1u + 0x7f4a7c15u;
    return (int32_t)(r & 0x7fffffffu);
}
