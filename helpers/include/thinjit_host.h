/*
 * thinjit_host.h — callbacks the helper runtime expects from the host program.
 *
 * These are declared here and NOT defined by any bitcode-library file. In the
 * JIT-resident mode the embedding program registers them with the engine
 * (explicit name -> address, or its own exported symbols); in the host-native
 * mode helpers/host/host_native.c supplies them inside the native shared library.
 */
#ifndef THINJIT_HOST_H
#define THINJIT_HOST_H

#include <stddef.h>
#include <stdint.h>

/* Functions implemented in C (the host callbacks, runtime.c, chain.c) never throw:
 * C is compiled without -fexceptions. The GNU `nothrow` attribute tells C++ callers
 * so, and their calls become nounwind: no landing pads, and no std::terminate
 * scope in the implicitly noexcept InternTable destructor. It is deliberately NOT
 * put on functions defined in C++ (wrapped_value.h): clang treats it like
 * `noexcept` there, which adds a terminate scope and a __gxx_personality_v0
 * personality to each definition -- and an inlined copy would hand that
 * personality to the JIT'd caller. */
#ifndef THINJIT_NOTHROW
#define THINJIT_NOTHROW __attribute__((nothrow))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Event codes passed to thinjit_host_event. */
#define THINJIT_EVENT_INTERN_CTOR 1 /* the intern table's constructor ran */
#define THINJIT_EVENT_INTERN_DTOR 2 /* the intern table's destructor ran  */

void *thinjit_host_alloc(size_t size) THINJIT_NOTHROW;
void thinjit_host_free(void *p) THINJIT_NOTHROW;
void thinjit_host_log(const char *msg) THINJIT_NOTHROW;
void thinjit_host_event(int32_t code) THINJIT_NOTHROW;

/* Test hooks of the stand-in host (defined only in helpers/host/host_native.c, never
 * referenced by the bitcode library): per-code event counters, index = event code. */
extern int32_t thinjit_host_event_counts[8];
int32_t thinjit_host_event_count(int32_t code) THINJIT_NOTHROW; /* 0 for codes outside 0..7 */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* THINJIT_HOST_H */
