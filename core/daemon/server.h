/* server.h: the daemon: builds sites, binds listeners, owns the workers, their
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

/* Builds the run-time side of cfg (taken over in every case) for nworkers
 * workers: opens static roots, TLS contexts and loads the plugins (an
 * instance per worker): whatever must exist before serving. Appends every
 * problem to errs (FILE:LINE:COL) and returns GH_EINVAL, or 0 and *out
 * with one reference (gh_site_unref frees). */
int gh_site_new(gh_config *cfg, unsigned nworkers, gh_errlist *errs, gh_site **out);

/* The daemon: its workers (an event loop each, see server.c) and what only
 * the daemon does with them: signals, the connection limit, reload and
 * drain. */

/* Creates the server on site (the reference is taken over, also on
 * failure) with site->nworkers workers. Binds every listener. Returns 0
 * and *out, or a negative error having logged why. */
int gh_server_new(gh_site *site, gh_server **out);
void gh_server_free(gh_server *srv);

/* The configuration serving now. */
const gh_config *gh_server_config(const gh_server *srv);

/* Starts the other workers' threads and runs worker 0's loop until the
 * drain is done (or a second signal); then joins the others. Returns the
 * exit code. */
int gh_server_run(gh_server *srv);

/* Re-reads the config file and swaps in the new routes, listeners,
 * plugins and certificates (SIGHUP), on every worker. Established
 * connections keep the generation they started with. A config with
 * errors is refused, its errors logged, and the running one kept; so is a
 * changed worker count or user. "reloaded" is logged once every worker
 * serves the new one. Returns 0 or GH_EINVAL. */
int gh_server_reload(gh_server *srv);

/* Starts the drain (SIGTERM) on every worker: health 503 now, stop
 * accepting after drain_delay, exit when the last connection closes or
 * drain_timeout. */
void gh_server_drain(gh_server *srv);

#endif
