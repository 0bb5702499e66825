/*
 * runtime.c — the C part of thinjit's sample helper runtime (C11).
 *
 * Compiled to bitcode (clang -O2 -fPIC -emit-llvm -c -std=c11) for the summary,
 * and natively into the host-native shared library. Each function exercises one
 * case of the summary builder / import planner; helpers/README.md lists what the
 * summary and the import report are expected to say about each of them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "thinjit_host.h"
#include "thinjit_runtime.h"

/* ------------------------------------------------------------------------- */
/* Allocation and one-instance mutable globals                               */
/* ------------------------------------------------------------------------- */

/* External mutable global: importable code keeps a declaration, never a copy. */
int64_t rt_alloc_count = 0;

void *rt_alloc(size_t n) {
    rt_alloc_count += 1;
    void *p = thinjit_host_alloc(n);
    if (p == NULL)
        rt_report_error("rt_alloc: host allocator returned NULL"); /* cold call edge */
    return p;
}

int64_t rt_get_alloc_count(void) { return rt_alloc_count; }

/* Shared between host and every script: proves there is exactly one instance. */
int64_t rt_shared_counter = 0;

int64_t rt_counter_increment(void) { return ++rt_shared_counter; }

int64_t rt_counter_get(void) { return rt_shared_counter; }

/* File-static mutable state: must be promoted (JIT-resident) and makes the
 * accessor non-importable host-native (a native binary has no promoted name). */
static int64_t rt_next_id = 0;

int64_t rt_next_object_id(void) { return ++rt_next_id; }

/* ------------------------------------------------------------------------- */
/* A static (internal) callee of an exported function                        */
/* ------------------------------------------------------------------------- */

__attribute__((noinline)) static int32_t clamp_small(int32_t v) {
    if (v < -1000)
        return -1000;
    if (v > 1000)
        return 1000;
    return v;
}

int32_t rt_clamp_add(int32_t a, int32_t b) {
    /* wrapping add (no signed-overflow UB), then the static callee */
    return clamp_small((int32_t)((uint32_t)a + (uint32_t)b));
}

/* ------------------------------------------------------------------------- */
/* Constant tables                                                           */
/* ------------------------------------------------------------------------- */

/* External constant: imported with its initializer, so rt_square_lookup(7) folds to 49. */
const int32_t rt_squares[64] = {
    0, 1, 4, 9, 16, 25, 36, 49,
    64, 81, 100, 121, 144, 169, 196, 225,
    256, 289, 324, 361, 400, 441, 484, 529,
    576, 625, 676, 729, 784, 841, 900, 961,
    1024, 1089, 1156, 1225, 1296, 1369, 1444, 1521,
    1600, 1681, 1764, 1849, 1936, 2025, 2116, 2209,
    2304, 2401, 2500, 2601, 2704, 2809, 2916, 3025,
    3136, 3249, 3364, 3481, 3600, 3721, 3844, 3969,
};

int32_t rt_square_lookup(int32_t i) { return rt_squares[i & 63]; }

/* Internal constant: CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320).
 * Copied along privately (host-native) or promoted (JIT-resident). */
static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu,
    0xe963a535u, 0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u,
    0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u,
    0xf3b97148u, 0x84be41deu, 0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u,
    0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u,
    0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
    0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u,
    0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u,
    0xcfba9599u, 0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
    0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du, 0x76dc4190u, 0x01db7106u,
    0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
    0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du,
    0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
    0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u,
    0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u,
    0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
    0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau,
    0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
    0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au,
    0xead54739u, 0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u,
    0x0d6d6a3eu, 0x7a6a5aa8u, 0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
    0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu,
    0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u, 0x10da7a5au, 0x67dd4accu,
    0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u, 0xa1d1937eu,
    0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u,
    0x316e8eefu, 0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
    0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u,
    0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u, 0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du,
    0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au, 0x9c0906a9u, 0xeb0e363fu,
    0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u,
    0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
    0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u,
    0x616bffd3u, 0x166ccf45u, 0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u,
    0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu,
    0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
    0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u, 0xcdd70693u,
    0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

uint32_t rt_crc32(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; ++i)
        c = crc_table[(c ^ p[i]) & 0xffu] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* ------------------------------------------------------------------------- */
/* Inlining attributes                                                       */
/* ------------------------------------------------------------------------- */

__attribute__((noinline)) int32_t rt_noinline_add(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

#define RT_ROTL64(v, k) (((v) << (k)) | ((v) >> (64 - (k))))

/* Big (several hundred IR instructions) but alwaysinline: imported whatever its size. */
#define MIX(a, b, c, k, m) a = RT_ROTL64((a) ^ (b), k) * (m) + (c)
#define MIX_ROUND(r1, r2, r3, r4)                                                                  \
    do {                                                                                           \
        MIX(l0, l1, l5, r1, 0x9e3779b97f4a7c15ull);                                                \
        MIX(l1, l2, l6, r2, 0xbf58476d1ce4e5b9ull);                                                \
        MIX(l2, l3, l7, r3, 0x94d049bb133111ebull);                                                \
        MIX(l3, l4, l8, r4, 0xff51afd7ed558ccdull);                                                \
        MIX(l4, l5, l9, r1, 0xc4ceb9fe1a85ec53ull);                                                \
        MIX(l5, l6, l10, r2, 0x87c37b91114253d5ull);                                               \
        MIX(l6, l7, l11, r3, 0x4cf5ad432745937full);                                               \
        MIX(l7, l8, l12, r4, 0x52dce729da3ed5b1ull);                                               \
        MIX(l8, l9, l13, r1, 0x38495ab5ull * 0x100000001ull);                                      \
        MIX(l9, l10, l14, r2, 0x2545f4914f6cdd1dull);                                              \
        MIX(l10, l11, l15, r3, 0x9fb21c651e98df25ull);                                             \
        MIX(l11, l12, l0, r4, 0xd6e8feb86659fd93ull);                                              \
        MIX(l12, l13, l1, r1, 0xa0761d6478bd642full);                                              \
        MIX(l13, l14, l2, r2, 0xe7037ed1a0b428dbull);                                              \
        MIX(l14, l15, l3, r3, 0x8ebc6af09c88c6e3ull);                                              \
        MIX(l15, l0, l4, r4, 0x589965cc75374cc3ull);                                               \
    } while (0)

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wattributes" /* "always_inline function might not be inlinable" */
#endif
__attribute__((always_inline)) int64_t rt_always_inline_mix(int64_t x) {
    uint64_t s = (uint64_t)x;
    uint64_t l0 = s ^ 0x0123456789abcdefull, l1 = s + 0x1111111111111111ull;
    uint64_t l2 = s ^ 0x2222222222222222ull, l3 = s + 0x3333333333333333ull;
    uint64_t l4 = s ^ 0x4444444444444444ull, l5 = s + 0x5555555555555555ull;
    uint64_t l6 = s ^ 0x6666666666666666ull, l7 = s + 0x7777777777777777ull;
    uint64_t l8 = s ^ 0x8888888888888888ull, l9 = s + 0x9999999999999999ull;
    uint64_t l10 = s ^ 0xaaaaaaaaaaaaaaaaull, l11 = s + 0xbbbbbbbbbbbbbbbbull;
    uint64_t l12 = s ^ 0xccccccccccccccccull, l13 = s + 0xddddddddddddddddull;
    uint64_t l14 = s ^ 0xeeeeeeeeeeeeeeeeull, l15 = s + 0xfedcba9876543210ull;
    MIX_ROUND(7, 13, 29, 41);
    MIX_ROUND(11, 23, 37, 53);
    MIX_ROUND(5, 17, 31, 47);
    MIX_ROUND(19, 27, 43, 59);
    uint64_t r = (l0 ^ l1 ^ l2 ^ l3) + (l4 ^ l5 ^ l6 ^ l7) + (l8 ^ l9 ^ l10 ^ l11) + (l12 ^ l13 ^ l14 ^ l15);
    return (int64_t)r;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/* Far over the import instruction limit; not alwaysinline: "over threshold". */
#define P1 0x9e3779b185ebca87ull
#define P2 0xc2b2ae3d27d4eb4full
#define P3 0x165667b19e3779f9ull
#define P4 0x85ebca77c2b2ae63ull
#define P5 0x27d4eb2f165667c5ull

static inline uint64_t rt_load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

#define ACC(a, w) a = RT_ROTL64((a) + (w) * P2, 31) * P1
#define XMIX(a, b, k) a ^= RT_ROTL64(b, k) * P3
#define AVAL(h)                                                                                    \
    do {                                                                                           \
        h ^= h >> 33;                                                                              \
        h *= P2;                                                                                   \
        h ^= h >> 29;                                                                              \
        h *= P3;                                                                                   \
        h ^= h >> 32;                                                                              \
    } while (0)

int64_t rt_big_checksum(const uint8_t *p, size_t n) {
    uint64_t a0 = P1 + P2, a1 = P2, a2 = 0, a3 = 0 - P1;
    uint64_t a4 = P3, a5 = P4, a6 = P5, a7 = P1 ^ P5;
    size_t len = n;
    while (n >= 64) {
        uint64_t w0 = rt_load64(p), w1 = rt_load64(p + 8), w2 = rt_load64(p + 16), w3 = rt_load64(p + 24);
        uint64_t w4 = rt_load64(p + 32), w5 = rt_load64(p + 40), w6 = rt_load64(p + 48), w7 = rt_load64(p + 56);
        /* round 1: absorb */
        ACC(a0, w0); ACC(a1, w1); ACC(a2, w2); ACC(a3, w3);
        ACC(a4, w4); ACC(a5, w5); ACC(a6, w6); ACC(a7, w7);
        /* round 2: cross-lane diffusion */
        XMIX(a0, a3, 17); XMIX(a1, a4, 19); XMIX(a2, a5, 23); XMIX(a3, a6, 29);
        XMIX(a4, a7, 31); XMIX(a5, a0, 37); XMIX(a6, a1, 41); XMIX(a7, a2, 43);
        /* round 3: absorb again, words rotated across lanes */
        ACC(a0, w7 ^ w1); ACC(a1, w0 ^ w2); ACC(a2, w1 ^ w3); ACC(a3, w2 ^ w4);
        ACC(a4, w3 ^ w5); ACC(a5, w4 ^ w6); ACC(a6, w5 ^ w7); ACC(a7, w6 ^ w0);
        /* round 4: second diffusion */
        XMIX(a0, a5, 11); XMIX(a1, a6, 13); XMIX(a2, a7, 47); XMIX(a3, a0, 53);
        XMIX(a4, a1, 7);  XMIX(a5, a2, 5);  XMIX(a6, a3, 3);  XMIX(a7, a4, 59);
        p += 64;
        n -= 64;
    }
    uint64_t h = RT_ROTL64(a0, 1) + RT_ROTL64(a1, 7) + RT_ROTL64(a2, 12) + RT_ROTL64(a3, 18) +
                 RT_ROTL64(a4, 23) + RT_ROTL64(a5, 29) + RT_ROTL64(a6, 34) + RT_ROTL64(a7, 41);
    /* merge rounds (xxh64 style) */
    ACC(a0, 0); h = (h ^ a0) * P1 + P4;
    ACC(a1, 0); h = (h ^ a1) * P1 + P4;
    ACC(a2, 0); h = (h ^ a2) * P1 + P4;
    ACC(a3, 0); h = (h ^ a3) * P1 + P4;
    ACC(a4, 0); h = (h ^ a4) * P1 + P4;
    ACC(a5, 0); h = (h ^ a5) * P1 + P4;
    ACC(a6, 0); h = (h ^ a6) * P1 + P4;
    ACC(a7, 0); h = (h ^ a7) * P1 + P4;
    h += (uint64_t)len;
    /* tail: 8-byte words, one 4-byte word, then bytes */
    while (n >= 8) {
        uint64_t k = rt_load64(p);
        ACC(k, 0);
        h ^= k;
        h = RT_ROTL64(h, 27) * P1 + P4;
        p += 8;
        n -= 8;
    }
    if (n >= 4) {
        uint32_t k;
        memcpy(&k, p, sizeof k);
        h ^= (uint64_t)k * P1;
        h = RT_ROTL64(h, 23) * P2 + P3;
        p += 4;
        n -= 4;
    }
    while (n > 0) {
        h ^= (uint64_t)(*p) * P5;
        h = RT_ROTL64(h, 11) * P1;
        p += 1;
        n -= 1;
    }
    /* final avalanche, three independent tracks folded together */
    uint64_t f0 = h, f1 = h ^ P3, f2 = h + P4;
    AVAL(f0);
    AVAL(f1);
    f1 ^= f0;
    AVAL(f1);
    AVAL(f2);
    f2 ^= f1;
    AVAL(f2);
    return (int64_t)(f0 ^ RT_ROTL64(f1, 21) ^ RT_ROTL64(f2, 42));
}

__attribute__((cold, noinline)) void rt_report_error(const char *msg) {
    thinjit_host_log(msg != NULL ? msg : "rt_report_error: (null)");
}

__attribute__((hot)) int32_t rt_hot_add(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

#if defined(__clang__)
__attribute__((optnone, noinline)) int32_t rt_debug_identity(int32_t v) { return v; }
#else /* GCC (a native host build): no optnone */
__attribute__((optimize("O0"), noinline)) int32_t rt_debug_identity(int32_t v) { return v; }
#endif

/* ------------------------------------------------------------------------- */
/* Eligibility edge cases (see README: what the summary must say)            */
/* ------------------------------------------------------------------------- */

/* va_start: LLVM never inlines a function that calls llvm.va_start -> not eligible. */
int32_t rt_sum_varargs(int32_t count, ...) {
    va_list ap;
    va_start(ap, count);
    uint32_t sum = 0;
    for (int32_t i = 0; i < count; ++i)
        sum += (uint32_t)va_arg(ap, int); /* int32_t arguments are passed as int */
    va_end(ap);
    return (int32_t)sum;
}

/* Self-recursive: the body keeps a call to itself (clang turns one of the two recursions into a
 * loop). Eligible; the planner must not loop on the self edge. */
int64_t rt_fib(int32_t n) {
    if (n < 2)
        return n;
    return rt_fib(n - 1) + rt_fib(n - 2);
}

/* Inline asm: an optimisation barrier -> not eligible. */
uint64_t rt_asm_barrier(uint64_t x) {
    __asm__ volatile("" : "+r"(x));
    return x;
}

/* Thread-local state -> accessors not eligible. */
_Thread_local int32_t rt_tls_depth = 0;

int32_t rt_tls_enter(void) { return ++rt_tls_depth; }

int32_t rt_tls_leave(void) { return --rt_tls_depth; }

/* Computed goto: the dispatch table holds blockaddress constants -> not eligible. Op codes (low two bits):
 * 0 = add 1, 1 = subtract 1, 2 = double, 3 = halt. Arithmetic wraps. */
#ifdef __clang__
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wgnu-label-as-value"
#endif
int32_t rt_dispatch(const uint8_t *ops, int32_t n) {
    static void *const labels[4] = {&&op_add, &&op_sub, &&op_dbl, &&op_halt};
    uint32_t acc = 0;
    int32_t pc = 0;
#define RT_NEXT()                                                                                  \
    do {                                                                                           \
        if (pc >= n)                                                                               \
            return (int32_t)acc;                                                                   \
        goto *labels[ops[pc++] & 3u];                                                              \
    } while (0)
    RT_NEXT();
op_add:
    acc += 1;
    RT_NEXT();
op_sub:
    acc -= 1;
    RT_NEXT();
op_dbl:
    acc *= 2;
    RT_NEXT();
op_halt:
    return (int32_t)acc;
#undef RT_NEXT
}
#ifdef __clang__
#pragma clang diagnostic pop
#endif

/* Weak definition: interposable (the body may not be the one that runs) -> not eligible. */
__attribute__((weak)) int32_t rt_weak_hook(int32_t v) { return (int32_t)((uint32_t)v * 2u + 1u); }

/* ------------------------------------------------------------------------- */
/* Transitive import: rt_chain_a (here) -> rt_chain_b (chain.c) -> rt_chain_c (here).
 * b lives in another file so clang -O2 cannot inline the chain away: the call
 * edges survive in the bitcode without any noinline attribute, and every link of
 * the chain stays importable and inlinable.                                   */
/* ------------------------------------------------------------------------- */

int32_t rt_chain_a(int32_t x) {
    uint32_t v = (uint32_t)x;
    v = (v ^ 0x5bd1e995u) * 0x01000193u;
    v ^= v >> 13;
    v = (v << 3) | (v >> 29);
    if ((int32_t)v < 0)
        v = ~v;
    else
        v += 0x2127599bu;
    uint32_t w = (v & 0xffffu) * 0x27d4eb2du + (v >> 16);
    int32_t r = rt_chain_b((int32_t)(w >> 1));
    return (int32_t)(((uint32_t)r ^ w) + (v & 0xffu));
}

int32_t rt_chain_c(int32_t x) {
    uint32_t h = (uint32_t)x;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    if (h & 1u)
        h += 0x9e3779b9u;
    else
        h ^= 0x85ebca6bu;
    h = (h << 5) | (h >> 27);
    uint32_t lo = h & 0xffffu, hi = h >> 16;
    h = (lo * 0x45d9f3bu) ^ (hi * 0x119de1f3u);
    h ^= (h >> 7) ^ (h << 9);
    h = h % 0x7fffffedu + (lo ^ hi);
    return (int32_t)(h & 0x7fffffffu);
}

/* ------------------------------------------------------------------------- */
/* Logging through the host                                                  */
/* ------------------------------------------------------------------------- */

void rt_log(const char *msg) { thinjit_host_log(msg); }
