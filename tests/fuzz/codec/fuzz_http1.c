/* fuzz_http1.c: libFuzzer driver for the HTTP/1.x head parser, the
 * analyser and the chunked decoder.
 *
 * Beyond "no crash, no over-read", it checks the promises the glue builds
 * on: a head parses to the same length whether or not more bytes follow,
 * any shorter prefix of a complete head is "need more", outputs point into
 * the input, and the chunked decoder gives the same answer however its
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
    fuzz_chunked(buf, size, seed);
    return 0;
}
