/* The shared counter and the call into the host. */
#include "hostrt.h"

int64_t hostrt_counter;

int64_t hostrt_bump(int64_t by) {
    hostrt_counter += by;
    hostrt_host_notify(hostrt_counter);
    return hostrt_counter;
}

int64_t hostrt_counter_get(void) { return hostrt_counter; }
