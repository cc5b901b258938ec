/* test_http1.c: the HTTP/1.x request- and response-head codec and the
 * chunked decoder.
 *
 * Heads are fed whole, as every growing prefix (the way the glue calls the
 * parser), with a pipelined request behind them, and right before a
 * PROT_NONE page. Each malformed shape names the byte at which it must be
 * refused: every shorter prefix says "need more", every longer one says
 * "malformed", so the parser neither waits for the end of a bad head nor
 * refuses a good prefix. The analyser gets every request-smuggling shape
 * we know; the chunked decoder is fed whole, byte by byte and split at
 * every offset. Response heads get the same treatment, split at every
 * offset too, and the response analyser every framing rule of RFC 9112
 * §6.3. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "err.h"
#include "http1.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define MAXH 8192

typedef struct text {
    const char *s;
    size_t      len;
} text;

#define TXT(str) { .s = (str), .len = sizeof(str) - 1 }

static long parse_n(const char *s, size_t n, gh_http1_head *h)
{
    return gh_http1_parse_head(s, n, MAXH, h);
}

static long parse(const char *s, gh_http1_head *h)
{
    return parse_n(s, strlen(s), h);
}

/* Parses a whole request and analyses it. Returns parse's error, or
 * analyse's result. */
static int analyse(const char *s, gh_http1_head *h, gh_http1_req *r)
{
    long n = parse(s, h);

    ck_assert_msg(n == (long)strlen(s), "parse %ld for: %s", n, s);
    return gh_http1_analyse(h, r);
}

static bool field_is(const gh_http1_field *f, const char *name, const char *value)
{
    return f->name_len == strlen(name) && memcmp(f->name, name, f->name_len) == 0 &&
           f->value_len == strlen(value) && memcmp(f->value, value, f->value_len) == 0;
}

static bool span_is(const char *p, size_t n, const char *want)
{
    return p != NULL && n == strlen(want) && memcmp(p, want, n) == 0;
}

/* A buffer whose end touches a PROT_NONE page: any read past the input
 * faults. */
static char *guard_mem;
static size_t guard_page;

static void guard_setup(void)
{
    guard_page = (size_t)sysconf(_SC_PAGESIZE);
    guard_mem = mmap(NULL, 2 * guard_page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(guard_mem, MAP_FAILED);
    ck_assert_int_eq(mprotect(guard_mem + guard_page, guard_page, PROT_NONE), 0);
}

static void guard_teardown(void)
{
    munmap(guard_mem, 2 * guard_page);
}

static const char *at_guard(const char *s, size_t n)
{
    char *p = guard_mem + guard_page - n;

    ck_assert_uint_le(n, guard_page);
    memcpy(p, s, n);
    return p;
}

/* ---- parse_head: valid heads ----------------------------------------- */

static const text valid_heads[] = {
    TXT("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    TXT("GET / HTTP/1.0\r\n\r\n"),
    TXT("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    TXT("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    TXT("OPTIONS * HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"),
    TXT("POST /submit/form?x=1&y=%20 HTTP/1.1\r\n"
        "Host: example.com\r\n"
        "User-Agent: curl/8.0 (x86_64-pc-linux-gnu) libcurl/8.0\r\n"
        "Accept: */*\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 11\r\n"
        "X-Empty:\r\n"
        "X-Tabs:\t \tvalue\twith\ttabs \t\r\n"
        "X-Obs-Text: caf\xc3\xa9 \xff\x80\r\n"
        "!#$%&'*+-.^_`|~09azAZ: v\r\n"
        "\r\n"),
    TXT("GET http://example.com/a/b/c/d/e/f/g/h/i/j/k/l/m/n?q=r HTTP/1.1\r\n"
        "Host: example.com\r\nConnection: keep-alive, Upgrade\r\n"
        "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"),
    TXT("M / HTTP/1.1\r\nA:b\r\n\r\n"),
};

START_TEST(parse_accepts_a_request_and_points_into_the_buffer)
{
    static const char req[] =
        "GET /index.html?a=b HTTP/1.1\r\n"
        "Host: example.com\r\n"
        "X-Spaces:   padded value  \r\n"
        "X-Empty:\r\n"
        "X-Empty-Ows: \t \r\n"
        "\r\n";
    gh_http1_head h;

    ck_assert_int_eq(parse(req, &h), sizeof(req) - 1);
    ck_assert(span_is(h.method, h.method_len, "GET"));
    ck_assert(span_is(h.target, h.target_len, "/index.html?a=b"));
    ck_assert_ptr_eq(h.method, req);
    ck_assert_int_eq(h.minor, 1);
    ck_assert_uint_eq(h.nfields, 4);
    ck_assert(field_is(&h.fields[0], "Host", "example.com"));
    ck_assert(field_is(&h.fields[1], "X-Spaces", "padded value"));
    ck_assert(field_is(&h.fields[2], "X-Empty", ""));
    ck_assert(field_is(&h.fields[3], "X-Empty-Ows", ""));
    for (size_t i = 0; i < h.nfields; i++) {
        ck_assert(h.fields[i].name > req && h.fields[i].name < req + sizeof(req));
        ck_assert(h.fields[i].value >= req && h.fields[i].value <= req + sizeof(req));
    }
}
END_TEST

START_TEST(parse_reads_http_1_0)
{
    gh_http1_head h;

    ck_assert_int_eq(parse("GET / HTTP/1.0\r\n\r\n", &h), 18);
    ck_assert_int_eq(h.minor, 0);
    ck_assert_uint_eq(h.nfields, 0);
}
END_TEST

START_TEST(parse_accepts_valid_heads_whole)
{
    for (size_t i = 0; i < N_ELEMS(valid_heads); i++) {
        gh_http1_head h;

        ck_assert_int_eq(parse_n(valid_heads[i].s, valid_heads[i].len, &h),
                         valid_heads[i].len);
    }
}
END_TEST

START_TEST(parse_returns_again_until_head_is_complete)
{
    /* the glue calls again with a longer buffer after every read: one
     * byte at a time is the worst case */
    for (size_t i = 0; i < N_ELEMS(valid_heads); i++) {
        const text *t = &valid_heads[i];
        gh_http1_head h;

        for (size_t n = 0; n < t->len; n++)
            ck_assert_msg(parse_n(t->s, n, &h) == GH_EAGAIN,
                          "head %zu prefix %zu", i, n);
        ck_assert_int_eq(parse_n(t->s, t->len, &h), t->len);
    }
}
END_TEST

START_TEST(parse_stops_at_the_end_of_the_first_pipelined_request)
{
    static const char two[] =
        "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
        "GET /b HTTP/1.1\r\nHost: b\r\n\r\n";
    const size_t first = 28;
    gh_http1_head h;

    for (size_t i = 0; i < N_ELEMS(valid_heads); i++) {
        const text *t = &valid_heads[i];
        char buf[4096];

        memcpy(buf, t->s, t->len);
        memcpy(buf + t->len, two, sizeof(two) - 1);
        /* the whole second request, and every part of it */
        for (size_t extra = 0; extra < sizeof(two); extra++)
            ck_assert_int_eq(parse_n(buf, t->len + extra, &h), t->len);
    }
    ck_assert_int_eq(parse_n(two, sizeof(two) - 1, &h), first);
    ck_assert(span_is(h.target, h.target_len, "/a"));
    ck_assert_uint_eq(h.nfields, 1);
    ck_assert_int_eq(parse_n(two + first, sizeof(two) - 1 - first, &h), first);
    ck_assert(span_is(h.target, h.target_len, "/b"));
    /* garbage after a head is the next request's problem */
    ck_assert_int_eq(parse("GET / HTTP/1.0\r\n\r\n\x01\n\r", &h), 18);
}
END_TEST

START_TEST(parse_skips_a_few_leading_empty_lines)
{
    gh_http1_head h;

    ck_assert_int_eq(parse("\r\n\r\n\r\n\r\nGET / HTTP/1.0\r\n\r\n", &h), 26);
    ck_assert(span_is(h.method, h.method_len, "GET"));
    ck_assert_int_eq(parse("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.0\r\n\r\n", &h), GH_EPROTO);
    ck_assert_int_eq(parse("\r\n\r\n\r\n\r\n\r", &h), GH_EPROTO);
    ck_assert_int_eq(parse("\r\n\r\n\r\n\r\n", &h), GH_EAGAIN);
}
END_TEST

START_TEST(parse_keeps_field_order_and_repeats)
{
    gh_http1_head h;

    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\na: 3\r\n\r\n", &h), 36);
    ck_assert_uint_eq(h.nfields, 3);
    ck_assert(field_is(&h.fields[0], "A", "1"));
    ck_assert(field_is(&h.fields[1], "B", "2"));
    ck_assert(field_is(&h.fields[2], "a", "3"));
}
END_TEST

/* ---- parse_head: malformed heads ------------------------------------- */

/* The offending byte is the first byte of the second string: every prefix
 * that stops before it is "need more", every one that includes it is
 * "malformed". */
static const struct bad_head {
    const char *s;
    size_t      len;
    size_t      at;
} bad_heads[] = {
#define BAD(pre, post) { .s = pre post, .len = sizeof(pre post) - 1, .at = sizeof(pre) - 1 }
    /* request line */
    BAD("GE ", "T / HTTP/1.1\r\n\r\n"),             /* "T" cannot start a target */
    BAD("GET ", "a/b HTTP/1.1\r\n\r\n"),
    BAD("GET ", "example.com:443 HTTP/1.1\r\n\r\n"),    /* authority-form */
    BAD("GET http", "x://a/ HTTP/1.1\r\n\r\n"),
    BAD("GET https", "x://a/ HTTP/1.1\r\n\r\n"),
    BAD("GET http:/", "a HTTP/1.1\r\n\r\n"),
    BAD("GET ", "ws://a/ HTTP/1.1\r\n\r\n"),
    BAD("", " GET / HTTP/1.1\r\n\r\n"),
    BAD("", "\nGET / HTTP/1.1\r\n\r\n"),
    BAD("\r", "\rGET / HTTP/1.1\r\n\r\n"),
    BAD("\r", "GET / HTTP/1.1\r\n\r\n"),
    BAD("GET", "\t/ HTTP/1.1\r\n\r\n"),
    BAD("GET ", " / HTTP/1.1\r\n\r\n"),             /* empty target */
    BAD("GET", "\r\n\r\n"),
    BAD("G", "(T / HTTP/1.1\r\n\r\n"),
    BAD("G", "\x80T / HTTP/1.1\r\n\r\n"),
    BAD("G", "\0T / HTTP/1.1\r\n\r\n"),
    BAD("GET /", "\x01 HTTP/1.1\r\n\r\n"),
    BAD("GET /", "\x7f HTTP/1.1\r\n\r\n"),
    BAD("GET /", "\x80 HTTP/1.1\r\n\r\n"),
    BAD("GET /", "\0 HTTP/1.1\r\n\r\n"),
    BAD("GET /", "\t HTTP/1.1\r\n\r\n"),
    BAD("GET /", "\r\n\r\n"),                        /* HTTP/0.9 */
    BAD("GET /0123456789abcdef", "\x01 HTTP/1.1\r\n\r\n"),   /* after the 8-byte path */
    BAD("GET /0123456789abcdef", "\xc3\xa9 HTTP/1.1\r\n\r\n"),
    BAD("GET / ", " HTTP/1.1\r\n\r\n"),
    BAD("GET / ", "http/1.1\r\n\r\n"),
    BAD("GET / HTTP/", "2.0\r\n\r\n"),
    BAD("GET / HTTP/", "0.9\r\n\r\n"),
    BAD("GET / HTTP/1.", "2\r\n\r\n"),
    BAD("GET / HTTP/1.", "x\r\n\r\n"),
    BAD("GET / HTTP/1", "1\r\n\r\n"),
    BAD("GET / HTTP/1.1", "0\r\n\r\n"),
    BAD("GET / HTTP/1.1", " \r\n\r\n"),
    BAD("GET / HTTP/1.1", "\n\r\n"),
    BAD("GET / HTTP/1.1\r", "\r\n"),
    BAD("GET / HTTP/1.1\r", "X\r\n\r\n"),
    /* field lines */
    BAD("GET / HTTP/1.1\r\nHost", " : a\r\n\r\n"),
    BAD("GET / HTTP/1.1\r\nHost", "\t: a\r\n\r\n"),
    BAD("GET / HTTP/1.1\r\n", ": a\r\n\r\n"),
    BAD("GET / HTTP/1.1\r\n", " Host: a\r\n\r\n"),
    BAD("GET / HTTP/1.1\r\nX: a\r\n", " b\r\n\r\n"),      /* obs-fold */
    BAD("GET / HTTP/1.1\r\nX: a\r\n", "\tb\r\n\r\n"),
    BAD("GET / HTTP/1.1\r\nHost", "\r\n\r\n"),            /* no colon */
    BAD("GET / HTTP/1.1\r\nHo", "(st: a\r\n\r\n"),
    BAD("GET / HTTP/1.1\r\nHo", "\x80st: a\r\n\r\n"),
    BAD("GET / HTTP/1.1\r\nHo", "\0st: a\r\n\r\n"),
    BAD("GET / HTTP/1.1\r\nX: a", "\0b\r\n\r\n"),
    BAD("GET / HTTP/1.1\r\nX: a", "\x01\r\n\r\n"),
    BAD("GET / HTTP/1.1\r\nX: a", "\x1f\r\n\r\n"),
    BAD("GET / HTTP/1.1\r\nX: a", "\x7f\r\n\r\n"),
    BAD("GET / HTTP/1.1\r\nX: a", "\nY: b\r\n\r\n"),      /* bare LF */
    BAD("GET / HTTP/1.1\r\nX: a\r", "b\r\n\r\n"),         /* bare CR */
    BAD("GET / HTTP/1.1\r\nX: a\r", "\r\n\r\n"),
    BAD("GET / HTTP/1.1\r\nX: 0123456789abcdef", "\x01\r\n\r\n"),
    BAD("GET / HTTP/1.1\r\nX: 0123456789\t01234567", "\x0b\r\n\r\n"),
    BAD("GET / HTTP/1.1\r\nX: a\r\n", "\n"),
    BAD("GET / HTTP/1.1\r\nX: a\r\n\r", "X"),
    BAD("GET / HTTP/1.1\r\nX: a\r\n\r", "\r\n"),
#undef BAD
};

static long req_prefix(const char *s, size_t n)
{
    gh_http1_head h;

    return parse_n(s, n, &h);
}

/* Every prefix of each head up to its bad byte is incomplete, every longer
 * one malformed: the parser refuses as soon as it sees the fault. */
static void check_refused_at_the_bad_byte(const struct bad_head *heads, size_t count,
                                          long (*parse_prefix)(const char *, size_t),
                                          const char *what)
{
    for (size_t i = 0; i < count; i++) {
        const struct bad_head *b = &heads[i];

        for (size_t n = 0; n <= b->len; n++) {
            long want = n <= b->at ? GH_EAGAIN : GH_EPROTO;
            long got = parse_prefix(b->s, n);

            ck_assert_msg(got == want, "bad %s %zu prefix %zu: got %ld want %ld", what, i, n,
                          got, want);
        }
    }
}

START_TEST(parse_refuses_malformed_heads_as_soon_as_it_sees_them)
{
    check_refused_at_the_bad_byte(bad_heads, N_ELEMS(bad_heads), req_prefix, "head");
}
END_TEST

START_TEST(parse_refuses_incomplete_garbage_early)
{
    gh_http1_head h;

    ck_assert_int_eq(parse("GE T", &h), GH_EPROTO);
    ck_assert_int_eq(parse_n("GET /\x01", 6, &h), GH_EPROTO);
    ck_assert_int_eq(parse("\x16\x03\x01\x02\x00", &h), GH_EPROTO);    /* a TLS hello */
    ck_assert_int_eq(parse("PRI * HTTP/2.0\r\n", &h), GH_EPROTO);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost : a", &h), GH_EPROTO);
}
END_TEST

/* Reference sets straight from RFC 9110 §5.6.2 and §5.5. */
static bool ref_tchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool ref_vchar(int c)
{
    return c >= 0x21 && c <= 0x7e;
}

START_TEST(parse_classifies_every_byte_like_the_rfc)
{
    for (int c = 0; c < 256; c++) {
        char buf[64];
        gh_http1_head h;
        long n;

        /* method */
        n = snprintf(buf, sizeof(buf), "G_T / HTTP/1.0\r\n\r\n");
        buf[1] = (char)c;
        ck_assert_msg((parse_n(buf, (size_t)n, &h) == n) == ref_tchar(c),
                      "method byte 0x%02x", c);
        /* request-target */
        n = snprintf(buf, sizeof(buf), "GET /_ HTTP/1.0\r\n\r\n");
        buf[5] = (char)c;
        ck_assert_msg((parse_n(buf, (size_t)n, &h) == n) == ref_vchar(c),
                      "target byte 0x%02x", c);
        /* field-name */
        n = snprintf(buf, sizeof(buf), "GET / HTTP/1.0\r\nX_: v\r\n\r\n");
        buf[17] = (char)c;
        ck_assert_msg((parse_n(buf, (size_t)n, &h) == n) == (ref_tchar(c) || c == ':'),
                      "name byte 0x%02x", c);
        /* field-value, in the middle so OWS trimming plays no part */
        n = snprintf(buf, sizeof(buf), "GET / HTTP/1.0\r\nX: a_b\r\n\r\n");
        buf[20] = (char)c;
        ck_assert_msg((parse_n(buf, (size_t)n, &h) == n) ==
                      (ref_vchar(c) || c >= 0x80 || c == ' ' || c == '\t'),
                      "value byte 0x%02x", c);
        /* and in a long value, through the eight-byte scan */
        n = snprintf(buf, sizeof(buf),
                     "GET /0123456789_abcdef HTTP/1.0\r\nX: 0123456789_abcdef\r\n\r\n");
        buf[16] = 'x';
        buf[47] = (char)c;
        ck_assert_msg((parse_n(buf, (size_t)n, &h) == n) ==
                      (ref_vchar(c) || c >= 0x80 || c == ' ' || c == '\t'),
                      "long value byte 0x%02x", c);
        buf[47] = 'x';
        buf[16] = (char)c;
        ck_assert_msg((parse_n(buf, (size_t)n, &h) == n) == ref_vchar(c),
                      "long target byte 0x%02x", c);
    }
}
END_TEST

/* ---- parse_head: limits (431) ---------------------------------------- */

START_TEST(parse_enforces_max_head_including_the_final_crlf)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    const size_t n = sizeof(req) - 1;
    gh_http1_head h;

    ck_assert_int_eq(gh_http1_parse_head(req, n, n, &h), n);
    ck_assert_int_eq(gh_http1_parse_head(req, n, n + 1, &h), n);
    ck_assert_int_eq(gh_http1_parse_head(req, n, n - 1, &h), GH_E2BIG);
    ck_assert_int_eq(gh_http1_parse_head(req, n - 1, n - 1, &h), GH_E2BIG);
    ck_assert_int_eq(gh_http1_parse_head(req, n - 1, n, &h), GH_EAGAIN);
    ck_assert_int_eq(gh_http1_parse_head(req, 0, 0, &h), GH_E2BIG);
    ck_assert_int_eq(gh_http1_parse_head(NULL, 0, 10, &h), GH_EAGAIN);
    /* leading empty lines count */
    ck_assert_int_eq(gh_http1_parse_head("\r\nGET / HTTP/1.0\r\n\r\n", 20, 19, &h),
                     GH_E2BIG);
}
END_TEST

START_TEST(parse_returns_e2big_not_again_once_max_head_is_reached)
{
    char buf[2048];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nX: ");
    gh_http1_head h;

    memset(buf + n, 'a', sizeof(buf) - n);
    for (size_t len = n; len < sizeof(buf); len++) {
        long want = len >= 1000 ? GH_E2BIG : GH_EAGAIN;

        ck_assert_int_eq(gh_http1_parse_head(buf, len, 1000, &h), want);
    }
    /* a long target too */
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', sizeof(buf) - 5);
    ck_assert_int_eq(gh_http1_parse_head(buf, sizeof(buf), 1000, &h), GH_E2BIG);
    ck_assert_int_eq(gh_http1_parse_head(buf, 999, 1000, &h), GH_EAGAIN);
    /* malformed within the limit is still malformed */
    buf[500] = '\x01';
    ck_assert_int_eq(gh_http1_parse_head(buf, sizeof(buf), 1000, &h), GH_EPROTO);
}
END_TEST

static size_t build_fields(char *buf, size_t cap, int nfields, bool end)
{
    size_t n = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\n");

    for (int i = 0; i < nfields; i++)
        n += (size_t)snprintf(buf + n, cap - n, "X-F%d: %d\r\n", i, i);
    if (end)
        n += (size_t)snprintf(buf + n, cap - n, "\r\n");
    return n;
}

START_TEST(parse_allows_100_fields_and_refuses_101)
{
    static char buf[8192];
    gh_http1_head h;
    size_t n;

    n = build_fields(buf, sizeof(buf), GH_HTTP1_MAX_FIELDS, true);
    ck_assert_int_eq(parse_n(buf, n, &h), n);
    ck_assert_uint_eq(h.nfields, GH_HTTP1_MAX_FIELDS);
    ck_assert(field_is(&h.fields[99], "X-F99", "99"));
    n = build_fields(buf, sizeof(buf), GH_HTTP1_MAX_FIELDS + 1, true);
    ck_assert_int_eq(parse_n(buf, n, &h), GH_E2BIG);
    /* without waiting for the end of the head */
    n = build_fields(buf, sizeof(buf), GH_HTTP1_MAX_FIELDS, false);
    ck_assert_int_eq(parse_n(buf, n, &h), GH_EAGAIN);
    buf[n] = '\r';
    ck_assert_int_eq(parse_n(buf, n + 1, &h), GH_EAGAIN);   /* "\r" may end it */
    buf[n] = 'X';
    ck_assert_int_eq(parse_n(buf, n + 1, &h), GH_E2BIG);
}
END_TEST

/* ---- parse_head: no over-read ---------------------------------------- */

START_TEST(parse_never_reads_past_the_input)
{
    guard_setup();
    for (size_t i = 0; i < N_ELEMS(valid_heads); i++) {
        const text *t = &valid_heads[i];
        gh_http1_head h;

        for (size_t n = 0; n <= t->len; n++) {
            const char *p = at_guard(t->s, n);
            long want = n == t->len ? (long)t->len : GH_EAGAIN;

            ck_assert_int_eq(gh_http1_parse_head(p, n, MAXH, &h), want);
            /* also with a limit that ends inside the input */
            if (n > 0)
                ck_assert_int_eq(gh_http1_parse_head(p, n, n - 1, &h), GH_E2BIG);
        }
    }
    for (size_t i = 0; i < N_ELEMS(bad_heads); i++) {
        const struct bad_head *b = &bad_heads[i];
        gh_http1_head h;

        for (size_t n = 0; n <= b->len; n++) {
            const char *p = at_guard(b->s, n);
            long want = n <= b->at ? GH_EAGAIN : GH_EPROTO;

            ck_assert_int_eq(gh_http1_parse_head(p, n, MAXH, &h), want);
        }
    }
    guard_teardown();
}
END_TEST

/* ---- analyse --------------------------------------------------------- */

START_TEST(analyse_splits_origin_form_path_and_query)
{
    gh_http1_head h;
    gh_http1_req r;

    ck_assert_int_eq(analyse("GET /a/b?c=d?e HTTP/1.1\r\nHost: x\r\n\r\n", &h, &r), 0);
    ck_assert(span_is(r.path, r.path_len, "/a/b"));
    ck_assert(span_is(r.query, r.query_len, "c=d?e"));
    ck_assert(span_is(r.host, r.host_len, "x"));
    ck_assert_int_eq(r.content_length, -1);
    ck_assert(!r.chunked);
    ck_assert(r.keep_alive);
    ck_assert(!r.upgrade);
    ck_assert(!r.expect_continue);

    ck_assert_int_eq(analyse("GET /a HTTP/1.1\r\nHost: x\r\n\r\n", &h, &r), 0);
    ck_assert(span_is(r.path, r.path_len, "/a"));
    ck_assert_ptr_null(r.query);
    ck_assert_int_eq(analyse("GET /? HTTP/1.1\r\nHost: x\r\n\r\n", &h, &r), 0);
    ck_assert(span_is(r.path, r.path_len, "/"));
    ck_assert_ptr_nonnull(r.query);
    ck_assert_uint_eq(r.query_len, 0);
}
END_TEST

START_TEST(analyse_takes_host_and_path_from_an_absolute_target)
{
    gh_http1_head h;
    gh_http1_req r;

    ck_assert_int_eq(analyse("GET http://Example.com:8080/a?b HTTP/1.1\r\n"
                             "Host: other\r\n\r\n", &h, &r), 0);
    ck_assert(span_is(r.host, r.host_len, "Example.com:8080"));
    ck_assert(span_is(r.path, r.path_len, "/a"));
    ck_assert(span_is(r.query, r.query_len, "b"));
    ck_assert_int_eq(analyse("GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n", &h, &r), 0);
    ck_assert(span_is(r.host, r.host_len, "h"));
    ck_assert(span_is(r.path, r.path_len, "/"));
    ck_assert_ptr_null(r.query);
    ck_assert_int_eq(analyse("GET hTtP://h?q HTTP/1.0\r\n\r\n", &h, &r), 0);
    ck_assert(span_is(r.host, r.host_len, "h"));
    ck_assert(span_is(r.path, r.path_len, "/"));
    ck_assert(span_is(r.query, r.query_len, "q"));
    ck_assert_int_eq(analyse("GET http://[::1]:8080/ HTTP/1.1\r\nHost: a\r\n\r\n", &h, &r), 0);
    ck_assert(span_is(r.host, r.host_len, "[::1]:8080"));
}
END_TEST

START_TEST(analyse_refuses_bad_targets)
{
    static const char *const bad[] = {
        "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        "options * HTTP/1.1\r\nHost: a\r\n\r\n",
        "OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n",
        "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
        "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a?b#frag HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http:/a HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http:// HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http:///a HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://u:p@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://a:/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://a:99999/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://a#/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://[::1/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET ws://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
    };

    /* the parser already refuses targets that cannot become one of the
     * three forms; the analyser refuses the rest */
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        gh_http1_head h;
        gh_http1_req r;
        long n = parse(bad[i], &h);

        ck_assert_msg(n == GH_EPROTO || (n == (long)strlen(bad[i]) &&
                                         gh_http1_analyse(&h, &r) == GH_EPROTO),
                      "%s", bad[i]);
    }
}
END_TEST

START_TEST(analyse_accepts_options_asterisk)
{
    gh_http1_head h;
    gh_http1_req r;

    ck_assert_int_eq(analyse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &h, &r), 0);
    ck_assert(span_is(r.path, r.path_len, "*"));
    ck_assert_ptr_null(r.query);
}
END_TEST

static int analyse_host(const char *value)
{
    char buf[512];
    gh_http1_head h;
    gh_http1_req r;

    snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", value);
    return analyse(buf, &h, &r);
}

START_TEST(analyse_validates_host_as_an_authority)
{
    static const char *const good[] = {
        "a", "example.com", "example.com:80", "a:0", "a:65535", "EXAMPLE.COM.",
        "1.2.3.4", "1.2.3.4:8080", "999.1.1.1", "xn--bcher-kva.example",
        "a-b_c~d", "a%41b", "[::1]", "[::1]:443", "[::]", "[1:2:3:4:5:6:7:8]",
        "[1::8]", "[1:2:3:4:5:6:7::]", "[::ffff:1.2.3.4]", "[1:2:3:4:5:6:1.2.3.4]",
        "[ABCD:ef01::1]", "!$&'()*+,;=",
    };
    static const char *const bad[] = {
        "", ":80", "a b", "a/b", "u@a", "u:p@a", "a:", "a:65536", "a:123456",
        "a:8x", "a:80:80", "a:-1", "[::1", "::1", "[::1]x", "[::1]:", "[::g]",
        "[1:2:3:4:5:6:7:8:9]", "[1:2:3:4:5:6:7]", "[1::2::3]", "[12345::]",
        "[:1]", "[1:]", "[::1.2.3]", "[::1.2.3.256]", "[::01.2.3.4]",
        "[fe80::1%25eth0]", "[v1.x]", "[]", "a%4", "a%zz", "a\"b", "a<b",
        "a\\b", "a?b", "a#b", "a[b", "\xc3\xa9.example", "a\tb",
    };

    for (size_t i = 0; i < N_ELEMS(good); i++)
        ck_assert_msg(analyse_host(good[i]) == 0, "Host: %s", good[i]);
    for (size_t i = 0; i < N_ELEMS(bad); i++)
        ck_assert_msg(analyse_host(bad[i]) == GH_EPROTO, "Host: %s", bad[i]);
}
END_TEST

START_TEST(analyse_requires_one_host_in_1_1_and_none_in_1_0)
{
    gh_http1_head h;
    gh_http1_req r;

    ck_assert_int_eq(analyse("GET / HTTP/1.1\r\n\r\n", &h, &r), GH_EPROTO);
    ck_assert_int_eq(analyse("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", &h, &r), GH_EPROTO);
    ck_assert_int_eq(analyse("GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n", &h, &r), GH_EPROTO);
    ck_assert_int_eq(analyse("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", &h, &r), GH_EPROTO);
    ck_assert_int_eq(analyse("GET / HTTP/1.1\r\nHost:\r\n\r\n", &h, &r), GH_EPROTO);
    ck_assert_int_eq(analyse("GET http://a/ HTTP/1.1\r\n\r\n", &h, &r), GH_EPROTO);
    ck_assert_int_eq(analyse("GET / HTTP/1.0\r\nHost: a b\r\n\r\n", &h, &r), GH_EPROTO);
    ck_assert_int_eq(analyse("GET / HTTP/1.0\r\n\r\n", &h, &r), 0);
    ck_assert_ptr_null(r.host);
    ck_assert_uint_eq(r.host_len, 0);
    ck_assert_int_eq(analyse("GET / HTTP/1.1\r\nhost: A.example\r\n\r\n", &h, &r), 0);
    ck_assert(span_is(r.host, r.host_len, "A.example"));
}
END_TEST

static int analyse_fields(int minor, const char *fields, gh_http1_req *r)
{
    char buf[1024];
    gh_http1_head h;

    snprintf(buf, sizeof(buf), "POST / HTTP/1.%d\r\nHost: a\r\n%s\r\n", minor, fields);
    return analyse(buf, &h, r);
}

START_TEST(analyse_reads_content_length)
{
    static const struct {
        const char *fields;
        int64_t     cl;
    } good[] = {
        { "Content-Length: 0\r\n", 0 },
        { "Content-Length: 5\r\n", 5 },
        { "content-length:  12345 \r\n", 12345 },
        { "Content-Length: 007\r\n", 7 },
        { "Content-Length: 5\r\nContent-Length: 5\r\n", 5 },
        { "Content-Length: 5, 5\r\n", 5 },
        { "Content-Length: 5,5 ,\t5\r\n", 5 },
        { "Content-Length: 5\r\nContent-Length: 5, 005\r\n", 5 },
        { "Content-Length: 4611686018427387904\r\n", (int64_t)1 << 62 },
        { "", -1 },
    };
    gh_http1_req r;

    for (size_t i = 0; i < N_ELEMS(good); i++) {
        ck_assert_msg(analyse_fields(1, good[i].fields, &r) == 0, "%s", good[i].fields);
        ck_assert_int_eq(r.content_length, good[i].cl);
        ck_assert(!r.chunked);
    }
}
END_TEST

START_TEST(analyse_refuses_content_length_smuggling_shapes)
{
    static const char *const bad[] = {
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5, 6\r\n",
        "Content-Length: 5\r\nContent-Length: 5, 6\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: -5\r\n",
        "Content-Length: 0x5\r\n",
        "Content-Length: 5.0\r\n",
        "Content-Length: 5 5\r\n",
        "Content-Length: 1e3\r\n",
        "Content-Length: \r\n",
        "Content-Length: 5,\r\n",
        "Content-Length: ,5\r\n",
        "Content-Length: 5,,5\r\n",
        "Content-Length: \"5\"\r\n",
        "Content-Length: 4611686018427387905\r\n",
        "Content-Length: 18446744073709551616\r\n",
        "Content-Length: 99999999999999999999999999999999\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
    };
    gh_http1_req r;

    for (size_t i = 0; i < N_ELEMS(bad); i++)
        ck_assert_msg(analyse_fields(1, bad[i], &r) == GH_EPROTO, "%s", bad[i]);
}
END_TEST

START_TEST(analyse_accepts_chunked_as_the_final_coding)
{
    static const char *const good[] = {
        "Transfer-Encoding: chunked\r\n",
        "transfer-encoding: CHUNKED\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked , \r\n",
    };
    gh_http1_req r;

    for (size_t i = 0; i < N_ELEMS(good); i++) {
        ck_assert_msg(analyse_fields(1, good[i], &r) == 0, "%s", good[i]);
        ck_assert(r.chunked);
        ck_assert_int_eq(r.content_length, -1);
    }
}
END_TEST

START_TEST(analyse_refuses_transfer_encoding_smuggling_shapes)
{
    static const char *const bad[] = {
        "Transfer-Encoding: chunked, identity\r\n",
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: chunked, chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
        "Transfer-Encoding: \r\n",
        "Transfer-Encoding: ,\r\n",
        "Transfer-Encoding: chunked;q=1\r\n",
        "Transfer-Encoding: \"chunked\"\r\n",
        "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: chunk\r\n",
        "Transfer-Encoding: chunked x\r\n",
    };
    gh_http1_req r;

    for (size_t i = 0; i < N_ELEMS(bad); i++)
        ck_assert_msg(analyse_fields(1, bad[i], &r) == GH_EPROTO, "%s", bad[i]);
    /* HTTP/1.0 has no Transfer-Encoding (RFC 9112 §6.1) */
    ck_assert_int_eq(analyse_fields(0, "Transfer-Encoding: chunked\r\n", &r), GH_EPROTO);
    ck_assert_int_eq(analyse_fields(0, "Content-Length: 3\r\n", &r), 0);
    ck_assert_int_eq(r.content_length, 3);
}
END_TEST

START_TEST(analyse_derives_keep_alive_from_version_and_connection)
{
    static const struct {
        int         minor;
        const char *fields;
        bool        keep_alive, upgrade;
    } cases[] = {
        { 1, "", true, false },
        { 1, "Connection: close\r\n", false, false },
        { 1, "Connection: Close\r\n", false, false },
        { 1, "Connection: keep-alive, close\r\n", false, false },
        { 1, "Connection: keep-alive\r\nConnection: close\r\n", false, false },
        { 1, "Connection: closed\r\n", true, false },
        { 1, "Connection: Upgrade\r\n", true, true },
        { 1, "Connection: keep-alive, Upgrade\r\n", true, true },
        { 1, "Connection: ,upgrade,\r\n", true, true },
        { 1, "Connection: upgrade, close\r\n", false, true },
        { 1, "Upgrade: websocket\r\n", true, false },
        { 0, "", false, false },
        { 0, "Connection: keep-alive\r\n", true, false },
        { 0, "Connection: Keep-Alive\r\n", true, false },
        { 0, "Connection: keep-alive, close\r\n", false, false },
        { 0, "Connection: close\r\n", false, false },
        { 0, "Connection: \r\n", false, false },
    };
    gh_http1_req r;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        ck_assert_int_eq(analyse_fields(cases[i].minor, cases[i].fields, &r), 0);
        ck_assert_msg(r.keep_alive == cases[i].keep_alive, "case %zu", i);
        ck_assert_msg(r.upgrade == cases[i].upgrade, "case %zu", i);
    }
}
END_TEST

START_TEST(analyse_sees_expect_100_continue)
{
    gh_http1_req r;

    ck_assert_int_eq(analyse_fields(1, "Expect: 100-continue\r\n", &r), 0);
    ck_assert(r.expect_continue);
    ck_assert_int_eq(analyse_fields(1, "expect: 100-Continue \r\n", &r), 0);
    ck_assert(r.expect_continue);
    ck_assert_int_eq(analyse_fields(1, "Expect: 100-continuex\r\n", &r), 0);
    ck_assert(!r.expect_continue);
    ck_assert_int_eq(analyse_fields(1, "Expect: 200-ok\r\n", &r), 0);
    ck_assert(!r.expect_continue);
    ck_assert_int_eq(analyse_fields(1, "", &r), 0);
    ck_assert(!r.expect_continue);
}
END_TEST

START_TEST(find_matches_names_case_insensitively)
{
    gh_http1_head h;

    ck_assert_int_gt(parse("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\n\r\n", &h), 0);
    ck_assert_ptr_eq(gh_http1_find(&h, "x-A"), &h.fields[1]);
    ck_assert_ptr_eq(gh_http1_find(&h, "HOST"), &h.fields[0]);
    ck_assert_ptr_null(gh_http1_find(&h, "X"));
    ck_assert_ptr_null(gh_http1_find(&h, "X-AB"));
    ck_assert_ptr_null(gh_http1_find(&h, ""));
}
END_TEST

START_TEST(list_has_finds_whole_elements_only)
{
#define HAS(v, t) gh_http1_list_has((v), sizeof(v) - 1, (t))
    ck_assert(HAS("close", "close"));
    ck_assert(HAS("Keep-Alive, CLOSE", "close"));
    ck_assert(HAS(" a ,\tclose\t, b", "close"));
    ck_assert(HAS(",,close,,", "close"));
    ck_assert(!HAS("closed", "close"));
    ck_assert(!HAS("clos", "close"));
    ck_assert(!HAS("close-x, x-close", "close"));
    ck_assert(!HAS("c lose", "close"));
    ck_assert(!HAS("", "close"));
    ck_assert(!HAS(" , ", "close"));
    ck_assert(!gh_http1_list_has(NULL, 0, "close"));
#undef HAS
}
END_TEST

/* ---- chunked --------------------------------------------------------- */

static const struct chunked_case {
    const char *s;
    size_t      len;
    uint64_t    body;
} good_chunked[] = {
#define CK(str, n) { .s = (str), .len = sizeof(str) - 1, .body = (n) }
    CK("0\r\n\r\n", 0),
    CK("5\r\nhello\r\n0\r\n\r\n", 5),
    CK("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 11),
    CK("a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", 20),
    CK("000000000000000F\r\n0123456789abcde\r\n0000000000000000\r\n\r\n", 15),
    CK("5;name=value\r\nhello\r\n0;last\r\n\r\n", 5),
    CK("5 ;a\r\nhello\r\n0\t; b = \"q s\"\r\n\r\n", 5),
    CK("5;\xc3\xa9\r\nhello\r\n0\r\n\r\n", 5),
    CK("3\r\n\r\n\r\r\n0\r\n\r\n", 3),            /* data may hold CR and LF */
    CK("0\r\nX-Trailer: v\r\nChecksum:abc \r\n\r\n", 0),
    CK("2\r\nok\r\n0\r\nX:\r\n\r\n", 2),
#undef CK
};

START_TEST(chunked_decodes_whole_bodies)
{
    for (size_t i = 0; i < N_ELEMS(good_chunked); i++) {
        const struct chunked_case *t = &good_chunked[i];
        gh_http1_chunked c;

        gh_http1_chunked_init(&c);
        ck_assert_msg(gh_http1_chunked_feed(&c, t->s, t->len) == (long)t->len, "case %zu", i);
        ck_assert(c.done);
        ck_assert_uint_eq(c.body_bytes, t->body);
        ck_assert_int_eq(gh_http1_chunked_feed(&c, "x", 1), 0);
    }
}
END_TEST

START_TEST(chunked_decodes_byte_by_byte)
{
    for (size_t i = 0; i < N_ELEMS(good_chunked); i++) {
        const struct chunked_case *t = &good_chunked[i];
        gh_http1_chunked c;

        gh_http1_chunked_init(&c);
        for (size_t k = 0; k < t->len; k++) {
            ck_assert(!c.done);
            ck_assert_int_eq(gh_http1_chunked_feed(&c, t->s + k, 1), 1);
        }
        ck_assert(c.done);
        ck_assert_uint_eq(c.body_bytes, t->body);
    }
}
END_TEST

START_TEST(chunked_decodes_split_at_every_offset)
{
    for (size_t i = 0; i < N_ELEMS(good_chunked); i++) {
        const struct chunked_case *t = &good_chunked[i];

        for (size_t k = 0; k <= t->len; k++) {
            gh_http1_chunked c;

            gh_http1_chunked_init(&c);
            ck_assert_int_eq(gh_http1_chunked_feed(&c, t->s, k), k);
            ck_assert(c.done == (k == t->len));
            ck_assert_int_eq(gh_http1_chunked_feed(&c, t->s + k, t->len - k), t->len - k);
            ck_assert(c.done);
            ck_assert_uint_eq(c.body_bytes, t->body);
        }
    }
}
END_TEST

START_TEST(chunked_stops_at_the_end_of_the_body)
{
    static const char in[] = "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    gh_http1_chunked c;

    gh_http1_chunked_init(&c);
    ck_assert_int_eq(gh_http1_chunked_feed(&c, in, sizeof(in) - 1), 15);
    ck_assert(c.done);
    gh_http1_chunked_init(&c);
    ck_assert_int_eq(gh_http1_chunked_feed(&c, in, 12), 12);
    ck_assert_int_eq(gh_http1_chunked_feed(&c, in + 12, sizeof(in) - 13), 3);
    ck_assert(c.done);
    ck_assert_uint_eq(c.body_bytes, 5);
    gh_http1_chunked_init(&c);
    ck_assert_int_eq(gh_http1_chunked_feed(&c, in, 0), 0);
    ck_assert_int_eq(gh_http1_chunked_feed(&c, NULL, 0), 0);
    ck_assert(!c.done);
}
END_TEST

static const struct bad_chunked {
    const char *s;
    size_t      len;
    size_t      at;
} bad_chunked[] = {
#define BAD(pre, post) { .s = pre post, .len = sizeof(pre post) - 1, .at = sizeof(pre) - 1 }
    BAD("", "\r\n"),                                /* no size */
    BAD("", ";a\r\n"),
    BAD("", " 5\r\n"),
    BAD("", "x\r\n"),
    BAD("", "-5\r\n"),
    BAD("", "+5\r\n"),
    BAD("0", "x5\r\n"),
    BAD("5", "\nhello\r\n0\r\n\r\n"),                /* bare LF */
    BAD("5\r", "hello\r\n0\r\n\r\n"),
    BAD("5\r\nhello", "\n0\r\n\r\n"),
    BAD("5\r\nhello", "X\r\n0\r\n\r\n"),             /* data longer than the size */
    BAD("5\r\nhello\r", "\r\n0\r\n\r\n"),
    BAD("5 ", "\r\nhello\r\n"),                     /* BWS only before ';' */
    BAD("5 ", "x\r\n"),
    BAD("5;a", "\nhello\r\n"),
    BAD("5;a", "\0\r\n"),
    BAD("5;a", "\x01\r\n"),
    BAD("5;a", "\x7f\r\n"),
    BAD("5;a\r", "a\r\n"),
    BAD("0123456789abcdef", "0\r\n"),               /* 17 hex digits */
    BAD("400000000000000", "1\r\n"),                /* over 2^62 */
    BAD("fffffffffffffff", "f\r\n"),
    BAD("0000000000000000", "0\r\n"),
    BAD("0\r\n", "\n"),
    BAD("0\r\n\r", "\r"),
    BAD("0\r\n\r", "X"),
    BAD("0\r\n", " X: a\r\n\r\n"),                  /* obs-fold */
    BAD("0\r\n", ": a\r\n\r\n"),
    BAD("0\r\nX", "\r\n\r\n"),                      /* no colon */
    BAD("0\r\nX", " : a\r\n\r\n"),
    BAD("0\r\nX: a", "\n\r\n"),
    BAD("0\r\nX: a", "\0\r\n\r\n"),
    BAD("0\r\nX: a\r", "b\r\n"),
    BAD("5\r\nhello\r\n0\r\nX: a\r\n", "\n"),
#undef BAD
};

START_TEST(chunked_refuses_malformed_bodies_at_the_bad_byte)
{
    for (size_t i = 0; i < N_ELEMS(bad_chunked); i++) {
        const struct bad_chunked *b = &bad_chunked[i];
        gh_http1_chunked c;

        /* whole */
        gh_http1_chunked_init(&c);
        ck_assert_msg(gh_http1_chunked_feed(&c, b->s, b->len) == GH_EPROTO, "case %zu", i);
        ck_assert(!c.done);
        /* the failure sticks */
        ck_assert_int_eq(gh_http1_chunked_feed(&c, "0\r\n\r\n", 5), GH_EPROTO);
        /* byte by byte: fine up to the bad byte, refused at it */
        gh_http1_chunked_init(&c);
        for (size_t k = 0; k < b->at; k++)
            ck_assert_msg(gh_http1_chunked_feed(&c, b->s + k, 1) == 1, "case %zu byte %zu", i, k);
        ck_assert_msg(gh_http1_chunked_feed(&c, b->s + b->at, 1) == GH_EPROTO, "case %zu", i);
    }
}
END_TEST

START_TEST(chunked_bounds_line_length_and_trailers)
{
    static char buf[16384];
    gh_http1_chunked c;
    size_t n;

    /* a 4096-byte size line is fine, 4097 is not */
    buf[0] = '1';
    buf[1] = ';';
    memset(buf + 2, 'a', 4094);
    memcpy(buf + 4096, "\r\nx\r\n0\r\n\r\n", 10);
    gh_http1_chunked_init(&c);
    ck_assert_int_eq(gh_http1_chunked_feed(&c, buf, 4106), 4106);
    ck_assert(c.done);
    memset(buf + 2, 'a', 4095);
    memcpy(buf + 4097, "\r\nx\r\n0\r\n\r\n", 10);
    gh_http1_chunked_init(&c);
    ck_assert_int_eq(gh_http1_chunked_feed(&c, buf, 4107), GH_EPROTO);

    /* trailer lines likewise */
    memcpy(buf, "0\r\nX:", 5);
    memset(buf + 5, 'v', 4094);
    memcpy(buf + 4099, "\r\n\r\n", 4);
    gh_http1_chunked_init(&c);
    ck_assert_int_eq(gh_http1_chunked_feed(&c, buf, 4103), 4103);
    memset(buf + 5, 'v', 4095);
    memcpy(buf + 4100, "\r\n\r\n", 4);
    gh_http1_chunked_init(&c);
    ck_assert_int_eq(gh_http1_chunked_feed(&c, buf, 4104), GH_EPROTO);

    /* at most GH_HTTP1_MAX_FIELDS trailer fields */
    n = (size_t)snprintf(buf, sizeof(buf), "0\r\n");
    for (int i = 0; i < GH_HTTP1_MAX_FIELDS; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "T: %d\r\n", i);
    gh_http1_chunked_init(&c);
    ck_assert_int_eq(gh_http1_chunked_feed(&c, buf, n), n);
    ck_assert_int_eq(gh_http1_chunked_feed(&c, "T: x\r\n", 6), GH_EPROTO);
    gh_http1_chunked_init(&c);
    ck_assert_int_eq(gh_http1_chunked_feed(&c, buf, n), n);
    ck_assert_int_eq(gh_http1_chunked_feed(&c, "\r\n", 2), 2);
    ck_assert(c.done);
}
END_TEST

START_TEST(chunked_counts_large_chunks_without_overflow)
{
    gh_http1_chunked c;

    gh_http1_chunked_init(&c);
    ck_assert_int_eq(gh_http1_chunked_feed(&c, "4000000000000000\r\n", 18), 18);
    ck_assert_uint_eq(c.remaining, (uint64_t)1 << 62);
    ck_assert_int_eq(gh_http1_chunked_feed(&c, "abc", 3), 3);
    ck_assert_uint_eq(c.body_bytes, 3);
    /* a body past 2^62 in total is refused too, at the digit that
     * crosses the line (body_bytes stands in for data that went by) */
    gh_http1_chunked_init(&c);
    c.body_bytes = ((uint64_t)1 << 62) - 1;
    ck_assert_int_eq(gh_http1_chunked_feed(&c, "1\r\nx\r\n", 6), 6);
    ck_assert_uint_eq(c.body_bytes, (uint64_t)1 << 62);
    ck_assert_int_eq(gh_http1_chunked_feed(&c, "0", 1), 1);
    ck_assert_int_eq(gh_http1_chunked_feed(&c, "1", 1), GH_EPROTO);
}
END_TEST

START_TEST(chunked_never_reads_past_the_input)
{
    guard_setup();
    for (size_t i = 0; i < N_ELEMS(good_chunked); i++) {
        const struct chunked_case *t = &good_chunked[i];

        for (size_t k = 0; k <= t->len; k++) {
            gh_http1_chunked c;

            gh_http1_chunked_init(&c);
            ck_assert_int_eq(gh_http1_chunked_feed(&c, at_guard(t->s, k), k), k);
            ck_assert_int_eq(gh_http1_chunked_feed(&c, at_guard(t->s + k, t->len - k),
                                                   t->len - k), t->len - k);
            ck_assert(c.done);
        }
    }
    for (size_t i = 0; i < N_ELEMS(bad_chunked); i++) {
        gh_http1_chunked c;

        gh_http1_chunked_init(&c);
        ck_assert_int_eq(gh_http1_chunked_feed(&c, at_guard(bad_chunked[i].s, bad_chunked[i].len),
                                               bad_chunked[i].len), GH_EPROTO);
    }
    guard_teardown();
}
END_TEST

/* ---- parse_response_head --------------------------------------------- */

static long rparse_n(const char *s, size_t n, gh_http1_resp_head *h)
{
    return gh_http1_parse_response_head(s, n, MAXH, h);
}

static long rparse(const char *s, gh_http1_resp_head *h)
{
    return rparse_n(s, strlen(s), h);
}

static const text valid_resps[] = {
    TXT("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    TXT("HTTP/1.0 404 Not Found\r\n\r\n"),
    TXT("HTTP/1.1 200\r\n\r\n"),                     /* no SP, no reason */
    TXT("HTTP/1.1 204 \r\n\r\n"),                    /* SP, empty reason */
    TXT("HTTP/1.1 100 Continue\r\n\r\n"),
    TXT("HTTP/1.1 999 \tOdd  reason\t\xc3\xa9\r\n\r\n"),
    TXT("HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
    TXT("HTTP/1.1 502 Bad Gateway\r\n"
        "Server: nginx/1.25.3\r\n"
        "Date: Fri, 04 Dec 2026 20:00:00 GMT\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Transfer-Encoding: chunked\r\n"
        "X-Empty:\r\n"
        "X-Tabs:\t \tvalue\twith\ttabs \t\r\n"
        "X-Obs-Text: caf\xc3\xa9 \xff\x80\r\n"
        "!#$%&'*+-.^_`|~09azAZ: v\r\n"
        "\r\n"),
};

START_TEST(resp_parse_accepts_a_response_and_points_into_the_buffer)
{
    static const char resp[] =
        "HTTP/1.1 404 Not Found\r\n"
        "Content-Length: 9\r\n"
        "X-Spaces:   padded value  \r\n"
        "\r\n";
    gh_http1_resp_head h;

    ck_assert_int_eq(rparse(resp, &h), sizeof(resp) - 1);
    ck_assert_int_eq(h.minor, 1);
    ck_assert_int_eq(h.status, 404);
    ck_assert(span_is(h.reason, h.reason_len, "Not Found"));
    ck_assert_ptr_eq(h.reason, resp + 13);
    ck_assert_uint_eq(h.nfields, 2);
    ck_assert(field_is(&h.fields[0], "Content-Length", "9"));
    ck_assert(field_is(&h.fields[1], "X-Spaces", "padded value"));
    ck_assert_ptr_eq(h.fields[0].name, resp + 24);
}
END_TEST

START_TEST(resp_parse_accepts_a_missing_or_empty_reason)
{
    gh_http1_resp_head h;

    ck_assert_int_eq(rparse("HTTP/1.1 200\r\n\r\n", &h), 16);
    ck_assert_int_eq(h.status, 200);
    ck_assert_uint_eq(h.reason_len, 0);
    ck_assert_int_eq(rparse("HTTP/1.0 204 \r\n\r\n", &h), 17);
    ck_assert_int_eq(h.status, 204);
    ck_assert_int_eq(h.minor, 0);
    ck_assert_uint_eq(h.reason_len, 0);
    /* the reason is kept raw, leading whitespace included */
    ck_assert_int_eq(rparse("HTTP/1.1 100  Go on \r\n\r\n", &h), 24);
    ck_assert(span_is(h.reason, h.reason_len, " Go on "));
}
END_TEST

START_TEST(resp_parse_reads_status_codes_from_100_to_999)
{
    static const int codes[] = { 100, 101, 199, 200, 304, 599, 600, 999 };
    gh_http1_resp_head h;

    for (size_t i = 0; i < N_ELEMS(codes); i++) {
        char buf[64];
        int n = snprintf(buf, sizeof(buf), "HTTP/1.1 %d X\r\n\r\n", codes[i]);

        ck_assert_int_eq(rparse_n(buf, (size_t)n, &h), n);
        ck_assert_int_eq(h.status, codes[i]);
    }
}
END_TEST

START_TEST(resp_parse_accepts_valid_heads_whole)
{
    for (size_t i = 0; i < N_ELEMS(valid_resps); i++) {
        gh_http1_resp_head h;

        ck_assert_msg(rparse_n(valid_resps[i].s, valid_resps[i].len, &h) ==
                      (long)valid_resps[i].len, "resp %zu", i);
    }
}
END_TEST

START_TEST(resp_parse_returns_again_byte_by_byte_until_head_is_complete)
{
    for (size_t i = 0; i < N_ELEMS(valid_resps); i++) {
        const text *t = &valid_resps[i];
        gh_http1_resp_head h;

        for (size_t n = 0; n < t->len; n++)
            ck_assert_msg(rparse_n(t->s, n, &h) == GH_EAGAIN,
                          "resp %zu prefix %zu", i, n);
        ck_assert_int_eq(rparse_n(t->s, t->len, &h), t->len);
    }
}
END_TEST

static bool resp_heads_equal(const gh_http1_resp_head *a, const char *abuf,
                             const gh_http1_resp_head *b, const char *bbuf)
{
    if (a->minor != b->minor || a->status != b->status ||
        a->reason - abuf != b->reason - bbuf || a->reason_len != b->reason_len ||
        a->nfields != b->nfields)
        return false;
    for (size_t i = 0; i < a->nfields; i++) {
        const gh_http1_field *fa = &a->fields[i], *fb = &b->fields[i];

        if (fa->name - abuf != fb->name - bbuf || fa->name_len != fb->name_len ||
            fa->value - abuf != fb->value - bbuf || fa->value_len != fb->value_len)
            return false;
    }
    return true;
}

START_TEST(resp_parse_gives_the_same_result_split_at_every_offset)
{
    /* as the glue sees it: a first read, "need more", then the rest
     * arrives behind it with the start of the next response */
    static const char next[] = "HTTP/1.1 200 OK\r\n";

    for (size_t i = 0; i < N_ELEMS(valid_resps); i++) {
        const text *t = &valid_resps[i];
        gh_http1_resp_head whole, h;
        char buf[4096];

        ck_assert_int_eq(rparse_n(t->s, t->len, &whole), t->len);
        for (size_t k = 0; k <= t->len; k++) {
            memcpy(buf, t->s, k);
            if (k < t->len)
                ck_assert_int_eq(rparse_n(buf, k, &h), GH_EAGAIN);
            memcpy(buf + k, t->s + k, t->len - k);
            memcpy(buf + t->len, next, sizeof(next) - 1);
            ck_assert_int_eq(rparse_n(buf, t->len + sizeof(next) - 1, &h), t->len);
            ck_assert_msg(resp_heads_equal(&whole, t->s, &h, buf),
                          "resp %zu split at %zu", i, k);
        }
    }
}
END_TEST

/* As bad_heads: the offending byte starts the second string. */
static const struct bad_head bad_resps[] = {
#define BAD(pre, post) { .s = pre post, .len = sizeof(pre post) - 1, .at = sizeof(pre) - 1 }
    /* version */
    BAD("HTTP/", "2.0 200 OK\r\n\r\n"),
    BAD("HTTP/", "2 200 OK\r\n\r\n"),
    BAD("HTTP/1.", "2 200 OK\r\n\r\n"),
    BAD("HTTP/", "0.9 200 OK\r\n\r\n"),
    BAD("", "http/1.1 200 OK\r\n\r\n"),
    BAD("HTTP", "\\1.1 200 OK\r\n\r\n"),
    BAD("HTTP/1.1", "0 200 OK\r\n\r\n"),
    BAD("", "\r\nHTTP/1.1 200 OK\r\n\r\n"),     /* no leading empty lines */
    BAD("", " HTTP/1.1 200 OK\r\n\r\n"),
    BAD("", "<html>\r\n"),                     /* HTTP/0.9-style body */
    /* status code */
    BAD("HTTP/1.1", "\t200 OK\r\n\r\n"),
    BAD("HTTP/1.1", "\r\n\r\n"),
    BAD("HTTP/1.1 ", " 200 OK\r\n\r\n"),
    BAD("HTTP/1.1 20", " OK\r\n\r\n"),          /* two digits */
    BAD("HTTP/1.1 20", "\r\n\r\n"),
    BAD("HTTP/1.1 2", "x0 OK\r\n\r\n"),         /* letters */
    BAD("HTTP/1.1 ", "OK 200\r\n\r\n"),
    BAD("HTTP/1.1 20", "O OK\r\n\r\n"),
    BAD("HTTP/1.1 ", "099 OK\r\n\r\n"),         /* below 100 */
    BAD("HTTP/1.1 ", "-20 OK\r\n\r\n"),
    BAD("HTTP/1.1 200", "0 OK\r\n\r\n"),        /* four digits */
    BAD("HTTP/1.1 200", "\t OK\r\n\r\n"),
    /* reason and line end */
    BAD("HTTP/1.1 200 O", "\x01K\r\n\r\n"),
    BAD("HTTP/1.1 200 O", "\x7fK\r\n\r\n"),
    BAD("HTTP/1.1 200 O", "\0K\r\n\r\n"),
    BAD("HTTP/1.1 200 OK", "\n\r\n"),           /* bare LF, as in requests */
    BAD("HTTP/1.1 200", "\n\r\n"),
    BAD("HTTP/1.1 200 OK\r", "X\r\n\r\n"),      /* bare CR */
    BAD("HTTP/1.1 200 OK\r", "\r\n"),
    /* field lines: the request parser's rules */
    BAD("HTTP/1.1 200 OK\r\nServer", " : a\r\n\r\n"),
    BAD("HTTP/1.1 200 OK\r\n", ": a\r\n\r\n"),
    BAD("HTTP/1.1 200 OK\r\nX: a\r\n", " b\r\n\r\n"),     /* obs-fold */
    BAD("HTTP/1.1 200 OK\r\nX: a", "\nY: b\r\n\r\n"),     /* bare LF */
    BAD("HTTP/1.1 200 OK\r\nX: a", "\x01\r\n\r\n"),
    BAD("HTTP/1.1 200 OK\r\nSet-Cookie", "\r\n\r\n"),     /* no colon */
    BAD("HTTP/1.1 200 OK\r\nX: a\r\n", "\n"),
    BAD("HTTP/1.1 200 OK\r\nX: a\r\n\r", "X"),
#undef BAD
};

static long resp_prefix(const char *s, size_t n)
{
    gh_http1_resp_head h;

    return rparse_n(s, n, &h);
}

START_TEST(resp_parse_refuses_malformed_heads_as_soon_as_it_sees_them)
{
    check_refused_at_the_bad_byte(bad_resps, N_ELEMS(bad_resps), resp_prefix, "resp");
}
END_TEST

START_TEST(resp_parse_waits_for_the_crlf_after_the_status_line)
{
    gh_http1_resp_head h;

    ck_assert_int_eq(rparse("HTTP/1.1 200 OK", &h), GH_EAGAIN);
    ck_assert_int_eq(rparse("HTTP/1.1 200", &h), GH_EAGAIN);
    ck_assert_int_eq(rparse("HTTP/1.1 200 OK\r\n", &h), GH_EAGAIN);
    ck_assert_int_eq(rparse("HTTP/1.1 200 OK\r\nA: b\r\n", &h), GH_EAGAIN);
}
END_TEST

START_TEST(resp_parse_enforces_max_head_and_the_field_limit)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nA: b\r\n\r\n";
    const size_t n = sizeof(resp) - 1;
    gh_http1_resp_head h;
    static char buf[8192];
    size_t len;

    ck_assert_int_eq(gh_http1_parse_response_head(resp, n, n, &h), n);
    ck_assert_int_eq(gh_http1_parse_response_head(resp, n, n - 1, &h), GH_E2BIG);
    ck_assert_int_eq(gh_http1_parse_response_head(resp, n - 1, n - 1, &h), GH_E2BIG);
    ck_assert_int_eq(gh_http1_parse_response_head(resp, n - 1, n, &h), GH_EAGAIN);
    ck_assert_int_eq(gh_http1_parse_response_head(resp, 0, 0, &h), GH_E2BIG);
    ck_assert_int_eq(gh_http1_parse_response_head(NULL, 0, 10, &h), GH_EAGAIN);
    /* a long reason and a long value reach the limit, not "need more" */
    len = (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 200 ");
    memset(buf + len, 'a', sizeof(buf) - len);
    ck_assert_int_eq(gh_http1_parse_response_head(buf, sizeof(buf), 1000, &h), GH_E2BIG);
    ck_assert_int_eq(gh_http1_parse_response_head(buf, 999, 1000, &h), GH_EAGAIN);
    buf[500] = '\x01';
    ck_assert_int_eq(gh_http1_parse_response_head(buf, sizeof(buf), 1000, &h), GH_EPROTO);
    /* the same field count as requests */
    len = (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < GH_HTTP1_MAX_FIELDS; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "X-F%d: %d\r\n", i, i);
    memcpy(buf + len, "\r\n", 2);
    ck_assert_int_eq(rparse_n(buf, len + 2, &h), len + 2);
    ck_assert_uint_eq(h.nfields, GH_HTTP1_MAX_FIELDS);
    memcpy(buf + len, "Y: 1\r\n\r\n", 8);
    ck_assert_int_eq(rparse_n(buf, len + 8, &h), GH_E2BIG);
}
END_TEST

START_TEST(resp_parse_never_reads_past_the_input)
{
    guard_setup();
    for (size_t i = 0; i < N_ELEMS(valid_resps); i++) {
        const text *t = &valid_resps[i];
        gh_http1_resp_head h;

        for (size_t n = 0; n <= t->len; n++) {
            const char *p = at_guard(t->s, n);
            long want = n == t->len ? (long)t->len : GH_EAGAIN;

            ck_assert_int_eq(gh_http1_parse_response_head(p, n, MAXH, &h), want);
            if (n > 0)
                ck_assert_int_eq(gh_http1_parse_response_head(p, n, n - 1, &h),
                                 GH_E2BIG);
        }
    }
    for (size_t i = 0; i < N_ELEMS(bad_resps); i++) {
        const struct bad_head *b = &bad_resps[i];
        gh_http1_resp_head h;

        for (size_t n = 0; n <= b->len; n++) {
            const char *p = at_guard(b->s, n);
            long want = n <= b->at ? GH_EAGAIN : GH_EPROTO;

            ck_assert_int_eq(gh_http1_parse_response_head(p, n, MAXH, &h), want);
        }
    }
    guard_teardown();
}
END_TEST

/* ---- analyse_response ------------------------------------------------ */

/* Parses "HTTP/1.<minor> <status> X" with fields and analyses it. */
static int ranalyse(int minor, int status, const char *fields, int is_head,
                    gh_http1_resp *r)
{
    char buf[1024];
    gh_http1_resp_head h;
    int n = snprintf(buf, sizeof(buf), "HTTP/1.%d %d X\r\n%s\r\n", minor, status,
                     fields);

    ck_assert_msg(rparse_n(buf, (size_t)n, &h) == n, "parse: %s", buf);
    return gh_http1_analyse_response(&h, is_head, r);
}

START_TEST(resp_analyse_reports_the_status_code)
{
    gh_http1_resp r;

    ck_assert_int_eq(ranalyse(1, 418, "Content-Length: 0\r\n", 0, &r), 0);
    ck_assert_int_eq(r.status, 418);
    ck_assert_int_eq(r.body, GH_HTTP1_BODY_LENGTH);
    ck_assert_int_eq(r.content_length, 0);
}
END_TEST

START_TEST(resp_analyse_gives_no_body_to_1xx_204_304_and_head_responses)
{
    static const int none[] = { 100, 101, 102, 103, 199, 204, 304 };
    static const char *const framing[] = {
        "",
        "Content-Length: 42\r\n",
        "Transfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip\r\n",
    };
    gh_http1_resp r;

    for (size_t i = 0; i < N_ELEMS(none); i++)
        for (size_t j = 0; j < N_ELEMS(framing); j++) {
            ck_assert_int_eq(ranalyse(1, none[i], framing[j], 0, &r), 0);
            ck_assert_msg(r.body == GH_HTTP1_BODY_NONE, "%d %s", none[i], framing[j]);
            ck_assert(r.keep_alive);
        }
    /* a response to HEAD, whatever its status and framing */
    for (size_t j = 0; j < N_ELEMS(framing); j++) {
        ck_assert_int_eq(ranalyse(1, 200, framing[j], 1, &r), 0);
        ck_assert_int_eq(r.body, GH_HTTP1_BODY_NONE);
        ck_assert(r.keep_alive);
    }
    /* the length a HEAD or 304 response announces is still reported */
    ck_assert_int_eq(ranalyse(1, 200, "Content-Length: 42\r\n", 1, &r), 0);
    ck_assert_int_eq(r.content_length, 42);
    ck_assert_int_eq(ranalyse(1, 304, "Content-Length: 42\r\n", 0, &r), 0);
    ck_assert_int_eq(r.content_length, 42);
    /* 205 and 404 to GET have bodies */
    ck_assert_int_eq(ranalyse(1, 205, "Content-Length: 0\r\n", 0, &r), 0);
    ck_assert_int_eq(r.body, GH_HTTP1_BODY_LENGTH);
    ck_assert_int_eq(ranalyse(1, 404, "", 0, &r), 0);
    ck_assert_int_eq(r.body, GH_HTTP1_BODY_CLOSE);
}
END_TEST

START_TEST(resp_analyse_frames_by_chunked_when_it_is_the_final_coding)
{
    static const char *const good[] = {
        "Transfer-Encoding: chunked\r\n",
        "Transfer-Encoding: CHUNKED\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip , chunked ,\r\n",
    };
    gh_http1_resp r;

    for (size_t i = 0; i < N_ELEMS(good); i++) {
        ck_assert_msg(ranalyse(1, 200, good[i], 0, &r) == 0, "%s", good[i]);
        ck_assert_int_eq(r.body, GH_HTTP1_BODY_CHUNKED);
        ck_assert_int_eq(r.content_length, -1);
        ck_assert(!r.drop_content_length);
        ck_assert(r.keep_alive);
    }
}
END_TEST

START_TEST(resp_analyse_reads_until_close_when_the_final_coding_is_not_chunked)
{
    static const char *const close_delimited[] = {
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: chunked, gzip\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding:\r\n",
        "Transfer-Encoding: gzip\r\nContent-Length: 5\r\n",
    };
    gh_http1_resp r;

    for (size_t i = 0; i < N_ELEMS(close_delimited); i++) {
        ck_assert_msg(ranalyse(1, 200, close_delimited[i], 0, &r) == 0, "%s",
                      close_delimited[i]);
        ck_assert_int_eq(r.body, GH_HTTP1_BODY_CLOSE);
        ck_assert_int_eq(r.content_length, -1);
        ck_assert(!r.keep_alive);
    }
}
END_TEST

START_TEST(resp_analyse_lets_chunked_override_content_length_and_marks_it_dropped)
{
    gh_http1_resp r;

    ck_assert_int_eq(ranalyse(1, 200, "Content-Length: 5\r\n"
                                      "Transfer-Encoding: chunked\r\n", 0, &r), 0);
    ck_assert_int_eq(r.body, GH_HTTP1_BODY_CHUNKED);
    ck_assert_int_eq(r.content_length, -1);
    ck_assert(r.drop_content_length);
    ck_assert_int_eq(ranalyse(1, 200, "Transfer-Encoding: chunked\r\n"
                                      "Content-Length: 5\r\n", 0, &r), 0);
    ck_assert_int_eq(r.body, GH_HTTP1_BODY_CHUNKED);
    ck_assert(r.drop_content_length);
    /* and when there is no body at all */
    ck_assert_int_eq(ranalyse(1, 200, "Transfer-Encoding: chunked\r\n"
                                      "Content-Length: 5\r\n", 1, &r), 0);
    ck_assert_int_eq(r.body, GH_HTTP1_BODY_NONE);
    ck_assert_int_eq(r.content_length, -1);
    ck_assert(r.drop_content_length);
    /* Content-Length alone is kept */
    ck_assert_int_eq(ranalyse(1, 200, "Content-Length: 5\r\n", 0, &r), 0);
    ck_assert(!r.drop_content_length);
}
END_TEST

START_TEST(resp_analyse_reads_content_length_and_accepts_identical_repeats)
{
    static const struct {
        const char *fields;
        int64_t     cl;
    } good[] = {
        { "Content-Length: 0\r\n", 0 },
        { "Content-Length: 5\r\n", 5 },
        { "content-length:  12345 \r\n", 12345 },
        { "Content-Length: 5\r\nContent-Length: 5\r\n", 5 },
        { "Content-Length: 5, 5\r\n", 5 },
        { "Content-Length: 5\r\nContent-Length: 5, 005\r\n", 5 },
        { "Content-Length: 4611686018427387904\r\n", (int64_t)1 << 62 },
    };
    gh_http1_resp r;

    for (size_t i = 0; i < N_ELEMS(good); i++) {
        ck_assert_msg(ranalyse(1, 200, good[i].fields, 0, &r) == 0, "%s",
                      good[i].fields);
        ck_assert_int_eq(r.body, GH_HTTP1_BODY_LENGTH);
        ck_assert_int_eq(r.content_length, good[i].cl);
        ck_assert(r.keep_alive);
    }
}
END_TEST

START_TEST(resp_analyse_refuses_conflicting_or_malformed_content_length)
{
    static const char *const bad[] = {
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5, 6\r\n",
        "Content-Length: 5\r\nContent-Length: 5, 6\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: 0x10\r\n",
        "Content-Length: 5a\r\n",
        "Content-Length: 5 5\r\n",
        "Content-Length:\r\n",
        "Content-Length: 5,\r\n",
        "Content-Length: 4611686018427387905\r\n",
        "Content-Length: 99999999999999999999999\r\n",
        /* refused even where it would be ignored */
        "Transfer-Encoding: chunked\r\nContent-Length: 5, 6\r\n",
    };
    gh_http1_resp r;

    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        ck_assert_msg(ranalyse(1, 200, bad[i], 0, &r) == GH_EPROTO, "%s", bad[i]);
        ck_assert_msg(ranalyse(1, 304, bad[i], 0, &r) == GH_EPROTO, "%s", bad[i]);
        ck_assert_msg(ranalyse(1, 200, bad[i], 1, &r) == GH_EPROTO, "%s", bad[i]);
    }
}
END_TEST

START_TEST(resp_analyse_refuses_chunked_twice_and_transfer_encoding_in_1_0)
{
    gh_http1_resp r;

    ck_assert_int_eq(ranalyse(1, 200, "Transfer-Encoding: chunked, chunked\r\n", 0, &r),
                     GH_EPROTO);
    ck_assert_int_eq(ranalyse(1, 200, "Transfer-Encoding: chunked\r\n"
                                      "Transfer-Encoding: chunked\r\n", 0, &r),
                     GH_EPROTO);
    ck_assert_int_eq(ranalyse(0, 200, "Transfer-Encoding: chunked\r\n", 0, &r),
                     GH_EPROTO);
    ck_assert_int_eq(ranalyse(0, 200, "Transfer-Encoding: gzip\r\n", 0, &r), GH_EPROTO);
}
END_TEST

START_TEST(resp_analyse_reads_until_close_without_framing)
{
    gh_http1_resp r;

    ck_assert_int_eq(ranalyse(1, 200, "Content-Type: text/plain\r\n", 0, &r), 0);
    ck_assert_int_eq(r.body, GH_HTTP1_BODY_CLOSE);
    ck_assert_int_eq(r.content_length, -1);
    ck_assert(!r.keep_alive);
    ck_assert_int_eq(ranalyse(0, 200, "Connection: keep-alive\r\n", 0, &r), 0);
    ck_assert_int_eq(r.body, GH_HTTP1_BODY_CLOSE);
    ck_assert(!r.keep_alive);
}
END_TEST

START_TEST(resp_analyse_derives_keep_alive_from_version_and_connection)
{
    static const struct {
        int         minor;
        const char *fields;
        bool        keep;
    } cases[] = {
        { 1, "", true },
        { 1, "Connection: close\r\n", false },
        { 1, "Connection: keep-alive\r\n", true },
        { 1, "Connection: Keep-Alive, CLOSE\r\n", false },
        { 1, "Connection: x\r\nConnection: close\r\n", false },
        { 1, "Connection: closed\r\n", true },
        { 0, "", false },
        { 0, "Connection: keep-alive\r\n", true },
        { 0, "Connection: Keep-Alive\r\n", true },
        { 0, "Connection: keep-alive, close\r\n", false },
        { 0, "Keep-Alive: timeout=5\r\n", false },
    };
    gh_http1_resp r;
    char fields[256];

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        snprintf(fields, sizeof(fields), "Content-Length: 0\r\n%s", cases[i].fields);
        ck_assert_int_eq(ranalyse(cases[i].minor, 200, fields, 0, &r), 0);
        ck_assert_msg(r.keep_alive == cases[i].keep, "1.%d %s", cases[i].minor,
                      cases[i].fields);
    }
}
END_TEST

START_TEST(resp_analyse_reports_upgrade_only_for_101_with_an_upgrade_field)
{
    gh_http1_resp r;

    ck_assert_int_eq(ranalyse(1, 101, "Upgrade: websocket\r\n"
                                      "Connection: Upgrade\r\n", 0, &r), 0);
    ck_assert(r.upgrade);
    ck_assert_int_eq(r.body, GH_HTTP1_BODY_NONE);
    ck_assert_int_eq(ranalyse(1, 101, "upgrade: h2c\r\n", 0, &r), 0);
    ck_assert(r.upgrade);
    ck_assert_int_eq(ranalyse(1, 101, "Connection: Upgrade\r\n", 0, &r), 0);
    ck_assert(!r.upgrade);
    ck_assert_int_eq(ranalyse(1, 200, "Upgrade: websocket\r\n"
                                      "Connection: Upgrade\r\nContent-Length: 0\r\n",
                              0, &r), 0);
    ck_assert(!r.upgrade);
    ck_assert_int_eq(ranalyse(1, 426, "Upgrade: TLS/1.2\r\nContent-Length: 0\r\n", 0, &r), 0);
    ck_assert(!r.upgrade);
}
END_TEST

START_TEST(resp_analyse_frames_every_valid_response)
{
    static const gh_http1_body want[] = {
        GH_HTTP1_BODY_LENGTH, GH_HTTP1_BODY_CLOSE, GH_HTTP1_BODY_CLOSE,
        GH_HTTP1_BODY_NONE, GH_HTTP1_BODY_NONE, GH_HTTP1_BODY_CLOSE,
        GH_HTTP1_BODY_NONE, GH_HTTP1_BODY_CHUNKED,
    };

    ck_assert_uint_eq(N_ELEMS(want), N_ELEMS(valid_resps));
    for (size_t i = 0; i < N_ELEMS(valid_resps); i++) {
        gh_http1_resp_head h;
        gh_http1_resp r;

        ck_assert_int_eq(rparse_n(valid_resps[i].s, valid_resps[i].len, &h),
                         valid_resps[i].len);
        ck_assert_int_eq(gh_http1_analyse_response(&h, 0, &r), 0);
        ck_assert_msg(r.body == want[i], "resp %zu", i);
        ck_assert_int_eq(r.status, h.status);
    }
}
END_TEST

static Suite *http1_suite(void)
{
    Suite *s = suite_create("http1");
    TCase *tc = tcase_create("parse_head");

    tcase_add_test(tc, parse_accepts_a_request_and_points_into_the_buffer);
    tcase_add_test(tc, parse_reads_http_1_0);
    tcase_add_test(tc, parse_accepts_valid_heads_whole);
    tcase_add_test(tc, parse_returns_again_until_head_is_complete);
    tcase_add_test(tc, parse_stops_at_the_end_of_the_first_pipelined_request);
    tcase_add_test(tc, parse_skips_a_few_leading_empty_lines);
    tcase_add_test(tc, parse_keeps_field_order_and_repeats);
    tcase_add_test(tc, parse_refuses_malformed_heads_as_soon_as_it_sees_them);
    tcase_add_test(tc, parse_refuses_incomplete_garbage_early);
    tcase_add_test(tc, parse_classifies_every_byte_like_the_rfc);
    tcase_add_test(tc, parse_enforces_max_head_including_the_final_crlf);
    tcase_add_test(tc, parse_returns_e2big_not_again_once_max_head_is_reached);
    tcase_add_test(tc, parse_allows_100_fields_and_refuses_101);
    tcase_add_test(tc, parse_never_reads_past_the_input);
    suite_add_tcase(s, tc);

    tc = tcase_create("analyse");
    tcase_add_test(tc, analyse_splits_origin_form_path_and_query);
    tcase_add_test(tc, analyse_takes_host_and_path_from_an_absolute_target);
    tcase_add_test(tc, analyse_refuses_bad_targets);
    tcase_add_test(tc, analyse_accepts_options_asterisk);
    tcase_add_test(tc, analyse_validates_host_as_an_authority);
    tcase_add_test(tc, analyse_requires_one_host_in_1_1_and_none_in_1_0);
    tcase_add_test(tc, analyse_reads_content_length);
    tcase_add_test(tc, analyse_refuses_content_length_smuggling_shapes);
    tcase_add_test(tc, analyse_accepts_chunked_as_the_final_coding);
    tcase_add_test(tc, analyse_refuses_transfer_encoding_smuggling_shapes);
    tcase_add_test(tc, analyse_derives_keep_alive_from_version_and_connection);
    tcase_add_test(tc, analyse_sees_expect_100_continue);
    tcase_add_test(tc, find_matches_names_case_insensitively);
    tcase_add_test(tc, list_has_finds_whole_elements_only);
    suite_add_tcase(s, tc);

    tc = tcase_create("chunked");
    tcase_add_test(tc, chunked_decodes_whole_bodies);
    tcase_add_test(tc, chunked_decodes_byte_by_byte);
    tcase_add_test(tc, chunked_decodes_split_at_every_offset);
    tcase_add_test(tc, chunked_stops_at_the_end_of_the_body);
    tcase_add_test(tc, chunked_refuses_malformed_bodies_at_the_bad_byte);
    tcase_add_test(tc, chunked_bounds_line_length_and_trailers);
    tcase_add_test(tc, chunked_counts_large_chunks_without_overflow);
    tcase_add_test(tc, chunked_never_reads_past_the_input);
    suite_add_tcase(s, tc);

    tc = tcase_create("response");
    tcase_add_test(tc, resp_parse_accepts_a_response_and_points_into_the_buffer);
    tcase_add_test(tc, resp_parse_accepts_a_missing_or_empty_reason);
    tcase_add_test(tc, resp_parse_reads_status_codes_from_100_to_999);
    tcase_add_test(tc, resp_parse_accepts_valid_heads_whole);
    tcase_add_test(tc, resp_parse_returns_again_byte_by_byte_until_head_is_complete);
    tcase_add_test(tc, resp_parse_gives_the_same_result_split_at_every_offset);
    tcase_add_test(tc, resp_parse_refuses_malformed_heads_as_soon_as_it_sees_them);
    tcase_add_test(tc, resp_parse_waits_for_the_crlf_after_the_status_line);
    tcase_add_test(tc, resp_parse_enforces_max_head_and_the_field_limit);
    tcase_add_test(tc, resp_parse_never_reads_past_the_input);
    tcase_add_test(tc, resp_analyse_reports_the_status_code);
    tcase_add_test(tc, resp_analyse_gives_no_body_to_1xx_204_304_and_head_responses);
    tcase_add_test(tc, resp_analyse_frames_by_chunked_when_it_is_the_final_coding);
    tcase_add_test(tc, resp_analyse_reads_until_close_when_the_final_coding_is_not_chunked);
    tcase_add_test(tc, resp_analyse_lets_chunked_override_content_length_and_marks_it_dropped);
    tcase_add_test(tc, resp_analyse_reads_content_length_and_accepts_identical_repeats);
    tcase_add_test(tc, resp_analyse_refuses_conflicting_or_malformed_content_length);
    tcase_add_test(tc, resp_analyse_refuses_chunked_twice_and_transfer_encoding_in_1_0);
    tcase_add_test(tc, resp_analyse_reads_until_close_without_framing);
    tcase_add_test(tc, resp_analyse_derives_keep_alive_from_version_and_connection);
    tcase_add_test(tc, resp_analyse_reports_upgrade_only_for_101_with_an_upgrade_field);
    tcase_add_test(tc, resp_analyse_frames_every_valid_response);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http1_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
