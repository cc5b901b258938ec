/* cfgkit.h: what a module's key table needs of the config loader.
 *
 * config.c owns the file-level rules (one YAML document, no aliases, tags
 * or duplicate keys, bounded size) and the top level. A listener's, a route
 * action's or the bus's keys are declared beside the module they configure
 * (core/http/listener_conf.c, core/ws/websocket_conf.c, ...) as a table of
 * gh_keydef, in the nginx manner: name, setter, offset of the field, flags.
 * Those files are compiled into gh_config (they are data the loader walks),
 * see nothing but this header, config.h and the codecs, and never libyaml.
 *
 * Setters report problems with gh_cfg_err_at() and carry on: every error
 * of a file is collected, with its line and column. A setter never frees
 * what it did not set; the whole gh_config is freed by gh_config_free.
 * Internal to the config layer. */
#ifndef GH_CFGKIT_H
#define GH_CFGKIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* ---- the tree of the first pass ---------------------------------------- */

enum { GH_YN_SCALAR, GH_YN_SEQ, GH_YN_MAP, GH_YN_BAD };

typedef struct gh_cfgnode {
    int                 kind;    /* GH_YN_BAD: an alias or unusable scalar, already reported */
    bool                plain;   /* a plain (unquoted) scalar */
    char               *text;    /* scalars: NUL-terminated, contains no NUL */
    struct gh_cfgnode **items;   /* SEQ: values; MAP: key, value, key, value, ... */
    size_t              n;
    size_t              cap;
    int                 line;    /* from 1 */
    int                 col;     /* from 1 */
} gh_cfgnode;

typedef struct gh_cfg_pending_err gh_cfg_pending_err;

/* One load in progress. */
typedef struct gh_cfgctx {
    gh_config          *cfg;
    const char         *file;      /* cfg->path */
    const char         *dir;       /* cfg->dir */
    gh_cfg_pending_err *errs;
    size_t              nerrs;
    size_t              caperrs;
    bool                too_many;
    bool                nomem;     /* set on any failed allocation: the load fails */
    size_t              nnodes;
} gh_cfgctx;

/* ---- key tables ---------------------------------------------------------- */

enum {
    GH_K_REQUIRED = 1 << 0,
    GH_K_NONZERO = 1 << 1,     /* durations and sizes: 0 is an error */
    GH_K_EMPTY_OK = 1 << 2,    /* strings: "" is allowed */
    GH_K_ENUM_TEXT = 1 << 3,   /* gh_cfg_set_enum: store the name (char *), not the value */
    GH_K_ACTION = 1 << 4,      /* a route action: data is its gh_cfg_action */
};

typedef struct gh_keydef gh_keydef;
typedef void (*gh_cfg_setter)(gh_cfgctx *c, const gh_cfgnode *key, const gh_cfgnode *val,
                              void *obj, const gh_keydef *d);

/* A value of a fixed list, for gh_cfg_set_enum (list ends with a NULL name). */
typedef struct gh_cfg_enum {
    const char *name;
    int         val;
    bool        alias;    /* accepted, not listed in "expected ..." */
} gh_cfg_enum;

struct gh_keydef {
    const char      *name;
    gh_cfg_setter    set;
    size_t           off;     /* of the field in obj */
    int              flags;
    int              arg;     /* setter-specific */
    const void      *data;    /* setter-specific: an enum list, a route action */
    const gh_keydef *sub;     /* the keys of a mapping value (also lists keys for
                                 gh_config_each_key) */
};

/* A route action's keys (see route_conf.c, which lists the actions). */
typedef struct gh_cfg_action {
    const char      *name;       /* the route key: "static" */
    gh_action_kind   kind;
    const gh_keydef *keys;       /* gh_cfg_no_keys for {} */
    size_t           off;        /* of its struct in gh_route_conf */
    void           (*defaults)(gh_cfgctx *c, void *conf);   /* may be NULL */
    /* After its keys were walked (v, a mapping or null, is the action's
     * value): checks across keys. May be NULL. */
    void           (*check)(gh_cfgctx *c, const gh_cfgnode *v, void *conf);
} gh_cfg_action;

/* An empty table: the value takes no keys ({} or null). */
extern const gh_keydef gh_cfg_no_keys[];

/* ---- helpers for setters ------------------------------------------------ */

/* Records an error at line:col (or at a node). */
void gh_cfg_err_at_pos(gh_cfgctx *c, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define gh_cfg_err_at(c, node, ...) gh_cfg_err_at_pos((c), (node)->line, (node)->col, __VA_ARGS__)

/* Writes s into buf as a double-quoted, escaped string cut at about 60
 * characters, so that any text from the file prints safely. Returns buf. */
#define GH_CFG_QBUF 96
const char *gh_cfg_quote(char buf[GH_CFG_QBUF], const char *s);

/* YAML's null (a plain empty, ~ or null scalar). */
bool gh_cfg_is_null(const gh_cfgnode *n);
/* "a mapping", "a sequence", "a scalar", "nothing": for messages. */
const char *gh_cfg_kind_name(const gh_cfgnode *n);
/* The field of obj that d names. */
void *gh_cfg_field(void *obj, const gh_keydef *d);
gh_srcloc gh_cfg_loc_of(const gh_cfgctx *c, const gh_cfgnode *n);
/* strdup, setting c->nomem on failure. */
char *gh_cfg_dup(gh_cfgctx *c, const char *s);
/* p against the config file's folder (a heap copy; NULL and c->nomem on failure). */
char *gh_cfg_resolve(gh_cfgctx *c, const char *p);
/* Frees *slot and stores s, unless s is NULL (allocation failed: keep the old). */
void gh_cfg_replace(char **slot, char *s);

/* Walks mapping m with the key table defs against obj: unknown keys (with a
 * "did you mean"), missing required ones. A null value counts as an empty
 * mapping. what names m in messages ("tls"; NULL for the top level), where
 * is the phrase for unknown keys ("in tls"). Returns false (reported) when
 * m is not a mapping. */
bool gh_cfg_walk_map(gh_cfgctx *c, const gh_cfgnode *m, const char *what, const char *where,
                     const gh_keydef *defs, void *obj);
/* The text of a scalar value, or NULL (reported) for anything else. expect
 * names what was wanted ("a duration"). */
const char *gh_cfg_want_scalar(gh_cfgctx *c, const gh_cfgnode *v, const char *key,
                               const char *expect);
/* Decimal digits only. Returns 0, -1 (not a number) or -2 (more than max). */
int gh_cfg_parse_dec(const char *s, uint64_t max, uint64_t *out);
/* s as a port in 1..65535 into *port, or false (reported at v). */
bool gh_cfg_port_text(gh_cfgctx *c, const gh_cfgnode *v, const char *key, const char *s,
                      uint16_t *port);

/* A DNS name, IPv4 literal or [IPv6] at s: the byte after it (s itself
 * when there is none). In route_conf.c (match.host), also used for origins. */
const char *gh_cfg_skip_host(const char *s);

/* HOST:PORT in s[0..n) with HOST an IPv4 literal or [IPv6], never a name;
 * when defport is not 0 the :PORT may be left out. Fills *addr (zeroed
 * first) and *len. Returns NULL, or what is wrong as a phrase for a
 * message. In upstream/upstream_conf.c. */
const char *gh_cfg_parse_inet(const char *s, size_t n, uint16_t defport, gh_sockaddr_any *addr,
                              socklen_t *len);
/* [A-Za-z0-9_.-]{1,64}: an upstream's name (upstream/upstream_conf.c). */
bool gh_cfg_upstream_name_ok(const char *s);
/* A proxy route's url: "http://HOST[:PORT]": its server's address into
 * *addr and *len. Returns NULL, or what is wrong as a phrase for a message.
 * In upstream/proxy_conf.c. */
const char *gh_cfg_proxy_url(const char *url, gh_sockaddr_any *addr, socklen_t *len, bool *tls);

/* A sequence of CIDR ranges at v into a fresh *list of *n (replacing what
 * was there); with any not NULL the scalar `any` is taken too and sets
 * *any. Returns false when v was refused (reported). In http/listener_conf.c. */
bool gh_cfg_cidr_list(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, gh_cidr **list,
                      size_t *n, bool *any);

/* ---- generic setters ---------------------------------------------------- */

void gh_cfg_set_string(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                       const gh_keydef *d);   /* char *; GH_K_EMPTY_OK */
void gh_cfg_set_path(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                     const gh_keydef *d);     /* char *, resolved */
void gh_cfg_set_duration(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                         const gh_keydef *d); /* uint64_t ms; GH_K_NONZERO; arg: minimum ms */
void gh_cfg_set_size(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                     const gh_keydef *d);     /* uint64_t bytes; GH_K_NONZERO */
void gh_cfg_set_bool(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                     const gh_keydef *d);     /* bool: true or false */
void gh_cfg_set_count(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                      const gh_keydef *d);    /* uint64_t in 0..INT32_MAX */
void gh_cfg_set_enum(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                     const gh_keydef *d);     /* data: a gh_cfg_enum list; an int (an enum
                                                 type's field), or the name with GH_K_ENUM_TEXT */
void gh_cfg_set_map(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                    const gh_keydef *d);      /* walks d->sub against the field */
void gh_cfg_set_cnode(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                      const gh_keydef *d);    /* gh_cnode *: a copy of the mapping */
void gh_cfg_set_url_path(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                         const gh_keydef *d); /* char *: starts with /, no space, control
                                                 character, ? or # (http/route_conf.c) */

/* ---- the sections, each beside its module -------------------------------- */

/* top-level keys (setters for the top table of config.c) */
extern const gh_keydef gh_http_conf_keys[];            /* http/http_conf.c */
void gh_http_conf_defaults(gh_http_conf *h);
extern const gh_keydef gh_limits_conf_keys[];          /* http/limits_conf.c */
void gh_limits_conf_defaults(gh_limits_conf *l);
extern const gh_keydef gh_listener_conf_keys[];        /* http/listener_conf.c */
void gh_cfg_set_listeners(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                          const gh_keydef *d);
extern const gh_keydef gh_route_conf_keys[];           /* http/route_conf.c */
void gh_cfg_set_routes(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                       const gh_keydef *d);
extern const gh_keydef gh_bus_conf_keys[];             /* cluster/bus_conf.c */
void gh_bus_conf_defaults(gh_cfgctx *c, gh_bus_conf *b);
void gh_cfg_set_bus(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                    const gh_keydef *d);
extern const gh_keydef gh_upstream_conf_keys[];        /* upstream/upstream_conf.c */
void gh_cfg_set_upstreams(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                          const gh_keydef *d);
/* Once the whole file is walked: ties every proxy route to its upstream
 * (upstream_index), appending an upstream for each url:, and reports names
 * no upstream has. In upstream/upstream_conf.c. */
void gh_cfg_check_proxies(gh_cfgctx *c, gh_config *cfg);

/* route actions, listed by route_conf.c */
extern const gh_cfg_action gh_static_action;           /* http/static_conf.c */
extern const gh_cfg_action gh_redirect_action;         /* http/redirect_conf.c */
extern const gh_cfg_action gh_health_action;           /* http/health_conf.c */
extern const gh_cfg_action gh_metrics_action;          /* http/health_conf.c */
extern const gh_cfg_action gh_websocket_action;        /* ws/websocket_conf.c */
extern const gh_cfg_action gh_proxy_action;            /* upstream/proxy_conf.c */
extern const gh_cfg_action gh_status_action;           /* status/status_conf.c */

#endif
