/* bus_conf.c: the keys of `bus:` (topics across instances through Redis),
 * for the config loader (the bus is bus.c). */
#include "cfgkit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* redis://[:PASSWORD@]HOST:PORT[/DB]. HOST is a name, an IPv4 literal or
 * [IPv6]. Returns NULL or what is wrong. */
static const char *check_redis_url(const char *s, bool *has_password)
{
    const char *p, *at, *h, *he;
    uint64_t port, db;
    char tmp[INET6_ADDRSTRLEN];
    unsigned char bin[16];

    *has_password = false;
    if (strncmp(s, "redis://", 8) != 0)
        return "the scheme must be redis://";
    p = s + 8;
    /* /DB is digits only, so the last @ ends the password even if it has / or @ */
    if ((at = strrchr(p, '@')) != NULL) {
        if (p[0] != ':' || at == p + 1)
            return "a password is written :PASSWORD@ (no user name)";
        *has_password = true;
        p = at + 1;
    }
    h = p;
    if (*h == '[') {
        if ((he = strchr(h, ']')) == NULL || (size_t)(he - h - 1) >= sizeof(tmp))
            return "bad [IPv6] host";
        memcpy(tmp, h + 1, (size_t)(he - h - 1));
        tmp[he - h - 1] = '\0';
        if (inet_pton(AF_INET6, tmp, bin) != 1)
            return "bad [IPv6] host";
        he++;
    } else {
        he = h;
        while ((*he >= 'a' && *he <= 'z') || (*he >= 'A' && *he <= 'Z') ||
               (*he >= '0' && *he <= '9') || *he == '-' || *he == '.' || *he == '_')
            he++;
        if (he == h)
            return "a host is required";
    }
    if (*he != ':')
        return "a port is required (HOST:PORT)";
    p = he + 1;
    {
        char num[8];
        size_t nl = strcspn(p, "/");

        if (nl == 0 || nl >= sizeof(num))
            return "the port must be in 1..65535";
        memcpy(num, p, nl);
        num[nl] = '\0';
        if (gh_cfg_parse_dec(num, 65535, &port) != 0 || port == 0)
            return "the port must be in 1..65535";
        p += nl;
    }
    if (*p == '/') {
        if (gh_cfg_parse_dec(p + 1, 15, &db) != 0)
            return "the database after / must be a number in 0..15";
    }
    return NULL;
}

static void set_redis(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a redis:// URL"), *why;
    bool pw;

    if (s == NULL)
        return;
    if ((why = check_redis_url(s, &pw)) != NULL) {
        gh_cfg_err_at(c, v, "%s: bad URL %s: %s (expected redis://[:PASSWORD@]HOST:PORT[/DB])",
               k->text, gh_cfg_quote(qb, s), why);
        return;
    }
    gh_cfg_replace(gh_cfg_field(obj, d), gh_cfg_dup(c, s));
}


/* IP[:PORT] (IPv4, or [IPv6]), port 53 by default. */
static void set_resolver(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                         const gh_keydef *d)
{
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "IP[:PORT]"), *why;
    gh_sockaddr_any addr;
    socklen_t len;

    if (s == NULL)
        return;
    if ((why = gh_cfg_parse_inet(s, strlen(s), 53, &addr, &len)) != NULL) {
        gh_cfg_err_at(c, v, "%s: %s in %s (expected IP[:PORT], an IPv4 literal or [IPv6])",
                      k->text, why, gh_cfg_quote(qb, s));
        return;
    }
    gh_cfg_replace(gh_cfg_field(obj, d), gh_cfg_dup(c, s));
}

const gh_keydef gh_bus_conf_keys[] = {
    { .name = "redis", .set = set_redis, .off = offsetof(gh_bus_conf, redis),
      .flags = GH_K_REQUIRED },
    { .name = "channel_prefix", .set = gh_cfg_set_string,
      .off = offsetof(gh_bus_conf, channel_prefix), .flags = GH_K_EMPTY_OK },
    { .name = "password", .set = gh_cfg_set_string, .off = offsetof(gh_bus_conf, password) },
    { .name = "resolver", .set = set_resolver, .off = offsetof(gh_bus_conf, resolver) },
    { .name = "presence_ttl", .set = gh_cfg_set_duration,
      .off = offsetof(gh_bus_conf, presence_ttl_ms), .flags = GH_K_NONZERO, .arg = 1000 },
    { .name = NULL },
};

void gh_cfg_set_bus(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    gh_bus_conf *bus = &((gh_config *)obj)->bus;
    bool pw;

    (void)k;
    (void)d;
    bus->loc = gh_cfg_loc_of(c, v);
    if (!gh_cfg_walk_map(c, v, "bus", "in bus", gh_bus_conf_keys, bus))
        return;
    if (bus->redis != NULL && bus->password != NULL &&
        check_redis_url(bus->redis, &pw) == NULL && pw)
        gh_cfg_err_at(c, v, "bus: password given twice, in the redis URL and as password:");
}

void gh_bus_conf_defaults(gh_cfgctx *c, gh_bus_conf *b)
{
    b->channel_prefix = gh_cfg_dup(c, "gatehouse:");
    b->presence_ttl_ms = 10000;
}
