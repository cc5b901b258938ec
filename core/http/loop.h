/* loop.h: what the connection path needs of the process that runs it: one
 * event loop, the current configuration generation (the site), the
 * listeners, the connection registry, the counters and the access log.
 *
 * The daemon (core/daemon/server.c) embeds a gh_loop in its server and fills
 * in the hooks and the action table; modules of the connection path, the
 * WebSocket engine and the bus reach the daemon only through this struct,
 * never through server.h. The three slots for the upper layers' state
 * (topics, topic state, bus) are opaque here: this layer stores them for
 * the layers above and never looks inside. Internal to core/. */
#ifndef GH_LOOP_H
#define GH_LOOP_H

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
typedef struct gh_loop gh_loop;
typedef struct gh_site gh_site;
typedef struct gh_request gh_request;
struct gh_promtext;

/* What one configuration generation needs at run time. Connections hold a
 * reference, so a reload can swap the site without pulling the routes from
 * under a request in flight. Built by the daemon (gh_site_new in server.c). */
struct gh_site {
    int        refs;
    gh_config *cfg;          /* owned */
    struct ssl_ctx_st **tls_ctx;  /* per listener: SSL_CTX*, or NULL without tls */
    int       *root_fds;     /* per route: the static root's directory fd, or -1 */
    size_t     nroot_fds;
    struct gh_plugins *plugins;   /* loaded plugins and per-route instances (ws/pluginhost.c) */
    struct gh_upstreams *upstreams; /* pools of the upstreams (upstream/pool.c), or NULL */
    struct gh_filecache *filecache; /* small static files in memory, or NULL */
    /* frees what an upper layer hung on the site (the plugins) before the
     * rest goes; set by whoever built the site, may be NULL */
    void     (*on_free)(gh_site *s);
};

/* Takes a reference; returns s. */
gh_site *gh_site_ref(gh_site *s);
/* NULL-safe; at zero calls on_free, then frees the TLS contexts, static
 * roots, file cache and config. */
void gh_site_unref(gh_site *s);

/* A listening socket. Listeners live until the loop is freed: one that a
 * reload removes is closed and marked retired, because connections it
 * accepted still point at it. */
typedef struct gh_listener {
    struct gh_listener    *next;
    gh_loop               *loop;
    struct evconnlistener *evl;        /* NULL once closed */
    size_t                 index;      /* into the current site's cfg->listeners */
    char                  *name;       /* "127.0.0.1:8080" for logs */
    uint64_t               open;       /* connections open now */
    bool                   retired;    /* removed by a reload */
} gh_listener;

/* A route action: answers r (see conn.h for what it may call). */
typedef void (*gh_action_fn)(gh_request *r, const gh_route_conf *route);

struct gh_loop {
    struct event_base *base;
    gh_site           *site;           /* current generation */
    gh_listener       *listeners;      /* list, active and retired */
    gh_conn           *conns;          /* doubly linked registry */
    uint64_t           nconns;
    uint64_t           next_conn_id;
    bool               draining;       /* health says 503 */
    bool               stopping;       /* listeners closed, waiting for conns */
    int                access_fd;      /* -1 when off */
    gh_stats           stats;
    time_t             date_sec;       /* cached Date header */
    char               date[GH_HTTPDATE_LEN + 1];
    /* route actions by gh_action_kind; an empty slot answers 501 */
    const gh_action_fn *actions;
    size_t              nactions;
    /* called after a connection joined or left the registry (the daemon
     * enforces its connection limit and ends the drain here); may be NULL */
    void              (*on_conn_added)(gh_loop *loop);
    void              (*on_conn_removed)(gh_loop *loop);
    /* adds an upper layer's metrics to a scrape of site (may be NULL) */
    void              (*metrics_more)(gh_loop *loop, gh_site *site, struct gh_promtext *t);
    /* the upper layers' state, opaque here */
    struct gh_topics  *topics;         /* WebSocket fan-out (ws/topic.c) */
    struct gh_tstate  *tstate;         /* topics' members and logs (ws/tstate.c) */
    struct gh_bus     *bus;            /* topics across instances (cluster/bus.c), or NULL */
    struct gh_ws_conn *ws_flush;       /* WebSocket connections with output to write at
                                          the end of this loop turn (ws/wsconn.c) */
    struct event      *ws_flush_ev;    /* writes them, once per turn; made on first use */
    struct gh_climits *climits;        /* per-client limits (climit.h), made when a
                                          config sets any */
    uint64_t           limit_logged_ms[3];     /* last line per gh_limit_kind */
    uint64_t           limit_unlogged[3];      /* refusals since that line */
    struct gh_zpool   *zpool;          /* zlib streams lent for permessage-deflate
                                          (codec/pmdeflate.h), made on first use */
    struct gh_ws_loop *wsl;            /* plain-socket WebSockets' deadlines, read buffer
                                          and spare output buffers (ws/wsconn.c),
                                          made on first use */
};

/* The cached IMF-fixdate for now (refreshed once a second). */
const char *gh_loop_date(gh_loop *loop);

/* Writes one formatted line to the access log (if on). */
void gh_loop_access_write(gh_loop *loop, const char *line, size_t len);

/* The connection registry, called by conn.c: links c in (or out), counts it
 * on its listener and calls the hook. */
void gh_loop_conn_added(gh_loop *loop, gh_conn *c);
void gh_loop_conn_removed(gh_loop *loop, gh_conn *c);

#endif
