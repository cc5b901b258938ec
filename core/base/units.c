/* units.c: durations and sizes as written in the config file.
 *
 * The grammar is deliberately small and strict: a run of ASCII digits, then
 * a unit glued to it. No sign, no spaces, no decimals ("1.5s": write 1500ms),
 * no case folding ("30S" and "64kib" are errors), so a typo is an error and
 * not a silently different value. Every multiplication is checked, so a
 * value that does not fit in 64 bits is an error, never a wrap-around.
 * No I/O, no allocation. */
#include "units.h"
#include "err.h"

#include <stddef.h>
#include <string.h>

typedef struct unit {
    const char *name;
    uint64_t    mult;
} unit;

static const unit duration_units[] = {
    { .name = "ms", .mult = 1 },
    { .name = "s", .mult = 1000 },
    { .name = "m", .mult = 60 * 1000 },
    { .name = "h", .mult = 60 * 60 * 1000 },
    { .name = NULL },
};

static const unit size_units[] = {
    { .name = "", .mult = 1 },
    { .name = "B", .mult = 1 },
    { .name = "KiB", .mult = 1024 },
    { .name = "MiB", .mult = 1024 * 1024 },
    { .name = "GiB", .mult = 1024 * 1024 * 1024 },
    { .name = "KB", .mult = 1000 },
    { .name = "MB", .mult = 1000 * 1000 },
    { .name = "GB", .mult = 1000 * 1000 * 1000 },
    { .name = NULL },
};

/* Reads one or more ASCII digits. Returns the first byte after them, or NULL
 * when there is no digit or the number does not fit in 64 bits. */
static const char *read_digits(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;

    while (*p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');

        if (v > (UINT64_MAX - d) / 10)
            return NULL;
        v = v * 10 + d;
        p++;
    }
    if (p == s)
        return NULL;
    *out = v;
    return p;
}

static int parse_with_units(const char *s, const unit *units, uint64_t *out)
{
    uint64_t v;
    const char *p;

    if (s == NULL || (p = read_digits(s, &v)) == NULL)
        return GH_EINVAL;
    for (const unit *u = units; u->name != NULL; u++) {
        if (strcmp(p, u->name) != 0)
            continue;
        if (v > UINT64_MAX / u->mult)
            return GH_EINVAL;
        *out = v * u->mult;
        return GH_OK;
    }
    return GH_EINVAL;
}

int gh_units_parse_duration(const char *s, uint64_t *ms)
{
    if (s != NULL && strcmp(s, "0") == 0) {
        *ms = 0;
        return GH_OK;
    }
    return parse_with_units(s, duration_units, ms);
}

int gh_units_parse_size(const char *s, uint64_t *bytes)
{
    return parse_with_units(s, size_units, bytes);
}

struct timeval gh_units_timeval(uint64_t ms)
{
    struct timeval tv = {
        .tv_sec = (time_t)(ms / 1000),
        .tv_usec = (suseconds_t)((ms % 1000) * 1000),
    };
    return tv;
}
