/* redirect_conf.c: the keys of a `redirect_https:` route action, for the
 * config loader (the action is redirect.c). */
#include "cfgkit.h"

static void set_status(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "301, 302, 307 or 308");
    uint64_t n = 0;

    if (s == NULL)
        return;
    if (gh_cfg_parse_dec(s, 999, &n) != 0 || (n != 301 && n != 302 && n != 307 && n != 308)) {
        gh_cfg_err_at(c, v, "%s: bad value %s (expected 301, 302, 307 or 308)", k->text,
               gh_cfg_quote(qb, s));
        return;
    }
    *(int *)gh_cfg_field(obj, d) = (int)n;
}

static void set_port_int(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a port number");
    uint16_t port;

    if (s != NULL && gh_cfg_port_text(c, v, k->text, s, &port))
        *(int *)gh_cfg_field(obj, d) = port;
}

static const gh_keydef redirect_keys[] = {
    { .name = "status", .set = set_status, .off = offsetof(gh_redirect_conf, status) },
    { .name = "port", .set = set_port_int, .off = offsetof(gh_redirect_conf, port) },
    { .name = NULL },
};

static void redirect_defaults(gh_cfgctx *c, void *conf)
{
    gh_redirect_conf *r = conf;

    (void)c;
    r->status = 301;
    r->port = 0;
}

const gh_cfg_action gh_redirect_action = {
    .name = "redirect_https",
    .kind = GH_ACTION_REDIRECT_HTTPS,
    .keys = redirect_keys,
    .off = offsetof(gh_route_conf, u.redirect),
    .defaults = redirect_defaults,
};
