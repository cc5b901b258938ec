/* proxy_conf.c: the keys of a `proxy:` route action, for the config loader
 * (the action is forward.c, its upstreams are upstream_conf.c).
 *
 * A route names a declared upstream or gives a url:, which stands for an
 * upstream of one server with every default; gh_cfg_check_proxies() ties
 * either to cfg->upstreams once the whole file is read. Header rules refuse
 * what would break the framing between gatehouse and the upstream
 * (Connection, Transfer-Encoding, Content-Length, ...): those are
 * gatehouse's own to write. */
#include "cfgkit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *gh_cfg_proxy_url(const char *url, gh_sockaddr_any *addr, socklen_t *len, bool *tls)
{
    const char *a, *e;

    *tls = strncasecmp(url, "https://", 8) == 0;
    if (!*tls && strncasecmp(url, "http://", 7) != 0)
        return "the scheme must be http:// or https://";
    a = url + (*tls ? 8 : 7);
    e = a + strcspn(a, "/?#");
    if (memchr(a, '@', (size_t)(e - a)) != NULL)
        return "a user name or password is not allowed";
    if (*e == '/')
        return "a path is not allowed (the request's path is sent as is; "
               "use strip_prefix to remove a prefix)";
    if (*e != '\0')
        return "a query or fragment is not allowed";
    return gh_cfg_parse_inet(a, (size_t)(e - a), *tls ? 443 : 80, addr, len);
}

/* upstream: and url: both fill p->upstream; upstream_loc.line says one was
 * given, even a bad one, so that neither is reported twice. */
static bool first_target(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, gh_proxy_conf *p)
{
    if (p->upstream_loc.line != 0) {
        gh_cfg_err_at(c, k, "proxy: give upstream or url, not both");
        return false;
    }
    p->upstream_loc = gh_cfg_loc_of(c, v);
    return true;
}

static void set_upstream(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                         const gh_keydef *d)
{
    gh_proxy_conf *p = obj;
    char qb[GH_CFG_QBUF];
    const char *s;

    (void)d;
    if (!first_target(c, k, v, p) || (s = gh_cfg_want_scalar(c, v, k->text, "an upstream name")) == NULL)
        return;
    if (!gh_cfg_upstream_name_ok(s)) {
        gh_cfg_err_at(c, v, "%s: bad upstream name %s (1 to 64 of A-Z a-z 0-9 _ . -; "
                      "for an address write url: \"http://IP:PORT\")", k->text, gh_cfg_quote(qb, s));
        return;
    }
    gh_cfg_replace(&p->upstream, gh_cfg_dup(c, s));
}

static void set_url(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                    const gh_keydef *d)
{
    gh_proxy_conf *p = obj;
    char qb[GH_CFG_QBUF], *name;
    const char *s, *why;
    gh_sockaddr_any addr;
    socklen_t len;
    size_t n;
    bool tls;

    (void)d;
    if (!first_target(c, k, v, p) || (s = gh_cfg_want_scalar(c, v, k->text, "an http:// URL")) == NULL)
        return;
    if ((why = gh_cfg_proxy_url(s, &addr, &len, &tls)) != NULL) {
        gh_cfg_err_at(c, v, "%s: bad URL %s: %s (expected http(s)://IP:PORT or "
                      "http(s)://[IPv6]:PORT)",
                      k->text, gh_cfg_quote(qb, s), why);
        return;
    }
    n = strlen(s);
    if ((name = malloc(4 + n + 1)) == NULL) {
        c->nomem = true;
        return;
    }
    memcpy(name, "url:", 4);
    memcpy(name + 4, s, n + 1);
    gh_cfg_replace(&p->upstream, name);
}

/* ---- headers: ------------------------------------------------------------ */

/* RFC 9110 5.6.2 tchar. */
static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        char ch = *s;

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("!#$%&'*+-.^_`|~", ch) != NULL))
            return false;
    }
    return true;
}

/* Hop-by-hop (RFC 9110 7.6.1) and framing fields: gatehouse writes these
 * itself on the upstream connection. */
static bool is_managed(const char *name)
{
    static const char *const managed[] = {
        "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
        "content-length", "proxy-connection",
    };

    for (size_t i = 0; i < sizeof(managed) / sizeof(managed[0]); i++)
        if (strcasecmp(name, managed[i]) == 0)
            return true;
    return false;
}

/* Reports at at what is wrong with name as a header to set or remove. */
static bool header_name_ok(gh_cfgctx *c, const gh_cfgnode *at, const char *key, const char *name)
{
    char qb[GH_CFG_QBUF];

    if (!is_token(name)) {
        gh_cfg_err_at(c, at, "%s: bad header name %s (a token: letters, digits and "
                      "!#$%%&'*+-.^_`|~)", key, gh_cfg_quote(qb, name));
        return false;
    }
    if (is_managed(name)) {
        gh_cfg_err_at(c, at, "%s: %s is a hop-by-hop or framing header, which gatehouse "
                      "manages itself", key, gh_cfg_quote(qb, name));
        return false;
    }
    return true;
}

static bool in_set(const gh_proxy_conf *p, const char *name)
{
    for (size_t i = 0; i < p->nset; i++)
        if (strcasecmp(p->set[i].name, name) == 0)
            return true;
    return false;
}

static bool in_remove(const gh_proxy_conf *p, const char *name)
{
    for (size_t i = 0; i < p->nremove; i++)
        if (strcasecmp(p->remove[i], name) == 0)
            return true;
    return false;
}

static void set_hset(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                     const gh_keydef *d)
{
    gh_proxy_conf *p = obj;
    char qb[GH_CFG_QBUF], label[GH_CFG_QBUF + 16];

    (void)d;
    if (v->kind == GH_YN_BAD || gh_cfg_is_null(v))
        return;
    if (v->kind != GH_YN_MAP) {
        gh_cfg_err_at(c, v, "%s: expected a mapping of header names to values, got %s",
                      k->text, gh_cfg_kind_name(v));
        return;
    }
    if (v->n / 2 > GH_CONFIG_MAX_LIST) {
        gh_cfg_err_at(c, v, "%s: more than %d entries", k->text, GH_CONFIG_MAX_LIST);
        return;
    }
    if (v->n == 0)
        return;
    if ((p->set = calloc(v->n / 2, sizeof(*p->set))) == NULL) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i + 1 < v->n; i += 2) {
        const gh_cfgnode *hk = v->items[i], *hv = v->items[i + 1];
        const char *val;
        gh_header_set *h;
        bool bad = false;

        if (!header_name_ok(c, hk, k->text, hk->text))
            continue;
        for (size_t j = 0; j < p->nset; j++) {
            if (strcasecmp(p->set[j].name, hk->text) == 0) {
                gh_cfg_err_at(c, hk, "%s: %s given twice (header names are case-insensitive)",
                              k->text, gh_cfg_quote(qb, hk->text));
                bad = true;
                break;
            }
        }
        if (!bad && in_remove(p, hk->text)) {
            gh_cfg_err_at(c, hk, "%s: %s is also in remove", k->text, gh_cfg_quote(qb, hk->text));
            bad = true;
        }
        snprintf(label, sizeof(label), "%s: %s", k->text, gh_cfg_quote(qb, hk->text));
        if ((val = gh_cfg_want_scalar(c, hv, label, "a header value (\"\" for an empty one)")) == NULL)
            continue;
        for (const char *q = val; *q != '\0' && !bad; q++) {
            if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f) {
                gh_cfg_err_at(c, hv, "%s: the value has a control character (CR, LF and the "
                              "like; only tab is allowed)", label);
                bad = true;
            }
        }
        if (bad)
            continue;
        h = &p->set[p->nset];
        h->name = gh_cfg_dup(c, hk->text);
        h->value = gh_cfg_dup(c, val);
        if (h->name == NULL || h->value == NULL) {
            free(h->name);
            free(h->value);
            h->name = h->value = NULL;
            continue;
        }
        p->nset++;
    }
}

static void set_hremove(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                        const gh_keydef *d)
{
    gh_proxy_conf *p = obj;
    char qb[GH_CFG_QBUF];

    (void)d;
    if (v->kind == GH_YN_BAD)
        return;
    if (v->kind != GH_YN_SEQ) {
        gh_cfg_err_at(c, v, "%s: expected a sequence of header names, e.g. [x-powered-by]; "
                      "got %s", k->text, gh_cfg_kind_name(v));
        return;
    }
    if (v->n > GH_CONFIG_MAX_LIST) {
        gh_cfg_err_at(c, v, "%s: more than %d entries", k->text, GH_CONFIG_MAX_LIST);
        return;
    }
    if (v->n == 0)
        return;
    if ((p->remove = calloc(v->n, sizeof(*p->remove))) == NULL) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const gh_cfgnode *it = v->items[i];
        const char *s = gh_cfg_want_scalar(c, it, k->text, "a header name");
        char *low;

        if (s == NULL || !header_name_ok(c, it, k->text, s))
            continue;
        if (strcasecmp(s, "host") == 0) {
            gh_cfg_err_at(c, it, "%s: \"host\" cannot be removed (HTTP/1.1 requires it; "
                          "set it instead)", k->text);
            continue;
        }
        if (in_remove(p, s)) {
            gh_cfg_err_at(c, it, "%s: %s given twice (header names are case-insensitive)",
                          k->text, gh_cfg_quote(qb, s));
            continue;
        }
        if (in_set(p, s)) {
            gh_cfg_err_at(c, it, "%s: %s is also in set", k->text, gh_cfg_quote(qb, s));
            continue;
        }
        if ((low = gh_cfg_dup(c, s)) == NULL)
            return;
        for (char *q = low; *q != '\0'; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
        p->remove[p->nremove++] = low;
    }
}

static const gh_keydef header_keys[] = {
    { .name = "set", .set = set_hset },
    { .name = "remove", .set = set_hremove },
    { .name = NULL },
};

/* ---- forwarded: ---------------------------------------------------------- */

static const struct {
    const char *name;
    unsigned    bit;
} fwd_names[] = {
    { "x-forwarded-for", GH_FWD_XFF },
    { "x-forwarded-proto", GH_FWD_XFP },
    { "x-forwarded-host", GH_FWD_XFH },
    { "x-forwarded-port", GH_FWD_XFPORT },
    { "x-real-ip", GH_FWD_REAL_IP },
    { "forwarded", GH_FWD_FORWARDED },
};

static void set_forwarded(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                          const gh_keydef *d)
{
    gh_proxy_conf *p = obj;
    char qb[GH_CFG_QBUF];
    unsigned bits = 0;
    bool bad = false;

    (void)d;
    if (v->kind == GH_YN_BAD)
        return;
    if (v->kind != GH_YN_SEQ) {
        gh_cfg_err_at(c, v, "%s: expected a sequence of header names, e.g. [x-forwarded-for, "
                      "x-forwarded-proto], or []; got %s", k->text, gh_cfg_kind_name(v));
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const gh_cfgnode *it = v->items[i];
        const char *s = gh_cfg_want_scalar(c, it, k->text, "a header name");
        size_t j;

        if (s == NULL) {
            bad = true;
            continue;
        }
        for (j = 0; j < sizeof(fwd_names) / sizeof(fwd_names[0]); j++)
            if (strcasecmp(s, fwd_names[j].name) == 0)
                break;
        if (j == sizeof(fwd_names) / sizeof(fwd_names[0])) {
            gh_cfg_err_at(c, it, "%s: unknown header %s (expected x-forwarded-for, "
                          "x-forwarded-proto, x-forwarded-host, x-forwarded-port, x-real-ip "
                          "or forwarded)", k->text, gh_cfg_quote(qb, s));
            bad = true;
            continue;
        }
        bits |= fwd_names[j].bit;
    }
    if (!bad)
        p->forwarded = bits;
}

/* ---- the action ---------------------------------------------------------- */

#define PX_FIELD(f) offsetof(gh_proxy_conf, f)
static const gh_keydef proxy_keys[] = {
    { .name = "upstream", .set = set_upstream },
    { .name = "url", .set = set_url },
    { .name = "strip_prefix", .set = gh_cfg_set_url_path, .off = PX_FIELD(strip_prefix) },
    { .name = "headers", .set = gh_cfg_set_map, .sub = header_keys },   /* off 0: the conf */
    { .name = "forwarded", .set = set_forwarded },
    { .name = "ping_interval", .set = gh_cfg_set_duration, .off = PX_FIELD(ping_interval_ms) },
    { .name = NULL },
};
#undef PX_FIELD

static void proxy_defaults(gh_cfgctx *c, void *conf)
{
    gh_proxy_conf *p = conf;

    (void)c;
    p->forwarded = GH_FWD_XFF | GH_FWD_XFP | GH_FWD_REAL_IP;
    p->ping_interval_ms = 30000;
}

static void proxy_check(gh_cfgctx *c, const gh_cfgnode *v, void *conf)
{
    gh_proxy_conf *p = conf;

    if (p->upstream_loc.line == 0)
        gh_cfg_err_at(c, v, "proxy: give upstream: NAME (one of upstreams:) or "
                      "url: \"http://IP:PORT\"");
}

const gh_cfg_action gh_proxy_action = {
    .name = "proxy",
    .kind = GH_ACTION_PROXY,
    .keys = proxy_keys,
    .off = offsetof(gh_route_conf, u.proxy),
    .defaults = proxy_defaults,
    .check = proxy_check,
};
