/* range.c: the Range request header (RFC 9110 §14.1.2, §14.2) for the
 * static-file handler.
 *
 * We answer a single byte range with 206 and never build
 * multipart/byteranges: a set of several ranges is ignored (200 with the
 * whole file) unless none of its ranges is satisfiable, in which case it is
 * a 416 like a single unsatisfiable range. Anything we cannot read exactly
 * is ignored rather than refused, since a 200 is always a correct answer to
 * a Range request. Grammar as written in the RFC: "bytes" (any case), '=',
 * then range-specs with optional whitespace only around commas; empty list
 * elements are skipped (§5.6.1.2). A number has at most 19 digits, so it
 * always fits in 64 bits. */
#include "range.h"
#include "err.h"

#include <stdbool.h>

#define RANGE_DIGITS_MAX 19      /* 10^19 - 1 < 2^64 */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads 1..19 digits at *pp. Returns false when there are none or more. */
static bool parse_num(const char **pp, const char *end, uint64_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;
    size_t n = 0;

    while (p < end && is_digit(*p)) {
        if (++n > RANGE_DIGITS_MAX)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
        p++;
    }
    if (n == 0)
        return false;
    *pp = p;
    *out = v;
    return true;
}

/* Parses one non-empty range-spec at *pp against size. Returns false when
 * it is malformed; otherwise *sat tells whether it is satisfiable and, if
 * so, *first..*last is the range clamped to the representation. */
static bool parse_spec(const char **pp, const char *end, uint64_t size,
                       bool *sat, uint64_t *first, uint64_t *last)
{
    const char *p = *pp;
    uint64_t a, b;

    if (*p == '-') {
        /* suffix-range: the last a bytes; "-0" asks for nothing */
        p++;
        if (!parse_num(&p, end, &a))
            return false;
        *sat = size > 0 && a > 0;
        if (*sat) {
            *first = a >= size ? 0 : size - a;
            *last = size - 1;
        }
        *pp = p;
        return true;
    }
    if (!parse_num(&p, end, &a) || p == end || *p != '-')
        return false;
    p++;
    b = UINT64_MAX;                     /* "a-": to the end */
    if (p < end && is_digit(*p)) {
        if (!parse_num(&p, end, &b))
            return false;
        if (b < a)                      /* §14.1.1: invalid range-spec */
            return false;
    }
    *sat = a < size;
    if (*sat) {
        *first = a;
        *last = b < size - 1 ? b : size - 1;
    }
    *pp = p;
    return true;
}

int gh_range_parse(const char *value, size_t len, uint64_t size,
                   uint64_t *first, uint64_t *last)
{
    static const char unit[] = "bytes";
    const char *p = value, *end, *q;
    size_t nspecs = 0, nsat = 0;
    uint64_t f = 0, l = 0;

    if (value == NULL)
        return GH_ENOENT;
    end = value + len;
    /* the field value's own leading and trailing OWS (§5.5) */
    while (p < end && is_ows(*p))
        p++;
    while (end > p && is_ows(end[-1]))
        end--;
    if ((size_t)(end - p) < sizeof(unit))
        return GH_ENOENT;
    for (size_t i = 0; i < sizeof(unit) - 1; i++)
        if ((p[i] | 0x20) != unit[i])
            return GH_ENOENT;
    p += sizeof(unit) - 1;
    if (*p++ != '=')
        return GH_ENOENT;

    /* [ element ] *( OWS "," OWS [ element ] ) */
    for (;;) {
        q = p;
        while (q < end && is_ows(*q))
            q++;
        if (q == end || *q == ',') {
            p = q;                      /* empty element */
        } else {
            bool sat = false;
            uint64_t sf = 0, sl = 0;

            if (!parse_spec(&p, end, size, &sat, &sf, &sl))
                return GH_ENOENT;
            nspecs++;
            if (sat) {
                nsat++;
                f = sf;
                l = sl;
            }
            while (p < end && is_ows(*p))
                p++;
        }
        if (p == end)
            break;
        if (*p != ',')
            return GH_ENOENT;
        p++;
        while (p < end && is_ows(*p))
            p++;
    }

    if (nspecs == 0)
        return GH_ENOENT;
    if (nsat == 0)
        return GH_ERANGE;
    if (nspecs > 1)
        return GH_ENOENT;
    *first = f;
    *last = l;
    return GH_OK;
}
