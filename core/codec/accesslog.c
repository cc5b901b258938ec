/* accesslog.c: one access-log line in Combined Log Format.
 *
 * The request line, referer and user agent come straight from the client,
 * so every byte that could end a quoted field or the line ('"', '\\',
 * controls, DEL, non-ASCII) is written as \xHH: one request is always
 * exactly one line with the usual fields, whatever the client sent. The
 * unquoted client field also escapes spaces. The time is UTC, +0000.
 *
 * This runs once per request, so it writes with memcpy over runs of plain
 * bytes and formats numbers by hand, not with snprintf. When the line does
 * not fit, the fields are cut rather than the line: the short ones (client,
 * method, protocol) keep up to 64 bytes, the target, referer and agent share
 * the rest, longest cut first. So the line keeps its shape: all quotes, the
 * status and the byte count survive, and an escape is never split. Only if
 * even the fixed parts do not fit is the line cut at the end. The newline
 * is always written. It does no I/O and keeps no state between calls. */
#include "accesslog.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59Z: the fixed-width date */
#define LOG_TIME_MAX (253402300799LL)
#define DATE_LEN     26          /* "10/Oct/2000:13:55:36 +0000" */
#define SHORT_FIELD_MAX 64       /* see cut_fields() */

enum { F_CLIENT, F_METHOD, F_TARGET, F_PROTOCOL, F_REFERER, F_AGENT, F_COUNT };

typedef struct field {
    const char *s;               /* NULL: the field is a fixed "-" or absent */
    size_t n;
    size_t esc;                  /* escaped length, capped at budget + 1 */
    size_t limit;                /* most bytes to write */
} field;

typedef struct writer {
    char *p;
    char *end;                   /* content stops here; "\n\0" goes after */
} writer;

static const char month_short[12][4] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static const char hex_digits[] = "0123456789abcdef";

/* Which bytes become \\xHH: bit 0 in quoted fields ('"', '\\', controls,
 * DEL, non-ASCII), bit 1 in the unquoted client field (the same and ' ').
 * A table because this is the inner loop of every log line. */
#define ESC_QUOTED 1
#define ESC_BARE   2
static const unsigned char escape_class[256] = {
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,   /* 0x00 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,   /* 0x10 */
    2, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0x20 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0x30 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0x40 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0,   /* 0x50 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0x60 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3,   /* 0x70 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,   /* 0x80 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,   /* 0x90 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,   /* 0xa0 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,   /* 0xb0 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,   /* 0xc0 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,   /* 0xd0 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,   /* 0xe0 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,   /* 0xf0 */
};

static bool needs_escape(unsigned char c, unsigned mask)
{
    return (escape_class[c] & mask) != 0;
}

static void put(writer *w, const char *s, size_t n)
{
    size_t room = (size_t)(w->end - w->p);

    if (n > room)
        n = room;
    memcpy(w->p, s, n);
    w->p += n;
}

static void put_escaped(writer *w, const field *f, unsigned mask)
{
    const unsigned char *u = (const unsigned char *)f->s, *e = u + f->n;
    size_t room = (size_t)(w->end - w->p);
    char *p = w->p;

    if (room > f->limit)
        room = f->limit;
    while (u < e) {
        const unsigned char *run = u;
        size_t k;

        while (u < e && !needs_escape(*u, mask))
            u++;
        k = (size_t)(u - run);
        if (k > room)
            k = room;
        memcpy(p, run, k);
        p += k;
        room -= k;
        if (u == e || room < 4)
            break;
        p[0] = '\\';
        p[1] = 'x';
        p[2] = hex_digits[*u >> 4];
        p[3] = hex_digits[*u & 0xf];
        p += 4;
        room -= 4;
        u++;
    }
    w->p = p;
}

/* Escaped length of f, or stop + 1 once it passes stop. */
static size_t escaped_len(const field *f, unsigned mask, size_t stop)
{
    const unsigned char *u = (const unsigned char *)f->s;
    size_t len = 0;

    for (size_t i = 0; i < f->n; i++) {
        len += needs_escape(u[i], mask) ? 4 : 1;
        if (len > stop)
            return stop + 1;
    }
    return len;
}

/* Decimal digits of v into buf (at least 20 bytes), returns the length. */
static size_t fmt_u64(char *buf, unsigned long long v)
{
    char tmp[20];
    size_t n = 0, i = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        buf[i++] = tmp[--n];
    return i;
}

static size_t fmt_int(char *buf, int v)
{
    unsigned long long m;

    if (v >= 0)
        return fmt_u64(buf, (unsigned long long)v);
    m = (unsigned long long)(-(long long)v);
    buf[0] = '-';
    return 1 + fmt_u64(buf + 1, m);
}

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

/* "10/Oct/2000:13:55:36 +0000" into buf (DATE_LEN bytes) */
static void fmt_date(char *buf, time_t when)
{
    int64_t v = (int64_t)when;
    struct tm tm;
    time_t t;

    if (v < 0)
        v = 0;
    if (v > LOG_TIME_MAX)
        v = LOG_TIME_MAX;
    t = (time_t)v;
    if (gmtime_r(&t, &tm) == NULL) {
        memcpy(buf, "01/Jan/1970:00:00:00 +0000", DATE_LEN);
        return;
    }
    put2(buf, tm.tm_mday);
    buf[2] = '/';
    memcpy(buf + 3, month_short[tm.tm_mon], 3);
    buf[6] = '/';
    put2(buf + 7, (tm.tm_year + 1900) / 100);
    put2(buf + 9, (tm.tm_year + 1900) % 100);
    buf[11] = ':';
    put2(buf + 12, tm.tm_hour);
    buf[14] = ':';
    put2(buf + 15, tm.tm_min);
    buf[17] = ':';
    put2(buf + 18, tm.tm_sec);
    memcpy(buf + 20, " +0000", 6);
}

/* Water-filling over the fields in which[]: each gets its whole length if
 * that fits in an equal share of what the shorter ones left; the longer ones
 * share the rest. Returns what is left over. */
static size_t share_budget(field *f, const int *which, size_t nwhich, size_t budget)
{
    int idx[F_COUNT];
    size_t nf = 0;

    for (size_t k = 0; k < nwhich; k++) {
        int i = which[k];
        size_t j;

        if (f[i].s == NULL)
            continue;
        j = nf++;
        while (j > 0 && f[idx[j - 1]].esc > f[i].esc) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    for (size_t k = 0; k < nf; k++) {
        field *x = &f[idx[k]];
        size_t share = budget / (nf - k);

        if (x->esc > share) {
            for (size_t j = k; j < nf; j++)
                f[idx[j]].limit = share;
            return budget - share * (nf - k);
        }
        x->limit = x->esc;
        budget -= x->esc;
    }
    return budget;
}

/* The line does not fit in budget bytes of escaped fields. The client,
 * method and protocol are short in any sane request: they keep up to
 * SHORT_FIELD_MAX bytes each first. The target, referer and agent share
 * what is left; anything they leave goes back to the short fields. */
static void cut_fields(field *f, size_t budget)
{
    static const int shorts[] = { F_CLIENT, F_METHOD, F_PROTOCOL };
    static const int longs[] = { F_TARGET, F_REFERER, F_AGENT };
    size_t take;

    for (size_t k = 0; k < 3; k++) {
        field *x = &f[shorts[k]];

        take = x->esc < SHORT_FIELD_MAX ? x->esc : SHORT_FIELD_MAX;
        if (take > budget)
            take = budget;
        x->limit = take;
        budget -= take;
    }
    budget = share_budget(f, longs, 3, budget);
    for (size_t k = 0; k < 3; k++) {
        field *x = &f[shorts[k]];

        take = x->esc - x->limit;
        if (take > budget)
            take = budget;
        x->limit += take;
        budget -= take;
    }
}

size_t gh_accesslog_format(const gh_access_entry *e, char *out, size_t cap)
{
    field f[F_COUNT];
    char date[DATE_LEN], status[21], bytes[21];
    size_t status_len, bytes_len, fixed, budget, upper = 0;
    bool fits = true;
    writer w;

    if (out == NULL || cap == 0)
        return 0;
    if (e == NULL || cap < 2) {
        out[0] = '\0';
        return 0;
    }
    memset(f, 0, sizeof(f));
    f[F_CLIENT].s = e->client;
    f[F_CLIENT].n = e->client != NULL ? strlen(e->client) : 0;
    if (e->method != NULL) {
        f[F_METHOD].s = e->method;
        f[F_METHOD].n = e->method_len;
        f[F_TARGET].s = e->target;
        f[F_TARGET].n = e->target != NULL ? e->target_len : 0;
        f[F_PROTOCOL].s = e->protocol;
        f[F_PROTOCOL].n = e->protocol != NULL ? strlen(e->protocol) : 0;
    }
    f[F_REFERER].s = e->referer;
    f[F_REFERER].n = e->referer != NULL ? e->referer_len : 0;
    f[F_AGENT].s = e->agent;
    f[F_AGENT].n = e->agent != NULL ? e->agent_len : 0;

    fmt_date(date, e->when);
    status_len = fmt_int(status, e->status);
    if (e->bytes == 0) {
        bytes[0] = '-';
        bytes_len = 1;
    } else {
        bytes_len = fmt_u64(bytes, e->bytes);
    }

    /* everything but the escaped fields; a NULL field is a "-" */
    fixed = 6 + DATE_LEN + 3 + 2 + status_len + 1 + bytes_len + 2 + 3 + 1;
    fixed += (f[F_CLIENT].s == NULL) + (f[F_REFERER].s == NULL) + (f[F_AGENT].s == NULL);
    if (e->method == NULL)
        fixed += 1;
    else
        fixed += 1 + (f[F_TARGET].s == NULL) + (f[F_PROTOCOL].s != NULL);
    budget = cap - 2 > fixed ? cap - 2 - fixed : 0;

    /* fast path: even if every byte were escaped, it would fit */
    for (size_t i = 0; i < F_COUNT && fits; i++) {
        f[i].limit = SIZE_MAX;
        if (f[i].s == NULL)
            continue;
        if (f[i].n > budget / 4 || (upper += 4 * f[i].n) > budget)
            fits = false;
    }
    if (!fits) {
        size_t total = 0;

        for (size_t i = 0; i < F_COUNT; i++) {
            f[i].limit = SIZE_MAX;
            if (f[i].s != NULL) {
                f[i].esc = escaped_len(&f[i], i == F_CLIENT ? ESC_BARE : ESC_QUOTED, budget);
                total += f[i].esc;      /* each <= budget + 1: no overflow */
            }
        }
        if (total > budget)
            cut_fields(f, budget);
    }

    w.p = out;
    w.end = out + cap - 2;
    if (f[F_CLIENT].s != NULL)
        put_escaped(&w, &f[F_CLIENT], ESC_BARE);
    else
        put(&w, "-", 1);
    put(&w, " - - [", 6);
    put(&w, date, DATE_LEN);
    put(&w, "] \"", 3);
    if (e->method == NULL) {
        put(&w, "-", 1);
    } else {
        put_escaped(&w, &f[F_METHOD], ESC_QUOTED);
        put(&w, " ", 1);
        if (f[F_TARGET].s != NULL)
            put_escaped(&w, &f[F_TARGET], ESC_QUOTED);
        else
            put(&w, "-", 1);
        if (f[F_PROTOCOL].s != NULL) {
            put(&w, " ", 1);
            put_escaped(&w, &f[F_PROTOCOL], ESC_QUOTED);
        }
    }
    put(&w, "\" ", 2);
    put(&w, status, status_len);
    put(&w, " ", 1);
    put(&w, bytes, bytes_len);
    put(&w, " \"", 2);
    if (f[F_REFERER].s != NULL)
        put_escaped(&w, &f[F_REFERER], ESC_QUOTED);
    else
        put(&w, "-", 1);
    put(&w, "\" \"", 3);
    if (f[F_AGENT].s != NULL)
        put_escaped(&w, &f[F_AGENT], ESC_QUOTED);
    else
        put(&w, "-", 1);
    put(&w, "\"", 1);
    *w.p++ = '\n';
    *w.p = '\0';
    return (size_t)(w.p - out);
}
