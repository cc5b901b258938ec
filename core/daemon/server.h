/* server.h: the daemon: builds sites, binds listeners, owns the loop, its
 * signals, the connection limit, reload and drain. The top of core/: it
 * includes the layers below, none of them includes it. */
#ifndef GH_SERVER_H
#define GH_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "errlist.h"
#include "loop.h"

typedef struct gh_server gh_server;

/* Builds the run-time side of cfg (taken over in every case): opens static
 * roots, TLS contexts and loads the plugins: whatever must exist before
 * serving. Appends every problem to errs (FILE:LINE:COL) and returns
 * GH_EINVAL, or 0 and *out with one reference (gh_site_unref frees). */
int gh_site_new(gh_config *cfg, gh_errlist *errs, gh_site **out);

/* The daemon: a gh_loop (what the layers below see) and what only the
 * daemon does with it: signals, the connection limit, the drain. */
struct gh_server {
    gh_loop            loop;           /* first: listeners and hooks point here */
    struct event      *sig_term, *sig_int, *sig_hup, *sig_pipe;
    struct event      *drain_timer;
    struct event      *accept_retry;   /* re-enables accepting after EMFILE */
    struct event      *trim_timer;     /* gives freed heap back after a burst */
    uint64_t           max_conns;      /* effective limit */
    uint64_t           nofile;         /* the open-files limit after raising it */
    bool               accepting;
    int                exit_code;
};

/* Creates the server on site (the reference is taken over, also on
 * failure). Binds every listener. Returns 0 and *out, or a negative error
 * having logged why. */
int gh_server_new(gh_site *site, gh_server **out);
void gh_server_free(gh_server *srv);

/* Runs the loop until drained or stopped. Returns the exit code. */
int gh_server_run(gh_server *srv);

/* Re-reads the config file and swaps in the new routes, listeners,
 * plugins and certificates (SIGHUP). Established connections keep the
 * generation they started with. A config with errors is refused, its errors
 * logged, and the running one kept. Returns 0 or GH_EINVAL. */
int gh_server_reload(gh_server *srv);

/* Starts the drain (SIGTERM): health 503 now, stop accepting after
 * drain_delay, exit when the last connection closes or drain_timeout. */
void gh_server_drain(gh_server *srv);

#endif
