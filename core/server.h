/* server.h: the daemon's runtime: event loop, listeners, the connection
 * registry, signals and drain. Internal to core/. */
#ifndef GH_SERVER_H
#define GH_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "httpdate.h"
#include "stats.h"

typedef struct gh_conn gh_conn;
typedef struct gh_server gh_server;

/* What one configuration generation needs at run time. Connections hold a
 * reference, so a reload can swap the site without pulling the routes from
 * under a request in flight. */
typedef struct gh_site {
    int        refs;
    gh_config *cfg;          /* owned */
    struct ssl_ctx_st **tls_ctx;  /* per listener: SSL_CTX*, or NULL without tls */
    int       *root_fds;     /* per route: the static root's directory fd, or -1 */
    size_t     nroot_fds;
    struct gh_plugins *plugins;   /* loaded plugins and per-route instances (pluginhost.c) */
    struct gh_filecache *filecache; /* small static files in memory, or NULL */
} gh_site;

/* Builds the run-time side of cfg (taken over in every case): opens static
 * roots and whatever else must exist before serving. Appends every problem
 * to errs (FILE:LINE:COL) and returns GH_EINVAL, or 0 and *out with one
 * reference. */
int gh_site_new(gh_config *cfg, gh_errlist *errs, gh_site **out);
gh_site *gh_site_ref(gh_site *s);
void gh_site_unref(gh_site *s);   /* NULL-safe; frees at zero */

/* A listening socket. Listeners live until the server is freed: one that a
 * reload removes is closed and marked retired, because connections it
 * accepted still point at it. */
typedef struct gh_listener {
    struct gh_listener    *next;
    gh_server             *srv;
    struct evconnlistener *evl;        /* NULL once closed */
    size_t                 index;      /* into the current site's cfg->listeners */
    char                  *name;       /* "127.0.0.1:8080" for logs */
    uint64_t               open;       /* connections open now */
    bool                   retired;    /* removed by a reload */
} gh_listener;

struct gh_server {
    struct event_base *base;
    gh_site           *site;           /* current generation */
    gh_listener       *listeners;      /* list, active and retired */
    struct event      *sig_term, *sig_int, *sig_hup, *sig_pipe;
    struct event      *drain_timer;
    struct event      *accept_retry;   /* re-enables accepting after EMFILE */
    gh_conn           *conns;          /* doubly linked registry */
    uint64_t           nconns;
    uint64_t           max_conns;      /* effective limit */
    uint64_t           nofile;         /* the open-files limit after raising it */
    uint64_t           next_conn_id;
    bool               accepting;
    bool               draining;       /* health says 503 */
    bool               stopping;       /* listeners closed, waiting for conns */
    int                exit_code;
    int                access_fd;      /* -1 when off */
    struct gh_topics  *topics;         /* WebSocket fan-out (topic.c) */
    struct gh_bus     *bus;            /* topics across instances (bus.c), or NULL */
    struct gh_tstate  *tstate;         /* topics' members and logs (tstate.c) */
    gh_stats           stats;
    time_t             date_sec;       /* cached Date header */
    char               date[GH_HTTPDATE_LEN + 1];
};

/* Creates the server on site (the reference is taken over, also on
 * failure). Binds every listener. Returns 0 and *out, or a negative error
 * having logged why. */
int gh_server_new(gh_site *site, gh_server **out);
void gh_server_free(gh_server *srv);

/* Runs the loop until drained or stopped. Returns the exit code. */
int gh_server_run(gh_server *srv);

/* The cached IMF-fixdate for now (refreshed once a second). */
const char *gh_server_date(gh_server *srv);

/* Writes one formatted line to the access log (if on). */
void gh_server_access_write(gh_server *srv, const char *line, size_t len);

/* Connection registry, called by conn.c. */
void gh_server_conn_added(gh_server *srv, gh_conn *c);
void gh_server_conn_removed(gh_server *srv, gh_conn *c);

/* Re-reads the config file and swaps in the new routes, listeners,
 * plugins and certificates (SIGHUP). Established connections keep the
 * generation they started with. A config with errors is refused, its errors
 * logged, and the running one kept. Returns 0 or GH_EINVAL. */
int gh_server_reload(gh_server *srv);

/* Starts the drain (SIGTERM): health 503 now, stop accepting after
 * drain_delay, exit when the last connection closes or drain_timeout. */
void gh_server_drain(gh_server *srv);

#endif
