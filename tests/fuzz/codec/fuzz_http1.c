/* fuzz_http1.c: libFuzzer driver for the HTTP/1.x request- and
 * response-head parsers, their analysers and the chunked decoder.
 *
 * Beyond "no crash, no over-read", it checks the promises the glue builds
 * on: a head parses to the same length whether or not more bytes follow,
 * any shorter prefix of a complete head is "need more", outputs point into
 * the input, the response framing is one the proxy can act on, and the
 * chunked decoder gives the same answer however its
 * input is split. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "http1.h"

#define MAX_HEAD 4096

#define CHECK(cond)                 \
    do {                            \
        if (!(cond))                \
            __builtin_trap();       \
    } while (0)

static bool inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && n <= len && p - buf <= (ptrdiff_t)(len - n);
}

static void check_req(const gh_http1_head *h, const gh_http1_req *r,
                      const char *buf, size_t len)
{
    CHECK(r->path != NULL && r->path_len > 0);
    CHECK(r->path[0] == '/' || (r->path_len == 1 && r->path[0] == '*'));
    CHECK(inside(r->path, r->path_len, buf, len) ||
          (r->path_len == 1 && r->path[0] == '/'));
    CHECK(r->query == NULL || inside(r->query, r->query_len, buf, len));
    CHECK(r->host != NULL || h->minor == 0);
    CHECK(r->host == NULL || (r->host_len > 0 && inside(r->host, r->host_len, buf, len)));
    CHECK(r->content_length >= -1 && r->content_length <= (int64_t)1 << 62);
    CHECK(!(r->chunked && r->content_length >= 0));
    CHECK(!(r->chunked && h->minor == 0));
    CHECK(r->path_len == 1 && r->path[0] == '*' ? h->method_len == 7 : true);
}

static void fuzz_head(const char *buf, size_t len, size_t max_head)
{
    gh_http1_head h, h2;
    gh_http1_req r;
    long n = gh_http1_parse_head(buf, len, max_head, &h);

    if (n < 0) {
        CHECK(n == GH_EAGAIN || n == GH_EPROTO || n == GH_E2BIG);
        CHECK(n != GH_EAGAIN || len < max_head);
        CHECK(n != GH_E2BIG || len >= max_head || h.nfields == GH_HTTP1_MAX_FIELDS);
        /* "need more" means every prefix needs more too */
        if (n == GH_EAGAIN && len > 0)
            CHECK(gh_http1_parse_head(buf, len / 2, max_head, &h2) == GH_EAGAIN);
        return;
    }
    CHECK((size_t)n <= len && (size_t)n <= max_head);
    CHECK(h.nfields <= GH_HTTP1_MAX_FIELDS);
    CHECK(h.minor == 0 || h.minor == 1);
    CHECK(inside(h.method, h.method_len, buf, (size_t)n) && h.method_len > 0);
    CHECK(inside(h.target, h.target_len, buf, (size_t)n) && h.target_len > 0);
    for (size_t i = 0; i < h.nfields; i++) {
        const gh_http1_field *f = &h.fields[i];

        CHECK(inside(f->name, f->name_len, buf, (size_t)n) && f->name_len > 0);
        CHECK(inside(f->value, f->value_len, buf, (size_t)n));
        CHECK(f->value_len == 0 || (f->value[0] != ' ' && f->value[0] != '\t' &&
                                    f->value[f->value_len - 1] != ' ' &&
                                    f->value[f->value_len - 1] != '\t'));
        CHECK(memchr(f->value, '\r', f->value_len) == NULL);
        CHECK(memchr(f->value, '\n', f->value_len) == NULL);
        (void)gh_http1_list_has(f->value, f->value_len, "close");
    }
    CHECK(n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
    /* the same head alone, and one byte short of it */
    CHECK(gh_http1_parse_head(buf, (size_t)n, max_head, &h2) == n);
    CHECK(h2.nfields == h.nfields);
    CHECK(gh_http1_parse_head(buf, (size_t)n - 1, max_head, &h2) == GH_EAGAIN);
    CHECK(gh_http1_parse_head(buf, (size_t)n / 2, max_head, &h2) == GH_EAGAIN);
    if (gh_http1_analyse(&h, &r) == 0)
        check_req(&h, &r, buf, (size_t)n);
    (void)gh_http1_find(&h, "host");
}

static void check_resp(const gh_http1_resp_head *h, const gh_http1_resp *r,
                       int is_head)
{
    CHECK(r->status == h->status);
    CHECK(r->body >= GH_HTTP1_BODY_NONE && r->body <= GH_HTTP1_BODY_CLOSE);
    CHECK(r->content_length >= -1 && r->content_length <= (int64_t)1 << 62);
    CHECK((r->body == GH_HTTP1_BODY_LENGTH) == (r->body != GH_HTTP1_BODY_NONE &&
                                                r->content_length >= 0));
    CHECK(r->body == GH_HTTP1_BODY_NONE ||
          (!is_head && h->status >= 200 && h->status != 204 && h->status != 304));
    CHECK(!(r->drop_content_length && r->content_length >= 0));
    CHECK(!(r->body == GH_HTTP1_BODY_CHUNKED && h->minor == 0));
    CHECK(!(r->keep_alive && r->body == GH_HTTP1_BODY_CLOSE));
    CHECK(!r->upgrade || h->status == 101);
}

static void fuzz_resp(const char *buf, size_t len, size_t max_head)
{
    gh_http1_resp_head h, h2;
    gh_http1_resp r, r2;
    long n = gh_http1_parse_response_head(buf, len, max_head, &h);
    int rc;

    if (n < 0) {
        CHECK(n == GH_EAGAIN || n == GH_EPROTO || n == GH_E2BIG);
        CHECK(n != GH_EAGAIN || len < max_head);
        CHECK(n != GH_E2BIG || len >= max_head || h.nfields == GH_HTTP1_MAX_FIELDS);
        if (n == GH_EAGAIN && len > 0)
            CHECK(gh_http1_parse_response_head(buf, len / 2, max_head, &h2) ==
                  GH_EAGAIN);
        return;
    }
    CHECK((size_t)n <= len && (size_t)n <= max_head);
    CHECK(h.nfields <= GH_HTTP1_MAX_FIELDS);
    CHECK(h.minor == 0 || h.minor == 1);
    CHECK(h.status >= 100 && h.status <= 999);
    CHECK(inside(h.reason, h.reason_len, buf, (size_t)n));
    CHECK(memchr(h.reason, '\r', h.reason_len) == NULL);
    CHECK(memchr(h.reason, '\n', h.reason_len) == NULL);
    for (size_t i = 0; i < h.nfields; i++) {
        const gh_http1_field *f = &h.fields[i];

        CHECK(inside(f->name, f->name_len, buf, (size_t)n) && f->name_len > 0);
        CHECK(inside(f->value, f->value_len, buf, (size_t)n));
        CHECK(memchr(f->value, '\r', f->value_len) == NULL);
        CHECK(memchr(f->value, '\n', f->value_len) == NULL);
    }
    CHECK(n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
    CHECK(gh_http1_parse_response_head(buf, (size_t)n, max_head, &h2) == n);
    CHECK(h2.nfields == h.nfields && h2.status == h.status);
    CHECK(gh_http1_parse_response_head(buf, (size_t)n - 1, max_head, &h2) == GH_EAGAIN);
    CHECK(gh_http1_parse_response_head(buf, (size_t)n / 2, max_head, &h2) == GH_EAGAIN);
    rc = gh_http1_analyse_response(&h, 0, &r);
    /* HEAD changes the body, never whether the head is acceptable */
    CHECK(gh_http1_analyse_response(&h, 1, &r2) == rc);
    CHECK(rc == 0 || rc == GH_EPROTO);
    if (rc == 0) {
        check_resp(&h, &r, 0);
        check_resp(&h, &r2, 1);
        CHECK(r2.body == GH_HTTP1_BODY_NONE);
        CHECK(r.keep_alive <= r2.keep_alive);
    }
}

typedef struct outcome {
    long     consumed;      /* total, or GH_EPROTO */
    uint64_t body;
    bool     done;
} outcome;

/* Feeds buf in pieces of the sizes the generator gives (0 = whole). */
static outcome feed(const char *buf, size_t len, uint32_t seed)
{
    gh_http1_chunked c;
    outcome o = { 0 };
    size_t off = 0;

    gh_http1_chunked_init(&c);
    while (off < len && !c.done) {
        size_t piece = len - off;
        long n;

        if (seed != 0) {
            seed = seed * 1103515245u + 12345u;
            piece = 1 + (seed >> 16) % 17;
            if (piece > len - off)
                piece = len - off;
        }
        n = gh_http1_chunked_feed(&c, buf + off, piece);
        if (n < 0) {
            CHECK(n == GH_EPROTO);
            o.consumed = n;
            return o;
        }
        CHECK((size_t)n <= piece);
        CHECK((size_t)n == piece || c.done);
        off += (size_t)n;
    }
    o.consumed = (long)off;
    o.body = c.body_bytes;
    o.done = c.done;
    if (c.done)
        CHECK(gh_http1_chunked_feed(&c, buf, len) == 0);
    return o;
}

static void fuzz_chunked(const char *buf, size_t len, uint32_t seed)
{
    outcome whole = feed(buf, len, 0);
    outcome split = feed(buf, len, seed | 1);

    CHECK(whole.consumed == split.consumed);
    CHECK(whole.done == split.done);
    CHECK(whole.body == split.body);
    CHECK(whole.consumed < 0 || whole.body <= (uint64_t)whole.consumed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    uint32_t seed = size > 0 ? data[0] : 0;

    fuzz_head(buf, size, MAX_HEAD);
    /* a limit inside the input too */
    fuzz_head(buf, size, size > 0 ? (size_t)(seed % size) + 1 : 1);
    fuzz_resp(buf, size, MAX_HEAD);
    fuzz_resp(buf, size, size > 0 ? (size_t)(seed % size) + 1 : 1);
    fuzz_chunked(buf, size, seed);
    return 0;
}
