/* json.c: the JSON writer (json.h).
 *
 * Why this shape: the daemon writes JSON of its own state and nothing
 * else, so a writer that cannot produce a malformed document is all it
 * needs: commas, colons and nesting are the writer's business, the caller
 * only says what comes next. Names from outside (topics, plugin versions)
 * go through gh_json_escape(), which turns anything that is not UTF-8
 * into U+FFFD instead of failing: a status page must show a room whose
 * name a client sent as Latin-1, not refuse to render. It deliberately
 * does not parse, pretty-print or write floats in exponent form. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* Bytes of the valid, complete UTF-8 sequence at s[0..n) (n >= 1), or 0
 * when s[0] does not start one (RFC 3629 §4). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];

    if (c < 0x80)
        return 1;
    if (c < 0xC2)               /* a continuation byte, or overlong C0/C1 */
        return 0;
    if (c < 0xE0)
        return n >= 2 && is_cont(s[1]) ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || !is_cont(s[1]) || !is_cont(s[2]))
            return 0;
        if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F))
            return 0;           /* overlong; a surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || !is_cont(s[1]) || !is_cont(s[2]) || !is_cont(s[3]))
            return 0;
        if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))
            return 0;           /* overlong; past U+10FFFF */
        return 4;
    }
    return 0;
}

static void emit(char *out, size_t cap, size_t *o, const void *p, size_t k)
{
    if (*o < cap)
        memcpy(out + *o, p, k <= cap - *o ? k : cap - *o);
    *o += k;
}

size_t gh_json_escape(char *out, size_t cap, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;

    while (i < n) {
        unsigned char c = p[i];
        size_t k;
        char e[6];

        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7F) {
            if ((k = utf8_len(p + i, n - i)) == 0) {
                emit(out, cap, &o, "\\ufffd", 6);
                i++;
                continue;
            }
            emit(out, cap, &o, p + i, k);
            i += k;
            continue;
        }
        e[0] = '\\';
        switch (c) {
        case '"': e[1] = '"'; k = 2; break;
        case '\\': e[1] = '\\'; k = 2; break;
        case '\b': e[1] = 'b'; k = 2; break;
        case '\f': e[1] = 'f'; k = 2; break;
        case '\n': e[1] = 'n'; k = 2; break;
        case '\r': e[1] = 'r'; k = 2; break;
        case '\t': e[1] = 't'; k = 2; break;
        default:
            e[1] = 'u';
            e[2] = '0';
            e[3] = '0';
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            k = 6;
            break;
        }
        emit(out, cap, &o, e, k);
        i++;
    }
    return o;
}

/* ---- the document ------------------------------------------------------ */

static bool reserve(gh_json *j, size_t more)
{
    size_t ncap;
    char *nb;

    if (j->failed)
        return false;
    if (more <= j->cap - j->len)
        return true;
    if (more > SIZE_MAX / 2 - j->len) {
        j->failed = true;
        return false;
    }
    ncap = j->cap > 0 ? j->cap : 256;
    while (ncap - j->len < more)
        ncap *= 2;
    if ((nb = realloc(j->buf, ncap)) == NULL) {
        j->failed = true;
        return false;
    }
    j->buf = nb;
    j->cap = ncap;
    return true;
}

static void raw(gh_json *j, const char *p, size_t k)
{
    if (reserve(j, k)) {
        memcpy(j->buf + j->len, p, k);
        j->len += k;
    }
}

static void quoted(gh_json *j, const char *s, size_t n)
{
    size_t need = gh_json_escape(NULL, 0, s, n);

    if (!reserve(j, need + 2))
        return;
    j->buf[j->len++] = '"';
    j->len += gh_json_escape(j->buf + j->len, need, s, n);
    j->buf[j->len++] = '"';
}

/* Everything that goes before a value: the comma, and the key inside an
 * object. False (failed set) when a value cannot go here. */
static bool before_value(gh_json *j, const char *key)
{
    uint64_t bit;

    if (j->failed)
        return false;
    if (j->depth == 0) {
        if (key != NULL || j->top_done) {
            j->failed = true;
            return false;
        }
        return true;
    }
    bit = (uint64_t)1 << (j->depth - 1);
    if ((key == NULL) != ((j->in_array & bit) != 0)) {
        j->failed = true;       /* a key in an array, or none in an object */
        return false;
    }
    if (j->has_item & bit)
        raw(j, ",", 1);
    j->has_item |= bit;
    if (key != NULL) {
        quoted(j, key, strlen(key));
        raw(j, ":", 1);
    }
    return !j->failed;
}

/* After a scalar, or a container's end: the top-level value is whole. */
static void after_value(gh_json *j)
{
    if (j->depth == 0)
        j->top_done = true;
}

static void begin(gh_json *j, const char *key, bool array)
{
    uint64_t bit;

    if (!before_value(j, key))
        return;
    if (j->depth == GH_JSON_MAX_DEPTH) {
        j->failed = true;
        return;
    }
    bit = (uint64_t)1 << j->depth;
    j->depth++;
    j->has_item &= ~bit;
    if (array)
        j->in_array |= bit;
    else
        j->in_array &= ~bit;
    raw(j, array ? "[" : "{", 1);
}

static void end(gh_json *j, bool array)
{
    uint64_t bit;

    if (j->failed)
        return;
    if (j->depth == 0) {
        j->failed = true;
        return;
    }
    bit = (uint64_t)1 << (j->depth - 1);
    if (((j->in_array & bit) != 0) != array) {
        j->failed = true;
        return;
    }
    j->depth--;
    raw(j, array ? "]" : "}", 1);
    after_value(j);
}

void gh_json_begin_object(gh_json *j, const char *key)
{
    begin(j, key, false);
}

void gh_json_end_object(gh_json *j)
{
    end(j, false);
}

void gh_json_begin_array(gh_json *j, const char *key)
{
    begin(j, key, true);
}

void gh_json_end_array(gh_json *j)
{
    end(j, true);
}

void gh_json_string_n(gh_json *j, const char *key, const char *s, size_t n)
{
    if (!before_value(j, key))
        return;
    quoted(j, s, n);
    after_value(j);
}

void gh_json_string(gh_json *j, const char *key, const char *s)
{
    if (s == NULL) {
        gh_json_null(j, key);
        return;
    }
    gh_json_string_n(j, key, s, strlen(s));
}

void gh_json_u64(gh_json *j, const char *key, uint64_t v)
{
    char b[24];
    int k = snprintf(b, sizeof(b), "%llu", (unsigned long long)v);

    if (!before_value(j, key))
        return;
    raw(j, b, (size_t)k);
    after_value(j);
}

void gh_json_fixed(gh_json *j, const char *key, double v, int digits)
{
    char b[352];            /* DBL_MAX in %f is 309 digits, then 9 decimals */
    int k;

    if (!isfinite(v)) {
        gh_json_null(j, key);
        return;
    }
    if (digits < 0)
        digits = 0;
    if (digits > 9)
        digits = 9;
    k = snprintf(b, sizeof(b), "%.*f", digits, v);
    if (k < 0 || (size_t)k >= sizeof(b)) {
        j->failed = true;
        return;
    }
    if (!before_value(j, key))
        return;
    /* "-0.000" is fine JSON; a locale's decimal comma would not be, but the
     * daemon never calls setlocale() */
    raw(j, b, (size_t)k);
    after_value(j);
}

void gh_json_bool(gh_json *j, const char *key, bool v)
{
    if (!before_value(j, key))
        return;
    raw(j, v ? "true" : "false", v ? 4 : 5);
    after_value(j);
}

void gh_json_null(gh_json *j, const char *key)
{
    if (!before_value(j, key))
        return;
    raw(j, "null", 4);
    after_value(j);
}

bool gh_json_done(const gh_json *j)
{
    return !j->failed && j->depth == 0 && j->top_done;
}
