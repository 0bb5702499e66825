/* Shared between the runtime's own sources; not part of its API. */
#ifndef HOSTRT_INTERNAL_H
#define HOSTRT_INTERNAL_H
#include "hostrt.h"

static inline int64_t hostrt_clamp(int64_t v, int64_t lo, int64_t hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}
#endif
