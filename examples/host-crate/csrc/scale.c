/* Scaling by the build-time constant HOSTRT_SCALE. */
#include "hostrt_internal.h"

int64_t hostrt_scale(int64_t x) { return hostrt_clamp(x, -1000000, 1000000) * HOSTRT_SCALE; }
