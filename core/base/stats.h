/* stats.h: the counters of one event loop (a worker), read by the metrics
 * action, which adds up every worker's. No I/O.
 *
 * Each gh_stats has one writer, its worker's thread, and is read by any
 * worker answering a scrape. So every access is a relaxed atomic load or
 * store (GH_STAT_*): on x86 and arm64 these are plain moves, no locked
 * instruction, and no update is lost because only the owner writes. Labels
 * that come from codecs (PROXY refusal reasons) are static strings, so a
 * small table keyed by pointer is enough. */
#ifndef GH_STATS_H
#define GH_STATS_H

#include <stddef.h>
#include <stdint.h>

#define GH_STATS_MAX_REASONS 32
#define GH_STATS_MAX_CODES 32

typedef struct gh_stat_code {
    unsigned code;
    uint64_t n;
} gh_stat_code;

typedef struct gh_stat_reason {
    const char *reason;      /* static string */
    uint64_t    n;
} gh_stat_reason;

/* The kinds of calls into a plugin's code (gh_plugin_call_kind in
 * ws/pluginhost.h), and their names for logs and metrics, in that order. */
enum { GH_PLUGIN_CALL_KINDS = 7 };
extern const char *const gh_plugin_call_names[GH_PLUGIN_CALL_KINDS];

typedef struct gh_stats {
    uint64_t       accepted;
    uint64_t       proxy_accepted;
    gh_stat_reason proxy_refused[GH_STATS_MAX_REASONS];
    size_t         nproxy_refused;
    uint64_t       tls_ok;
    uint64_t       tls_failed;
    uint64_t       header_timeouts;    /* closed by header_timeout inside a request head */
    uint64_t       http_responses[6];     /* by status class: [1] = 1xx … [5] = 5xx */
    uint64_t       ws_messages_in, ws_messages_out;
    uint64_t       ws_bytes_in, ws_bytes_out;        /* payload bytes */
    gh_stat_code   ws_closes[GH_STATS_MAX_CODES];    /* close codes sent or received */
    size_t         nws_closes;
    uint64_t       ws_slow_consumers;                /* dropped past send_backlog */
    uint64_t       ws_hub_paused;     /* publishers paused: another worker behind */
    uint64_t       ws_flush_slices;   /* fan-out writes cut at the loop turn's budget */
    uint64_t       ws_deflations;      /* messages compressed (once per shared frame) */
    uint64_t       ws_deflate_in, ws_deflate_out;    /* their bytes before and after */
    uint64_t       ws_inflations;      /* compressed messages received and inflated */
    uint64_t       ws_inflate_in, ws_inflate_out;    /* their bytes before and after */
    uint64_t       plugin_loads, plugin_refusals;
    uint64_t       client_limited[3];  /* refused per client, by gh_limit_kind (climit.h) */
    uint64_t       client_untracked;   /* clients the limits' table had no slot for */
    uint64_t       route_denied;       /* requests refused by a route's allow: list */
    uint64_t       plugin_slow_calls[GH_PLUGIN_CALL_KINDS];  /* past plugin_warn_after,
                                                              by gh_plugin_call_kind */
    uint64_t       reloads_ok, reloads_failed;
    uint64_t       bus_published;     /* PUBLISHes sent to Redis (bus.c) */
    uint64_t       bus_received;      /* messages received from Redis and delivered here */
    uint64_t       bus_not_broadcast; /* published while the bus was down: delivered here only */
    uint64_t       bus_disconnects;   /* connections to Redis lost while up */
    uint64_t       bus_reconnects;    /* connections to Redis made again after a loss */
    uint64_t       bus_connected;     /* gauge: 1 while the link to Redis is up (bus.c) */
    uint64_t       state_answers_redis;   /* topic-state requests answered by Redis */
    uint64_t       state_answers_local;   /* ... from this process's part */
    uint64_t       state_members;         /* topic-state members of this process's conns */
    uint64_t       mem_trims;         /* freed heap given back to the system (memtrim.h) */
    double         start_time;                       /* unix seconds */
} gh_stats;

/* The owner's updates and anyone's read of one counter (an lvalue of an
 * integer type in a gh_stats). */
#define GH_STAT_GET(f)    __atomic_load_n(&(f), __ATOMIC_RELAXED)
#define GH_STAT_SET(f, v) __atomic_store_n(&(f), (v), __ATOMIC_RELAXED)
#define GH_STAT_ADD(f, n) GH_STAT_SET(f, GH_STAT_GET(f) + (n))
#define GH_STAT_SUB(f, n) GH_STAT_SET(f, GH_STAT_GET(f) - (n))

/* Adds every counter and gauge of src (another worker's, read as it is
 * now) to dst (the caller's own copy). start_time is the earliest. */
void gh_stats_sum(gh_stats *dst, const gh_stats *src);

/* Counts a WebSocket close with code (codes past the table's size are
 * counted under 0, "other"). */
void gh_stats_ws_close(gh_stats *s, unsigned code);

/* Counts a refused PROXY header under reason (a static string). Reasons past
 * the table's size are counted under "other". */
void gh_stats_proxy_refused(gh_stats *s, const char *reason);

#endif
