/* The host crate's helper runtime: what JIT'd scripts call. */
#ifndef HOSTRT_H
#define HOSTRT_H
#include <stdint.h>

#ifndef HOSTRT_SCALE
#error "HOSTRT_SCALE must be defined (build.rs passes -DHOSTRT_SCALE=7)"
#endif

/* Host callback: implemented in Rust by the host crate (src/main.rs), registered with the engine. */
void hostrt_host_notify(int64_t value);

/* The one shared counter: scripts bump it, the host reads it. */
extern int64_t hostrt_counter;
int64_t hostrt_bump(int64_t by);
int64_t hostrt_counter_get(void);

/* x * HOSTRT_SCALE. */
int64_t hostrt_scale(int64_t x);

/* A label for a value, from a constant table. */
const char *hostrt_label(int64_t value);
#endif
