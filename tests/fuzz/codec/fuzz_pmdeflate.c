/* fuzz_pmdeflate.c: libFuzzer driver for permessage-deflate's DEFLATE side.
 *
 * Input: byte 0 seeds the chunk sizes and output rooms, byte 1 picks the
 * level and window for compressing, the rest is the data.
 *
 * The data as a received compressed message: inflated whole, with all the
 * room left under a 1 MiB cap, and again in random chunks (some empty, fin
 * sometimes in an empty call of its own) with random rooms (mostly 1..64
 * bytes, some up to 8 KiB).
 * The cap is kept the way the glue keeps max_message: at the cap, one more
 * call with one byte of room, and any byte is over; so a bomb costs at most
 * 1 MiB. Inputs and rooms are malloc'd at their exact size (ASan sees an
 * access past either). Checked: consumed and produced within what was
 * given, GH_EAGAIN only with the room full, no code but GH_OK, GH_EAGAIN
 * and GH_EPROTO, GH_EPROTO sticks; and both runs agree on the outcome
 * (complete, invalid, over the cap) and, unless invalid, on every byte.
 *
 * The data as a message to send: compressed by the pool into exactly
 * gh_deflate_bound() bytes and inflated back in random chunks: the same
 * bytes. Then cut in two and sent as two messages by a compressor with
 * context takeover: a raw zlib inflater that keeps its window (the peer)
 * reads both, and gh_inflate() the first. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "err.h"
#include "pmdeflate.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define CAP ((size_t)1 << 20)

enum { DONE = 0, INVALID, OVER };

typedef struct outcome {
    int      end;            /* DONE, INVALID or OVER */
    size_t   len;            /* bytes inflated before the end */
} outcome;

/* xorshift, for chunk sizes and rooms */
static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static uint8_t *copy_of(const uint8_t *d, size_t n)
{
    uint8_t *c;

    if (n == 0)
        return NULL;
    if ((c = malloc(n)) == NULL)
        abort();
    memcpy(c, d, n);
    return c;
}

/* Inflates msg[0..n) as one message. seed 0: in one chunk with all the
 * room under CAP; else random chunks and rooms. keep: where the output goes
 * (room for CAP bytes), or NULL; want: the output it must match (of
 * want_len bytes: past them, unchecked), or NULL. */
static outcome inflate_run(gh_zpool *pool, const uint8_t *msg, size_t n, uint32_t seed,
                           uint8_t *keep, const uint8_t *want, size_t want_len)
{
    outcome o = { .end = DONE };
    gh_inflater *z = gh_inflater_get(pool);
    bool fin_apart = seed != 0 && (seed & 0x100) != 0;
    size_t off = 0;
    bool fin = false;

    CHECK(z != NULL);
    while (!fin) {
        size_t clen = seed == 0 ? n - off : next_rand(&seed) % 65;
        uint8_t *chunk, *in;
        size_t left;

        if (clen > n - off)
            clen = n - off;
        fin = off + clen == n && (!fin_apart || clen == 0);
        in = chunk = copy_of(msg + off, clen);
        left = clen;
        for (;;) {
            uint32_t r = seed == 0 ? 0 : next_rand(&seed);
            size_t room = seed == 0 ? CAP - o.len : 1 + r % ((r & 0x30000) ? 64 : 8192);
            bool probe = o.len == CAP;
            size_t used = SIZE_MAX, made = SIZE_MAX;
            uint8_t *out;
            int rc;

            if (probe)
                room = 1;
            else if (room > CAP - o.len)
                room = CAP - o.len;
            if ((out = malloc(room)) == NULL)
                abort();
            rc = gh_inflate(z, in, left, fin, out, room, &used, &made);
            CHECK(used <= left && made <= room);
            CHECK(rc == GH_OK || rc == GH_EAGAIN || rc == GH_EPROTO);
            CHECK(rc != GH_EAGAIN || made == room);
            if (probe && made > 0)
                o.end = OVER;
            else if (rc == GH_EPROTO)
                o.end = INVALID;
            if (o.end == DONE) {
                if (keep != NULL)
                    memcpy(keep + o.len, out, made);
                if (want != NULL && o.len < want_len) {
                    size_t k = made < want_len - o.len ? made : want_len - o.len;

                    CHECK(memcmp(out, want + o.len, k) == 0);
                }
                o.len += made;
            }
            free(out);
            if (rc == GH_EPROTO) {
                CHECK(gh_inflate(z, in, left, fin, NULL, 0, &used, &made) == GH_EPROTO);
                CHECK(used == 0 && made == 0);
            }
            in += used;
            left -= used;
            if (o.end != DONE || rc == GH_OK)
                break;
        }
        free(chunk);
        if (o.end != DONE)
            break;
        CHECK(left == 0);
        off += clen;
    }
    gh_inflater_put(pool, z);
    return o;
}

/* The peer's side of context takeover: inflates one message with the tail
 * appended, keeping the window. */
static void peer_inflate(z_stream *s, const uint8_t *msg, size_t n, const uint8_t *want,
                         size_t want_len)
{
    uint8_t *buf = malloc(n + 4), *out = malloc(want_len + 1);
    int rc;

    if (buf == NULL || out == NULL)
        abort();
    memcpy(buf, msg, n);
    memcpy(buf + n, "\x00\x00\xff\xff", 4);
    s->next_in = buf;
    s->avail_in = (uInt)(n + 4);
    s->next_out = out;
    s->avail_out = (uInt)(want_len + 1);
    rc = inflate(s, Z_SYNC_FLUSH);
    CHECK(rc == Z_OK || rc == Z_BUF_ERROR);
    CHECK(s->avail_in == 0 && want_len + 1 - s->avail_out == want_len);
    CHECK(want_len == 0 || memcmp(out, want, want_len) == 0);
    free(buf);
    free(out);
}

static void round_trip(gh_zpool *pool, const uint8_t *d, size_t n, int level, int bits,
                       uint32_t seed)
{
    size_t cap = gh_deflate_bound(n), k = n > 0 ? seed % (n + 1) : 0;
    uint8_t *z = malloc(cap);
    gh_deflater *defl;
    z_stream peer;
    outcome o;
    long zn;

    if (z == NULL)
        abort();
    zn = gh_zpool_deflate(pool, level, bits, d, n, z, cap);
    CHECK(zn > 0 && (size_t)zn <= cap);
    o = inflate_run(pool, z, (size_t)zn, seed | 1, NULL, d, n);
    CHECK(o.end == DONE && o.len == n);

    /* Context takeover: d[0..k) then d[k..n). */
    if ((defl = gh_deflater_new(level, bits)) == NULL)
        abort();
    memset(&peer, 0, sizeof(peer));
    CHECK(inflateInit2(&peer, -15) == Z_OK);
    zn = gh_deflate(defl, d, k, z, cap);
    CHECK(zn > 0 && (size_t)zn <= cap);
    peer_inflate(&peer, z, (size_t)zn, d, k);
    o = inflate_run(pool, z, (size_t)zn, seed | 1, NULL, d, k);
    CHECK(o.end == DONE && o.len == k);
    zn = gh_deflate(defl, d + k, n - k, z, cap);
    CHECK(zn > 0 && (size_t)zn <= cap);
    peer_inflate(&peer, z, (size_t)zn, d + k, n - k);
    inflateEnd(&peer);
    gh_deflater_free(defl);
    free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t whole[CAP];
    gh_zpool *pool;
    outcome a, b;
    uint32_t seed;
    int level, bits;

    if (size < 2)
        return 0;
    seed = (uint32_t)data[0] * 2654435761u | 1;
    level = data[1] % 10;
    bits = 9 + (data[1] / 10) % 7;
    data += 2;
    size -= 2;
    if ((pool = gh_zpool_new()) == NULL)
        abort();

    a = inflate_run(pool, data, size, 0, whole, NULL, 0);
    b = inflate_run(pool, data, size, seed, NULL, whole, a.len);
    /* Up to an error, how much a call writes depends on its room. */
    CHECK(a.end == b.end);
    CHECK(a.end == INVALID || a.len == b.len);
    CHECK(a.len <= CAP);

    round_trip(pool, data, size, level, bits, seed);
    gh_zpool_free(pool);
    return 0;
}
