/* loop.h: what the connection path needs of the process that runs it: one
 * event loop, the current configuration generation (the site), the
 * listeners, the connection registry, the counters and the access log.
 *
 * The daemon (core/daemon/server.c) embeds a gh_loop in its server and fills
 * in the hooks and the action table; modules of the connection path, the
 * WebSocket engine and the bus reach the daemon only through this struct,
 * never through server.h. The slots for the upper layers' state (topics,
 * topic state, bus, hub) are opaque here: this layer stores them for the
 * layers above and never looks inside. Internal to core/. */
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
    int        refs;         /* atomic: workers share the site */
    unsigned   nworkers;     /* the per-worker parts (plugin instances, upstream pools) */
    gh_config *cfg;          /* owned */
    struct ssl_ctx_st **tls_ctx;  /* per listener: SSL_CTX*, or NULL without tls */
    int       *root_fds;     /* per route: the static root's directory fd, or -1 */
    size_t     nroot_fds;
    struct gh_plugins *plugins;   /* loaded plugins and per-route instances (ws/pluginhost.c) */
    struct gh_upstreams **upstreams; /* per worker: pools of the upstreams
                                        (upstream/pool.c); NULL without upstreams */
    struct gh_filecache **filecache; /* per worker: small static files in memory
                                        (an entry is used by one thread); NULL
                                        without static routes, an item NULL
                                        without memory */
    /* frees what an upper layer hung on the site (the plugins) before the
     * rest goes; set by whoever built the site, may be NULL */
    void     (*on_free)(gh_site *s);
    /* when set, called at zero instead of gh_site_destroy(): the daemon
     * has each worker release its parts on its own thread first, then
     * destroys the site */
    void     (*on_last)(gh_site *s);
    void      *owner;        /* on_last's */
    unsigned   parts_left;   /* workers yet to release their parts (atomic) */
};

/* Takes a reference; returns s. Any thread. */
gh_site *gh_site_ref(gh_site *s);
/* NULL-safe; any thread. At zero: on_last, or gh_site_destroy(). */
void gh_site_unref(gh_site *s);
/* Calls on_free, then frees the TLS contexts, static roots, file cache and
 * config, and s. */
void gh_site_destroy(gh_site *s);

/* A listening socket. Listeners live until the loop is freed: one that a
 * reload removes is closed and marked retired, because connections it
 * accepted still point at it. */
typedef struct gh_listener {
    struct gh_listener    *next;
    gh_loop               *loop;
    struct evconnlistener *evl;        /* NULL once closed */
    size_t                 index;      /* into the current site's cfg->listeners */
    char                  *name;       /* "127.0.0.1:8080" for logs */
    uint64_t               open[3];    /* connections open now, by gh_conn_kind;
                                          written by its worker only (GH_STAT_*) */
    bool                   retired;    /* removed by a reload; set before the workers
                                          see the new site */
    /* the daemon's, for the connection limits: its count of this address's
     * connections when the listener has its own limit (shared by every
     * worker's listener of the address), whether it has one now (read when
     * a connection is accepted: listeners.max_connections), and its
     * accepting state; written by its worker */
    struct gh_places      *places;
    bool                   own_limit;
    bool                   own_paused; /* at its own limit */
    bool                   enabled;    /* evl is enabled */
} gh_listener;

/* What a connection is counted as on its listener (gh_listener.open). */
typedef enum { GH_KIND_HTTP = 0, GH_KIND_WEBSOCKET, GH_KIND_TUNNEL } gh_conn_kind;

/* The last reload tried (SIGHUP), for metrics and the status page. */
typedef struct gh_reload_info {
    double time;                /* unix seconds; 0: none since the start */
    bool   failed;              /* refused: the configuration before serves on */
    char   error[256];          /* its first error when refused, else "" */
} gh_reload_info;

/* A route action: answers r (see conn.h for what it may call). */
typedef void (*gh_action_fn)(gh_request *r, const gh_route_conf *route);

struct gh_loop {
    struct event_base *base;
    unsigned           id;             /* the worker: 0 .. npeers - 1 */
    gh_loop          **peers;          /* every worker's loop, peers[id] == this one;
                                          fixed before the workers start */
    unsigned           npeers;
    struct gh_mailbox *mbox;           /* tasks posted by other threads (gh_loop_post) */
    gh_site           *site;           /* current generation */
    gh_listener       *listeners;      /* list, active and retired */
    gh_conn           *conns;          /* doubly linked registry */
    struct gh_slab    *conn_slab;      /* where conn.c's gh_conn blocks come from
                                          (base/slab.h); made on the first accept,
                                          freed after the last connection */
    uint64_t           nconns;
    uint64_t           next_conn_id;   /* worker 0's counts for every worker (atomic) */
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
     * enforces its connection limits and ends the drain here); own: it was
     * counted against its listener's own limit (gh_listener.own_limit when
     * it was accepted); may be NULL */
    void              (*on_conn_added)(gh_loop *loop);
    void              (*on_conn_removed)(gh_loop *loop, gh_listener *l, bool own);
    /* called after a connection left the registry for another worker
     * (gh_conn_move(): it keeps its places in the limits); may be NULL */
    void              (*on_conn_left)(gh_loop *loop);
    /* connections other workers are moving here (gh_conn_move()): counted
     * by the sender before it posts, uncounted here once adopted (atomic);
     * a stopping loop does not end while any is on its way */
    uint64_t           moves_in;
    /* set (atomic, seq_cst) by the loop once it stops: senders then answer
     * their requests themselves instead of moving them here */
    bool               closed_to_moves;
    /* adds an upper layer's metrics to a scrape of site (may be NULL) */
    void              (*metrics_more)(gh_loop *loop, gh_site *site, struct gh_promtext *t);
    /* copies the last reload's result to *out: the daemon's record, one for
     * the process (worker 0 writes it; any worker may ask); may be NULL */
    void              (*last_reload)(gh_loop *loop, gh_reload_info *out);
    /* the upper layers' state, opaque here */
    struct gh_topics  *topics;         /* WebSocket fan-out (ws/topic.c) */
    struct gh_tstate  *tstate;         /* topics' members and logs (ws/tstate.c) */
    struct gh_bus     *bus;            /* topics across instances (cluster/bus.c), or NULL */
    struct gh_hub     *hub;            /* topics across this process's workers
                                          (cluster/hub.c): every worker's, NULL
                                          with one; set before the workers run */
    bool               hub_congested;  /* a publish of this loop's found another
                                          worker's backlog full (the hub sets it,
                                          wsconn.c pauses the publisher) */
    void              (*publishers_resume)(gh_loop *loop);   /* the hub's backlogs
                                          are down: read paused publishers again */
    struct gh_ws_conn *ws_flush;       /* WebSocket connections with output to write at
                                          the end of this loop turn (ws/wsconn.c) */
    struct event      *ws_flush_ev;    /* writes them, once per turn; made on first use */
    struct gh_climits **climits;       /* the process's per-client limits
                                          (climit.h), shared by the workers; made
                                          when a config sets any (atomic) */
    uint64_t           limit_logged_ms[3];     /* last line per gh_limit_kind */
    uint64_t           limit_unlogged[3];      /* refusals since that line */
    uint64_t           timeout_logged_ms;      /* the last header-timeout line */
    uint64_t           timeout_unlogged;       /* header timeouts since that line */
    uint64_t           timeout_slice_ns;       /* when the current run of timeouts began */
    struct gh_zpool   *zpool;          /* zlib streams lent for permessage-deflate
                                          (codec/pmdeflate.h), made on first use */
    struct gh_ws_loop *wsl;            /* plain-socket WebSockets' deadlines, read buffer
                                          and spare output buffers (ws/wsconn.c),
                                          made on first use */
};

/* A task run on a loop's own thread: fn(loop, arg). */
typedef void (*gh_loop_task_fn)(gh_loop *loop, void *arg);

/* Sets up loop's mailbox (its base must exist). Returns 0 or GH_ENOMEM. */
int gh_loop_mailbox_new(gh_loop *loop);
/* Runs the tasks queued now, on the calling thread (the loop's, or any
 * once the loop has ended). Returns whether there were any. */
bool gh_loop_mailbox_run(gh_loop *loop);
/* Frees it; tasks still queued are dropped without running (NULL-safe). */
void gh_loop_mailbox_free(gh_loop *loop);

/* From any thread: queues fn(loop, arg) to run on loop's thread, in the
 * order posted. The loop is woken once per batch (an eventfd written only
 * when its queue was empty). Posted from a loop's own callbacks (the
 * thread's gh_loop_set_current()), the wake-up waits until that callback
 * is done: it is written by an event of the posting loop, activated by the
 * first such post, which runs after the callbacks already due in this
 * turn, or earlier through gh_loop_wake_now(). So the tasks one read
 * callback posts (a publisher's pipelined messages) reach the other loop
 * as one batch, instead of waking it for the first while the rest are
 * still being posted. Returns 0 or GH_ENOMEM (not queued). */
int gh_loop_post(gh_loop *loop, gh_loop_task_fn fn, void *arg);

/* The loop whose callbacks the calling thread runs (a worker sets its own
 * before it runs its loop), or NULL: posts wake at once. Setting another
 * one (or NULL) first writes the wake-ups the previous one still holds. */
void gh_loop_set_current(gh_loop *loop);

/* Writes the wake-ups loop's callbacks have posted and not written yet
 * (on loop's thread). */
void gh_loop_wake_now(gh_loop *loop);

/* c becomes a connection of kind (from http): counted on its listener. */
void gh_loop_conn_kind(gh_loop *loop, gh_conn *c, gh_conn_kind kind);

/* The cached IMF-fixdate for now (refreshed once a second). */
const char *gh_loop_date(gh_loop *loop);

/* Writes one formatted line to the access log (if on). */
void gh_loop_access_write(gh_loop *loop, const char *line, size_t len);

/* The connection registry, called by conn.c: links c in (or out), counts it
 * on its listener and calls the hook. */
void gh_loop_conn_added(gh_loop *loop, gh_conn *c);
void gh_loop_conn_removed(gh_loop *loop, gh_conn *c);

/* The same for a connection moving between workers (gh_conn_move()):
 * it leaves one registry and joins another with its kind and its places
 * in the limits kept. Left calls on_conn_left; joined calls no hook. */
void gh_loop_conn_left(gh_loop *loop, gh_conn *c);
void gh_loop_conn_joined(gh_loop *loop, gh_conn *c);

/* True when a stopping loop may end: no connection, and none on its way
 * here. Its own thread. */
bool gh_loop_is_empty(gh_loop *loop);

#endif
