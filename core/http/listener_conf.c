/* listener_conf.c: the keys of a `listeners:` item and its `tls:`, for the
 * config loader (listeners are bound by the daemon, their connections run
 * in conn.c and tls.c). */
#include "cfgkit.h"
#include "err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static const gh_cfg_enum proxy_vals[] = {
    { .name = "off", .val = GH_PROXY_OFF },
    { .name = "false", .val = GH_PROXY_OFF, .alias = true },  /* YAML 1.1 readers say off is false */
    { .name = "v1", .val = GH_PROXY_V1 },
    { .name = "v2", .val = GH_PROXY_V2 },
    { .name = "any", .val = GH_PROXY_ANY },
    { .name = "optional", .val = GH_PROXY_OPTIONAL },
    { .name = NULL },
};

/* HOST:PORT with an IPv4 literal, [IPv6]:PORT, or :PORT (all addresses, v4
 * and v6, as [::]). Names are not resolved. */
static bool parse_listen(gh_cfgctx *c, const gh_cfgnode *v, const char *s, gh_listener_conf *l)
{
    char qb[GH_CFG_QBUF], host[INET6_ADDRSTRLEN];
    const char *colon, *hs, *he;
    struct sockaddr_in *sin = (struct sockaddr_in *)&l->addr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->addr;
    uint16_t port;
    int family;

    if (s[0] == '[') {
        hs = s + 1;
        if ((he = strchr(hs, ']')) == NULL || he[1] != ':')
            goto bad;
        colon = he + 1;
        family = AF_INET6;
    } else {
        if ((colon = strrchr(s, ':')) == NULL)
            goto bad;
        hs = s;
        he = colon;
        if (memchr(hs, ':', (size_t)(he - hs)) != NULL) {
            gh_cfg_err_at(c, v, "listen: an IPv6 address needs brackets, e.g. [::1]:8080; got %s",
                   gh_cfg_quote(qb, s));
            return false;
        }
        family = he == hs ? AF_INET6 : AF_INET;
    }
    if ((size_t)(he - hs) >= sizeof(host))
        goto bad;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (s[0] == '[' && host[0] == '\0')
        goto bad;
    {
        uint64_t p;
        int r = gh_cfg_parse_dec(colon + 1, 65535, &p);

        if (r == -1)
            goto bad;
        if (r == -2 || p == 0) {
            gh_cfg_err_at(c, v, "listen: port %.24s not in 1..65535", colon + 1);
            return false;
        }
        port = (uint16_t)p;
    }
    memset(&l->addr, 0, sizeof(l->addr));
    if (family == AF_INET) {
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            goto bad;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        l->addrlen = sizeof(*sin);
    } else {
        if (host[0] == '\0')
            sin6->sin6_addr = in6addr_any;
        else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            goto bad;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        l->addrlen = sizeof(*sin6);
    }
    return true;
bad:
    gh_cfg_err_at(c, v, "listen: expected IP:PORT, [IPv6]:PORT or :PORT, got %s "
           "(names are not resolved: write 127.0.0.1:8080)", gh_cfg_quote(qb, s));
    return false;
}

static void set_listen(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    gh_listener_conf *l = obj;
    const char *s = gh_cfg_want_scalar(c, v, k->text, "IP:PORT");

    (void)d;
    if (s == NULL || !parse_listen(c, v, s, l))
        return;
    gh_cfg_replace(&l->listen, gh_cfg_dup(c, s));
    if (l->listen == NULL)
        l->addrlen = 0;     /* out of memory: keep the duplicate check away */
}

bool gh_cfg_cidr_list(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, gh_cidr **list,
                      size_t *n, bool *any)
{
    char qb[GH_CFG_QBUF];

    if (v->kind == GH_YN_BAD)
        return false;
    if (any != NULL && v->kind == GH_YN_SCALAR && !gh_cfg_is_null(v) &&
        strcmp(v->text, "any") == 0) {
        free(*list);
        *list = NULL;
        *n = 0;
        *any = true;
        return true;
    }
    if (v->kind != GH_YN_SEQ) {
        gh_cfg_err_at(c, v, "%s: expected a sequence of CIDR ranges, e.g. [10.0.0.0/8]%s; "
               "got %s", k->text, any != NULL ? ", or any" : "", gh_cfg_kind_name(v));
        return false;
    }
    if (v->n > GH_CONFIG_MAX_LIST) {
        gh_cfg_err_at(c, v, "%s: more than %d entries", k->text, GH_CONFIG_MAX_LIST);
        return false;
    }
    free(*list);
    *list = NULL;
    *n = 0;
    if (any != NULL)
        *any = false;
    if (v->n == 0)
        return true;
    if ((*list = calloc(v->n, sizeof(**list))) == NULL) {
        c->nomem = true;
        return false;
    }
    for (size_t i = 0; i < v->n; i++) {
        const gh_cfgnode *it = v->items[i];
        const char *s = gh_cfg_want_scalar(c, it, k->text, "a CIDR range");

        if (s == NULL)
            continue;
        if (gh_cidr_parse(s, &(*list)[*n]) != GH_OK) {
            gh_cfg_err_at(c, it, "%s: bad CIDR range %s (expected ADDR or ADDR/PREFIX with "
                   "no host bits set, e.g. 10.0.0.0/8)", k->text, gh_cfg_quote(qb, s));
            continue;
        }
        (*n)++;
    }
    return true;
}

static void set_trusted(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    gh_listener_conf *l = obj;

    (void)d;
    (void)gh_cfg_cidr_list(c, k, v, &l->trusted, &l->ntrusted, &l->trusted_any);
}

static void set_https_ports(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    gh_listener_conf *l = obj;

    (void)d;
    if (v->kind == GH_YN_BAD)
        return;
    if (v->kind != GH_YN_SEQ) {
        gh_cfg_err_at(c, v, "%s: expected a sequence of ports, e.g. [443]; got %s", k->text,
               gh_cfg_kind_name(v));
        return;
    }
    if (v->n > GH_CONFIG_MAX_LIST) {
        gh_cfg_err_at(c, v, "%s: more than %d entries", k->text, GH_CONFIG_MAX_LIST);
        return;
    }
    free(l->https_ports);
    l->https_ports = NULL;
    l->nhttps_ports = 0;
    if (v->n == 0)
        return;
    if ((l->https_ports = calloc(v->n, sizeof(*l->https_ports))) == NULL) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const char *s = gh_cfg_want_scalar(c, v->items[i], k->text, "a port number");

        if (s != NULL && gh_cfg_port_text(c, v->items[i], k->text, s, &l->https_ports[l->nhttps_ports]))
            l->nhttps_ports++;
    }
}

static const gh_cfg_enum tlsver_vals[] = {
    { .name = "TLSv1.2" },
    { .name = "TLSv1.3" },
    { .name = NULL },
};

static const gh_keydef tls_keys[] = {
    { .name = "cert", .set = gh_cfg_set_path, .off = offsetof(gh_listener_conf, tls_cert),
      .flags = GH_K_REQUIRED },
    { .name = "key", .set = gh_cfg_set_path, .off = offsetof(gh_listener_conf, tls_key),
      .flags = GH_K_REQUIRED },
    { .name = "min_version", .set = gh_cfg_set_enum,
      .off = offsetof(gh_listener_conf, tls_min_version), .flags = GH_K_ENUM_TEXT,
      .data = tlsver_vals },
    { .name = "ciphers", .set = gh_cfg_set_string, .off = offsetof(gh_listener_conf, tls_ciphers) },
    { .name = "handshake_timeout", .set = gh_cfg_set_duration,
      .off = offsetof(gh_listener_conf, tls_handshake_timeout_ms), .flags = GH_K_NONZERO },
    { .name = NULL },
};

static void set_tls(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    gh_listener_conf *l = obj;

    (void)k;
    (void)d;
    l->tls = true;
    l->tls_loc = gh_cfg_loc_of(c, v);
    gh_cfg_walk_map(c, v, "tls", "in tls", tls_keys, l);
}

const gh_keydef gh_listener_conf_keys[] = {
    { .name = "listen", .set = set_listen, .flags = GH_K_REQUIRED },
    { .name = "proxy_protocol", .set = gh_cfg_set_enum,
      .off = offsetof(gh_listener_conf, proxy_protocol), .data = proxy_vals },
    { .name = "proxy_timeout", .set = gh_cfg_set_duration,
      .off = offsetof(gh_listener_conf, proxy_timeout_ms), .flags = GH_K_NONZERO },
    { .name = "trusted_proxies", .set = set_trusted },
    { .name = "https_ports", .set = set_https_ports },
    { .name = "tls", .set = set_tls, .sub = tls_keys },
    { .name = "max_connections", .set = gh_cfg_set_count,
      .off = offsetof(gh_listener_conf, max_connections) },
    { .name = NULL },
};

static void listener_defaults(gh_cfgctx *c, gh_listener_conf *l)
{
    size_t n = gh_cidr_defaults(NULL, 0);

    l->proxy_protocol = GH_PROXY_OFF;
    l->proxy_timeout_ms = 5000;
    l->tls_handshake_timeout_ms = 10000;
    l->tls_min_version = gh_cfg_dup(c, "TLSv1.2");
    if ((l->trusted = calloc(n, sizeof(*l->trusted))) != NULL)
        l->ntrusted = gh_cidr_defaults(l->trusted, n);
    if ((l->https_ports = calloc(1, sizeof(*l->https_ports))) != NULL) {
        l->https_ports[0] = 443;
        l->nhttps_ports = 1;
    }
    if (l->trusted == NULL || l->https_ports == NULL)
        c->nomem = true;
}

static bool same_addr(const gh_listener_conf *a, const gh_listener_conf *b)
{
    return a->addrlen != 0 && a->addrlen == b->addrlen &&
           memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

void gh_cfg_set_listeners(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    gh_config *cfg = obj;

    (void)d;
    if (v->kind == GH_YN_BAD)
        return;
    if (v->kind != GH_YN_SEQ) {
        gh_cfg_err_at(c, v, "%s: expected a sequence, got %s", k->text, gh_cfg_kind_name(v));
        return;
    }
    if (v->n == 0) {
        gh_cfg_err_at(c, v, "%s: at least one listener is required", k->text);
        return;
    }
    if (v->n > GH_CONFIG_MAX_LISTENERS) {
        gh_cfg_err_at(c, v, "%s: more than %d listeners", k->text, GH_CONFIG_MAX_LISTENERS);
        return;
    }
    if ((cfg->listeners = calloc(v->n, sizeof(*cfg->listeners))) == NULL) {
        c->nomem = true;
        return;
    }
    cfg->nlisteners = v->n;
    for (size_t i = 0; i < v->n; i++) {
        gh_listener_conf *l = &cfg->listeners[i];

        l->loc = gh_cfg_loc_of(c, v->items[i]);
        listener_defaults(c, l);
        if (v->items[i]->kind == GH_YN_SCALAR && !gh_cfg_is_null(v->items[i])) {
            gh_cfg_err_at(c, v->items[i], "listener: expected a mapping, got a scalar "
                   "(write - listen: %s)", strchr(v->items[i]->text, ':') != NULL ?
                   "HOST:PORT" : ":PORT");
            continue;
        }
        if (!gh_cfg_walk_map(c, v->items[i], "listener", "in listener", gh_listener_conf_keys, l))
            continue;
        for (size_t j = 0; j < i; j++) {
            if (same_addr(&cfg->listeners[j], l)) {
                gh_cfg_err_at(c, v->items[i], "listen: %s is also the address of the listener "
                       "at line %d", l->listen, cfg->listeners[j].loc.line);
                break;
            }
        }
    }
}
