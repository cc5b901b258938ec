/* http1.c: the HTTP/1.x head codec (RFC 9112), requests and responses,
 * and the chunked body decoder.
 *
 * The glue calls gh_http1_parse_head() again on every read with the whole
 * buffered head, so the head parser is one forward pass with no saved state:
 * rescanning a few hundred bytes costs less than keeping a resumable state
 * machine right, and a stateless parser cannot be confused by an earlier
 * call. Character classes come from one 256-entry table, and the two long
 * runs (request-target, field values) are checked eight bytes at a time.
 *
 * It is strict on purpose. Whatever another HTTP implementation could read
 * differently (bare CR or LF, obs-fold, space before a colon, repeated or
 * conflicting framing fields, odd chunk lines) is refused: a gateway that
 * disagrees with its neighbours about where a message ends can be used to
 * smuggle requests past them. It does not allocate, merge repeated fields,
 * keep chunk data, or accept HTTP/0.9 or HTTP/2.
 *
 * Responses (from an upstream, for the reverse proxy) share the version,
 * field-line and field-scanning code with requests, so both directions
 * refuse exactly the same field syntax; only the start line and the
 * framing rules (RFC 9112 §6.3, which differ by status and by the
 * request's method) are their own. */
#include "http1.h"
#include "err.h"

#include <string.h>

/* Character classes, one bit each. */
enum {
    C_TCHAR  = 1,   /* token (RFC 9110 §5.6.2): method, field-name */
    C_TARGET = 2,   /* request-target byte: VCHAR only */
    C_VALUE  = 4,   /* field-value byte: VCHAR, obs-text, SP, HTAB */
};

#define T_ (C_TCHAR | C_TARGET | C_VALUE)
#define V_ (C_TARGET | C_VALUE)
static const unsigned char cls[256] = {
    ['\t'] = C_VALUE,
    [' '] = C_VALUE,
    [0x21] = T_,                /* ! */
    [0x22] = V_,                /* " */
    [0x23 ... 0x27] = T_,       /* # $ % & ' */
    [0x28 ... 0x29] = V_,       /* ( ) */
    [0x2a ... 0x2b] = T_,       /* * + */
    [0x2c] = V_,                /* , */
    [0x2d ... 0x2e] = T_,       /* - . */
    [0x2f] = V_,                /* / */
    [0x30 ... 0x39] = T_,       /* 0-9 */
    [0x3a ... 0x40] = V_,       /* : ; < = > ? @ */
    [0x41 ... 0x5a] = T_,       /* A-Z */
    [0x5b ... 0x5d] = V_,       /* [ \ ] */
    [0x5e ... 0x7a] = T_,       /* ^ _ ` a-z */
    [0x7b] = V_,                /* { */
    [0x7c] = T_,                /* | */
    [0x7d] = V_,                /* } */
    [0x7e] = T_,                /* ~ */
    [0x80 ... 0xff] = C_VALUE,  /* obs-text */
};
#undef T_
#undef V_

/* RFC 9112 §2.2 asks servers to skip "at least one" empty line before the
 * request-line; a few tolerate clients that send a stray CRLF after a body.
 * More than this is not a client, it is a probe. */
#define MAX_LEADING_CRLF 4

/* Chunk and trailer lines longer than this are refused (the chunk-ext is
 * the only part of a size line that can be long). */
#define MAX_CHUNK_LINE 4096
#define MAX_CHUNK_HEX 16
/* Content-Length and chunked totals stay well inside int64_t. */
#define MAX_BODY ((uint64_t)1 << 62)

/* SWAR helpers: "some byte of x is below n" (n <= 128) and "some byte of x
 * is zero". Both are exact as yes/no answers, which is all we ask. */
#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline uint64_t has_less(uint64_t x, unsigned n)
{
    return (x - ONES * n) & ~x & HIGHS;
}

static inline uint64_t has_zero(uint64_t x)
{
    return (x - ONES) & ~x & HIGHS;
}

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t x;

    memcpy(&x, p, sizeof(x));
    return x;
}

/* Returns the first byte in [p, end) that cannot be in a request-target. */
static inline const unsigned char *scan_target(const unsigned char *p,
                                               const unsigned char *end)
{
    while (end - p >= 8) {
        uint64_t x = load64(p);

        if (has_less(x, 0x21) | has_zero(x ^ (ONES * 0x7f)) | (x & HIGHS))
            break;
        p += 8;
    }
    while (p < end && (cls[*p] & C_TARGET))
        p++;
    return p;
}

/* Returns the first byte in [p, end) that cannot be in a field value. */
static inline const unsigned char *scan_value(const unsigned char *p,
                                              const unsigned char *end)
{
    while (end - p >= 8) {
        uint64_t x = load64(p);

        if (has_less(x, 0x20) | has_zero(x ^ (ONES * 0x7f)))
            break;
        p += 8;
    }
    while (p < end && (cls[*p] & C_VALUE))
        p++;
    return p;
}

static inline const unsigned char *scan_token(const unsigned char *p,
                                              const unsigned char *end)
{
    while (p < end && (cls[*p] & C_TCHAR))
        p++;
    return p;
}

static inline unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

static inline bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Matches [p, end) against the start of lit (lowercase), ignoring case.
 * Returns 1 for all of lit, 0 when the input ends first, -1 on a mismatch. */
static int match_prefix(const unsigned char *p, const unsigned char *end,
                        const char *lit, size_t litlen)
{
    for (size_t i = 0; i < litlen; i++) {
        if (p + i == end)
            return 0;
        if (lower(p[i]) != (unsigned char)lit[i])
            return -1;
    }
    return 1;
}

/* A request-target has to be able to become origin-form ('/'), asterisk
 * form ('*') or absolute-form with http or https (RFC 9112 §3.2); the
 * analyser checks the rest. Testing the first bytes here refuses junk such
 * as "GE T" or a TLS hello before the rest of it arrives. Returns 0,
 * GH_EAGAIN or GH_EPROTO. */
static int check_target_start(const unsigned char *p, const unsigned char *end)
{
    int http, https;

    if (*p == '/' || *p == '*')
        return 0;
    http = match_prefix(p, end, "http://", 7);
    https = match_prefix(p, end, "https://", 8);
    if (http > 0 || https > 0)
        return 0;
    return http == 0 || https == 0 ? GH_EAGAIN : GH_EPROTO;
}

/* Expects CRLF at *pp. Returns 0 and advances, GH_EAGAIN when the input
 * stops first, GH_EPROTO for anything else. */
static inline int expect_crlf(const unsigned char **pp, const unsigned char *end)
{
    const unsigned char *p = *pp;

    if (p == end)
        return GH_EAGAIN;
    if (*p != '\r')
        return GH_EPROTO;
    if (end - p < 2)
        return GH_EAGAIN;
    if (p[1] != '\n')
        return GH_EPROTO;
    *pp = p + 2;
    return 0;
}

/* HTTP-version = "HTTP/1." ( "0" / "1" ) at *pp. Returns 0 and advances
 * with *minor set, GH_EAGAIN when the input stops first, GH_EPROTO at the
 * first byte that cannot be part of it. */
static int parse_version(const unsigned char **pp, const unsigned char *end,
                         int *minor)
{
    static const char version[] = "HTTP/1.";
    const unsigned char *p = *pp;

    for (size_t i = 0; i < sizeof(version) - 1; i++, p++) {
        if (p == end)
            return GH_EAGAIN;
        if (*p != (unsigned char)version[i])
            return GH_EPROTO;
    }
    if (p == end)
        return GH_EAGAIN;
    if (*p != '0' && *p != '1')
        return GH_EPROTO;
    *minor = *p++ - '0';
    *pp = p;
    return 0;
}

/* Parses the field lines and the empty line that ends a head, from p (just
 * after the start line) to end, into fields[0..*nfields). Returns the bytes
 * consumed from buf through the empty line, GH_EAGAIN, GH_EPROTO, or
 * GH_E2BIG past GH_HTTP1_MAX_FIELDS fields. */
static long parse_fields(const char *buf, const unsigned char *p,
                         const unsigned char *end, gh_http1_field *fields,
                         size_t *nfields)
{
    int rc;

    /* field-line = field-name ":" OWS field-value OWS CRLF, then CRLF */
    for (;;) {
        const unsigned char *start, *vstart, *vend;
        gh_http1_field *f;

        if (p == end)
            return GH_EAGAIN;
        if (*p == '\r') {
            if ((rc = expect_crlf(&p, end)) != 0)
                return rc;
            return (long)(p - (const unsigned char *)buf);
        }
        if (*nfields == GH_HTTP1_MAX_FIELDS)
            return GH_E2BIG;
        /* A line starting with SP/HTAB (obs-fold), an empty name, a bare
         * LF and whitespace before the colon all stop here: none of them is
         * a tchar followed by ':'. */
        start = p;
        p = scan_token(p, end);
        if (p == end)
            return GH_EAGAIN;
        if (p == start || *p != ':')
            return GH_EPROTO;
        f = &fields[*nfields];
        f->name = (const char *)start;
        f->name_len = (size_t)(p - start);
        p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        vstart = p;
        p = scan_value(p, end);
        vend = p;
        if ((rc = expect_crlf(&p, end)) != 0)
            return rc;
        while (vend > vstart && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        f->value = (const char *)vstart;
        f->value_len = (size_t)(vend - vstart);
        (*nfields)++;
    }
}

/* What an incomplete head means: more to read, or already over max_head
 * (only the first max_head bytes were looked at). */
static long incomplete(size_t len, size_t max_head)
{
    return len >= max_head ? GH_E2BIG : GH_EAGAIN;
}

long gh_http1_parse_head(const char *buf, size_t len, size_t max_head,
                         gh_http1_head *out)
{
    const unsigned char *p, *end, *start;
    size_t lim = len < max_head ? len : max_head;
    long n;
    int rc;

    out->nfields = 0;
    if (lim == 0)
        return incomplete(len, max_head);
    /* Only the first max_head bytes can belong to an acceptable head. */
    p = (const unsigned char *)buf;
    end = p + lim;

    for (int blank = 0; *p == '\r'; blank++) {
        if (blank == MAX_LEADING_CRLF)
            return GH_EPROTO;
        if ((rc = expect_crlf(&p, end)) != 0)
            goto fail;
        if (p == end)
            return incomplete(len, max_head);
    }

    /* request-line = method SP request-target SP HTTP-version CRLF */
    start = p;
    p = scan_token(p, end);
    if (p == end)
        return incomplete(len, max_head);
    if (p == start || *p != ' ')
        return GH_EPROTO;
    out->method = (const char *)start;
    out->method_len = (size_t)(p - start);
    start = ++p;
    if (p == end)
        return incomplete(len, max_head);
    if ((rc = check_target_start(p, end)) != 0)
        goto fail;
    p = scan_target(p, end);
    if (p == end)
        return incomplete(len, max_head);
    if (p == start || *p != ' ')
        return GH_EPROTO;
    out->target = (const char *)start;
    out->target_len = (size_t)(p - start);
    p++;
    if ((rc = parse_version(&p, end, &out->minor)) != 0)
        goto fail;
    if ((rc = expect_crlf(&p, end)) != 0)
        goto fail;
    n = parse_fields(buf, p, end, out->fields, &out->nfields);
    return n == GH_EAGAIN ? incomplete(len, max_head) : n;

fail:
    return rc == GH_EAGAIN ? incomplete(len, max_head) : rc;
}

long gh_http1_parse_response_head(const char *buf, size_t len, size_t max_head,
                                  gh_http1_resp_head *out)
{
    const unsigned char *p, *end, *start;
    size_t lim = len < max_head ? len : max_head;
    long n;
    int rc;

    out->nfields = 0;
    if (lim == 0)
        return incomplete(len, max_head);
    p = (const unsigned char *)buf;
    end = p + lim;

    /* status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
     * (RFC 9112 §4). No empty lines before it: §2.2's leniency is for
     * servers reading requests, and a stray CRLF from an upstream means we
     * disagree with it about where its last body ended. */
    if ((rc = parse_version(&p, end, &out->minor)) != 0)
        goto fail;
    if (p == end)
        return incomplete(len, max_head);
    if (*p != ' ')
        return GH_EPROTO;
    p++;
    out->status = 0;
    for (int i = 0; i < 3; i++, p++) {
        if (p == end)
            return incomplete(len, max_head);
        if (!is_digit(*p) || (i == 0 && *p == '0'))
            return GH_EPROTO;
        out->status = out->status * 10 + (*p - '0');
    }
    if (p == end)
        return incomplete(len, max_head);
    /* The SP before an empty reason is required by the grammar, but many
     * servers send "HTTP/1.1 200\r\n": accept CRLF right after the code.
     * The reason is HTAB / SP / VCHAR / obs-text, like a field value. */
    start = p;
    if (*p == ' ') {
        start = ++p;
        p = scan_value(p, end);
    }
    out->reason = (const char *)start;
    out->reason_len = (size_t)(p - start);
    if ((rc = expect_crlf(&p, end)) != 0)
        goto fail;
    n = parse_fields(buf, p, end, out->fields, &out->nfields);
    return n == GH_EAGAIN ? incomplete(len, max_head) : n;

fail:
    return rc == GH_EAGAIN ? incomplete(len, max_head) : rc;
}

/* ASCII case-insensitive equality; locale plays no part in HTTP. */
static bool ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

const gh_http1_field *gh_http1_find(const gh_http1_head *h, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < h->nfields; i++)
        if (ieq(h->fields[i].name, h->fields[i].name_len, name, n))
            return &h->fields[i];
    return NULL;
}

/* Walks a comma-separated list (RFC 9110 §5.6.1). n commas give n + 1
 * elements, each with OWS trimmed; empty elements are returned too, and
 * callers decide what they mean. */
typedef struct list_iter {
    const char *p, *end;
    bool done;
} list_iter;

static bool list_next(list_iter *it, const char **elem, size_t *elen)
{
    const char *s, *e, *comma;

    if (it->done)
        return false;
    s = it->p;
    comma = s < it->end ? memchr(s, ',', (size_t)(it->end - s)) : NULL;
    if (comma == NULL) {
        e = it->end;
        it->done = true;
    } else {
        e = comma;
        it->p = comma + 1;
    }
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *elem = s;
    *elen = (size_t)(e - s);
    return true;
}

static void list_start(list_iter *it, const char *value, size_t len)
{
    it->p = value;
    it->end = value + len;
    it->done = false;
}

bool gh_http1_list_has(const char *value, size_t len, const char *token)
{
    size_t tlen = strlen(token);
    list_iter it;
    const char *e;
    size_t elen;

    if (len == 0)
        return false;
    list_start(&it, value, len);
    while (list_next(&it, &e, &elen))
        if (ieq(e, elen, token, tlen))
            return true;
    return false;
}

static bool name_is(const gh_http1_field *f, const char *lit, size_t litlen)
{
    return ieq(f->name, f->name_len, lit, litlen);
}

#define NAME_IS(f, lit) name_is((f), (lit), sizeof(lit) - 1)

/* Content-Length = 1*DIGIT (RFC 9110 §8.6). A list of identical values
 * ("5, 5", or the same value in two fields) is one value; anything else,
 * including a sign, hex, an empty element or a value past MAX_BODY, is
 * refused. *cl is -1 before the first Content-Length field. */
static int merge_content_length(const char *v, size_t len, int64_t *cl)
{
    list_iter it;
    const char *e;
    size_t elen;

    list_start(&it, v, len);
    while (list_next(&it, &e, &elen)) {
        uint64_t n = 0;

        if (elen == 0)
            return GH_EPROTO;
        for (size_t i = 0; i < elen; i++) {
            unsigned d = (unsigned char)e[i] - '0';

            if (d > 9 || n > (MAX_BODY - d) / 10)
                return GH_EPROTO;
            n = n * 10 + d;
        }
        if (*cl >= 0 && (uint64_t)*cl != n)
            return GH_EPROTO;
        *cl = (int64_t)n;
    }
    return 0;
}

/* Transfer-Encoding codings are a list across all TE fields, in order.
 * Tracks how many are "chunked" and whether the last non-empty one is. */
static void scan_transfer_encoding(const char *v, size_t len, int *nchunked,
                                   bool *last_chunked)
{
    list_iter it;
    const char *e;
    size_t elen;

    list_start(&it, v, len);
    while (list_next(&it, &e, &elen)) {
        if (elen == 0)
            continue;
        *last_chunked = ieq(e, elen, "chunked", 7);
        if (*last_chunked)
            (*nchunked)++;
    }
}

static inline int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* dec-octet "." dec-octet "." dec-octet "." dec-octet, no leading zeros,
 * covering all of s[0..n). */
static bool valid_ipv4(const char *s, size_t n)
{
    size_t i = 0;

    for (int part = 0; part < 4; part++) {
        size_t start = i;
        unsigned v = 0;

        if (part > 0) {
            if (i == n || s[i] != '.')
                return false;
            start = ++i;
        }
        while (i < n && is_digit((unsigned char)s[i]) && i - start < 3)
            v = v * 10 + (unsigned)(s[i++] - '0');
        if (i == start || v > 255 || (i - start > 1 && s[start] == '0'))
            return false;
    }
    return i == n;
}

/* RFC 3986 IPv6address: eight 16-bit hex groups, one "::" standing for
 * one or more zero groups, an optional trailing dotted quad. No zone id,
 * no IPvFuture. */
static bool valid_ipv6(const char *s, size_t n)
{
    int groups = 0;
    bool elided = false;
    size_t i = 0;

    if (n < 2)
        return false;
    if (s[0] == ':') {
        if (s[1] != ':')
            return false;
        elided = true;
        i = 2;
        if (i == n)
            return true;
    }
    for (;;) {
        size_t start = i;

        while (i < n && i - start < 5 && hexval((unsigned char)s[i]) >= 0)
            i++;
        if (i < n && s[i] == '.') {
            if (!valid_ipv4(s + start, n - start))
                return false;
            groups += 2;
            break;
        }
        if (i == start || i - start > 4)
            return false;
        groups++;
        if (i == n)
            break;
        if (s[i] != ':' || groups >= 8)
            return false;
        if (++i == n)
            return false;
        if (s[i] == ':') {
            if (elided)
                return false;
            elided = true;
            if (++i == n)
                break;
        }
    }
    return elided ? groups < 8 : groups == 8;
}

/* unreserved / sub-delims (RFC 3986 §2): what a reg-name may hold besides
 * pct-encoded octets. */
static bool is_regname_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c))
        return true;
    return c != '\0' && strchr("-._~!$&'()*+,;=", c) != NULL;
}

/* Host = uri-host [ ":" port ] (RFC 9110 §7.2). Stricter than the grammar
 * in two places, both for the sake of routing on the value: the host may
 * not be empty (RFC 9110 §4.2.1 forbids it for http), and a port, when a
 * colon is present, is 1 to 5 digits up to 65535. */
static bool valid_authority(const char *s, size_t n)
{
    size_t i = 0, start;
    unsigned port = 0;

    if (n == 0)
        return false;
    if (s[0] == '[') {
        const char *rb = memchr(s, ']', n);

        if (rb == NULL || !valid_ipv6(s + 1, (size_t)(rb - s - 1)))
            return false;
        i = (size_t)(rb - s) + 1;
    } else {
        while (i < n && s[i] != ':') {
            if (s[i] == '%') {
                if (n - i < 3 || hexval((unsigned char)s[i + 1]) < 0 ||
                    hexval((unsigned char)s[i + 2]) < 0)
                    return false;
                i += 3;
            } else if (is_regname_char((unsigned char)s[i])) {
                i++;
            } else {
                return false;
            }
        }
        if (i == 0)
            return false;
    }
    if (i == n)
        return true;
    if (s[i] != ':')
        return false;
    start = ++i;
    while (i < n && is_digit((unsigned char)s[i]) && i - start < 5)
        port = port * 10 + (unsigned)(s[i++] - '0');
    return i == n && i > start && port <= 65535;
}

/* Sets path and query from s[0..n), which starts at the path: split at the
 * first '?'. An empty path (absolute-form "http://h" or "http://h?q") is
 * "/" (RFC 9112 §3.2.2), which then points at a static string, not into
 * the caller's buffer. */
static void split_path(const char *s, size_t n, gh_http1_req *out)
{
    const char *q = n > 0 ? memchr(s, '?', n) : NULL;

    out->path = s;
    out->path_len = q != NULL ? (size_t)(q - s) : n;
    if (q != NULL) {
        out->query = q + 1;
        out->query_len = n - out->path_len - 1;
    }
    if (out->path_len == 0) {
        out->path = "/";
        out->path_len = 1;
    }
}

/* RFC 9112 §3.2: origin-form, absolute-form (http and https only) or
 * asterisk-form with OPTIONS. authority-form (CONNECT) is not served. */
static int analyse_target(const gh_http1_head *h, gh_http1_req *out)
{
    const char *t = h->target;
    size_t n = h->target_len, skip, a;

    if (n == 0 || memchr(t, '#', n) != NULL)
        return GH_EPROTO;
    if (t[0] == '/') {
        split_path(t, n, out);
        return 0;
    }
    if (n == 1 && t[0] == '*') {
        /* methods are case-sensitive (RFC 9110 §9.1) */
        if (h->method_len != 7 || memcmp(h->method, "OPTIONS", 7) != 0)
            return GH_EPROTO;
        out->path = t;
        out->path_len = 1;
        return 0;
    }
    if (n >= 7 && ieq(t, 7, "http://", 7))
        skip = 7;
    else if (n >= 8 && ieq(t, 8, "https://", 8))
        skip = 8;
    else
        return GH_EPROTO;
    for (a = skip; a < n && t[a] != '/' && t[a] != '?'; a++)
        ;
    if (!valid_authority(t + skip, a - skip))
        return GH_EPROTO;
    out->host = t + skip;
    out->host_len = a - skip;
    split_path(t + a, n - a, out);
    return 0;
}

/* What the framing and connection rules read from a head's fields, found
 * in one pass shared by requests and responses. */
typedef struct head_facts {
    const gh_http1_field *host;     /* the first Host */
    int      nhost;
    int64_t  content_length;        /* -1 when absent */
    bool     te;                    /* any Transfer-Encoding field */
    bool     last_chunked;          /* its final coding is chunked */
    int      nchunked;              /* how often chunked appears */
    bool     conn_close, conn_keep, conn_upgrade;   /* Connection options */
    bool     upgrade_field;         /* an Upgrade field */
    bool     expect_continue;       /* Expect: 100-continue */
} head_facts;

/* Returns 0, or GH_EPROTO for a malformed or conflicting Content-Length. */
static int scan_fields(const gh_http1_field *fields, size_t nfields,
                       head_facts *hf)
{
    int rc;

    memset(hf, 0, sizeof(*hf));
    hf->content_length = -1;
    for (size_t i = 0; i < nfields; i++) {
        const gh_http1_field *f = &fields[i];

        switch (f->name_len) {
        case 4:
            if (NAME_IS(f, "host") && hf->nhost++ == 0)
                hf->host = f;
            break;
        case 6:
            if (NAME_IS(f, "expect") &&
                ieq(f->value, f->value_len, "100-continue", 12))
                hf->expect_continue = true;
            break;
        case 7:
            if (NAME_IS(f, "upgrade"))
                hf->upgrade_field = true;
            break;
        case 10:
            if (NAME_IS(f, "connection")) {
                hf->conn_close |= gh_http1_list_has(f->value, f->value_len,
                                                    "close");
                hf->conn_keep |= gh_http1_list_has(f->value, f->value_len,
                                                   "keep-alive");
                hf->conn_upgrade |= gh_http1_list_has(f->value, f->value_len,
                                                      "upgrade");
            }
            break;
        case 14:
            if (NAME_IS(f, "content-length") &&
                (rc = merge_content_length(f->value, f->value_len,
                                           &hf->content_length)) != 0)
                return rc;
            break;
        case 17:
            if (NAME_IS(f, "transfer-encoding")) {
                hf->te = true;
                scan_transfer_encoding(f->value, f->value_len, &hf->nchunked,
                                       &hf->last_chunked);
            }
            break;
        default:
            break;
        }
    }
    return 0;
}

static bool keep_alive(int minor, const head_facts *hf)
{
    return minor == 1 ? !hf->conn_close : hf->conn_keep && !hf->conn_close;
}

int gh_http1_analyse(const gh_http1_head *h, gh_http1_req *out)
{
    head_facts hf;
    int rc;

    memset(out, 0, sizeof(*out));
    out->content_length = -1;
    if ((rc = scan_fields(h->fields, h->nfields, &hf)) != 0)
        return rc;
    if (hf.nhost > 1)
        return GH_EPROTO;
    out->expect_continue = hf.expect_continue;
    out->upgrade = hf.conn_upgrade;

    /* RFC 9112 §6.1, §6.3: TE with CL is a smuggling attempt until proven
     * otherwise; a TE we cannot frame by (final coding not chunked, chunked
     * twice, or TE in HTTP/1.0) leaves no safe way to find the end. */
    if (hf.te && (hf.content_length >= 0 || h->minor == 0 || !hf.last_chunked ||
                  hf.nchunked != 1))
        return GH_EPROTO;
    out->content_length = hf.content_length;
    out->chunked = hf.te;

    /* RFC 9112 §3.2: Host is required in 1.1, once, and valid; with an
     * absolute-form target the target's authority wins. */
    if (hf.host == NULL ? h->minor == 1 : !valid_authority(hf.host->value,
                                                           hf.host->value_len))
        return GH_EPROTO;
    if (hf.host != NULL) {
        out->host = hf.host->value;
        out->host_len = hf.host->value_len;
    }
    if ((rc = analyse_target(h, out)) != 0)
        return rc;

    out->keep_alive = keep_alive(h->minor, &hf);
    return 0;
}

int gh_http1_analyse_response(const gh_http1_resp_head *h,
                              int request_method_is_head, gh_http1_resp *out)
{
    head_facts hf;
    int rc;

    memset(out, 0, sizeof(*out));
    out->status = h->status;
    out->content_length = -1;
    /* A bad Content-Length is refused even where §6.3 would ignore it
     * (after TE, or with no body): an upstream that sends one frames
     * differently from what we would read. */
    if ((rc = scan_fields(h->fields, h->nfields, &hf)) != 0)
        return rc;
    /* §6.1: chunked at most once; TE in HTTP/1.0 is faulty framing. */
    if (hf.te && (h->minor == 0 || hf.nchunked > 1))
        return GH_EPROTO;
    out->drop_content_length = hf.te && hf.content_length >= 0;

    /* §6.3, in its order: no body for HEAD, 1xx, 204, 304; then TE
     * (which overrides CL); then CL; else the body runs until close. */
    if (request_method_is_head || h->status < 200 || h->status == 204 ||
        h->status == 304) {
        out->body = GH_HTTP1_BODY_NONE;
        if (!hf.te)
            out->content_length = hf.content_length;
    } else if (hf.te) {
        out->body = hf.last_chunked ? GH_HTTP1_BODY_CHUNKED : GH_HTTP1_BODY_CLOSE;
    } else if (hf.content_length >= 0) {
        out->body = GH_HTTP1_BODY_LENGTH;
        out->content_length = hf.content_length;
    } else {
        out->body = GH_HTTP1_BODY_CLOSE;
    }

    out->upgrade = h->status == 101 && hf.upgrade_field;
    out->keep_alive = keep_alive(h->minor, &hf) && out->body != GH_HTTP1_BODY_CLOSE;
    return 0;
}

/* Chunked decoder states (RFC 9112 §7.1). */
enum {
    CK_SIZE = 0,    /* chunk-size hex digits; line_len counts them */
    CK_SIZE_WS,     /* BWS after the size: only ';' may follow */
    CK_EXT,         /* chunk-ext up to CR */
    CK_SIZE_LF,
    CK_DATA,
    CK_DATA_CR,
    CK_DATA_LF,
    CK_TRAILER,     /* start of a trailer line, or of the final CRLF */
    CK_TNAME,
    CK_TVALUE,
    CK_TLF,
    CK_END_LF,
    CK_DONE,
    CK_ERROR,       /* sticky: a failed stream stays failed */
};

void gh_http1_chunked_init(gh_http1_chunked *c)
{
    memset(c, 0, sizeof(*c));
    c->state = CK_SIZE;
}

long gh_http1_chunked_feed(gh_http1_chunked *c, const char *buf, size_t len)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t i = 0;

    if (c->state == CK_DONE)
        return 0;
    while (i < len) {
        unsigned char ch = p[i];
        int d;

        switch (c->state) {
        case CK_SIZE:
            if ((d = hexval(ch)) >= 0) {
                /* body_bytes + remaining stays <= MAX_BODY, checked before
                 * the shift can overflow */
                uint64_t room = MAX_BODY - c->body_bytes;

                if (++c->line_len > MAX_CHUNK_HEX || c->remaining > room / 16 ||
                    (c->remaining << 4 | (uint64_t)d) > room)
                    goto bad;
                c->remaining = c->remaining << 4 | (uint64_t)d;
                break;
            }
            if (c->line_len == 0)
                goto bad;
            if (ch == '\r')
                c->state = CK_SIZE_LF;
            else if (ch == ';')
                c->state = CK_EXT;
            else if (ch == ' ' || ch == '\t')
                c->state = CK_SIZE_WS;
            else
                goto bad;
            c->line_len++;
            break;
        case CK_SIZE_WS:
            if (ch == ';')
                c->state = CK_EXT;
            else if (ch != ' ' && ch != '\t')
                goto bad;
            if (++c->line_len > MAX_CHUNK_LINE)
                goto bad;
            break;
        case CK_EXT:
            /* chunk-ext names, values and quoted strings: no CTL but HTAB,
             * so no CR or LF can hide inside one */
            if (ch == '\r') {
                c->state = CK_SIZE_LF;
                break;
            }
            if (!(cls[ch] & C_VALUE) || ++c->line_len > MAX_CHUNK_LINE)
                goto bad;
            break;
        case CK_SIZE_LF:
            if (ch != '\n')
                goto bad;
            c->line_len = 0;
            /* after the last chunk, remaining counts trailer fields */
            c->state = c->remaining == 0 ? CK_TRAILER : CK_DATA;
            break;
        case CK_DATA: {
            size_t take = len - i;

            if ((uint64_t)take > c->remaining)
                take = (size_t)c->remaining;
            c->remaining -= take;
            c->body_bytes += take;
            i += take;
            if (c->remaining == 0)
                c->state = CK_DATA_CR;
            continue;
        }
        case CK_DATA_CR:
            if (ch != '\r')
                goto bad;
            c->state = CK_DATA_LF;
            break;
        case CK_DATA_LF:
            if (ch != '\n')
                goto bad;
            c->state = CK_SIZE;
            break;
        case CK_TRAILER:
            if (ch == '\r') {
                c->state = CK_END_LF;
                break;
            }
            if (!(cls[ch] & C_TCHAR) || ++c->remaining > GH_HTTP1_MAX_FIELDS)
                goto bad;
            c->state = CK_TNAME;
            c->line_len = 1;
            break;
        case CK_TNAME:
            if (ch == ':')
                c->state = CK_TVALUE;
            else if (!(cls[ch] & C_TCHAR))
                goto bad;
            if (++c->line_len > MAX_CHUNK_LINE)
                goto bad;
            break;
        case CK_TVALUE:
            if (ch == '\r') {
                c->state = CK_TLF;
                break;
            }
            if (!(cls[ch] & C_VALUE) || ++c->line_len > MAX_CHUNK_LINE)
                goto bad;
            break;
        case CK_TLF:
            if (ch != '\n')
                goto bad;
            c->line_len = 0;
            c->state = CK_TRAILER;
            break;
        case CK_END_LF:
            if (ch != '\n')
                goto bad;
            c->state = CK_DONE;
            c->done = true;
            return (long)(i + 1);
        default:
            goto bad;
        }
        i++;
    }
    return (long)i;

bad:
    c->state = CK_ERROR;
    return GH_EPROTO;
}
