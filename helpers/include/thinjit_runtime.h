/*
 * thinjit_runtime.h — the C part of the sample helper runtime (helpers/runtime.c,
 * helpers/chain.c, helpers/exceptions.cpp). Each function is there to exercise one
 * case of the summary builder / import planner; see helpers/README.md.
 */
#ifndef THINJIT_RUNTIME_H
#define THINJIT_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "thinjit_host.h" /* THINJIT_NOTHROW */

#ifdef __cplusplus
extern "C" {
#endif

/* Allocation through the host; counts calls in the one-instance global rt_alloc_count. */
extern int64_t rt_alloc_count;
void *rt_alloc(size_t n) THINJIT_NOTHROW;
int64_t rt_get_alloc_count(void) THINJIT_NOTHROW;

/* One instance of a mutable global across host and every script. */
extern int64_t rt_shared_counter;
int64_t rt_counter_increment(void) THINJIT_NOTHROW; /* returns the new value */
int64_t rt_counter_get(void) THINJIT_NOTHROW;

/* Uses a file-static mutable variable (promoted JIT-resident; not importable host-native). */
int64_t rt_next_object_id(void) THINJIT_NOTHROW;

/* Calls a static noinline helper that clamps to [-1000, 1000]. */
int32_t rt_clamp_add(int32_t a, int32_t b) THINJIT_NOTHROW;

/* Constant tables: external (rt_squares) and internal (the CRC-32 table). */
extern const int32_t rt_squares[64];
int32_t rt_square_lookup(int32_t i) THINJIT_NOTHROW;            /* rt_squares[i & 63] */
uint32_t rt_crc32(const uint8_t *p, size_t n) THINJIT_NOTHROW;  /* CRC-32 (IEEE, reflected) */

/* Inlining attributes and sizes. */
int32_t rt_noinline_add(int32_t a, int32_t b) THINJIT_NOTHROW;       /* noinline */
int64_t rt_always_inline_mix(int64_t x) THINJIT_NOTHROW;             /* alwaysinline, big */
int64_t rt_big_checksum(const uint8_t *p, size_t n) THINJIT_NOTHROW; /* far over the import limit */
void rt_report_error(const char *msg) THINJIT_NOTHROW __attribute__((cold)); /* cold, noinline */
int32_t rt_hot_add(int32_t a, int32_t b) THINJIT_NOTHROW;            /* hot */
int32_t rt_debug_identity(int32_t v) THINJIT_NOTHROW;                /* optnone, noinline */

/* Eligibility edge cases. */
int32_t rt_sum_varargs(int32_t count, ...) THINJIT_NOTHROW;          /* va_start */
int64_t rt_fib(int32_t n) THINJIT_NOTHROW;                           /* self-recursive */
uint64_t rt_asm_barrier(uint64_t x) THINJIT_NOTHROW;                 /* inline asm */
#ifdef __cplusplus
extern thread_local int32_t rt_tls_depth;
#else
extern _Thread_local int32_t rt_tls_depth;
#endif
int32_t rt_tls_enter(void) THINJIT_NOTHROW;                          /* thread-local; returns the new depth */
int32_t rt_tls_leave(void) THINJIT_NOTHROW;                          /* returns the new depth */
int32_t rt_dispatch(const uint8_t *ops, int32_t n) THINJIT_NOTHROW;  /* computed goto -> blockaddress */
int32_t rt_weak_hook(int32_t v) THINJIT_NOTHROW;                     /* weak: interposable */

/* Transitive import: rt_chain_a (runtime.c) -> rt_chain_b (chain.c) -> rt_chain_c (runtime.c). */
int32_t rt_chain_a(int32_t x) THINJIT_NOTHROW;
int32_t rt_chain_b(int32_t x) THINJIT_NOTHROW;
int32_t rt_chain_c(int32_t x) THINJIT_NOTHROW;

/* Logging through the host. */
void rt_log(const char *msg) THINJIT_NOTHROW;

/* C++ exceptions (helpers/exceptions.cpp): a / b, or INT32_MIN when b == 0 (thrown and caught
 * inside; nothing escapes). INT32_MIN / -1 wraps to INT32_MIN instead of trapping.
 * Not marked nothrow: its body really has invoke / landingpad. */
int32_t rt_checked_div(int32_t a, int32_t b);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* THINJIT_RUNTIME_H */
