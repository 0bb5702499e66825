/* Labels from a constant table. */
#include "hostrt_internal.h"

static const char *const labels[] = {"zero", "small", "large"};

const char *hostrt_label(int64_t value) {
    return labels[hostrt_clamp(value == 0 ? 0 : (value < 100 ? 1 : 2), 0, 2)];
}
