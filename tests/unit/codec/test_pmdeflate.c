/* test_pmdeflate.c: permessage-deflate's DEFLATE side (RFC 7692 §7.2).
 *
 * Every compressed message is inflated whole, whole with fin in a separate
 * empty call, one byte at a time and split in two at every offset (a
 * sample of offsets for the large ones), each with 1, 7 and plenty of
 * bytes of output room per call; every way must give the same bytes and
 * outcome. Inputs and output rooms are malloc'd at their exact size, so
 * ASan sees a read or write past either. The pool's memory is read from
 * gh_zpool_idle_bytes(), which counts zlib's allocations exactly.
 *
 * The RFC's examples are in §7.2.3.1 to §7.2.3.6. zlib is used directly
 * only to play the peer: a client inflating with context takeover, and a
 * sender that ends blocks with BFINAL. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "err.h"
#include "pmdeflate.h"

/* ck_assert costs a syscall per call in fork mode; the byte-by-byte runs
 * make millions of checks, so the hot ones use this. */
static void require(bool ok, const char *what)
{
    if (!ok)
        ck_abort_msg("%s", what);
}

/* ---- growable byte buffer ---- */

typedef struct gbuf {
    uint8_t *p;
    size_t   len, cap;
} gbuf;

static void gb_put(gbuf *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;

        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        require(b->p != NULL, "realloc");
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void gb_free(gbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ---- inputs ---- */

static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static uint8_t *random_bytes(size_t n, uint32_t seed)
{
    uint8_t *d = malloc(n ? n : 1);

    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)(next_rand(&seed) >> 11);
    return d;
}

static const char *const words[] = {
    "the", "lobby", "is", "quiet", "today", "anyone", "up", "for", "a", "game",
    "tonight", "I", "can", "host", "after", "nine", "bring", "snacks", "did", "you",
    "see", "release", "notes", "they", "fixed", "reconnect", "bug", "latency",
    "better", "ping", "went", "from", "80ms", "to", "35ms", "Berlin", "mobile",
    "client", "still", "crashing", "when", "rotate", "phone", "no", "idea", "brb",
    "coffee", "lol", "yes", "maybe", "\xc3\xa9t\xc3\xa9", "caf\xc3\xa9", "\xe2\x82\xac" "5",
};

/* Chat-like text of exactly n bytes (valid UTF-8 but for a cut last word,
 * which does not matter here). */
static uint8_t *text_bytes(size_t n, uint32_t seed)
{
    uint8_t *d = malloc(n ? n : 1);
    size_t at = 0;

    ck_assert_ptr_nonnull(d);
    while (at < n) {
        const char *w = words[next_rand(&seed) % (sizeof(words) / sizeof(words[0]))];
        size_t l = strlen(w);

        for (size_t i = 0; i < l && at < n; i++)
            d[at++] = (uint8_t)w[i];
        if (at < n)
            d[at++] = (next_rand(&seed) % 11 == 0) ? '\n' : ' ';
    }
    return d;
}

/* {"type":"say","room":"lobby","nick":"alice","text":"..."} of n bytes. */
static uint8_t *chat_json(size_t n, uint32_t seed)
{
    static const char head[] = "{\"type\":\"say\",\"room\":\"lobby\",\"nick\":\"alice\",\"text\":\"";
    uint8_t *d, *t;

    ck_assert_uint_gt(n, sizeof(head) + 2);
    d = malloc(n);
    ck_assert_ptr_nonnull(d);
    memcpy(d, head, sizeof(head) - 1);
    t = text_bytes(n - (sizeof(head) - 1) - 2, seed);
    for (size_t i = 0; i < n - (sizeof(head) - 1) - 2; i++)
        d[sizeof(head) - 1 + i] = t[i] == '\n' ? ' ' : t[i];
    memcpy(d + n - 2, "\"}", 2);
    free(t);
    return d;
}

/* ---- inflating every way ---- */

typedef struct outcome {
    int   rc;           /* GH_OK or GH_EPROTO */
    gbuf  out;
    size_t calls;
} outcome;

#define RUNAWAY (64u << 20)     /* no test message inflates to this */

/* Inflates msg[0..n) as chunks ending at the cut points (ascending, < n;
 * the last chunk ends at n and carries fin; fin_apart: it does not, and an
 * empty chunk with fin follows), with room bytes of output per call. */
static outcome inflate_cut(gh_zpool *pool, const uint8_t *msg, size_t n, const size_t *cuts,
                           size_t ncuts, size_t room, bool fin_apart)
{
    outcome o = { .rc = GH_OK };
    gh_inflater *z = gh_inflater_get(pool);
    uint8_t *scratch = malloc(room);
    size_t from = 0, nchunks = ncuts + 1 + (fin_apart ? 1 : 0);

    require(z != NULL && scratch != NULL, "get");
    for (size_t i = 0; i < nchunks && o.rc == GH_OK; i++) {
        size_t to = i < ncuts ? cuts[i] : n;
        bool fin = i == nchunks - 1;
        uint8_t *chunk = to > from ? malloc(to - from) : NULL;   /* exact: over-reads show */
        const uint8_t *in = chunk;
        size_t left = to - from;

        if (to > from) {
            require(chunk != NULL, "malloc");
            memcpy(chunk, msg + from, to - from);
        }
        for (;;) {
            size_t used = SIZE_MAX, made = SIZE_MAX;
            int rc = gh_inflate(z, in, left, fin, scratch, room, &used, &made);

            o.calls++;
            require(used <= left && made <= room, "consumed or produced out of range");
            gb_put(&o.out, scratch, made);
            in += used;
            left -= used;
            if (rc == GH_OK) {
                require(left == 0, "GH_OK with input left");
                break;
            }
            if (rc != GH_EAGAIN) {
                require(rc == GH_EPROTO, "error other than GH_EPROTO");
                o.rc = rc;
                break;
            }
            require(made == room, "GH_EAGAIN with room left");
            require(o.out.len < RUNAWAY, "runaway output");
        }
        free(chunk);
        from = to;
    }
    gh_inflater_put(pool, z);
    free(scratch);
    return o;
}

static void check_outcome(const outcome *o, const uint8_t *want, size_t want_len, int want_rc,
                          const char *how, size_t k, size_t room)
{
    ck_assert_msg(o->rc == want_rc, "%s %zu room %zu: rc %d want %d", how, k, room, o->rc,
                  want_rc);
    if (want_rc == GH_OK)
        ck_assert_msg(o->out.len == want_len
                      && (want_len == 0 || memcmp(o->out.p, want, want_len) == 0),
                      "%s %zu room %zu: %zu bytes out, want %zu", how, k, room, o->out.len,
                      want_len);
}

/* Inflates msg every way and checks the outcome. */
static void check_inflate(gh_zpool *pool, const uint8_t *msg, size_t n, const uint8_t *want,
                          size_t want_len, int want_rc)
{
    size_t rooms[3] = { 1, 7, want_len + 64 };
    size_t *cuts = malloc((n ? n : 1) * sizeof(*cuts));

    ck_assert_ptr_nonnull(cuts);
    for (size_t i = 0; i + 1 < n; i++)
        cuts[i] = i + 1;
    for (size_t r = 0; r < 3; r++) {
        size_t room = rooms[r];
        outcome o;

        o = inflate_cut(pool, msg, n, NULL, 0, room, false);
        check_outcome(&o, want, want_len, want_rc, "whole", 0, room);
        gb_free(&o.out);
        o = inflate_cut(pool, msg, n, NULL, 0, room, true);
        check_outcome(&o, want, want_len, want_rc, "whole, fin apart", 0, room);
        gb_free(&o.out);
        o = inflate_cut(pool, msg, n, cuts, n ? n - 1 : 0, room, false);
        check_outcome(&o, want, want_len, want_rc, "bytewise", 0, room);
        gb_free(&o.out);
        for (size_t k = 1; k < n; k++) {
            /* All offsets for small messages; around the start, the end
             * and a stride for large ones. */
            if (n > 2048 && k > 40 && n - k > 40 && k % 997 != 0)
                continue;
            o = inflate_cut(pool, msg, n, &k, 1, room, false);
            check_outcome(&o, want, want_len, want_rc, "split", k, room);
            gb_free(&o.out);
        }
    }
    free(cuts);
}

/* The pool's compression of in[0..n), into a buffer of exactly
 * gh_deflate_bound(n) bytes; *out is the caller's to free. */
static long pool_deflate(gh_zpool *pool, int level, int bits, const uint8_t *in, size_t n,
                         uint8_t **out)
{
    size_t cap = gh_deflate_bound(n);
    long r;

    *out = malloc(cap);
    ck_assert_ptr_nonnull(*out);
    r = gh_zpool_deflate(pool, level, bits, in, n, *out, cap);
    ck_assert_msg(r >= 0, "deflate %zu bytes, level %d, bits %d: %ld", n, level, bits, r);
    ck_assert_uint_le((size_t)r, cap);
    return r;
}

/* Compresses with the pool and drops the result (to make it keep a
 * compressor). */
static void deflate_once(gh_zpool *pool, int level, int bits, const uint8_t *in, size_t n)
{
    uint8_t *z;

    pool_deflate(pool, level, bits, in, n, &z);
    free(z);
}

/* ---- RFC 7692 §7.2.3 ---- */

static const uint8_t hello_z[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };

START_TEST(rfc_7_2_3_1_hello_in_one_compressed_block)
{
    gh_zpool *pool = gh_zpool_new();
    uint8_t *z;
    long n;

    ck_assert_ptr_nonnull(pool);
    check_inflate(pool, hello_z, sizeof(hello_z), (const uint8_t *)"Hello", 5, GH_OK);
    for (int level = 1; level <= 9; level++) {
        n = pool_deflate(pool, level, 15, (const uint8_t *)"Hello", 5, &z);
        ck_assert_int_eq(n, sizeof(hello_z));
        ck_assert_int_eq(memcmp(z, hello_z, sizeof(hello_z)), 0);
        free(z);
    }
    gh_zpool_free(pool);
}
END_TEST

/* The peer: a raw inflater that keeps its window from message to message. */
static size_t client_inflate(z_stream *s, const uint8_t *msg, size_t n, uint8_t *out, size_t cap)
{
    static const uint8_t tail[4] = { 0x00, 0x00, 0xff, 0xff };
    uint8_t *buf = malloc(n + 4);
    int rc;

    ck_assert_ptr_nonnull(buf);
    memcpy(buf, msg, n);
    memcpy(buf + n, tail, 4);
    s->next_in = buf;
    s->avail_in = (uInt)(n + 4);
    s->next_out = out;
    s->avail_out = (uInt)cap;
    rc = inflate(s, Z_SYNC_FLUSH);
    ck_assert_msg(rc == Z_OK || rc == Z_BUF_ERROR, "client inflate: %d", rc);
    ck_assert_uint_eq(s->avail_in, 0);
    free(buf);
    return cap - s->avail_out;
}

START_TEST(rfc_7_2_3_2_sharing_the_window_with_context_takeover)
{
    static const uint8_t second[] = { 0xf2, 0x00, 0x11, 0x00, 0x00 };
    gh_deflater *d = gh_deflater_new(6, 15);
    gh_zpool *pool = gh_zpool_new();
    uint8_t out[64], plain[16];
    z_stream client;
    long n;

    ck_assert_ptr_nonnull(d);
    memset(&client, 0, sizeof(client));
    ck_assert_int_eq(inflateInit2(&client, -15), Z_OK);
    n = gh_deflate(d, (const uint8_t *)"Hello", 5, out, sizeof(out));
    ck_assert_int_eq(n, sizeof(hello_z));
    ck_assert_int_eq(memcmp(out, hello_z, sizeof(hello_z)), 0);
    ck_assert_uint_eq(client_inflate(&client, out, (size_t)n, plain, sizeof(plain)), 5);
    n = gh_deflate(d, (const uint8_t *)"Hello", 5, out, sizeof(out));
    ck_assert_int_eq(n, sizeof(second));
    ck_assert_int_eq(memcmp(out, second, sizeof(second)), 0);
    ck_assert_uint_eq(client_inflate(&client, out, (size_t)n, plain, sizeof(plain)), 5);
    ck_assert_int_eq(memcmp(plain, "Hello", 5), 0);
    /* Our inflater starts every message from an empty window (gatehouse
     * negotiates client_no_context_takeover): the back-reference is
     * invalid data to it. */
    check_inflate(pool, second, sizeof(second), NULL, 0, GH_EPROTO);
    inflateEnd(&client);
    gh_deflater_free(d);
    gh_zpool_free(pool);
}
END_TEST

START_TEST(rfc_7_2_3_3_a_stored_block)
{
    static const uint8_t stored[] = { 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c,
                                      0x6c, 0x6f, 0x00 };
    gh_zpool *pool = gh_zpool_new();
    uint8_t *z;
    long n;

    check_inflate(pool, stored, sizeof(stored), (const uint8_t *)"Hello", 5, GH_OK);
    n = pool_deflate(pool, 0, 15, (const uint8_t *)"Hello", 5, &z);     /* level 0 stores */
    ck_assert_int_eq(n, sizeof(stored));
    ck_assert_int_eq(memcmp(z, stored, sizeof(stored)), 0);
    free(z);
    gh_zpool_free(pool);
}
END_TEST

START_TEST(rfc_7_2_3_4_a_final_block_then_an_empty_stored_block_header)
{
    /* BFINAL set, then one byte starting a non-final stored block, which
     * the appended tail completes: data after a final block is valid. */
    static const uint8_t bfinal[] = { 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00 };
    gh_zpool *pool = gh_zpool_new();

    check_inflate(pool, bfinal, sizeof(bfinal), (const uint8_t *)"Hello", 5, GH_OK);
    /* Without the extra byte the tail follows the final block directly: a
     * sender that forgets it loses nothing, and is accepted. */
    check_inflate(pool, bfinal, sizeof(bfinal) - 1, (const uint8_t *)"Hello", 5, GH_OK);
    gh_zpool_free(pool);
}
END_TEST

START_TEST(rfc_7_2_3_5_two_deflate_blocks_in_one_message)
{
    static const uint8_t two[] = { 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff,
                                   0xca, 0xc9, 0xc9, 0x07, 0x00 };
    gh_zpool *pool = gh_zpool_new();

    check_inflate(pool, two, sizeof(two), (const uint8_t *)"Hello", 5, GH_OK);
    gh_zpool_free(pool);
}
END_TEST

START_TEST(rfc_7_2_3_6_the_empty_message_is_one_zero_byte)
{
    static const uint8_t empty[] = { 0x00 };
    gh_zpool *pool = gh_zpool_new();
    gh_deflater *d = gh_deflater_new(1, 15);
    uint8_t out[32];

    check_inflate(pool, empty, 1, NULL, 0, GH_OK);
    for (int level = 0; level <= 9; level++) {
        ck_assert_int_eq(gh_zpool_deflate(pool, level, 15, NULL, 0, out, sizeof(out)), 1);
        ck_assert_int_eq(out[0], 0x00);
    }
    /* With context takeover too, before and after a message. */
    ck_assert_int_eq(gh_deflate(d, NULL, 0, out, sizeof(out)), 1);
    ck_assert_int_eq(out[0], 0x00);
    ck_assert_int_gt(gh_deflate(d, (const uint8_t *)"Hello", 5, out, sizeof(out)), 0);
    ck_assert_int_eq(gh_deflate(d, NULL, 0, out, sizeof(out)), 1);
    ck_assert_int_eq(out[0], 0x00);
    /* An empty payload is not DEFLATE, but there is nothing to misread. */
    check_inflate(pool, NULL, 0, NULL, 0, GH_OK);
    gh_deflater_free(d);
    gh_zpool_free(pool);
}
END_TEST

/* ---- round trips ---- */

typedef struct input {
    const char *name;
    uint8_t    *d;
    size_t      n;
} input;

static void make_inputs(input in[5])
{
    static uint8_t one = 'x';

    in[0] = (input){ "empty", NULL, 0 };
    in[1] = (input){ "one byte", &one, 1 };
    in[2] = (input){ "512-byte chat JSON", chat_json(512, 7), 512 };
    in[3] = (input){ "100 KiB text", text_bytes(100 * 1024, 11), 100 * 1024 };
    in[4] = (input){ "70 KiB random", random_bytes(70 * 1024, 13), 70 * 1024 };
}

static void free_inputs(input in[5])
{
    free(in[2].d);
    free(in[3].d);
    free(in[4].d);
}

START_TEST(pool_deflate_round_trips_through_inflate_every_way)
{
    static const struct {
        int level, bits;
    } params[] = { { 1, 15 }, { 6, 15 }, { 9, 10 }, { 0, 15 }, { 1, 9 } };
    gh_zpool *pool = gh_zpool_new();
    input in[5];

    make_inputs(in);
    for (size_t i = 0; i < 5; i++) {
        for (size_t j = 0; j < sizeof(params) / sizeof(params[0]); j++) {
            uint8_t *z;
            long n = pool_deflate(pool, params[j].level, params[j].bits, in[i].d, in[i].n, &z);

            if (i == 2 && params[j].level > 0)
                ck_assert_msg((size_t)n < in[i].n * 3 / 4, "%s: %ld bytes", in[i].name, n);
            if (i == 3 && params[j].level > 0)
                ck_assert_msg((size_t)n < in[i].n / 2, "%s: %ld bytes", in[i].name, n);
            /* The whole set for the small inputs; the large ones once. */
            if (i < 3 || j == 0) {
                check_inflate(pool, z, (size_t)n, in[i].d, in[i].n, GH_OK);
            } else {
                outcome o = inflate_cut(pool, z, (size_t)n, NULL, 0, in[i].n + 1, false);

                check_outcome(&o, in[i].d, in[i].n, GH_OK, "whole", 0, in[i].n + 1);
                gb_free(&o.out);
            }
            free(z);
        }
    }
    free_inputs(in);
    gh_zpool_free(pool);
}
END_TEST

START_TEST(deflater_with_context_takeover_round_trips_and_shrinks_repeats)
{
    gh_zpool *pool = gh_zpool_new();
    input in[5];

    make_inputs(in);
    for (size_t i = 0; i < 5; i++) {
        gh_deflater *d = gh_deflater_new(6, 15);
        size_t cap = gh_deflate_bound(in[i].n);
        uint8_t *z1 = malloc(cap), *z2 = malloc(cap), *plain = malloc(in[i].n + 1);
        z_stream client;
        long n1, n2;

        ck_assert(d != NULL && z1 != NULL && z2 != NULL && plain != NULL);
        n1 = gh_deflate(d, in[i].d, in[i].n, z1, cap);
        n2 = gh_deflate(d, in[i].d, in[i].n, z2, cap);
        ck_assert_int_ge(n1, 0);
        ck_assert_int_ge(n2, 0);
        /* The first message needs no window: our inflater reads it. */
        check_inflate(pool, z1, (size_t)n1, in[i].d, in[i].n, GH_OK);
        /* The client keeps its window and reads both. */
        memset(&client, 0, sizeof(client));
        ck_assert_int_eq(inflateInit2(&client, -15), Z_OK);
        ck_assert_uint_eq(client_inflate(&client, z1, (size_t)n1, plain, in[i].n + 1), in[i].n);
        ck_assert(in[i].n == 0 || memcmp(plain, in[i].d, in[i].n) == 0);
        ck_assert_uint_eq(client_inflate(&client, z2, (size_t)n2, plain, in[i].n + 1), in[i].n);
        ck_assert(in[i].n == 0 || memcmp(plain, in[i].d, in[i].n) == 0);
        inflateEnd(&client);
        /* A repeat within the window costs a few bytes (100 KiB is more
         * than the 32 KiB window holds). */
        if (i == 2)
            ck_assert_msg(n2 * 8 < n1, "%s: %ld then %ld bytes", in[i].name, n1, n2);
        gh_deflater_free(d);
        free(z1);
        free(z2);
        free(plain);
    }
    free_inputs(in);
    gh_zpool_free(pool);
}
END_TEST

START_TEST(inflater_reads_one_message_after_another_and_after_a_put_mid_message)
{
    gh_zpool *pool = gh_zpool_new();
    gh_inflater *z = gh_inflater_get(pool);
    uint8_t out[16];
    size_t used, made;

    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(gh_inflate(z, hello_z, sizeof(hello_z), true, out, sizeof(out),
                                    &used, &made), GH_OK);
        ck_assert_uint_eq(used, sizeof(hello_z));
        ck_assert_uint_eq(made, 5);
        ck_assert_int_eq(memcmp(out, "Hello", 5), 0);
    }
    /* Handed back mid-message: the next borrower starts clean. */
    ck_assert_int_eq(gh_inflate(z, hello_z, 3, false, out, sizeof(out), &used, &made), GH_OK);
    gh_inflater_put(pool, z);
    z = gh_inflater_get(pool);
    ck_assert_int_eq(gh_inflate(z, hello_z, sizeof(hello_z), true, out, sizeof(out),
                                &used, &made), GH_OK);
    ck_assert_uint_eq(made, 5);
    gh_inflater_put(pool, z);
    gh_inflater_put(pool, NULL);
    gh_zpool_free(pool);
    gh_zpool_free(NULL);
}
END_TEST

START_TEST(inflate_reports_full_output_exactly)
{
    gh_zpool *pool = gh_zpool_new();
    gh_inflater *z = gh_inflater_get(pool);
    uint8_t out[5];
    size_t used, made;

    /* Exactly the room it needs: the message ends between blocks, so it is
     * known to be complete without another call. */
    ck_assert_int_eq(gh_inflate(z, hello_z, sizeof(hello_z), true, out, 5, &used, &made), GH_OK);
    ck_assert_uint_eq(made, 5);
    /* One byte short: GH_EAGAIN with the room full, then the rest. */
    ck_assert_int_eq(gh_inflate(z, hello_z, sizeof(hello_z), true, out, 4, &used, &made),
                     GH_EAGAIN);
    ck_assert_uint_eq(made, 4);
    ck_assert_int_eq(gh_inflate(z, hello_z + used, sizeof(hello_z) - used, true, out, 5,
                                &used, &made), GH_OK);
    ck_assert_uint_eq(made, 1);
    ck_assert_int_eq(out[0], 'o');
    /* No room at all (out may then be NULL). */
    ck_assert_int_eq(gh_inflate(z, hello_z, sizeof(hello_z), true, NULL, 0, &used, &made),
                     GH_EAGAIN);
    ck_assert_uint_eq(made, 0);
    gh_inflater_put(pool, z);
    gh_zpool_free(pool);
}
END_TEST

/* ---- final blocks ---- */

/* in[0..n) compressed by a fresh raw stream that ends with Z_FINISH (a
 * final block), primed with dict. */
static void put_final_block(gbuf *b, const void *dict, size_t dlen, const void *in, size_t n)
{
    z_stream s;
    uint8_t out[4096];

    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(deflateInit2(&s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    if (dlen > 0)
        ck_assert_int_eq(deflateSetDictionary(&s, dict, (uInt)dlen), Z_OK);
    s.next_in = (Bytef *)(uintptr_t)in;
    s.avail_in = (uInt)n;
    do {
        s.next_out = out;
        s.avail_out = sizeof(out);
        ck_assert_int_ne(deflate(&s, Z_FINISH), Z_STREAM_ERROR);
        gb_put(b, out, sizeof(out) - s.avail_out);
    } while (s.avail_out == 0);
    deflateEnd(&s);
}

START_TEST(blocks_after_a_final_block_are_inflated_with_the_same_window)
{
    gh_zpool *pool = gh_zpool_new();
    gbuf m = { 0 };

    /* "Hello" in a final block, then "Hello" compressed against it (a
     * back-reference across the final block), then the stored block's
     * first byte as in §7.2.3.4. */
    put_final_block(&m, NULL, 0, "Hello", 5);
    put_final_block(&m, "Hello", 5, "Hello", 5);
    gb_put(&m, "", 1);
    check_inflate(pool, m.p, m.len, (const uint8_t *)"HelloHello", 10, GH_OK);
    gb_free(&m);
    gh_zpool_free(pool);
}
END_TEST

START_TEST(carrying_the_window_over_final_blocks_is_bounded_per_message)
{
    /* 32 KiB of output in one final block, then empty final blocks (03 00),
     * then a block that repeats the last 16 bytes (a back-reference). Each
     * empty block restarts the decoder; carrying the 32 KiB window over
     * each time is paid from a budget: 32 KiB plus 16 bytes per compressed
     * byte, here about 17 windows. */
    gh_zpool *pool = gh_zpool_new();
    uint8_t *head = random_bytes(32768, 3);
    uint8_t *want = malloc(32768 + 16);
    gbuf few = { 0 }, many = { 0 };

    ck_assert_ptr_nonnull(want);
    memcpy(want, head, 32768);
    memcpy(want + 32768, head + 32768 - 16, 16);
    for (int k = 0; k < 2; k++) {
        gbuf *m = k == 0 ? &few : &many;

        put_final_block(m, NULL, 0, head, 32768);               /* stored: ~32 KiB in */
        for (int i = 0; i < (k == 0 ? 8 : 40); i++)
            gb_put(m, "\x03\x00", 2);
        put_final_block(m, head, 32768, head + 32768 - 16, 16); /* distance 16 */
        gb_put(m, "", 1);
    }
    /* A few: within the budget, the window is carried every time. */
    {
        outcome o = inflate_cut(pool, few.p, few.len, NULL, 0, 40000, false);

        check_outcome(&o, want, 32768 + 16, GH_OK, "few", 0, 40000);
        gb_free(&o.out);
    }
    /* Forty: past the budget the window is dropped, and the reference into
     * it is invalid data. */
    {
        outcome o = inflate_cut(pool, many.p, many.len, NULL, 0, 40000, false);

        ck_assert_int_eq(o.rc, GH_EPROTO);
        gb_free(&o.out);
    }
    /* Many empty final blocks with no reference back are fine, and cheap. */
    {
        gbuf m = { 0 };
        outcome o;

        put_final_block(&m, NULL, 0, head, 32768);
        for (int i = 0; i < 100000; i++)
            gb_put(&m, "\x03\x00", 2);
        gb_put(&m, "", 1);
        o = inflate_cut(pool, m.p, m.len, NULL, 0, 40000, false);
        check_outcome(&o, head, 32768, GH_OK, "empty blocks", 0, 40000);
        gb_free(&o.out);
        gb_free(&m);
    }
    gb_free(&few);
    gb_free(&many);
    free(head);
    free(want);
    gh_zpool_free(pool);
}
END_TEST

/* ---- invalid data ---- */

START_TEST(inflate_refuses_invalid_data_with_eproto_and_keeps_refusing)
{
    static const struct {
        const char *what;
        uint8_t     d[8];
        size_t      n;
    } bad[] = {
        { "reserved block type 11", { 0x07 }, 1 },
        { "stored block LEN/NLEN mismatch", { 0x00, 0x01, 0x00, 0x00, 0x00 }, 5 },
        { "distance before the start", { 0xf2, 0x00, 0x11, 0x00, 0x00 }, 5 },
        { "truncated in a block", { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07 }, 6 },
        { "the tail left in", { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00 }, 8 },
        { "garbage", { 0xff, 0xff, 0xff, 0xff }, 4 },
    };
    gh_zpool *pool = gh_zpool_new();

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gbuf m = { 0 };

        gb_put(&m, bad[i].d, bad[i].n);
        if (i == 4)
            gb_put(&m, "\x00\xff\xff", 3);      /* a sender that did not strip it */
        check_inflate(pool, m.p, m.len, NULL, 0, GH_EPROTO);
        gb_free(&m);
    }
    /* Sticky until handed back. */
    {
        gh_inflater *z = gh_inflater_get(pool);
        uint8_t out[16];
        size_t used, made;

        ck_assert_int_eq(gh_inflate(z, bad[0].d, 1, false, out, sizeof(out), &used, &made),
                         GH_EPROTO);
        ck_assert_int_eq(gh_inflate(z, hello_z, sizeof(hello_z), true, out, sizeof(out),
                                    &used, &made), GH_EPROTO);
        ck_assert_uint_eq(used, 0);
        ck_assert_uint_eq(made, 0);
        gh_inflater_put(pool, z);
        z = gh_inflater_get(pool);
        ck_assert_int_eq(gh_inflate(z, hello_z, sizeof(hello_z), true, out, sizeof(out),
                                    &used, &made), GH_OK);
        gh_inflater_put(pool, z);
    }
    /* A truncated message is only known to be so at its end. */
    {
        gh_inflater *z = gh_inflater_get(pool);
        uint8_t out[16];
        size_t used, made;

        ck_assert_int_eq(gh_inflate(z, hello_z, 6, false, out, sizeof(out), &used, &made),
                         GH_OK);
        ck_assert_int_eq(gh_inflate(z, NULL, 0, true, out, sizeof(out), &used, &made),
                         GH_EPROTO);
        gh_inflater_put(pool, z);
    }
    gh_zpool_free(pool);
}
END_TEST

START_TEST(inflate_never_fails_otherwise_on_random_input)
{
    gh_zpool *pool = gh_zpool_new();
    uint32_t seed = 99;

    for (int i = 0; i < 3000; i++) {
        size_t n = 1 + next_rand(&seed) % 64;
        uint8_t *d = random_bytes(n, next_rand(&seed));
        outcome a = inflate_cut(pool, d, n, NULL, 0, 1 << 16, false);
        size_t k = next_rand(&seed) % n;
        outcome b = inflate_cut(pool, d, n, &k, k > 0 ? 1 : 0, 3, false);

        require(a.rc == b.rc, "split changed the outcome");
        require(a.rc != GH_OK || (a.out.len == b.out.len
                                  && (a.out.len == 0 || memcmp(a.out.p, b.out.p, a.out.len) == 0)),
                "split changed the output");
        gb_free(&a.out);
        gb_free(&b.out);
        free(d);
    }
    gh_zpool_free(pool);
}
END_TEST

/* ---- a bomb ---- */

/* The caller's pattern (core/ws/wsconn.c): inflate into a buffer that
 * doubles up to limit; at the limit, ask for one more byte: any byte is
 * over. Returns GH_OK (fits), GH_E2BIG (over) or GH_EPROTO; *peak is the
 * largest buffer it allocated. */
static int inflate_capped(gh_zpool *pool, const uint8_t *msg, size_t n, size_t limit,
                          size_t *got, size_t *peak)
{
    gh_inflater *z = gh_inflater_get(pool);
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap), probe;
    int ret;

    require(z != NULL && buf != NULL, "alloc");
    *peak = cap;
    for (;;) {
        uint8_t *out = buf + len;
        size_t room = cap - len, used, made;
        int rc;

        if (room == 0 && cap < limit) {
            cap = cap * 2 < limit ? cap * 2 : limit;
            buf = realloc(buf, cap);
            require(buf != NULL, "realloc");
            *peak = cap;
            continue;
        }
        if (room == 0) {
            out = &probe;
            room = 1;
        }
        rc = gh_inflate(z, msg, n, true, out, room, &used, &made);
        if (rc == GH_EPROTO) {
            ret = rc;
            break;
        }
        if (out == &probe && made > 0) {
            ret = GH_E2BIG;
            break;
        }
        len += made;
        msg += used;
        n -= used;
        if (rc == GH_OK) {
            ret = GH_OK;
            break;
        }
    }
    *got = len;
    gh_inflater_put(pool, z);
    free(buf);
    return ret;
}

START_TEST(a_bomb_is_stopped_at_the_callers_limit)
{
    const size_t limit = 1 << 20;
    uint8_t *zeros = calloc(8 << 20, 1);
    gh_zpool *pool = gh_zpool_new();
    uint8_t *z;
    size_t got, peak;
    long n;

    ck_assert_ptr_nonnull(zeros);
    /* 8 MiB of zeros in about 8 KiB. */
    n = pool_deflate(pool, 9, 15, zeros, 8 << 20, &z);
    ck_assert_int_lt(n, 9000);
    ck_assert_int_eq(inflate_capped(pool, z, (size_t)n, limit, &got, &peak), GH_E2BIG);
    ck_assert_uint_eq(got, limit);
    ck_assert_uint_eq(peak, limit);
    free(z);
    /* Exactly the limit fits: the probe finds nothing more. */
    n = pool_deflate(pool, 9, 15, zeros, limit, &z);
    ck_assert_int_eq(inflate_capped(pool, z, (size_t)n, limit, &got, &peak), GH_OK);
    ck_assert_uint_eq(got, limit);
    free(z);
    /* One byte more does not. */
    n = pool_deflate(pool, 9, 15, zeros, limit + 1, &z);
    ck_assert_int_eq(inflate_capped(pool, z, (size_t)n, limit, &got, &peak), GH_E2BIG);
    free(z);
    free(zeros);
    gh_zpool_free(pool);
}
END_TEST

/* ---- sending ---- */

START_TEST(deflate_bound_holds_for_every_level_window_and_size_class)
{
    static const size_t lens[] = { 1, 2, 5, 31, 127, 128, 1000, 2048, 2049, 4095,
                                   16384, 16385, 40000, 70000 };
    gh_zpool *pool = gh_zpool_new();

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t *rnd = random_bytes(lens[i], (uint32_t)i + 1);
        uint8_t *txt = text_bytes(lens[i], (uint32_t)i + 1);

        for (int level = 0; level <= 9; level++) {
            for (int bits = 9; bits <= 15; bits += (lens[i] > 20000 ? 6 : 1)) {
                for (int t = 0; t < 2; t++) {
                    uint8_t *in = t == 0 ? rnd : txt, *z;
                    gh_deflater *d;
                    size_t cap = gh_deflate_bound(lens[i]);
                    long n = pool_deflate(pool, level, bits, in, lens[i], &z);

                    (void)n;
                    /* A compressor with context takeover, on its second message. */
                    d = gh_deflater_new(level, bits);
                    ck_assert_ptr_nonnull(d);
                    ck_assert_int_ge(gh_deflate(d, txt, lens[i], z, cap), 0);
                    ck_assert_int_ge(gh_deflate(d, in, lens[i], z, cap), 0);
                    gh_deflater_free(d);
                    free(z);
                }
            }
        }
        free(rnd);
        free(txt);
    }
    gh_zpool_free(pool);
}
END_TEST

START_TEST(deflate_refuses_bad_arguments_with_einval)
{
    gh_zpool *pool = gh_zpool_new();
    gh_deflater *d = gh_deflater_new(1, 15);
    uint8_t out[64];
    size_t b5 = gh_deflate_bound(5);

    ck_assert_uint_le(b5, sizeof(out));
    ck_assert_uint_eq(gh_deflate_bound(SIZE_MAX), SIZE_MAX);
    ck_assert_uint_ge(gh_deflate_bound(1000000), 1000000 + 1000000 / 8);
    ck_assert_int_eq(gh_zpool_deflate(pool, -1, 15, (const uint8_t *)"Hello", 5, out, b5), GH_EINVAL);
    ck_assert_int_eq(gh_zpool_deflate(pool, 10, 15, (const uint8_t *)"Hello", 5, out, b5), GH_EINVAL);
    ck_assert_int_eq(gh_zpool_deflate(pool, 1, 8, (const uint8_t *)"Hello", 5, out, b5), GH_EINVAL);
    ck_assert_int_eq(gh_zpool_deflate(pool, 1, 16, (const uint8_t *)"Hello", 5, out, b5), GH_EINVAL);
    ck_assert_int_eq(gh_zpool_deflate(pool, 1, 15, (const uint8_t *)"Hello", 5, out, b5 - 1), GH_EINVAL);
    ck_assert_int_eq(gh_zpool_deflate(pool, 1, 15, NULL, 5, out, b5), GH_EINVAL);
    ck_assert_int_eq(gh_zpool_deflate(pool, 1, 15, (const uint8_t *)"Hello", 5, out, b5), 7);
    ck_assert_ptr_null(gh_deflater_new(1, 8));
    ck_assert_ptr_null(gh_deflater_new(10, 15));
    ck_assert_int_eq(gh_deflate(d, (const uint8_t *)"Hello", 5, out, b5 - 1), GH_EINVAL);
    ck_assert_int_eq(gh_deflate(d, (const uint8_t *)"Hello", 5, out, b5), 7);
    gh_deflater_free(d);
    gh_deflater_free(NULL);
    gh_zpool_free(pool);
}
END_TEST

/* ---- the pool's memory ---- */

/* zlib's documented sizes (zconf.h): an inflater 7 KiB of state plus its
 * window, a compressor 2^(windowBits+2) + 2^(memLevel+9) plus ~6 KiB. */
static void assert_about(size_t got, size_t base, const char *what)
{
    ck_assert_msg(got >= base + 5000 && got <= base + 8192, "%s: %zu bytes, want %zu + 5-8 KiB",
                  what, got, base);
}

START_TEST(pool_idle_bytes_count_the_kept_streams)
{
    gh_zpool *pool = gh_zpool_new();
    gh_inflater *zs[GH_ZPOOL_KEEP_INFLATERS + 3];
    size_t one, small, mid, large, before;
    uint8_t *in = text_bytes(20000, 5);

    ck_assert_uint_eq(gh_zpool_idle_bytes(pool), 0);
    zs[0] = gh_inflater_get(pool);
    ck_assert_uint_eq(gh_zpool_idle_bytes(pool), 0);        /* lent, not idle */
    gh_inflater_put(pool, zs[0]);
    one = gh_zpool_idle_bytes(pool);
    assert_about(one, 1 << 15, "idle inflater");
    /* Used and handed back: the same again (inflateReset keeps the window). */
    zs[0] = gh_inflater_get(pool);
    ck_assert_uint_eq(gh_zpool_idle_bytes(pool), 0);
    {
        outcome o;

        gh_inflater_put(pool, zs[0]);
        o = inflate_cut(pool, hello_z, sizeof(hello_z), NULL, 0, 16, false);
        gb_free(&o.out);
    }
    ck_assert_uint_eq(gh_zpool_idle_bytes(pool), one);
    /* More than it keeps: the rest are freed. */
    for (size_t i = 0; i < GH_ZPOOL_KEEP_INFLATERS + 3; i++)
        ck_assert_ptr_nonnull(zs[i] = gh_inflater_get(pool));
    ck_assert_uint_eq(gh_zpool_idle_bytes(pool), 0);
    for (size_t i = 0; i < GH_ZPOOL_KEEP_INFLATERS + 3; i++)
        gh_inflater_put(pool, zs[i]);
    ck_assert_uint_eq(gh_zpool_idle_bytes(pool), GH_ZPOOL_KEEP_INFLATERS * one);

    /* One compressor per size class: <= 2 KiB a 2^12 window and memLevel 5,
     * <= 16 KiB memLevel 7, above memLevel 8. */
    before = gh_zpool_idle_bytes(pool);
    deflate_once(pool, 1, 15, in, 512);
    small = gh_zpool_idle_bytes(pool) - before;
    assert_about(small, (1 << 14) + (1 << 14), "compressor <= 2 KiB");
    deflate_once(pool, 1, 15, in, 2048);       /* the same one */
    ck_assert_uint_eq(gh_zpool_idle_bytes(pool) - before, small);
    deflate_once(pool, 1, 15, in, 8000);
    mid = gh_zpool_idle_bytes(pool) - before - small;
    assert_about(mid, (1 << 17) + (1 << 16), "compressor <= 16 KiB");
    deflate_once(pool, 1, 15, in, 20000);
    large = gh_zpool_idle_bytes(pool) - before - small - mid;
    assert_about(large, (1 << 17) + (1 << 17), "compressor > 16 KiB");
    /* Small messages share the 2^12 compressor whatever window was agreed
     * from 12 up; a smaller window is another compressor. */
    deflate_once(pool, 1, 13, in, 100);
    ck_assert_uint_eq(gh_zpool_idle_bytes(pool) - before, small + mid + large);
    deflate_once(pool, 1, 10, in, 100);
    ck_assert_uint_gt(gh_zpool_idle_bytes(pool) - before, small + mid + large);

    /* At most 6 compressors: levels 0..9 for small messages leave 6. */
    for (int level = 0; level <= 9; level++)
        deflate_once(pool, level, 15, in, 100);
    ck_assert_uint_eq(gh_zpool_idle_bytes(pool) - before, 6 * small);
    /* The least recently used goes first. Kept: levels 4..9 (small). */
    deflate_once(pool, 4, 15, in, 8000);            /* evicts small 4 */
    ck_assert_uint_eq(gh_zpool_idle_bytes(pool) - before, 5 * small + mid);
    deflate_once(pool, 5, 15, in, 100);             /* kept: used again */
    ck_assert_uint_eq(gh_zpool_idle_bytes(pool) - before, 5 * small + mid);
    deflate_once(pool, 1, 15, in, 8000);            /* evicts small 6, not 5 */
    ck_assert_uint_eq(gh_zpool_idle_bytes(pool) - before, 4 * small + 2 * mid);
    deflate_once(pool, 5, 15, in, 100);
    deflate_once(pool, 4, 15, in, 8000);
    ck_assert_uint_eq(gh_zpool_idle_bytes(pool) - before, 4 * small + 2 * mid);
    free(in);
    gh_zpool_free(pool);
}
END_TEST

static Suite *pmdeflate_suite(void)
{
    Suite *s = suite_create("pmdeflate");
    TCase *rfc = tcase_create("rfc7692");
    TCase *rt = tcase_create("round trips");
    TCase *bad = tcase_create("invalid");
    TCase *mem = tcase_create("memory");

    tcase_set_timeout(rfc, 120);
    tcase_set_timeout(rt, 300);
    tcase_set_timeout(bad, 120);
    tcase_set_timeout(mem, 120);
    tcase_add_test(rfc, rfc_7_2_3_1_hello_in_one_compressed_block);
    tcase_add_test(rfc, rfc_7_2_3_2_sharing_the_window_with_context_takeover);
    tcase_add_test(rfc, rfc_7_2_3_3_a_stored_block);
    tcase_add_test(rfc, rfc_7_2_3_4_a_final_block_then_an_empty_stored_block_header);
    tcase_add_test(rfc, rfc_7_2_3_5_two_deflate_blocks_in_one_message);
    tcase_add_test(rfc, rfc_7_2_3_6_the_empty_message_is_one_zero_byte);
    tcase_add_test(rt, pool_deflate_round_trips_through_inflate_every_way);
    tcase_add_test(rt, deflater_with_context_takeover_round_trips_and_shrinks_repeats);
    tcase_add_test(rt, inflater_reads_one_message_after_another_and_after_a_put_mid_message);
    tcase_add_test(rt, inflate_reports_full_output_exactly);
    tcase_add_test(rt, blocks_after_a_final_block_are_inflated_with_the_same_window);
    tcase_add_test(rt, carrying_the_window_over_final_blocks_is_bounded_per_message);
    tcase_add_test(rt, deflate_bound_holds_for_every_level_window_and_size_class);
    tcase_add_test(rt, deflate_refuses_bad_arguments_with_einval);
    tcase_add_test(bad, inflate_refuses_invalid_data_with_eproto_and_keeps_refusing);
    tcase_add_test(bad, inflate_never_fails_otherwise_on_random_input);
    tcase_add_test(bad, a_bomb_is_stopped_at_the_callers_limit);
    tcase_add_test(mem, pool_idle_bytes_count_the_kept_streams);
    suite_add_tcase(s, rfc);
    suite_add_tcase(s, rt);
    suite_add_tcase(s, bad);
    suite_add_tcase(s, mem);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pmdeflate_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
