/* route_conf.c: the keys of a `routes:` item: its `match:` and the table of
 * route actions, for the config loader (routes are chosen by route.c). */
#include "cfgkit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_';
}

/* A DNS name or IPv4 literal, or [IPv6]. Returns the byte after it. */
const char *gh_cfg_skip_host(const char *s)
{
    if (*s == '[') {
        char tmp[INET6_ADDRSTRLEN];
        const char *e = strchr(s, ']');
        unsigned char bin[16];

        if (e == NULL || (size_t)(e - s - 1) >= sizeof(tmp))
            return s;
        memcpy(tmp, s + 1, (size_t)(e - s - 1));
        tmp[e - s - 1] = '\0';
        return inet_pton(AF_INET6, tmp, bin) == 1 ? e + 1 : s;
    }
    while (host_char(*s))
        s++;
    return s;
}

/* match.path, match.prefix, and a proxy's strip_prefix (cfgkit.h). */
void gh_cfg_set_url_path(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a path starting with /");

    if (s == NULL)
        return;
    if (s[0] != '/') {
        gh_cfg_err_at(c, v, "%s: must start with /, got %s", k->text, gh_cfg_quote(qb, s));
        return;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '?' || *p == '#') {
            gh_cfg_err_at(c, v, "%s: no spaces, control characters, ? or # allowed in %s",
                   k->text, gh_cfg_quote(qb, s));
            return;
        }
    }
    gh_cfg_replace(gh_cfg_field(obj, d), gh_cfg_dup(c, s));
}

static void set_host(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a host name"), *e;

    if (s == NULL)
        return;
    e = gh_cfg_skip_host(s);
    if (e == s || *e != '\0') {
        gh_cfg_err_at(c, v, "%s: expected a host name without port or scheme, got %s",
               k->text, gh_cfg_quote(qb, s));
        return;
    }
    gh_cfg_replace(gh_cfg_field(obj, d), gh_cfg_dup(c, s));
}

static const gh_cfg_enum scheme_vals[] = {
    { .name = "http", .val = GH_SCHEME_HTTP },
    { .name = "https", .val = GH_SCHEME_HTTPS },
    { .name = NULL },
};

static const gh_keydef match_keys[] = {
    { .name = "path", .set = gh_cfg_set_url_path, .off = offsetof(gh_match, path) },
    { .name = "prefix", .set = gh_cfg_set_url_path, .off = offsetof(gh_match, prefix) },
    { .name = "host", .set = set_host, .off = offsetof(gh_match, host) },
    { .name = "scheme", .set = gh_cfg_set_enum, .off = offsetof(gh_match, scheme),
      .data = scheme_vals },
    { .name = NULL },
};

static void set_match(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    gh_route_conf *r = obj;

    (void)k;
    (void)d;
    if (gh_cfg_walk_map(c, v, "match", "in match", match_keys, &r->match) &&
        r->match.path != NULL && r->match.prefix != NULL)
        gh_cfg_err_at(c, v, "match: give path (exact) or prefix, not both");
}


static void set_action(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                       const gh_keydef *d);

#define ACTION(a) .set = set_action, .data = &(a), .flags = GH_K_ACTION
/* A route: its match and exactly one action. A new action adds its line
 * here (its gh_cfg_action sits beside its module). */
static void set_allow(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                      const gh_keydef *d)
{
    gh_route_conf *r = obj;

    (void)d;
    if (gh_cfg_cidr_list(c, k, v, &r->allow, &r->nallow, NULL))
        r->has_allow = true;
}

const gh_keydef gh_route_conf_keys[] = {
    { .name = "match", .set = set_match, .flags = GH_K_REQUIRED, .sub = match_keys },
    { .name = "allow", .set = set_allow },
    { .name = "static", ACTION(gh_static_action) },
    { .name = "health", ACTION(gh_health_action) },
    { .name = "redirect_https", ACTION(gh_redirect_action) },
    { .name = "metrics", ACTION(gh_metrics_action) },
    { .name = "websocket", ACTION(gh_websocket_action) },
    { .name = "proxy", ACTION(gh_proxy_action) },
    { .name = "status", ACTION(gh_status_action) },
    { .name = NULL },
};
#undef ACTION

static const char *action_name(gh_action_kind a)
{
    for (const gh_keydef *d = gh_route_conf_keys; d->name != NULL; d++)
        if (d->data != NULL && ((const gh_cfg_action *)d->data)->kind == a)
            return d->name;
    return "?";
}

static void set_action(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                       const gh_keydef *d)
{
    gh_route_conf *r = obj;
    const gh_cfg_action *act = d->data;
    void *conf = (char *)r + act->off;
    char where[64];

    if (r->action != 0) {
        gh_cfg_err_at(c, k, "route: a second action %s after %s; a route has exactly one",
                      d->name, action_name(r->action));
        return;
    }
    r->action = act->kind;   /* first, so that gh_config_free knows the union */
    if (act->defaults != NULL)
        act->defaults(c, conf);
    snprintf(where, sizeof(where), "in %s", act->name);
    if (gh_cfg_walk_map(c, v, act->name, where, act->keys, conf) && act->check != NULL)
        act->check(c, v, conf);
}

/* "static, health, ...": the actions of the table, for "no action". */
static const char *action_list(char *buf, size_t cap)
{
    size_t o = 0;

    buf[0] = '\0';
    for (const gh_keydef *d = gh_route_conf_keys; d->name != NULL; d++) {
        int w;

        if (!(d->flags & GH_K_ACTION))
            continue;
        w = snprintf(buf + o, cap - o, "%s%s", o > 0 ? ", " : "", d->name);
        if (w < 0 || (size_t)w >= cap - o)
            break;
        o += (size_t)w;
    }
    return buf;
}

void gh_cfg_set_routes(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    gh_config *cfg = obj;
    char actions[256];

    (void)d;
    if (v->kind == GH_YN_BAD || gh_cfg_is_null(v))
        return;
    if (v->kind != GH_YN_SEQ) {
        gh_cfg_err_at(c, v, "%s: expected a sequence, got %s", k->text, gh_cfg_kind_name(v));
        return;
    }
    if (v->n > GH_CONFIG_MAX_ROUTES) {
        gh_cfg_err_at(c, v, "%s: more than %d routes", k->text, GH_CONFIG_MAX_ROUTES);
        return;
    }
    if (v->n == 0)
        return;
    if ((cfg->routes = calloc(v->n, sizeof(*cfg->routes))) == NULL) {
        c->nomem = true;
        return;
    }
    cfg->nroutes = v->n;
    for (size_t i = 0; i < v->n; i++) {
        gh_route_conf *r = &cfg->routes[i];

        r->loc = gh_cfg_loc_of(c, v->items[i]);
        if (gh_cfg_walk_map(c, v->items[i], "route", "in route", gh_route_conf_keys, r) && r->action == 0)
            gh_cfg_err_at(c, v->items[i], "route: no action (give one of %s)",
                          action_list(actions, sizeof(actions)));
    }
}
