/* websocket_conf.c: the keys of a `websocket:` route action, for the config
 * loader (the action is wsconn.c; the `config:` mapping goes to the plugin
 * as is, see pluginhost.c). */
#include "cfgkit.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static void set_plugin(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    gh_websocket_conf *ws = obj;
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a plugin name");
    size_t len;

    (void)d;
    if (s == NULL)
        return;
    len = strlen(s);
    if (len == 0 || len > 64 || s[0] == '.' || s[0] == '-' ||
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != len) {
        gh_cfg_err_at(c, v, "%s: bad plugin name %s (letters, digits, _ . -; the file is "
               "NAME.so in plugins_dir)", k->text, gh_cfg_quote(qb, s));
        return;
    }
    gh_cfg_replace(&ws->plugin, gh_cfg_dup(c, s));
    ws->plugin_loc = gh_cfg_loc_of(c, v);
}

/* scheme://host[:port], scheme http or https, nothing after. */
static bool origin_ok(const char *s)
{
    const char *h, *e;

    if (strncasecmp(s, "https://", 8) == 0)
        h = s + 8;
    else if (strncasecmp(s, "http://", 7) == 0)
        h = s + 7;
    else
        return false;
    if ((e = gh_cfg_skip_host(h)) == h)
        return false;
    if (*e == ':') {
        uint64_t port;

        return gh_cfg_parse_dec(e + 1, 65535, &port) == 0 && port != 0;
    }
    return *e == '\0';
}

static void set_origins(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj, const gh_keydef *d)
{
    gh_websocket_conf *ws = obj;
    char qb[GH_CFG_QBUF];

    (void)d;
    if (v->kind == GH_YN_BAD)
        return;
    if (v->kind == GH_YN_SCALAR && !gh_cfg_is_null(v)) {
        if (strcmp(v->text, "same-host") == 0) {
            ws->origins = GH_ORIGINS_SAME_HOST;
        } else if (strcmp(v->text, "*") == 0) {
            ws->origins = GH_ORIGINS_ANY;
        } else {
            gh_cfg_err_at(c, v, "%s: bad value %s (expected same-host, \"*\" or a list of "
                   "origins such as [\"https://a.example\"])", k->text, gh_cfg_quote(qb, v->text));
        }
        return;
    }
    if (v->kind != GH_YN_SEQ) {
        gh_cfg_err_at(c, v, "%s: expected same-host, \"*\" or a sequence of origins, got %s",
               k->text, gh_cfg_kind_name(v));
        return;
    }
    if (v->n > GH_CONFIG_MAX_LIST) {
        gh_cfg_err_at(c, v, "%s: more than %d entries", k->text, GH_CONFIG_MAX_LIST);
        return;
    }
    ws->origins = GH_ORIGINS_LIST;
    if (v->n == 0)
        return;
    if ((ws->origin_list = calloc(v->n, sizeof(*ws->origin_list))) == NULL) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const gh_cfgnode *it = v->items[i];
        const char *s = gh_cfg_want_scalar(c, it, k->text, "an origin");
        char *o;

        if (s == NULL)
            continue;
        if (!origin_ok(s)) {
            gh_cfg_err_at(c, it, "%s: bad origin %s (expected scheme://host[:port], e.g. "
                   "https://a.example, no path)", k->text, gh_cfg_quote(qb, s));
            continue;
        }
        if ((o = gh_cfg_dup(c, s)) == NULL)
            return;
        /* browsers send the serialized origin: lower case */
        for (char *p = o; *p != '\0'; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        ws->origin_list[ws->norigins++] = o;
    }
}

/* compression_level 0..9 (zlib's), server_window_bits 9..15 (RFC 7692 §7.1.2
 * allows 8, which zlib's raw deflate cannot do). */
static void set_zlib_number(gh_cfgctx *c, const gh_cfgnode *k, const gh_cfgnode *v, void *obj,
                            const gh_keydef *d)
{
    char qb[GH_CFG_QBUF];
    const char *s = gh_cfg_want_scalar(c, v, k->text, "a whole number");
    uint64_t n, lo = (uint64_t)d->arg / 100, hi = (uint64_t)d->arg % 100;

    if (s == NULL)
        return;
    if (gh_cfg_parse_dec(s, hi, &n) != 0 || n < lo) {
        gh_cfg_err_at(c, v, "%s: expected a whole number in %llu..%llu, got %s", k->text,
                      (unsigned long long)lo, (unsigned long long)hi, gh_cfg_quote(qb, s));
        return;
    }
    *(uint64_t *)gh_cfg_field(obj, d) = n;
}

static const gh_cfg_enum on_off_vals[] = {
    { .name = "on", .val = 1 },
    { .name = "off", .val = 0 },
    { .name = "true", .val = 1, .alias = true },    /* YAML 1.1 readers say on is true */
    { .name = "false", .val = 0, .alias = true },
    { .name = NULL },
};

#define WS_FIELD(f) offsetof(gh_websocket_conf, f)
static const gh_keydef websocket_keys[] = {
    { .name = "plugin", .set = set_plugin, .flags = GH_K_REQUIRED },
    { .name = "origins", .set = set_origins },
    { .name = "ping_interval", .set = gh_cfg_set_duration, .off = WS_FIELD(ping_interval_ms) },
    { .name = "pong_timeout", .set = gh_cfg_set_duration, .off = WS_FIELD(pong_timeout_ms),
      .flags = GH_K_NONZERO },
    { .name = "idle_timeout", .set = gh_cfg_set_duration, .off = WS_FIELD(idle_timeout_ms) },
    { .name = "close_timeout", .set = gh_cfg_set_duration, .off = WS_FIELD(close_timeout_ms),
      .flags = GH_K_NONZERO },
    { .name = "max_message", .set = gh_cfg_set_size, .off = WS_FIELD(max_message),
      .flags = GH_K_NONZERO },
    { .name = "send_backlog", .set = gh_cfg_set_size, .off = WS_FIELD(send_backlog),
      .flags = GH_K_NONZERO },
    { .name = "config", .set = gh_cfg_set_cnode, .off = WS_FIELD(config) },
    { .name = "compression", .set = gh_cfg_set_enum, .off = WS_FIELD(compression),
      .data = on_off_vals },
    { .name = "compression_level", .set = set_zlib_number, .off = WS_FIELD(compression_level),
      .arg = 9 },               /* 0..9 */
    { .name = "compression_threshold", .set = gh_cfg_set_size,
      .off = WS_FIELD(compression_threshold) },
    { .name = "server_window_bits", .set = set_zlib_number,
      .off = WS_FIELD(server_window_bits), .arg = 915 },    /* 9..15 */
    { .name = "context_takeover", .set = gh_cfg_set_bool, .off = WS_FIELD(context_takeover) },
    { .name = NULL },
};
#undef WS_FIELD

static void websocket_defaults(gh_cfgctx *c, void *conf)
{
    gh_websocket_conf *ws = conf;

    (void)c;
    ws->origins = GH_ORIGINS_SAME_HOST;
    ws->ping_interval_ms = 30000;
    ws->pong_timeout_ms = 10000;
    ws->idle_timeout_ms = 120000;
    ws->close_timeout_ms = 5000;
    ws->max_message = 64 * 1024;
    ws->send_backlog = 1024 * 1024;
    ws->compression = 1;
    ws->compression_level = 1;
    ws->compression_threshold = 128;
    ws->server_window_bits = 15;
    ws->context_takeover = false;
}

const gh_cfg_action gh_websocket_action = {
    .name = "websocket",
    .kind = GH_ACTION_WEBSOCKET,
    .keys = websocket_keys,
    .off = offsetof(gh_route_conf, u.ws),
    .defaults = websocket_defaults,
};
