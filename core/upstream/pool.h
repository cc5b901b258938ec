/* pool.h: the run-time side of `upstreams:`: for each upstream its servers'
 * state (passive health, connections in use), the choice of a server for a
 * request (round robin by weight, least connections, client address hash;
 * backups only when every primary is down), and the idle keep-alive
 * connections to each server.
 *
 * One gh_upstreams per site (configuration generation) and worker: a
 * reload builds new pools, and the old site's idle connections close when
 * the last request that uses that site ends. Each worker's pool is its
 * own (connections belong to one event loop); the counters are written by
 * that worker only (GH_STAT_*) and added up by the metrics. Health is one
 * for the process: active checks run in the first worker's pool, and a
 * worker that counts max_fails failures (its own) marks the server down in
 * the first worker's server, which every worker reads. Round robin and
 * least_conn choose among each worker's own requests. Internal to core/. */
#ifndef GH_POOL_H
#define GH_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config.h"
#include "conn.h"
#include "errlist.h"

typedef struct gh_upstreams gh_upstreams;
typedef struct gh_upstream gh_upstream;

/* Why a request on a server failed, for counters and logs. */
typedef enum {
    GH_UPFAIL_CONNECT = 0,      /* connect refused or failed */
    GH_UPFAIL_CONNECT_TIMEOUT,  /* connect_timeout */
    GH_UPFAIL_TIMEOUT,          /* read_timeout / send_timeout */
    GH_UPFAIL_CLOSED,           /* closed before answering or in a response */
    GH_UPFAIL_BAD_RESPONSE,     /* an unparseable or unasked-for response */
    GH_UPFAIL_COUNT
} gh_upfail;

#define GH_UP_BUCKETS 11        /* response-time histogram, plus +Inf */

/* One server's run-time state. */
typedef struct gh_upserver {
    const gh_upstream_server *conf;
    gh_upstream              *up;
    uint64_t                  active;        /* requests on it now */
    uint64_t                  fails;         /* within the current window (this worker's) */
    uint64_t                  window_ms;     /* start of that window */
    uint64_t                  down_until_ms; /* passive health: down before this; the
                                                first worker's counts (hc_of, atomic) */
    int64_t                   current;       /* smooth weighted round robin */
    struct gh_idle           *idle;          /* kept connections, newest first */
    struct event             *trim;          /* closes the idle ones over keepalive */
    /* active health: checked by the first worker's pool; hc_of is the
     * server whose hc_down counts (itself there, the first worker's
     * elsewhere) */
    const struct gh_upserver *hc_of;
    bool                      hc_down;       /* marked down by health checks (atomic) */
    uint64_t                  hc_fails, hc_passes;   /* consecutive */
    struct event             *hc_timer;
    struct bufferevent       *hc_bev;        /* the check in flight, or NULL */
    uint64_t                  hc_checks;
    size_t                    nidle;
    /* counters */
    uint64_t                  requests, responses[6], failures[GH_UPFAIL_COUNT];
    /* response-head time, request sent to head received: a moving average
     * (each response weighs 1/8, as TCP's smoothed RTT), 0 before the
     * first; this worker's responses (atomic, as the counters) */
    double                    latency_ms;
    uint64_t                  timed;         /* responses averaged */
} gh_upserver;

struct gh_upstream {
    const gh_upstream_conf *conf;
    struct ssl_ctx_st      *ssl_ctx;        /* with tls:, else NULL */
    gh_upserver            *servers;
    size_t                  nservers;
    gh_upstreams           *all;
    /* upstream response time: request sent to response head */
    uint64_t                  hist[GH_UP_BUCKETS + 1];
    uint64_t                  hist_count;
    uint64_t                  hist_sum_ms;
};

/* Builds the pools of cfg's upstreams (no connection is made here) and the
 * TLS client contexts of those with tls:. A CA file that cannot be loaded
 * is appended to errs (FILE:LINE:COL) and gives GH_EINVAL. Returns 0 and
 * *out, GH_EINVAL or GH_ENOMEM. */
int gh_upstreams_new(const gh_config *cfg, gh_errlist *errs, gh_upstreams **out);

/* A new, unconnected bufferevent for a connection to s (TLS with SNI and
 * certificate checks when its upstream has tls:); the caller connects it
 * with bufferevent_socket_connect(). NULL on ENOMEM. */
struct bufferevent *gh_upserver_bev_new(gh_upserver *s, struct event_base *base);
/* Closes every idle connection, stops health checks and frees (NULL-safe). */
void gh_upstreams_free(gh_upstreams *u);

/* u (another worker's pools of the same site) takes its servers' active
 * health from leader's, which runs the checks. */
void gh_upstreams_follow(gh_upstreams *u, const gh_upstreams *leader);

/* Starts the active health checks of the upstreams that have health: on
 * base (the site is the one serving now). Idempotent. Returns 0 or
 * GH_ENOMEM. */
int gh_upstreams_start(gh_upstreams *u, struct event_base *base);
/* Stops them (a reload replaced this site). NULL-safe. */
void gh_upstreams_stop(gh_upstreams *u);

/* The upstream at index i of cfg->upstreams. */
gh_upstream *gh_upstreams_get(gh_upstreams *u, size_t i);

/* Chooses a server for a request from client, skipping those with
 * tried[i] set. now_ms is a monotonic clock. Returns the server, or NULL
 * when none is left (every_down is set when that is because every server
 * untried is marked down, not because all were tried). */
gh_upserver *gh_upstream_pick(gh_upstream *up, const struct sockaddr *client,
                              const bool *tried, uint64_t now_ms, bool *every_down);

/* Passive health: a failure (connect refused, timed out, cut before an
 * answer) or a success of a request on s. */
void gh_upserver_failed(gh_upserver *s, uint64_t now_ms, gh_upfail why);
void gh_upserver_ok(gh_upserver *s);

/* An idle kept connection to s, detached from the pool (the caller sets
 * its callbacks), or NULL. */
struct bufferevent *gh_upserver_take_idle(gh_upserver *s);
/* Keeps bev (connected to s, nothing pending in either direction) for the
 * next request. Over keepalive, the least recently used idle connections
 * are closed at the end of the next loop turn, one that does not wait
 * (see on_trim): a request already waiting then takes a connection rather
 * than one being closed and another opened. With keepalive 0, or when no
 * memory is left, bev is freed at once. */
void gh_upserver_keep(gh_upserver *s, struct bufferevent *bev);

/* Counts a response head from s that came ms after its request was sent:
 * the upstream's histogram and the server's moving average. */
void gh_upstream_observe(gh_upserver *s, uint64_t ms);

/* How many upstreams u holds (0 for NULL); gh_upstreams_get() reads them. */
size_t gh_upstreams_count(const gh_upstreams *u);

/* One server's figures over every worker's pool, as a scrape shows them. */
typedef struct gh_upserver_sum {
    uint64_t requests, responses[6], failures[GH_UPFAIL_COUNT];
    uint64_t active, idle;      /* connections in use, kept idle */
    bool     up;                /* neither passive health nor the checks mark it down */
    bool     hc_down;           /* the health checks mark it down */
    uint64_t timed;             /* responses in the moving averages */
    double   latency_ms;        /* the workers' averages, each weighing as many
                                   responses as it took in; 0 when none */
} gh_upserver_sum;

/* Adds up server j of upstream i (cfg->upstreams' indexes) over site's
 * pools, from any worker (relaxed atomic loads, each as it is now). site
 * must have upstreams. */
void gh_upserver_sum_of(gh_site *site, size_t i, size_t j, uint64_t now_ms,
                        gh_upserver_sum *out);

/* The metrics of site's upstreams (a gh_loop.metrics_more hook). */
struct gh_promtext;
void gh_upstreams_metrics(gh_loop *loop, gh_site *site, struct gh_promtext *t);

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t gh_now_ms(void);

#endif
