/* uri.c: turns a request path into the one path a file lookup may use.
 *
 * Percent-decoding comes first, so every spelling of "..", "/" and "."
 * ("%2e%2E", "%2f") means what the file system would make of it: a decoded
 * "%2f" is a separator like '/', and "/a/..%2fb" is "/b". Empty segments
 * collapse before dot segments are resolved, the way the kernel reads
 * "a//.." (as "a/..", i.e. nothing), not the way RFC 3986 §5.2.4 would
 * (as "a/"). A ".." that would climb above "/" is an error, not clamped:
 * nobody asks for that by accident.
 *
 * The walk goes right to left: a ".." then only needs a counter of
 * segments to skip, so the result can be measured in one pass and written
 * straight into place in a second, with no stack and no scratch buffer,
 * and GH_E2BIG depends only on the length of the result. It does not
 * touch the file system (symlinks are the caller's business), split off a
 * query, or judge bytes >= 0x80 (UTF-8 file names are fine). */
#include "uri.h"
#include "err.h"

#include <limits.h>
#include <stdbool.h>

static inline int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static inline bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Every '%' starts a valid escape, and no byte, raw or decoded, is NUL or
 * another control character. After this, escapes can be found from either
 * end: the two bytes after a '%' are hex digits, never another '%'. */
static int validate(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '%') {
            int hi, lo;

            if (len - i < 3 || (hi = hexval((unsigned char)s[i + 1])) < 0 ||
                (lo = hexval((unsigned char)s[i + 2])) < 0)
                return GH_EPROTO;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (is_ctl(c))
            return GH_EPROTO;
    }
    return 0;
}

/* The decoded byte that ends at s[*i - 1]; moves *i to where it starts. */
static inline unsigned char prev_byte(const char *s, size_t *i)
{
    size_t k = *i;

    if (k >= 3 && s[k - 3] == '%') {
        *i = k - 3;
        return (unsigned char)(hexval((unsigned char)s[k - 2]) << 4 |
                               hexval((unsigned char)s[k - 1]));
    }
    *i = k - 1;
    return (unsigned char)s[k - 1];
}

/* Walks the segments of a validated path right to left. Returns the length
 * of the normalised path, or GH_EPROTO when a ".." climbs above the root.
 * With out != NULL, also writes the result into out[0..total), where total
 * is what an earlier call without out returned. */
static long walk(const char *s, size_t len, char *out, size_t total)
{
    size_t i = len, skip = 0, n = 0, w = total;
    bool rightmost = true, trailing = false, any = false;

    /* s[0] is a raw '/', so every segment has a separator on its left and
     * the inner loop always stops. */
    while (i > 0) {
        size_t seg_end = i, j = i, dlen = 0;
        bool dots = true, dot, dotdot;

        for (;;) {
            size_t k = j;
            unsigned char c = prev_byte(s, &k);

            if (c == '/') {
                i = k;          /* the separator is consumed with it */
                break;
            }
            dlen++;
            dots = dots && c == '.';
            j = k;
        }
        dot = dlen == 0 || (dots && dlen == 1);
        dotdot = dots && dlen == 2;
        /* "/a/", "/a/." and "/a/b/.." all name a directory: keep the '/' */
        if (rightmost)
            trailing = dot || dotdot;
        rightmost = false;
        if (dotdot) {
            skip++;
        } else if (dot) {
            /* "" and "." vanish */
        } else if (skip > 0) {
            skip--;
        } else {
            if (out != NULL) {
                if (!any && trailing)
                    out[--w] = '/';
                for (size_t k = seg_end; k > j;)
                    out[--w] = (char)prev_byte(s, &k);
                out[--w] = '/';
            }
            n += dlen + 1;
            any = true;
        }
    }
    if (skip > 0)
        return GH_EPROTO;
    if (!any) {
        if (out != NULL)
            out[0] = '/';
        return 1;
    }
    return (long)(n + (trailing ? 1 : 0));
}

long gh_uri_normalize_path(const char *path, size_t len, char *out, size_t cap)
{
    long total;
    int rc;

    if (len == 0 || path[0] != '/')
        return GH_EPROTO;
    if (len >= (size_t)LONG_MAX)
        return GH_E2BIG;
    if ((rc = validate(path, len)) != 0)
        return rc;
    if ((total = walk(path, len, NULL, 0)) < 0)
        return total;
    if ((size_t)total >= cap)   /* room for the NUL too */
        return GH_E2BIG;
    walk(path, len, out, (size_t)total);
    out[total] = '\0';
    return total;
}
