/* plugincfg.c: typed lookups in a plugin's `config:` tree.
 *
 * Why this shape: a plugin gets its route's `config:` mapping as is (the
 * config loader cannot know a plugin's keys), so checking types falls to
 * these helpers. They keep the gateway's rules for durations and sizes
 * (units.h) and its FILE:LINE:COL error style, so a plugin's config errors
 * read like every other config error. They only look and report: the
 * plugin host decides where an error goes. */
#include "plugincfg.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "units.h"

static int fail(gh_plugincfg_err *err, const gh_cnode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(gh_plugincfg_err *err, const gh_cnode *n, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL) {
        err->loc = n->loc;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return GH_EINVAL;
}

static const char *kind_name(const gh_cnode *n)
{
    switch (n->kind) {
    case GH_CNODE_SEQ:
        return "a list";
    case GH_CNODE_MAP:
        return "a mapping";
    default:
        return "a scalar";
    }
}

const gh_cnode *gh_plugincfg_get(const gh_cnode *map, const char *key)
{
    return gh_cnode_get(map, key);
}

/* The scalar under key: 1 and *out, 0 when absent, GH_EINVAL otherwise. */
static int scalar(const gh_cnode *map, const char *key, const gh_cnode **out,
                  const char *want, gh_plugincfg_err *err)
{
    const gh_cnode *n = gh_cnode_get(map, key);

    if (n == NULL)
        return 0;
    if (n->kind != GH_CNODE_SCALAR || n->value == NULL)
        return fail(err, n, "%s: expected %s, got %s", key, want, kind_name(n));
    *out = n;
    return 1;
}

int gh_plugincfg_string(const gh_cnode *map, const char *key, const char *def,
                        const char **out, gh_plugincfg_err *err)
{
    const gh_cnode *n = NULL;
    int rc = scalar(map, key, &n, "a string", err);

    if (rc < 0)
        return rc;
    *out = rc == 1 ? n->value : def;
    return GH_OK;
}

int gh_plugincfg_int(const gh_cnode *map, const char *key, int64_t def,
                     int64_t min, int64_t max, int64_t *out, gh_plugincfg_err *err)
{
    const gh_cnode *n = NULL;
    const char *s;
    bool neg = false;
    uint64_t v = 0, lim;
    int64_t r;
    int rc = scalar(map, key, &n, "an integer", err);

    if (rc < 0)
        return rc;
    if (rc == 0) {
        *out = def;
        return GH_OK;
    }
    s = n->value;
    if (*s == '-') {
        neg = true;
        s++;
    }
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (*s == '\0')
        return fail(err, n, "%s: expected an integer, got \"%.64s\"", key, n->value);
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return fail(err, n, "%s: expected an integer, got \"%.64s\"", key, n->value);
        if (v > (lim - (uint64_t)(*s - '0')) / 10)
            return fail(err, n, "%s: %.64s is out of range %lld..%lld", key, n->value,
                        (long long)min, (long long)max);
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (neg)
        r = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        r = (int64_t)v;
    if (r < min || r > max)
        return fail(err, n, "%s: %lld is out of range %lld..%lld", key, (long long)r,
                    (long long)min, (long long)max);
    *out = r;
    return GH_OK;
}

int gh_plugincfg_bool(const gh_cnode *map, const char *key, bool def, bool *out,
                      gh_plugincfg_err *err)
{
    static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "YES",
                                       "on", "On", "ON", NULL };
    static const char *const no[] = { "false", "False", "FALSE", "no", "No", "NO",
                                      "off", "Off", "OFF", NULL };
    const gh_cnode *n = NULL;
    int rc = scalar(map, key, &n, "true or false", err);

    if (rc < 0)
        return rc;
    if (rc == 0) {
        *out = def;
        return GH_OK;
    }
    for (size_t i = 0; yes[i] != NULL; i++) {
        if (strcmp(n->value, yes[i]) == 0) {
            *out = true;
            return GH_OK;
        }
        if (strcmp(n->value, no[i]) == 0) {
            *out = false;
            return GH_OK;
        }
    }
    return fail(err, n, "%s: expected true or false, got \"%.64s\"", key, n->value);
}

int gh_plugincfg_size(const gh_cnode *map, const char *key, uint64_t def,
                      uint64_t *out, gh_plugincfg_err *err)
{
    const gh_cnode *n = NULL;
    uint64_t v;
    int rc = scalar(map, key, &n, "a size", err);

    if (rc < 0)
        return rc;
    if (rc == 0) {
        *out = def;
        return GH_OK;
    }
    if (gh_units_parse_size(n->value, &v) != GH_OK)
        return fail(err, n, "%s: expected a size such as 4096, 64KiB or 1MiB, got \"%.64s\"",
                    key, n->value);
    *out = v;
    return GH_OK;
}

int gh_plugincfg_duration(const gh_cnode *map, const char *key, uint64_t def_ms,
                          uint64_t *out_ms, gh_plugincfg_err *err)
{
    const gh_cnode *n = NULL;
    uint64_t v;
    int rc = scalar(map, key, &n, "a duration", err);

    if (rc < 0)
        return rc;
    if (rc == 0) {
        *out_ms = def_ms;
        return GH_OK;
    }
    if (gh_units_parse_duration(n->value, &v) != GH_OK)
        return fail(err, n, "%s: expected a duration such as 500ms, 30s or 5m, got \"%.64s\"",
                    key, n->value);
    *out_ms = v;
    return GH_OK;
}

int gh_plugincfg_list(const gh_cnode *map, const char *key, const char **items,
                      size_t cap, size_t *count, gh_plugincfg_err *err)
{
    const gh_cnode *n = gh_cnode_get(map, key);

    *count = 0;
    if (n == NULL)
        return GH_OK;
    if (n->kind != GH_CNODE_SEQ)
        return fail(err, n, "%s: expected a list, got %s", key, kind_name(n));
    for (size_t i = 0; i < n->nitems; i++)
        if (n->items[i].kind != GH_CNODE_SCALAR || n->items[i].value == NULL)
            return fail(err, &n->items[i], "%s: item %zu: expected a scalar, got %s", key,
                        i + 1, kind_name(&n->items[i]));
    for (size_t i = 0; i < n->nitems && i < cap; i++)
        items[i] = n->items[i].value;
    *count = n->nitems;
    return GH_OK;
}

int gh_plugincfg_check_keys(const gh_cnode *map, const char *const *known,
                            size_t *resume, gh_plugincfg_err *err)
{
    if (map == NULL || map->kind != GH_CNODE_MAP)
        return GH_OK;
    for (size_t i = *resume; i < map->nitems; i++) {
        const gh_cnode *n = &map->items[i];
        bool ok = false;

        for (size_t k = 0; known != NULL && known[k] != NULL && !ok; k++)
            ok = n->key != NULL && strcmp(n->key, known[k]) == 0;
        if (!ok) {
            *resume = i + 1;
            return fail(err, n, "unknown key %s", n->key != NULL ? n->key : "?");
        }
    }
    *resume = map->nitems;
    return GH_OK;
}
