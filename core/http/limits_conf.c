/* limits_conf.c: the keys of `limits:` (per-client limits, climit.h), for
 * the config loader. */
#include <stdio.h>
#include <string.h>

#include "cfgkit.h"

/* "N/s", "N/m" or "N/h": N (1..1000000) tokens per second, minute, hour. */
static void set_rate(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                     const gh_keydef *d)
{
    gh_rate_conf *r = obj;
    char qb[GH_CFG_QBUF], num[16];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a rate like 10/s, 600/m or 100/h");
    const char *slash;
    uint64_t n;

    (void)d;
    if (s == NULL)
        return;
    slash = strchr(s, '/');
    if (slash == NULL || (size_t)(slash - s) >= sizeof(num) || slash == s ||
        (strcmp(slash, "/s") != 0 && strcmp(slash, "/m") != 0 && strcmp(slash, "/h") != 0))
        goto bad;
    memcpy(num, s, (size_t)(slash - s));
    num[slash - s] = '\0';
    if (gh_cfg_parse_dec(num, 1000000, &n) != 0 || n == 0)
        goto bad;
    r->count = n;
    r->per_ms = slash[1] == 's' ? 1000 : slash[1] == 'm' ? 60000 : 3600000;
    return;
bad:
    gh_cfg_err_at(c, v, "%s: expected a rate like 10/s, 600/m or 100/h (1..1000000 per unit), "
                  "got %s", k->text, gh_cfg_quote(qb, s));
}

static void set_positive(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                         const gh_keydef *d);

#define RATE_FIELD(f) offsetof(gh_rate_conf, f)
static const gh_keydef rate_keys[] = {
    { .name = "rate", .set = set_rate, .flags = GH_K_REQUIRED },
    { .name = "burst", .set = set_positive, .off = RATE_FIELD(burst), .arg = 1000000000 },
    { .name = NULL },
};
#undef RATE_FIELD

/* A whole number in 1..d->arg. */
static void set_positive(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                         const gh_keydef *d)
{
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a whole number");
    uint64_t n;

    if (s == NULL)
        return;
    if (gh_cfg_parse_dec(s, (uint64_t)d->arg, &n) != 0 || n == 0) {
        gh_cfg_err_at(c, v, "%s: expected a whole number in 1..%llu, got %s", k->text,
                      (unsigned long long)d->arg, gh_cfg_quote(qb, s));
        return;
    }
    *(uint64_t *)gh_cfg_field(obj, d) = n;
}

#define LIM_FIELD(f) offsetof(gh_limits_conf, f)
const gh_keydef gh_limits_conf_keys[] = {
    { .name = "connections_per_client", .set = gh_cfg_set_count, .off = LIM_FIELD(connections) },
    { .name = "requests_per_client", .set = gh_cfg_set_map, .off = LIM_FIELD(requests),
      .sub = rate_keys },
    { .name = "upgrades_per_client", .set = gh_cfg_set_map, .off = LIM_FIELD(upgrades),
      .sub = rate_keys },
    { .name = "ipv6_prefix", .set = set_positive, .off = LIM_FIELD(ipv6_prefix), .arg = 128 },
    { .name = "clients", .set = set_positive, .off = LIM_FIELD(clients), .arg = 1 << 24 },
    { .name = NULL },
};
#undef LIM_FIELD

void gh_limits_conf_defaults(gh_limits_conf *l)
{
    memset(l, 0, sizeof(*l));
    l->ipv6_prefix = 64;
    l->clients = 65536;
}
