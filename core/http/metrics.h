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

/* What one worker has: open on any of its listeners (retired ones too),
 * and accepted since the start. */
typedef struct gh_worker_counts {
    gh_conn_counts open;
    uint64_t       accepted;
} gh_worker_counts;

typedef struct gh_metrics_snap {
    gh_stats          stats;       /* every worker's, added up (gh_stats_sum) */
    gh_conn_counts   *listeners;   /* by listener index (the current site's
                                      cfg->listeners), every worker's added up,
                                      retired listeners left out; heap, NULL
                                      when there are none */
    size_t            nlisteners;
    gh_conn_counts    open;        /* summed over this worker's listeners that
                                      are not retired (what connections_open
                                      lists) */
    gh_worker_counts *workers;     /* by worker (loop->id); heap */
    unsigned          nworkers;
    gh_reload_info    last_reload; /* the daemon's record (zero without one) */
    bool              draining;
    double            now;         /* unix seconds when taken */
} gh_metrics_snap;

/* Takes the reading: every worker's counters (relaxed atomic loads, each
 * as it is now) and its listeners' open counts, and the last reload.
 * Returns 0, or GH_ENOMEM with *out empty. Free with
 * gh_metrics_snap_deinit(). */
int gh_metrics_gather(gh_loop *loop, gh_metrics_snap *out);
void gh_metrics_snap_deinit(gh_metrics_snap *s);

#endif
