/* chatcore.c: the chat plugin's pure parts: validation, the query reader,
 * nick uniqueness and the token bucket.
 *
 * Kept apart from chat.c so that every rule a client can hit (what a room
 * or nick may be, which suffix a colliding nick gets, when a message is
 * over the rate) is tested byte by byte without a daemon. Nothing here
 * does I/O, parses JSON or calls the host; only nick uniqueness allocates
 * (a scratch bitmap, freed before it returns).
 *
 * It deliberately does no Unicode normalisation or case folding beyond
 * ASCII: that would need tables this plugin should not carry, and the
 * rules stay predictable for clients. */
#include "chatcore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- validation ------------------------------------------------------- */

bool gh_chat_room_is_valid(const char *s, size_t len)
{
    if (len == 0 || len > GH_CHAT_ROOM_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* Decodes one code point of strict UTF-8 (RFC 3629) at s[0..len), len > 0.
 * Returns its length in bytes (1..4) and sets *cp, or 0 when the bytes are
 * not UTF-8 (overlong, surrogate, above U+10FFFF, truncated). */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t v, min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        v = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        v = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;               /* continuation byte, 0xc0, 0xc1, 0xf5.. */
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* The printable rule of gh_chat_nick_check(), for one code point. */
static bool is_printable(uint32_t cp)
{
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
        return false;                           /* C0, DEL, C1 */
    switch (cp) {
    case 0x061c:                                /* ARABIC LETTER MARK */
    case 0x200e: case 0x200f:                   /* LRM, RLM */
    case 0xfeff:                                /* BOM / ZWNBSP */
    case 0xfffe: case 0xffff:                   /* noncharacters */
        return false;
    default:
        break;
    }
    if (cp >= 0x2028 && cp <= 0x202e)           /* LS, PS, LRE..RLO */
        return false;
    if (cp >= 0x2066 && cp <= 0x2069)           /* LRI..PDI */
        return false;
    if (cp >= 0xfff9 && cp <= 0xfffb)           /* interlinear annotation */
        return false;
    return true;
}

static bool is_ascii_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int gh_chat_nick_check(const char *in, size_t len, const char **nick, size_t *nick_len)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t b = 0, e = len, chars = 0;

    while (b < e && is_ascii_space(s[b]))
        b++;
    while (e > b && is_ascii_space(s[e - 1]))
        e--;
    if (b == e)
        return -EINVAL;
    for (size_t i = b; i < e;) {
        uint32_t cp;
        size_t n = utf8_decode(s + i, e - i, &cp);
        if (n == 0 || !is_printable(cp))
            return -EINVAL;
        i += n;
        chars++;
    }
    if (chars > GH_CHAT_NICK_MAX_CHARS)
        return -E2BIG;
    *nick = in + b;
    *nick_len = e - b;
    return 0;
}

size_t gh_chat_utf8_chars(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

/* ---- the query string --------------------------------------------------- */

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int gh_chat_query_get(const char *query, size_t qlen, const char *key,
                      char *out, size_t cap, size_t *out_len)
{
    size_t klen = strlen(key), pos = 0;

    while (pos < qlen) {
        const char *pair = query + pos;
        const char *amp = memchr(pair, '&', qlen - pos);
        size_t plen = amp != NULL ? (size_t)(amp - pair) : qlen - pos;
        const char *eq = memchr(pair, '=', plen);
        size_t nlen = eq != NULL ? (size_t)(eq - pair) : plen;

        pos += plen + (amp != NULL ? 1 : 0);
        if (nlen != klen || memcmp(pair, key, klen) != 0)
            continue;
        const unsigned char *v = (const unsigned char *)(eq != NULL ? eq + 1 : pair + plen);
        size_t vlen = eq != NULL ? plen - nlen - 1 : 0, n = 0;
        for (size_t i = 0; i < vlen; i++) {
            unsigned char c = v[i];
            if (c == '%') {
                int hi, lo;
                if (vlen - i < 3 || (hi = hexval(v[i + 1])) < 0 || (lo = hexval(v[i + 2])) < 0)
                    return -EPROTO;
                c = (unsigned char)(hi << 4 | lo);
                i += 2;
            } else if (c == '+') {
                c = ' ';
            }
            if (n == cap)
                return -E2BIG;
            out[n++] = (char)c;
        }
        *out_len = n;
        return 0;
    }
    return -ENOENT;
}

/* ---- nick uniqueness ------------------------------------------------------ */

static unsigned char fold(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

static bool nick_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (fold((unsigned char)a[i]) != fold((unsigned char)b[i]))
            return false;
    return true;
}

/* The length of the longest prefix of s[0..len) that holds at most chars
 * code points. */
static size_t cut_chars(const char *s, size_t len, size_t chars)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            if (n == chars)
                return i;
            n++;
        }
    }
    return len;
}

static size_t ndigits(size_t v)
{
    size_t d = 1;

    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/* Candidate k of a taken nick: nick cut to leave room for k's digits,
 * then k ("ann" 2 -> "ann2"). */
static size_t candidate(const char *nick, size_t len, size_t k, char *out)
{
    char num[24];
    size_t dlen = 0, base;

    for (size_t v = k; v > 0; v /= 10)
        num[dlen++] = (char)('0' + v % 10);
    base = cut_chars(nick, len, GH_CHAT_NICK_MAX_CHARS - dlen);
    memcpy(out, nick, base);
    for (size_t i = 0; i < dlen; i++)
        out[base + i] = num[dlen - 1 - i];
    out[base + dlen] = '\0';
    return base + dlen;
}

int gh_chat_nick_unique(const char *nick, size_t len, gh_chat_nick_at at, const void *list,
                        size_t count, size_t skip, char *out, size_t *out_len)
{
    size_t base[GH_CHAT_NICK_MAX_CHARS];   /* base[d - 1]: nick's prefix left for d digits */
    size_t limit, dmax;
    unsigned char *marks = NULL;
    bool free_as_is = true;
    int rc = -ERANGE;

    if (len == 0 || len > GH_CHAT_NICK_MAX_BYTES)
        return -EINVAL;
    for (size_t i = 0; i < count && free_as_is; i++) {
        const char *m;
        size_t mlen;

        if (i == skip)
            continue;
        at(list, i, &m, &mlen);
        free_as_is = !nick_eq(m, mlen, nick, len);
    }
    if (free_as_is) {
        memcpy(out, nick, len);
        out[len] = '\0';
        *out_len = len;
        return 0;
    }
    /* Candidate k is marked when an entry equals it. An entry equals at
     * most one candidate of each digit count d (its last d bytes would be
     * k), but candidates of different digit counts can be the same string
     * once the base is cut ("x..x1" + "2" and "x..x" + "12"), so one entry
     * can mark up to dmax candidates: with count * dmax < limit - 1
     * candidates in 2..limit, one of them is free. dmax, the digit count
     * of 2 + 20 * count, bounds limit's own digit count (dmax <= 20). */
    if (count > SIZE_MAX / 256)
        return -ENOMEM;
    dmax = ndigits(2 + 20 * count);
    limit = 2 + count * dmax;
    if ((marks = calloc(limit / 8 + 1, 1)) == NULL)
        return -ENOMEM;
    for (size_t d = 1; d <= dmax; d++)
        base[d - 1] = cut_chars(nick, len, GH_CHAT_NICK_MAX_CHARS - d);
    for (size_t i = 0; i < count; i++) {
        const char *m;
        size_t mlen;

        if (i == skip)
            continue;
        at(list, i, &m, &mlen);
        for (size_t d = 1; d <= dmax && d < mlen; d++) {
            const char *digits = m + mlen - d;
            size_t k = 0;
            bool num = digits[0] != '0';

            /* k stays <= limit * 10 + 9: no overflow (count is bounded) */
            for (size_t j = 0; j < d && num && k <= limit; j++) {
                num = digits[j] >= '0' && digits[j] <= '9';
                k = k * 10 + (size_t)(digits[j] - '0');
            }
            if (num && k >= 2 && k <= limit && nick_eq(m, mlen - d, nick, base[d - 1]))
                marks[k / 8] |= (unsigned char)(1u << (k % 8));
        }
    }
    for (size_t k = 2; k <= limit; k++) {
        if ((marks[k / 8] & (1u << (k % 8))) == 0) {
            *out_len = candidate(nick, len, k, out);
            rc = 0;
            break;
        }
    }
    free(marks);
    return rc;
}

/* ---- the rate limiter --------------------------------------------------- */

void gh_chat_bucket_init(gh_chat_bucket *b, uint32_t rate, uint32_t burst, uint64_t now_ms)
{
    b->rate = rate;
    b->burst = burst == 0 ? 1 : burst;
    b->milli = (uint64_t)b->burst * 1000;
    b->last_ms = now_ms;
}

bool gh_chat_bucket_take(gh_chat_bucket *b, uint64_t now_ms)
{
    uint64_t cap = (uint64_t)b->burst * 1000;

    if (b->rate == 0)
        return true;
    if (now_ms > b->last_ms) {
        uint64_t elapsed = now_ms - b->last_ms;
        /* rate tokens a second = rate thousandths a millisecond; past
         * cap / rate ms the bucket is full whatever it held, and below
         * that the product stays under cap + rate: no overflow */
        if (elapsed >= cap / b->rate + 1) {
            b->milli = cap;
        } else {
            b->milli += elapsed * b->rate;
            if (b->milli > cap)
                b->milli = cap;
        }
    }
    b->last_ms = now_ms;
    if (b->milli < 1000)
        return false;
    b->milli -= 1000;
    return true;
}
