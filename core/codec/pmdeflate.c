/* pmdeflate.c: permessage-deflate's DEFLATE side (RFC 7692 §7.2) on zlib's
 * raw streams, and the pool that lends them.
 *
 * Why this shape: zlib's state is big (see pmdeflate.h), so streams are
 * lent for the span of one message and kept in a small per-loop pool. Every
 * stream allocates through a counting allocator, so the pool knows the exact
 * bytes it holds (gh_zpool_idle_bytes) instead of guessing from formulas.
 *
 * Inflaters use a 32 KiB window (-15: they read any window the client
 * picks). The window is allocated when the inflater is made, not lazily on
 * its first output as zlib would, so gh_inflate() never allocates and has
 * no out-of-memory path. A message is inflated with the 00 00 ff ff tail
 * fed after its last byte (§7.2.2); it is complete when, once the tail is
 * in, the decoder stands between two blocks (or after a final block). A
 * final block (BFINAL) need not end the message: §7.2.1 lets a sender use
 * blocks with BFINAL set and have more blocks follow, so the decoder is
 * restarted after it, carrying the window over (the window is one LZ77
 * window across the message's blocks). Carrying it over costs copying up to
 * 32 KiB out and back in; that work is bounded per message (see
 * restart_after_final_block) so a stream of tiny final blocks cannot make
 * a few bytes cost 64 KiB of copying each.
 *
 * Compressors for whole messages without context takeover are keyed by
 * (level, window bits, size class). deflateReset() clears the hash head
 * table, 2^(memLevel+8) bytes, before every message; the memLevel of a
 * class is the smallest that compresses as well as memLevel 8 without
 * being slower. Measured on 512-byte chat JSON at level 1 (zlib 1.2.13,
 * one x86-64 core), ns per message / bytes out / deflateReset alone:
 *   memLevel 3: 12742 / 287.1 / 105      memLevel 6: 11199 / 287.1 / 174
 *   memLevel 4: 11761 / 287.2 / 122      memLevel 7: 10854 / 287.1 / 244
 *   memLevel 5: 11117 / 287.1 / 138      memLevel 8: 11591 / 287.1 / 1251
 * Below 5 the 2^(memLevel+7)-entry hash collides on ASCII and the chains
 * get long (at 2 KiB memLevel 3 is 50% slower and 3% bigger); from 8 up
 * the reset's memset shows. At 8-16 KiB memLevel 7 matches 8 in size
 * (within 0.1%) and time; above that the reset is noise and 8 is zlib's
 * default. A message of at most 2 KiB also gets a window of at most 2^12:
 * every distance inside it is reachable (4096 - 262 > 2048), so the output
 * is the same as with 2^15, from 39 KiB of zlib state instead of 153 KiB.
 *
 * What it does not do: context takeover when inflating (gatehouse always
 * negotiates client_no_context_takeover), preset dictionaries, threads. */
#include "pmdeflate.h"

#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "err.h"

#define INFLATE_WINDOW_BITS 15
#define MAX_COMPRESSORS     6       /* pool compressors kept, least recently used evicted */

/* What a sync flush ends with, removed when sending (§7.2.1) and fed back
 * when receiving (§7.2.2). */
static const uint8_t sync_tail[4] = { 0x00, 0x00, 0xff, 0xff };

/* ---- counting allocator --------------------------------------------------- */

/* Each block is preceded by its size, so that zfree can subtract it. */
typedef union zhdr {
    max_align_t align;
    size_t      size;
} zhdr;

static voidpf zalloc_counted(voidpf opaque, uInt items, uInt size)
{
    size_t *counter = opaque;
    size_t n;
    zhdr *h;

    if (size != 0 && items > (SIZE_MAX - sizeof(zhdr)) / size)
        return Z_NULL;
    n = (size_t)items * size;
    if ((h = malloc(sizeof(zhdr) + n)) == NULL)
        return Z_NULL;
    h->size = n;
    *counter += n;
    return h + 1;
}

static void zfree_counted(voidpf opaque, voidpf ptr)
{
    size_t *counter = opaque;
    zhdr *h;

    if (ptr == Z_NULL)
        return;
    h = (zhdr *)ptr - 1;
    *counter -= h->size;
    free(h);
}

static void use_counted_allocator(z_stream *s, size_t *counter)
{
    memset(s, 0, sizeof(*s));
    s->zalloc = zalloc_counted;
    s->zfree = zfree_counted;
    s->opaque = counter;
}

/* ---- types ---------------------------------------------------------------- */

struct gh_inflater {
    z_stream strm;
    size_t   zbytes;        /* zlib's allocations for this stream */
    uint64_t copy_credit;   /* window bytes this message may still carry over a final block */
    uint8_t  tail_fed;      /* bytes of sync_tail fed (after the message's last byte) */
    bool     ended;         /* the decoder stopped after a final block */
    bool     at_boundary;   /* the last inflate() left it between blocks: no output pending */
    bool     any_input;     /* a byte of this message was fed */
    bool     failed;        /* GH_EPROTO was returned */
};

/* A pool compressor: one message at a time, reset before each. */
typedef struct zcomp {
    z_stream strm;
    size_t   zbytes;
    uint64_t last_used;     /* the pool's tick when last lent; 0: slot empty */
    int      level;
    int      window_bits;
    int      mem_level;
    bool     dirty;         /* used since the last reset */
} zcomp;

struct gh_zpool {
    gh_inflater *idle[GH_ZPOOL_KEEP_INFLATERS];
    size_t       nidle;
    uint64_t     tick;
    zcomp        comp[MAX_COMPRESSORS];   /* z_streams must not move: zlib checks */
};

struct gh_deflater {
    z_stream strm;
    size_t   zbytes;
    bool     broken;        /* a call failed midway: the stream is unusable */
};

/* ---- pool ----------------------------------------------------------------- */

gh_zpool *gh_zpool_new(void)
{
    return calloc(1, sizeof(gh_zpool));
}

static void inflater_free(gh_inflater *z)
{
    inflateEnd(&z->strm);
    free(z);
}

static void comp_drop(zcomp *c)
{
    if (c->last_used != 0)
        deflateEnd(&c->strm);
    c->last_used = 0;
}

void gh_zpool_free(gh_zpool *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nidle; i++)
        inflater_free(p->idle[i]);
    for (size_t i = 0; i < MAX_COMPRESSORS; i++)
        comp_drop(&p->comp[i]);
    free(p);
}

size_t gh_zpool_idle_bytes(const gh_zpool *p)
{
    size_t n = 0;

    for (size_t i = 0; i < p->nidle; i++)
        n += p->idle[i]->zbytes;
    for (size_t i = 0; i < MAX_COMPRESSORS; i++)
        if (p->comp[i].last_used != 0)
            n += p->comp[i].zbytes;
    return n;
}

/* ---- receiving ------------------------------------------------------------ */

/* Carried over a final block per message, besides what its input earns. */
#define COPY_CREDIT_START   ((uint64_t)1 << INFLATE_WINDOW_BITS)
/* Window bytes a consumed compressed byte earns for carrying over. */
#define COPY_CREDIT_PER_BYTE 16

static void begin_message(gh_inflater *z)
{
    z->copy_credit = COPY_CREDIT_START;
    z->tail_fed = 0;
    z->ended = false;
    z->at_boundary = true;
    z->any_input = false;
    z->failed = false;
}

static gh_inflater *inflater_new(void)
{
    static const Bytef none[1];
    gh_inflater *z = calloc(1, sizeof(*z));

    if (z == NULL)
        return NULL;
    use_counted_allocator(&z->strm, &z->zbytes);
    if (inflateInit2(&z->strm, -INFLATE_WINDOW_BITS) != Z_OK) {
        free(z);
        return NULL;
    }
    /* Setting an empty dictionary makes zlib allocate the window now
     * rather than inside a later inflate(); inflateReset keeps it. */
    if (inflateSetDictionary(&z->strm, none, 0) != Z_OK || inflateReset(&z->strm) != Z_OK) {
        inflater_free(z);
        return NULL;
    }
    begin_message(z);
    return z;
}

gh_inflater *gh_inflater_get(gh_zpool *p)
{
    if (p->nidle > 0)
        return p->idle[--p->nidle];
    return inflater_new();
}

void gh_inflater_put(gh_zpool *p, gh_inflater *z)
{
    if (z == NULL)
        return;
    if (p->nidle == GH_ZPOOL_KEEP_INFLATERS) {
        inflater_free(z);
        return;
    }
    inflateReset(&z->strm);
    begin_message(z);
    p->idle[p->nidle++] = z;
}

/* The decoder stopped after a final block and more of the message follows:
 * start a new block sequence with the same window (§7.2.1: "The next
 * DEFLATE block follows the padded data"). The copy (out, then back in) is
 * paid from the message's credit: 32 KiB free, plus COPY_CREDIT_PER_BYTE
 * per compressed byte consumed. A sender that ends a block with BFINAL once
 * per flush never runs out; one that sends nothing but tiny final blocks
 * does, and then goes on with an empty window (a later reference into the
 * old one fails as invalid data). Kept out of line: the copy is on the
 * stack, and rare. */
static __attribute__((noinline)) void restart_after_final_block(gh_inflater *z)
{
    Bytef window[1U << INFLATE_WINDOW_BITS];
    uInt have = 0;

    inflateGetDictionary(&z->strm, Z_NULL, &have);
    if (have > 0 && have <= sizeof(window) && z->copy_credit >= have) {
        inflateGetDictionary(&z->strm, window, &have);
        z->copy_credit -= have;
    } else {
        have = 0;
    }
    inflateReset(&z->strm);
    if (have > 0)
        inflateSetDictionary(&z->strm, window, have);   /* the window exists: cannot fail */
    z->ended = false;
    z->at_boundary = true;
}

static int inflate_fail(gh_inflater *z)
{
    z->failed = true;
    return GH_EPROTO;
}

int gh_inflate(gh_inflater *z, const uint8_t *in, size_t len, bool fin,
               uint8_t *out, size_t cap, size_t *consumed, size_t *produced)
{
    static Bytef no_room[1];    /* zlib wants next_out set even with no room */
    size_t ci = 0, po = 0;
    bool in_left, done;

    *consumed = 0;
    *produced = 0;
    if (z->failed)
        return GH_EPROTO;

    for (;;) {
        const Bytef *src = NULL;
        size_t avail = 0;
        bool tail = false;
        uInt ai, ao;
        int rc;

        if (ci < len) {
            src = in + ci;
            avail = len - ci;
            if (z->ended)
                restart_after_final_block(z);
        } else if (fin && !z->ended && z->tail_fed < sizeof(sync_tail)) {
            src = sync_tail + z->tail_fed;
            avail = sizeof(sync_tail) - z->tail_fed;
            tail = true;
        } else if (z->ended || z->at_boundary || po == cap) {
            break;                      /* nothing pending, or no room for it */
        }
        /* else: no input, but output may be pending from an earlier call */

        ai = avail > UINT_MAX ? UINT_MAX : (uInt)avail;
        ao = cap - po > UINT_MAX ? UINT_MAX : (uInt)(cap - po);
        z->strm.next_in = (Bytef *)(uintptr_t)src;
        z->strm.avail_in = ai;
        z->strm.next_out = cap > 0 ? out + po : no_room;
        z->strm.avail_out = ao;
        rc = inflate(&z->strm, Z_NO_FLUSH);

        size_t used = ai - z->strm.avail_in, made = ao - z->strm.avail_out;

        po += made;
        if (tail) {
            z->tail_fed = (uint8_t)(z->tail_fed + used);
        } else if (used > 0) {
            ci += used;
            z->any_input = true;
            if (z->copy_credit < UINT64_MAX / 2)
                z->copy_credit += (uint64_t)used * COPY_CREDIT_PER_BYTE;
        }
        /* Bit 128: the decoder is between blocks, so all output of the
         * blocks before is written. zlib sets it only in the call that
         * reaches the boundary (called there again with no input, it
         * clears it); no such call is made here: see the break above. */
        z->at_boundary = (z->strm.data_type & 128) != 0;
        switch (rc) {
        case Z_OK:
        case Z_BUF_ERROR:               /* no progress: needs input or room */
            break;
        case Z_STREAM_END:              /* after a final block */
            z->ended = true;
            continue;
        default:                        /* Z_DATA_ERROR, Z_NEED_DICT; nothing else can */
            *consumed = ci;
            *produced = po;
            return inflate_fail(z);
        }
        if (used == 0 && made == 0)
            break;
    }
    *consumed = ci;
    *produced = po;

    in_left = ci < len || (fin && !z->ended && z->tail_fed < sizeof(sync_tail));
    if (in_left) {
        /* zlib stops with input left only when out is full. */
        return po == cap ? GH_EAGAIN : inflate_fail(z);
    }
    done = z->ended || z->at_boundary;
    if (!done && po == cap)
        return GH_EAGAIN;               /* output may be pending */
    if (!fin)
        return GH_OK;
    /* The whole message and the tail are in and out. It must end between
     * blocks (a conforming sender's last bytes start an empty stored block
     * that the tail completes, §7.2.1), or after a final block followed by
     * nothing but (part of) the tail. An empty payload is an empty message:
     * not valid DEFLATE, but there is nothing in it to misread. */
    if (!done && z->any_input)
        return inflate_fail(z);
    inflateReset(&z->strm);             /* no context takeover: an empty window */
    begin_message(z);
    return GH_OK;
}

/* ---- sending -------------------------------------------------------------- */

size_t gh_deflate_bound(size_t len)
{
    size_t fixed, stored;

    /* ~1.14 * len + 19 below: no overflow up to here. */
    if (len > SIZE_MAX / 2)
        return SIZE_MAX;
    /* zlib 1.2.13's deflateBound() when it cannot assume memLevel 8 and a
     * 2^15 window: the larger of its bounds for fixed blocks of 9-bit
     * literals and for stored blocks, plus the 6 bytes it adds for a zlib
     * wrapper (unused here: slack). Those bound a single deflate() call with
     * Z_FINISH; ending with Z_SYNC_FLUSH instead leaves the last block open
     * and adds an empty stored block: its 3 header bits with the last
     * block's padding (at most 2 bytes) and LEN/NLEN (4), which the last 6
     * cover. */
    fixed = len + (len >> 3) + (len >> 8) + (len >> 9) + 4;
    stored = len + (len >> 5) + (len >> 7) + (len >> 11) + 7;
    return (fixed > stored ? fixed : stored) + 6 + 6;
}

static bool params_ok(int level, int window_bits)
{
    return level >= 0 && level <= 9 && window_bits >= 9 && window_bits <= 15;
}

/* The compressed length must fit the long returned. */
static bool buffers_ok(const uint8_t *in, size_t len, const uint8_t *out, size_t cap)
{
    size_t bound = gh_deflate_bound(len);

    return (in != NULL || len == 0) && out != NULL && cap >= bound && bound <= (size_t)LONG_MAX;
}

/* Compresses in[0..len) (len > 0) and sync-flushes into out[0..cap), then
 * drops the flush's 00 00 ff ff. Returns the length or GH_EINVAL. */
static long compress_message(z_stream *s, const uint8_t *in, size_t len,
                             uint8_t *out, size_t cap)
{
    size_t in_left = len, out_left = cap, n;

    for (;;) {
        uInt ai = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
        uInt ao = out_left > UINT_MAX ? UINT_MAX : (uInt)out_left;
        int flush = ai == in_left ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        int rc;

        s->next_in = (Bytef *)(uintptr_t)(in + (len - in_left));
        s->avail_in = ai;
        s->next_out = out + (cap - out_left);
        s->avail_out = ao;
        rc = deflate(s, flush);

        size_t used = ai - s->avail_in, made = ao - s->avail_out;

        in_left -= used;
        out_left -= made;
        if (rc != Z_OK && rc != Z_BUF_ERROR)
            return GH_EINVAL;
        /* zlib: the flush is done when deflate() returns with room left. */
        if (flush == Z_SYNC_FLUSH && in_left == 0 && s->avail_out != 0)
            break;
        if (out_left == 0 || (used == 0 && made == 0))
            return GH_EINVAL;           /* out of room: gh_deflate_bound is a bound */
    }
    n = cap - out_left;
    /* §7.2.1: the data must end with an empty stored block, whose last 4
     * bytes are dropped. A sync flush always writes one; check rather than
     * send a corrupt message. */
    if (n < sizeof(sync_tail) || memcmp(out + n - sizeof(sync_tail), sync_tail,
                                        sizeof(sync_tail)) != 0)
        return GH_EINVAL;
    return (long)(n - sizeof(sync_tail));
}

/* §7.2.3.6: the empty message is an empty stored block, less its LEN and
 * NLEN: one byte, 0x00. Written directly: zlib writes nothing for a sync
 * flush with no input right after another one. */
static long empty_message(uint8_t *out)
{
    out[0] = 0x00;
    return 1;
}

/* The pool's compressor for a message of len bytes, reset; NULL on ENOMEM. */
static zcomp *pool_compressor(gh_zpool *p, int level, int window_bits, size_t len)
{
    int mem_level = 8;
    zcomp *c = NULL;

    if (len <= 2048) {
        mem_level = 5;
        if (window_bits > 12)
            window_bits = 12;
    } else if (len <= 16384) {
        mem_level = 7;
    }
    for (size_t i = 0; i < MAX_COMPRESSORS; i++) {
        zcomp *k = &p->comp[i];

        if (k->last_used != 0 && k->level == level && k->window_bits == window_bits
            && k->mem_level == mem_level) {
            c = k;
            break;
        }
        if (c == NULL || k->last_used < c->last_used)
            c = k;                      /* an empty slot, else the least recently used */
    }
    if (c->last_used == 0 || c->level != level || c->window_bits != window_bits
        || c->mem_level != mem_level) {
        comp_drop(c);
        use_counted_allocator(&c->strm, &c->zbytes);
        if (deflateInit2(&c->strm, level, Z_DEFLATED, -window_bits, mem_level,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            return NULL;
        c->level = level;
        c->window_bits = window_bits;
        c->mem_level = mem_level;
        c->dirty = false;
    } else if (c->dirty && deflateReset(&c->strm) != Z_OK) {
        comp_drop(c);
        return NULL;
    }
    c->dirty = true;
    c->last_used = ++p->tick;
    return c;
}

long gh_zpool_deflate(gh_zpool *p, int level, int window_bits, const uint8_t *in,
                      size_t len, uint8_t *out, size_t cap)
{
    zcomp *c;

    if (!params_ok(level, window_bits) || !buffers_ok(in, len, out, cap))
        return GH_EINVAL;
    if (len == 0)
        return empty_message(out);
    if ((c = pool_compressor(p, level, window_bits, len)) == NULL)
        return GH_ENOMEM;
    return compress_message(&c->strm, in, len, out, cap);
}

gh_deflater *gh_deflater_new(int level, int window_bits)
{
    gh_deflater *d;

    if (!params_ok(level, window_bits))
        return NULL;
    if ((d = calloc(1, sizeof(*d))) == NULL)
        return NULL;
    use_counted_allocator(&d->strm, &d->zbytes);
    /* memLevel 8: the stream lives as long as the connection and is never
     * reset, so only the ratio counts. */
    if (deflateInit2(&d->strm, level, Z_DEFLATED, -window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(d);
        return NULL;
    }
    return d;
}

void gh_deflater_free(gh_deflater *d)
{
    if (d == NULL)
        return;
    deflateEnd(&d->strm);
    free(d);
}

long gh_deflate(gh_deflater *d, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    long n;

    if (d->broken || !buffers_ok(in, len, out, cap))
        return GH_EINVAL;
    if (len == 0)
        return empty_message(out);      /* the window is unchanged, as the peer's */
    if ((n = compress_message(&d->strm, in, len, out, cap)) < 0)
        d->broken = true;
    return n;
}
