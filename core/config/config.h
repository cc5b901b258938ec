/* config.h: the configuration as plain structs, loaded from YAML.
 *
 * Only config.c sees libyaml. Everything here is owned by the gh_config and
 * freed by gh_config_free(); strings are NUL-terminated heap copies. Paths
 * (plugins_dir, logs, static roots, TLS files) are already resolved against
 * the config file's folder. Every default is filled in, so users of the
 * structs never need to know the defaults. */
#ifndef GH_CONFIG_H
#define GH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "cidr.h"
#include "errlist.h"

/* Where a value came from, for errors found after loading (e.g. a route
 * naming a plugin that did not load). file borrows gh_config.path. */
typedef struct gh_srcloc {
    const char *file;
    int         line;    /* from 1 */
    int         col;     /* from 1 */
} gh_srcloc;

/* A generic YAML node, kept for a websocket route's `config:` mapping that
 * is handed to a plugin as is. Scalars keep their text. */
typedef enum { GH_CNODE_SCALAR, GH_CNODE_SEQ, GH_CNODE_MAP } gh_cnode_kind;

typedef struct gh_cnode {
    gh_cnode_kind    kind;
    char            *key;     /* set when this node is a value in a map */
    char            *value;   /* set for scalars */
    struct gh_cnode *items;   /* children of a SEQ or MAP, in file order */
    size_t           nitems;
    gh_srcloc        loc;
} gh_cnode;

/* An address of any family we connect to. */
typedef union gh_sockaddr_any {
    struct sockaddr     sa;
    struct sockaddr_in  in4;
    struct sockaddr_in6 in6;
    struct sockaddr_un  un;
} gh_sockaddr_any;

typedef enum {
    GH_PROXY_OFF = 0,
    GH_PROXY_V1,
    GH_PROXY_V2,
    GH_PROXY_ANY,       /* v1 or v2 required */
    GH_PROXY_OPTIONAL,  /* v1 or v2 if present, else plain traffic */
} gh_proxy_mode;

typedef struct gh_listener_conf {
    char                   *listen;        /* the text, e.g. "127.0.0.1:8080" */
    struct sockaddr_storage addr;
    socklen_t               addrlen;
    gh_proxy_mode           proxy_protocol;        /* default off */
    uint64_t                proxy_timeout_ms;      /* default 5000 */
    bool                    trusted_any;           /* `trusted_proxies: any` */
    gh_cidr                *trusted;               /* default: gh_cidr_defaults() */
    size_t                  ntrusted;
    uint16_t               *https_ports;           /* default [443] */
    size_t                  nhttps_ports;
    bool                    tls;                   /* a tls: mapping was given */
    char                   *tls_cert;              /* required with tls */
    char                   *tls_key;               /* required with tls */
    char                   *tls_min_version;       /* "TLSv1.2" (default) | "TLSv1.3" */
    char                   *tls_ciphers;           /* optional, NULL if unset */
    uint64_t                tls_handshake_timeout_ms;  /* default 10000 */
    uint64_t                max_connections;       /* its own limit; 0 (default): its
                                                      connections count in the process's */
    gh_srcloc               loc;                   /* of the list item */
    gh_srcloc               tls_loc;               /* of the tls: value */
} gh_listener_conf;

typedef enum {
    GH_SCHEME_ANY = 0,
    GH_SCHEME_HTTP,
    GH_SCHEME_HTTPS,
} gh_scheme;

typedef struct gh_match {
    char     *path;      /* exact path, or NULL */
    char     *prefix;    /* path prefix, or NULL */
    char     *host;      /* Host without port, compared case-insensitively, or NULL */
    gh_scheme scheme;
} gh_match;

typedef enum {
    GH_ACTION_STATIC = 1,
    GH_ACTION_HEALTH,
    GH_ACTION_REDIRECT_HTTPS,
    GH_ACTION_METRICS,
    GH_ACTION_WEBSOCKET,
    GH_ACTION_PROXY,
    GH_ACTION_STATUS,
} gh_action_kind;

typedef enum {
    GH_ORIGINS_SAME_HOST = 0,  /* default */
    GH_ORIGINS_ANY,            /* "*" */
    GH_ORIGINS_LIST,
} gh_origins_mode;

typedef struct gh_static_conf {
    char *root;          /* required */
    char *index;         /* default "index.html" */
} gh_static_conf;

typedef struct gh_redirect_conf {
    int status;          /* 301 (default) | 302 | 307 | 308 */
    int port;            /* 0 = none (default) */
} gh_redirect_conf;

typedef struct gh_websocket_conf {
    char           *plugin;              /* required */
    gh_srcloc       plugin_loc;
    gh_origins_mode origins;
    char          **origin_list;         /* with GH_ORIGINS_LIST */
    size_t          norigins;
    uint64_t        ping_interval_ms;    /* default 30000; 0 = no pings */
    uint64_t        pong_timeout_ms;     /* default 10000 */
    uint64_t        idle_timeout_ms;     /* default 120000; 0 = none */
    uint64_t        close_timeout_ms;    /* default 5000 */
    uint64_t        max_message;         /* default 64 KiB */
    uint64_t        send_backlog;        /* default 1 MiB */
    gh_cnode       *config;              /* the `config:` mapping, or NULL */
    /* permessage-deflate (RFC 7692) */
    int             compression;         /* 1: on (default), 0: off */
    uint64_t        compression_level;   /* zlib level 0..9, default 1 */
    uint64_t        compression_threshold;  /* messages shorter go uncompressed, default 128 */
    uint64_t        server_window_bits;  /* 9..15, default 15 */
    bool            context_takeover;    /* server side keeps its compressor, default false */
} gh_websocket_conf;

/* One server of an upstream. */
typedef struct gh_upstream_server {
    char          *address;     /* as written: "127.0.0.1:8000", "[::1]:8000", "unix:/run/app.sock" */
    gh_sockaddr_any addr;       /* resolved literal (never a DNS name) or AF_UNIX path */
    socklen_t      addrlen;
    unsigned       weight;      /* default 1, 1..100 */
    bool           backup;      /* used only when every primary is down */
    gh_srcloc      loc;
} gh_upstream_server;

typedef enum {
    GH_BALANCE_ROUND_ROBIN = 0,
    GH_BALANCE_LEAST_CONN,
    GH_BALANCE_CLIENT_IP,
} gh_balance;

/* `upstreams:` NAME -> this. */
typedef struct gh_upstream_conf {
    char               *name;
    gh_upstream_server *servers;            /* at least one */
    size_t              nservers;
    gh_balance          balance;            /* default round_robin */
    uint64_t            keepalive;          /* idle connections kept per server, default 32 */
    uint64_t            keepalive_timeout_ms;  /* an idle pooled connection closes after, default 60000 */
    uint64_t            connect_timeout_ms; /* default 5000 */
    uint64_t            read_timeout_ms;    /* between bytes of a response, default 60000 */
    uint64_t            send_timeout_ms;    /* a request making no progress, default 60000 */
    uint64_t            max_fails;          /* passive health: failures within fail_timeout
                                               that mark a server down, default 1; 0 = never */
    uint64_t            fail_timeout_ms;    /* ... and how long it stays down, default 10000 */
    bool                tls;                /* https: `tls:` given, or url: https:// */
    bool                tls_verify;         /* check the server's certificate, default true */
    char               *tls_ca;             /* CA file (resolved), NULL: the system's */
    char               *tls_sni;            /* server name sent and verified, NULL: none
                                               (the certificate must then name the IP) */
    int                 proxy_protocol;     /* 0 off (default), 1 or 2: a PROXY header on
                                               every upstream connection, which is then
                                               never reused for another client */
    /* active health (`health:`), when health is set */
    bool                health;
    char               *health_path;        /* NULL: "/" */
    uint64_t            health_interval_ms; /* default 5000 */
    uint64_t            health_timeout_ms;  /* default 2000 */
    int                 health_expect_lo;   /* a status in lo..hi passes; default 200..399 */
    int                 health_expect_hi;
    uint64_t            health_fails;       /* consecutive failures that mark down, default 2 */
    uint64_t            health_passes;      /* consecutive passes that mark up again, default 2 */
    gh_srcloc           loc;
} gh_upstream_conf;

/* Which forwarding headers a proxy route sends (bits). */
enum {
    GH_FWD_XFF = 1 << 0,        /* X-Forwarded-For */
    GH_FWD_XFP = 1 << 1,        /* X-Forwarded-Proto */
    GH_FWD_XFH = 1 << 2,        /* X-Forwarded-Host */
    GH_FWD_XFPORT = 1 << 3,     /* X-Forwarded-Port */
    GH_FWD_REAL_IP = 1 << 4,    /* X-Real-IP */
    GH_FWD_FORWARDED = 1 << 5,  /* RFC 7239 Forwarded */
};

typedef struct gh_header_set {
    char *name;                 /* a token, as written */
    char *value;                /* no CR, LF or NUL */
} gh_header_set;

typedef struct gh_proxy_conf {
    char           *upstream;       /* the upstream's name (with url: "url:" + the URL) */
    gh_srcloc       upstream_loc;
    size_t          upstream_index; /* into gh_config.upstreams, set by the loader */
    char           *strip_prefix;   /* removed from the start of the path, or NULL */
    gh_header_set  *set;            /* headers: set: sent upstream, replacing any of that name */
    size_t          nset;
    char          **remove;         /* headers: remove: not sent upstream (lower case) */
    size_t          nremove;
    unsigned        forwarded;      /* GH_FWD_* bits; default XFF | XFP | REAL_IP */
    uint64_t        ping_interval_ms;  /* a WebSocket tunnel silent this long gets a ping
                                          from gatehouse to the client; default 30000, 0 = off */
} gh_proxy_conf;

typedef struct gh_route_conf {
    gh_match       match;
    gh_cidr       *allow;          /* `allow:`: clients that may use the route; NULL: all */
    size_t         nallow;
    bool           has_allow;      /* allow: was given (an empty list refuses everyone) */
    gh_action_kind action;
    union {
        gh_static_conf    stat;
        gh_redirect_conf  redirect;
        gh_websocket_conf ws;
        gh_proxy_conf     proxy;
    } u;
    gh_srcloc      loc;
} gh_route_conf;

/* HTTP limits and timeouts, top-level key `http:` (all optional). */
typedef struct gh_http_conf {
    uint64_t header_timeout_ms;      /* default 10000 */
    uint64_t keepalive_timeout_ms;   /* default 75000 */
    uint64_t send_timeout_ms;        /* default 60000 */
    uint64_t max_head;               /* default 16 KiB */
    uint64_t max_body;               /* default 1 MiB (bodies on GET/HEAD are discarded) */
} gh_http_conf;

/* A rate: count tokens per per_ms, at most burst saved up (0: count). */
typedef struct gh_rate_conf {
    uint64_t count;          /* 0: no limit */
    uint64_t per_ms;
    uint64_t burst;
} gh_rate_conf;

/* `limits:`, per client: the real client address (the PROXY source, or
 * X-Forwarded-For from a trusted peer, else the socket peer), IPv6 grouped
 * by ipv6_prefix. All off by default. */
typedef struct gh_limits_conf {
    uint64_t     connections;    /* open at once; 0: no limit */
    gh_rate_conf requests;       /* HTTP requests (an upgrade is one too) */
    uint64_t     ipv6_prefix;    /* default 64 */
    gh_rate_conf upgrades;       /* requests to upgrade (WebSocket) */
    uint64_t     clients;        /* clients tracked at most; default 65536 */
} gh_limits_conf;

typedef struct gh_bus_conf {
    char *redis;             /* "redis://[:PASSWORD@]HOST:PORT[/DB]", NULL = no bus */
    char *channel_prefix;    /* default "gatehouse:" */
    char *password;          /* optional, NULL if unset */
    char *resolver;          /* "IP[:PORT]": the DNS server asked for the redis host
                                name, or NULL: /etc/resolv.conf's */
    uint64_t presence_ttl_ms;    /* topic-state members of a silent instance expire
                                  * after this; default 10 s, at least 1 s */
    gh_srcloc loc;           /* of the bus: value (0:0 when not given) */
} gh_bus_conf;

typedef struct gh_config {
    char             *path;         /* as given */
    char             *dir;          /* its folder */
    char             *plugins_dir;  /* default "plugins" resolved */
    char             *access_log;   /* NULL = off; "stderr"; or a resolved path */
    char             *error_log;    /* "stderr" or a resolved path */
    int               log_level;    /* a gh_log_level; default info */
    uint64_t          max_connections;   /* 0 = from RLIMIT_NOFILE */
    uint64_t          drain_delay_ms;    /* default 0 */
    uint64_t          drain_timeout_ms;  /* default 30000 */
    uint64_t          plugin_warn_after_ms;  /* a plugin callback longer than this is
                                                logged; 0: never (default 100) */
    char             *user;         /* `user:` to drop to when started as root, or NULL */
    char             *group;        /* `group:`, or NULL: the user's primary group */
    uid_t             uid;          /* user's, looked up by the loader (with user) */
    gid_t             gid;          /* group's, else the user's primary group (with user) */
    gh_srcloc         user_loc;     /* of the user: value */
    gh_srcloc         group_loc;    /* of the group: value */
    unsigned          workers;      /* event-loop threads; 0: auto (default), see
                                       gh_config_workers() */
    gh_srcloc         workers_loc;  /* of the workers: value (0:0 when not given) */
    uint64_t          worker_backlog;   /* bytes of topic messages one worker may have
                                           waiting before publishers pause (32 MiB) */
    gh_http_conf      http;
    gh_limits_conf    limits;
    gh_bus_conf       bus;
    gh_listener_conf *listeners;    /* at least one */
    size_t            nlisteners;
    gh_route_conf    *routes;       /* may be empty */
    size_t            nroutes;
    gh_upstream_conf *upstreams;    /* `upstreams:` in file order, then one per proxy
                                       route with url: (named "url:" + the URL) */
    size_t            nupstreams;
} gh_config;

/* Limits (additions to the first contract). A config past any of them is
 * refused with an error naming the limit. */
#define GH_CONFIG_MAX_BYTES       (1024 * 1024)  /* file size */
#define GH_CONFIG_MAX_DEPTH       64             /* nesting of sequences/mappings */
#define GH_CONFIG_MAX_NODES       100000         /* values in one file */
#define GH_CONFIG_MAX_ITEMS       10000          /* entries in one sequence or mapping */
#define GH_CONFIG_MAX_LISTENERS   1000
#define GH_CONFIG_MAX_ROUTES      1000
#define GH_CONFIG_MAX_LIST        1024   /* trusted_proxies, https_ports, origins */
#define GH_CONFIG_MAX_ERRORS      100    /* reported; then "too many errors" */
#define GH_CONFIG_MAX_DURATION_MS (366ULL * 24 * 3600 * 1000)  /* any duration */
#define GH_CONFIG_MAX_SIZE        (1ULL << 40)                 /* any size: 1 TiB */
#define GH_MAX_WORKERS            256    /* workers: N */

/* Checks beyond the schema comments above, so users of the structs may rely
 * on them:
 * - durations are whole numbers with a unit (no decimals: "1.5s" is an
 *   error, write 1500ms) and at most GH_CONFIG_MAX_DURATION_MS; these must
 *   be more than 0: proxy_timeout, tls handshake_timeout, http
 *   header/keepalive/send_timeout, pong_timeout, close_timeout.
 * - sizes are at most GH_CONFIG_MAX_SIZE; max_head, max_message and
 *   send_backlog must be more than 0.
 * - max_connections is in 0..INT32_MAX.
 * - listen: IPv4 literal, [IPv6] or empty host, never a name; ":PORT" gives
 *   AF_INET6 in6addr_any (dual stack needs IPV6_V6ONLY off at bind time).
 *   Two listeners with the same address are an error.
 * - match.path and match.prefix start with '/' and hold no space, control
 *   character, '?' or '#'; not both in one match. match.host is a DNS name,
 *   IPv4 literal or [IPv6], without port.
 * - static.index is a file name without '/'.
 * - websocket.plugin matches [A-Za-z0-9_.-]{1,64}, not starting with '.' or
 *   '-'; origin_list entries are http(s)://host[:port], lower-cased.
 * - bus.redis is redis://[:PASSWORD@]HOST:PORT[/DB] with DB in 0..15, and
 *   bus: without redis: is an error; a password in both places is an error;
 *   bus.presence_ttl is a duration of at least 1s (default 10s).
 * - upstreams: names match [A-Za-z0-9_.-]{1,64}; servers holds 1 to
 *   GH_CONFIG_MAX_LIST servers with distinct addresses, not all backups;
 *   an address is IPv4:PORT, [IPv6]:PORT (never a name) or unix:PATH
 *   (resolved, shorter than sun_path); keepalive_timeout, connect/read/
 *   send_timeout and fail_timeout are more than 0.
 * - a proxy route has exactly one of upstream: (a declared name: an unknown
 *   one is an error) and url: (http://IPv4[:PORT] or http://[IPv6][:PORT],
 *   no path, query or userinfo); upstream_index is always valid.
 *   strip_prefix follows match.prefix's rules. headers: set names are
 *   tokens with values free of control characters but HTAB; neither set nor
 *   remove names a hop-by-hop or framing field (Connection, Keep-Alive, TE,
 *   Trailer, Transfer-Encoding, Upgrade, Content-Length, Proxy-Connection),
 *   remove never names Host, and no name is in both or twice.
 * - user: names a user and group: a group of the system's databases
 *   (getpwnam/getgrnam, so NSS too); an unknown one is an error at its
 *   value. uid and gid are set whenever user is; group: without user: is
 *   an error.
 * - error_log cannot be off. proxy_protocol accepts "false" as off.
 * - A key whose value is null (`health:`) counts as an empty mapping where a
 *   mapping is expected; `routes:` null means no routes; `config:` null
 *   leaves ws.config NULL.
 * - No YAML anchors, aliases, tags, duplicate keys or second documents. */

/* Loads and checks path. On success returns 0 and *out (the caller frees it
 * with gh_config_free). Otherwise returns GH_EINVAL (or -errno when the file
 * cannot be read) having appended every error found to errs, each as
 * "FILE:LINE:COL: message"; *out is untouched. Checks here are the ones that
 * need no other module: TLS files and plugins are checked by their owners. */
int gh_config_load(const char *path, gh_config **out, gh_errlist *errs);

/* As gh_config_load, from memory: name is used in messages and as
 * cfg->path (NULL: "<config>"), dir is what relative paths resolve against
 * (NULL or "": "."). buf needs no NUL terminator and is not kept. Returns 0,
 * GH_EINVAL or GH_ENOMEM. */
int gh_config_load_mem(const char *name, const char *buf, size_t len, const char *dir,
                       gh_config **out, gh_errlist *errs);

/* NULL-safe. */
void gh_config_free(gh_config *cfg);

/* The event-loop threads cfg asks for: workers: N, or for auto the CPUs
 * this process may run on (its affinity mask), at most GH_MAX_WORKERS. */
unsigned gh_config_workers(const gh_config *cfg);

/* Calls fn with the dotted path of every key the loader accepts, parents
 * before their children ("listeners", "listeners.tls", "listeners.tls.cert";
 * sequences add no segment). For the configuration reference's test. */
void gh_config_each_key(void (*fn)(const char *path, void *arg), void *arg);

/* Lookups in a gh_cnode map: the child with that key, or NULL (also when map
 * is NULL or not a map). */
const gh_cnode *gh_cnode_get(const gh_cnode *map, const char *key);

#endif
