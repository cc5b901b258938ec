/* metrics.h: one reading of the process's counters and open connections,
 * taken for a scrape (metrics.c) and for the status page's feed
 * (status/status.c), so that both show the same numbers: whatever changes
 * in how they are gathered changes here, once. Internal to core/. */
#ifndef GH_METRICS_H
#define GH_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"

/* Open connections by kind: upgraded to a WebSocket, tunnelled to an
 * upstream after a 101, and the rest (HTTP, and those still reading a
 * PROXY header or doing a TLS handshake). */
typedef struct gh_conn_counts {
    uint64_t http, websocket, tunnel;
} gh_conn_counts;

typedef struct gh_metrics_snap {
    gh_stats        stats;         /* a copy of loop->stats */
    gh_conn_counts *listeners;     /* by gh_listener.index, for those not retired;
                                      heap, NULL when there are none */
    size_t          nlisteners;
    gh_conn_counts  open;          /* summed over those listeners */
    bool            draining;
    double          now;           /* unix seconds when taken */
} gh_metrics_snap;

/* Takes the reading (one pass over the connection registry). Returns 0,
 * or GH_ENOMEM with *out empty. Free with gh_metrics_snap_deinit(). */
int gh_metrics_gather(gh_loop *loop, gh_metrics_snap *out);
void gh_metrics_snap_deinit(gh_metrics_snap *s);

#endif
