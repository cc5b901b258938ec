/* upstream_conf.c: the keys of `upstreams:` (named groups of servers that
 * proxy routes forward to), for the config loader, and the check that ties
 * every proxy route to its upstream once the whole file is read (the pools
 * are pool.c, the forwarding forward.c).
 *
 * A server is an IP literal or a unix socket, never a name: a name would
 * need a blocking lookup at load and would silently go stale while the
 * daemon runs. The tie-up runs after the walk, not in the proxy: setter,
 * because `routes:` may come before `upstreams:` in the file. */
#include "cfgkit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
#define URL_PREFIX "url:"   /* a url: route's upstream name; no declared name has ':' */

bool gh_cfg_upstream_name_ok(const char *s)
{
    size_t len = strlen(s);

    return len >= 1 && len <= 64 && strspn(s, NAME_CHARS) == len;
}

const char *gh_cfg_parse_inet(const char *s, size_t n, uint16_t defport, gh_sockaddr_any *addr,
                              socklen_t *len)
{
    char host[INET6_ADDRSTRLEN], num[8];
    const char *hs, *he, *p, *end = s + n;
    bool v6 = false;
    uint64_t port = defport;

    if (n > 0 && s[0] == '[') {
        hs = s + 1;
        if ((he = memchr(hs, ']', (size_t)(end - hs))) == NULL)
            return "an IPv6 address needs a closing ]";
        p = he + 1;
        v6 = true;
    } else {
        const char *colon = memchr(s, ':', n);

        if (colon != NULL && memchr(colon + 1, ':', (size_t)(end - colon - 1)) != NULL)
            return "an IPv6 address needs brackets, e.g. [::1]:8000";
        hs = s;
        he = colon != NULL ? colon : end;
        p = he;
    }
    if (he == hs)
        return "a host is required";
    if (p == end) {
        if (defport == 0)
            return "a port is required (HOST:PORT)";
    } else if (*p != ':') {
        return "expected :PORT after the host";
    } else {
        size_t nl = (size_t)(end - p - 1);

        if (nl == 0 || nl >= sizeof(num))
            return "the port must be a number in 1..65535";
        memcpy(num, p + 1, nl);
        num[nl] = '\0';
        if (gh_cfg_parse_dec(num, 65535, &port) != 0 || port == 0)
            return "the port must be a number in 1..65535";
    }
    memset(addr, 0, sizeof(*addr));
    if ((size_t)(he - hs) >= sizeof(host))
        return v6 ? "not an IPv6 address in the brackets" :
                    "names are not resolved: write an IP literal, e.g. 127.0.0.1:8000";
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (v6) {
        if (inet_pton(AF_INET6, host, &addr->in6.sin6_addr) != 1)
            return "not an IPv6 address in the brackets";
        addr->in6.sin6_family = AF_INET6;
        addr->in6.sin6_port = htons((uint16_t)port);
        *len = sizeof(addr->in6);
    } else {
        if (inet_pton(AF_INET, host, &addr->in4.sin_addr) != 1)
            return "names are not resolved: write an IP literal, e.g. 127.0.0.1:8000";
        addr->in4.sin_family = AF_INET;
        addr->in4.sin_port = htons((uint16_t)port);
        *len = sizeof(addr->in4);
    }
    return NULL;
}

/* IP:PORT, [IPv6]:PORT or unix:PATH (PATH resolved against the config's
 * folder) into srv. Reports at v as key. */
static bool parse_server(gh_cfgctx *c, const gh_cfgnode *v, const char *key, const char *s,
                         gh_upstream_server *srv)
{
    char qb[GH_CFG_QBUF];
    const char *why;

    if (strncmp(s, "unix:", 5) == 0) {
        char *path;
        size_t pl;

        if (s[5] == '\0') {
            gh_cfg_err_at(c, v, "%s: unix: needs a socket path, e.g. unix:/run/app.sock", key);
            return false;
        }
        if ((path = gh_cfg_resolve(c, s + 5)) == NULL)
            return false;
        pl = strlen(path);
        if (pl >= sizeof(srv->addr.un.sun_path)) {
            gh_cfg_err_at(c, v, "%s: the socket path %s is longer than %zu bytes", key,
                          gh_cfg_quote(qb, path), sizeof(srv->addr.un.sun_path) - 1);
            free(path);
            return false;
        }
        memset(&srv->addr, 0, sizeof(srv->addr));
        srv->addr.un.sun_family = AF_UNIX;
        memcpy(srv->addr.un.sun_path, path, pl + 1);
        srv->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl + 1);
        free(path);
    } else if ((why = gh_cfg_parse_inet(s, strlen(s), 0, &srv->addr, &srv->addrlen)) != NULL) {
        gh_cfg_err_at(c, v, "%s: bad address %s: %s (expected IP:PORT, [IPv6]:PORT or unix:PATH)",
                      key, gh_cfg_quote(qb, s), why);
        srv->addrlen = 0;
        return false;
    }
    gh_cfg_replace(&srv->address, gh_cfg_dup(c, s));
    if (srv->address == NULL)
        srv->addrlen = 0;       /* out of memory: keep the duplicate check away */
    return true;
}

static void set_address(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                        const gh_keydef *d)
{
    const char *s = gh_cfg_want_scalar(c, v, k->text, "IP:PORT, [IPv6]:PORT or unix:PATH");

    (void)d;
    if (s != NULL)
        parse_server(c, v, k->text, s, obj);
}

static void set_weight(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                       const gh_keydef *d)
{
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a whole number in 1..100");
    uint64_t n;

    (void)d;
    if (s == NULL)
        return;
    if (gh_cfg_parse_dec(s, 100, &n) != 0 || n == 0) {
        gh_cfg_err_at(c, v, "%s: expected a whole number in 1..100, got %s", k->text,
                      gh_cfg_quote(qb, s));
        return;
    }
    ((gh_upstream_server *)obj)->weight = (unsigned)n;
}

static void set_backup(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                       const gh_keydef *d)
{
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "true or false");

    (void)d;
    if (s == NULL)
        return;
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)
        ((gh_upstream_server *)obj)->backup = s[0] == 't';
    else
        gh_cfg_err_at(c, v, "%s: bad value %s (expected true or false)", k->text,
                      gh_cfg_quote(qb, s));
}

static const gh_keydef server_keys[] = {
    { .name = "address", .set = set_address, .flags = GH_K_REQUIRED },
    { .name = "weight", .set = set_weight },
    { .name = "backup", .set = set_backup },
    { .name = NULL },
};

static bool same_addr(const gh_upstream_server *a, const gh_upstream_server *b)
{
    return a->addrlen != 0 && a->addrlen == b->addrlen &&
           memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

static void set_servers(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                        const gh_keydef *d)
{
    gh_upstream_conf *u = obj;
    bool primary = false;

    (void)d;
    if (v->kind == GH_YN_BAD)
        return;
    if (v->kind != GH_YN_SEQ) {
        gh_cfg_err_at(c, v, "%s: expected a sequence of addresses, e.g. [127.0.0.1:8000]; "
                      "got %s", k->text, gh_cfg_kind_name(v));
        return;
    }
    if (v->n == 0) {
        gh_cfg_err_at(c, v, "%s: at least one server is required", k->text);
        return;
    }
    if (v->n > GH_CONFIG_MAX_LIST) {
        gh_cfg_err_at(c, v, "%s: more than %d entries", k->text, GH_CONFIG_MAX_LIST);
        return;
    }
    if ((u->servers = calloc(v->n, sizeof(*u->servers))) == NULL) {
        c->nomem = true;
        return;
    }
    u->nservers = v->n;
    for (size_t i = 0; i < v->n; i++) {
        const gh_cfgnode *it = v->items[i];
        gh_upstream_server *srv = &u->servers[i];
        const char *s;

        srv->weight = 1;
        srv->loc = gh_cfg_loc_of(c, it);
        if (it->kind == GH_YN_MAP) {
            gh_cfg_walk_map(c, it, "server", "in server", server_keys, srv);
        } else if (it->kind == GH_YN_SCALAR || it->kind == GH_YN_BAD) {
            if ((s = gh_cfg_want_scalar(c, it, k->text, "an address")) != NULL)
                parse_server(c, it, k->text, s, srv);
        } else {
            gh_cfg_err_at(c, it, "%s: expected an address or a mapping with address:, got %s",
                          k->text, gh_cfg_kind_name(it));
        }
        primary |= !srv->backup;
        for (size_t j = 0; j < i; j++) {
            if (same_addr(&u->servers[j], srv)) {
                char qb[GH_CFG_QBUF];

                gh_cfg_err_at(c, it, "%s: %s is also the address of the server at line %d",
                              k->text, gh_cfg_quote(qb, srv->address), u->servers[j].loc.line);
                break;
            }
        }
    }
    if (!primary)
        gh_cfg_err_at(c, v, "%s: every server is a backup; at least one must not be", k->text);
}

static const gh_cfg_enum balance_vals[] = {
    { .name = "round_robin", .val = GH_BALANCE_ROUND_ROBIN },
    { .name = "least_conn", .val = GH_BALANCE_LEAST_CONN },
    { .name = "client_ip", .val = GH_BALANCE_CLIENT_IP },
    { .name = NULL },
};

/* health.expect: "2xx" (a class), "204" (one status); default 200..399 */
static void set_expect(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                       const gh_keydef *d)
{
    gh_upstream_conf *u = obj;
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a status such as 200 or a class such as 2xx");
    uint64_t n;

    (void)d;
    if (s == NULL)
        return;
    if (strlen(s) == 3 && s[0] >= '1' && s[0] <= '5' && s[1] == 'x' && s[2] == 'x') {
        u->health_expect_lo = (s[0] - '0') * 100;
        u->health_expect_hi = u->health_expect_lo + 99;
    } else if (gh_cfg_parse_dec(s, 599, &n) == 0 && n >= 100) {
        u->health_expect_lo = u->health_expect_hi = (int)n;
    } else {
        gh_cfg_err_at(c, v, "%s: bad value %s (expected a status in 100..599 or a class "
                      "1xx..5xx)", k->text, gh_cfg_quote(qb, s));
    }
}

static void set_count_nonzero(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                              const gh_keydef *d)
{
    uint64_t before = *(uint64_t *)gh_cfg_field(obj, d);

    gh_cfg_set_count(c, k, v, obj, d);
    if (*(uint64_t *)gh_cfg_field(obj, d) == 0) {
        gh_cfg_err_at(c, v, "%s: must be at least 1", k->text);
        *(uint64_t *)gh_cfg_field(obj, d) = before;
    }
}

#define UP_FIELD(f) offsetof(gh_upstream_conf, f)
static const gh_keydef health_keys[] = {
    { .name = "path", .set = gh_cfg_set_url_path, .off = UP_FIELD(health_path) },
    { .name = "interval", .set = gh_cfg_set_duration, .off = UP_FIELD(health_interval_ms),
      .flags = GH_K_NONZERO },
    { .name = "timeout", .set = gh_cfg_set_duration, .off = UP_FIELD(health_timeout_ms),
      .flags = GH_K_NONZERO },
    { .name = "expect", .set = set_expect },
    { .name = "fails", .set = set_count_nonzero, .off = UP_FIELD(health_fails) },
    { .name = "passes", .set = set_count_nonzero, .off = UP_FIELD(health_passes) },
    { .name = NULL },
};

static void set_health(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                       const gh_keydef *d)
{
    gh_upstream_conf *u = obj;

    (void)k;
    (void)d;
    u->health = true;
    gh_cfg_walk_map(c, v, "health", "in health", health_keys, u);
}

/* tls.sni: a DNS name (sent as SNI and checked against the certificate). */
static void set_sni(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                    const gh_keydef *d)
{
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a host name");

    if (s == NULL)
        return;
    if (s[0] == '\0' || s[0] == '[' || gh_cfg_skip_host(s) != s + strlen(s)) {
        gh_cfg_err_at(c, v, "%s: bad host name %s", k->text, gh_cfg_quote(qb, s));
        return;
    }
    gh_cfg_replace(gh_cfg_field(obj, d), gh_cfg_dup(c, s));
}

static const gh_keydef tls_keys[] = {
    { .name = "verify", .set = gh_cfg_set_bool, .off = offsetof(gh_upstream_conf, tls_verify) },
    { .name = "ca", .set = gh_cfg_set_path, .off = offsetof(gh_upstream_conf, tls_ca) },
    { .name = "sni", .set = set_sni, .off = offsetof(gh_upstream_conf, tls_sni) },
    { .name = NULL },
};

static void set_tls(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                    const gh_keydef *d)
{
    gh_upstream_conf *u = obj;

    (void)k;
    (void)d;
    u->tls = true;
    gh_cfg_walk_map(c, v, "tls", "in tls", tls_keys, u);
}

static const gh_cfg_enum pp_vals[] = {
    { .name = "off", .val = 0 },
    { .name = "false", .val = 0, .alias = true },    /* YAML 1.1 readers say off is false */
    { .name = "v1", .val = 1 },
    { .name = "v2", .val = 2 },
    { .name = NULL },
};

const gh_keydef gh_upstream_conf_keys[] = {
    { .name = "servers", .set = set_servers, .flags = GH_K_REQUIRED, .sub = server_keys },
    { .name = "balance", .set = gh_cfg_set_enum, .off = UP_FIELD(balance), .data = balance_vals },
    { .name = "keepalive", .set = gh_cfg_set_count, .off = UP_FIELD(keepalive) },
    { .name = "keepalive_timeout", .set = gh_cfg_set_duration,
      .off = UP_FIELD(keepalive_timeout_ms), .flags = GH_K_NONZERO },
    { .name = "connect_timeout", .set = gh_cfg_set_duration,
      .off = UP_FIELD(connect_timeout_ms), .flags = GH_K_NONZERO },
    { .name = "read_timeout", .set = gh_cfg_set_duration, .off = UP_FIELD(read_timeout_ms),
      .flags = GH_K_NONZERO },
    { .name = "send_timeout", .set = gh_cfg_set_duration, .off = UP_FIELD(send_timeout_ms),
      .flags = GH_K_NONZERO },
    { .name = "max_fails", .set = gh_cfg_set_count, .off = UP_FIELD(max_fails) },
    { .name = "fail_timeout", .set = gh_cfg_set_duration, .off = UP_FIELD(fail_timeout_ms),
      .flags = GH_K_NONZERO },
    { .name = "health", .set = set_health, .sub = health_keys },
    { .name = "proxy_protocol", .set = gh_cfg_set_enum, .off = UP_FIELD(proxy_protocol),
      .data = pp_vals },
    { .name = "tls", .set = set_tls, .sub = tls_keys },
    { .name = NULL },
};
#undef UP_FIELD

/* Shared by declared upstreams and those a url: makes. */
static void upstream_defaults(gh_upstream_conf *u)
{
    u->balance = GH_BALANCE_ROUND_ROBIN;
    u->keepalive = 32;
    u->keepalive_timeout_ms = 60000;
    u->connect_timeout_ms = 5000;
    u->read_timeout_ms = 60000;
    u->send_timeout_ms = 60000;
    u->max_fails = 1;
    u->fail_timeout_ms = 10000;
    u->tls_verify = true;
    u->health_interval_ms = 5000;
    u->health_timeout_ms = 2000;
    u->health_expect_lo = 200;
    u->health_expect_hi = 399;
    u->health_fails = 2;
    u->health_passes = 2;
}

void gh_cfg_set_upstreams(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                          const gh_keydef *d)
{
    gh_config *cfg = obj;
    char qb[GH_CFG_QBUF], what[GH_CFG_QBUF + 16], where[GH_CFG_QBUF + 16];

    (void)d;
    if (v->kind == GH_YN_BAD || gh_cfg_is_null(v))
        return;
    if (v->kind != GH_YN_MAP) {
        gh_cfg_err_at(c, v, "%s: expected a mapping of names to upstreams, got %s", k->text,
                      gh_cfg_kind_name(v));
        return;
    }
    if (v->n == 0)
        return;
    if ((cfg->upstreams = calloc(v->n / 2, sizeof(*cfg->upstreams))) == NULL) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i + 1 < v->n; i += 2) {
        const gh_cfgnode *name = v->items[i];
        gh_upstream_conf *u = &cfg->upstreams[cfg->nupstreams++];

        upstream_defaults(u);
        u->loc = gh_cfg_loc_of(c, name);
        u->name = gh_cfg_dup(c, name->text);
        if (!gh_cfg_upstream_name_ok(name->text))
            gh_cfg_err_at(c, name, "%s: bad upstream name %s (1 to 64 of A-Z a-z 0-9 _ . -)",
                          k->text, gh_cfg_quote(qb, name->text));
        gh_cfg_quote(qb, name->text);
        snprintf(what, sizeof(what), "upstream %s", qb);
        snprintf(where, sizeof(where), "in upstream %s", qb);
        gh_cfg_walk_map(c, v->items[i + 1], what, where, gh_upstream_conf_keys, u);
    }
}

/* ---- after the walk: proxy routes to upstreams ---------------------------- */

/* "127.0.0.1:8000", "[::1]:80": a url: upstream's server as an address. */
static char *inet_text(gh_cfgctx *c, const gh_sockaddr_any *a)
{
    char host[INET6_ADDRSTRLEN], buf[INET6_ADDRSTRLEN + 16];

    if (a->sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &a->in6.sin6_addr, host, sizeof(host));
        snprintf(buf, sizeof(buf), "[%s]:%u", host, (unsigned)ntohs(a->in6.sin6_port));
    } else {
        inet_ntop(AF_INET, &a->in4.sin_addr, host, sizeof(host));
        snprintf(buf, sizeof(buf), "%s:%u", host, (unsigned)ntohs(a->in4.sin_port));
    }
    return gh_cfg_dup(c, buf);
}

/* Appends the upstream of a url: route (one server, every default). */
static void add_url_upstream(gh_cfgctx *c, gh_config *cfg, gh_proxy_conf *p)
{
    gh_upstream_conf *nu, *u;
    gh_upstream_server *srv;

    if ((nu = realloc(cfg->upstreams, (cfg->nupstreams + 1) * sizeof(*nu))) == NULL) {
        c->nomem = true;
        return;
    }
    cfg->upstreams = nu;
    u = &cfg->upstreams[cfg->nupstreams];
    memset(u, 0, sizeof(*u));
    upstream_defaults(u);
    u->loc = p->upstream_loc;
    if ((u->servers = calloc(1, sizeof(*u->servers))) == NULL) {
        c->nomem = true;
        return;
    }
    cfg->nupstreams++;          /* from here gh_config_free sees it */
    u->nservers = 1;
    u->name = gh_cfg_dup(c, p->upstream);
    srv = &u->servers[0];
    srv->weight = 1;
    srv->loc = p->upstream_loc;
    /* checked by the url: setter; it cannot fail here */
    if (gh_cfg_proxy_url(p->upstream + strlen(URL_PREFIX), &srv->addr, &srv->addrlen,
                         &u->tls) == NULL)
        srv->address = inet_text(c, &srv->addr);
    p->upstream_index = cfg->nupstreams - 1;
}

/* "a, b, c" of the first n upstreams, cut to fit buf. */
static const char *names_of(const gh_config *cfg, size_t n, char *buf, size_t cap)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *name = cfg->upstreams[i].name != NULL ? cfg->upstreams[i].name : "?";
        int w = snprintf(buf + o, cap - o, "%s%s", i > 0 ? ", " : "", name);

        if (w < 0 || (size_t)w >= cap - o) {
            snprintf(buf + (o < cap - 6 ? o : cap - 6), 6, ", ...");
            break;
        }
        o += (size_t)w;
    }
    return buf;
}

void gh_cfg_check_proxies(gh_cfgctx *c, gh_config *cfg)
{
    size_t declared = cfg->nupstreams;
    char qb[GH_CFG_QBUF], list[512];

    for (size_t i = 0; i < cfg->nroutes && !c->nomem; i++) {
        gh_proxy_conf *p = &cfg->routes[i].u.proxy;
        size_t j;

        if (cfg->routes[i].action != GH_ACTION_PROXY || p->upstream == NULL)
            continue;
        if (strncmp(p->upstream, URL_PREFIX, strlen(URL_PREFIX)) == 0) {
            add_url_upstream(c, cfg, p);
            continue;
        }
        for (j = 0; j < declared; j++)
            if (cfg->upstreams[j].name != NULL && strcmp(cfg->upstreams[j].name, p->upstream) == 0)
                break;
        if (j < declared) {
            p->upstream_index = j;
            continue;
        }
        if (declared == 0)
            gh_cfg_err_at_pos(c, p->upstream_loc.line, p->upstream_loc.col,
                              "proxy: unknown upstream %s (no upstreams: defined)",
                              gh_cfg_quote(qb, p->upstream));
        else
            gh_cfg_err_at_pos(c, p->upstream_loc.line, p->upstream_loc.col,
                              "proxy: unknown upstream %s (defined: %s)",
                              gh_cfg_quote(qb, p->upstream),
                              names_of(cfg, declared, list, sizeof(list)));
    }
}
