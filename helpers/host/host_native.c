/*
 * host/host_native.c — a plain C stand-in for the host program's callbacks.
 *
 * NOT part of the bitcode library: it is linked only into the native shared
 * library of the host-native mode, where it plays the host. (In the
 * JIT-resident mode the embedding program provides these four symbols itself.)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "thinjit_host.h"

/* Per-code event counters (index = event code), exported for tests. */
int32_t thinjit_host_event_counts[8];

void *thinjit_host_alloc(size_t size) { return malloc(size != 0 ? size : 1); }

void thinjit_host_free(void *p) { free(p); }

/* Logs to stderr only when THINJIT_HOST_LOG is set (to anything). */
void thinjit_host_log(const char *msg) {
    if (getenv("THINJIT_HOST_LOG") != NULL) {
        fprintf(stderr, "[thinjit host] %s\n", msg != NULL ? msg : "(null)");
        fflush(stderr);
    }
}

void thinjit_host_event(int32_t code) {
    if (code >= 0 && code < 8)
        thinjit_host_event_counts[code] += 1;
}

int32_t thinjit_host_event_count(int32_t code) {
    return (code >= 0 && code < 8) ? thinjit_host_event_counts[code] : 0;
}
