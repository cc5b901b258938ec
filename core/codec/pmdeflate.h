/* pmdeflate.h: the DEFLATE side of permessage-deflate (RFC 7692 §7.2), over
 * zlib's raw streams. No I/O; not thread-safe (one pool per event loop).
 *
 * Memory is the point. zlib's state is about 256 KiB for a compressor with
 * a 32 KiB window and 7 KiB + a 32 KiB window for a decompressor; a gateway
 * holding 100,000 idle WebSockets cannot give each its own. So streams live
 * in a pool and are lent:
 *   - an inflater only while a compressed message is being received (from
 *     its first frame to its last, which usually arrive in one read), then
 *     handed back; that works because gatehouse always negotiates
 *     client_no_context_takeover, so no window outlives a message;
 *   - a compressor for no-context-takeover messages only for the call that
 *     compresses one whole message (gh_zpool_deflate), so one per pool
 *     serves every connection and every topic;
 *   - a connection with server context takeover owns its own compressor
 *     (gh_deflater_new): that is what the route asked for and its cost.
 *
 * Messages (RFC 7692 §7.2.1): a whole message is compressed with a sync
 * flush and the flush's trailing 00 00 ff ff removed; receiving, those four
 * bytes are appended after the message's last byte before inflating
 * (§7.2.2). */
#ifndef GH_PMDEFLATE_H
#define GH_PMDEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gh_zpool gh_zpool;
typedef struct gh_inflater gh_inflater;
typedef struct gh_deflater gh_deflater;

/* Idle inflaters a pool keeps for reuse; more are freed when handed back. */
#define GH_ZPOOL_KEEP_INFLATERS 8

/* A pool. NULL on ENOMEM. gh_zpool_free() frees the pool and every idle
 * stream in it (NULL-safe); lent inflaters must have been handed back. */
gh_zpool *gh_zpool_new(void);
void gh_zpool_free(gh_zpool *p);

/* Bytes of zlib state the pool holds while idle (its kept streams), for
 * metrics and tests: counted exactly as zlib allocates and frees them. */
size_t gh_zpool_idle_bytes(const gh_zpool *p);

/* ---- receiving ----------------------------------------------------------- */

/* Lends an inflater ready for a new message (any window up to 15 bits).
 * NULL on ENOMEM. Its window is allocated here: gh_inflate() never
 * allocates. */
gh_inflater *gh_inflater_get(gh_zpool *p);

/* Hands it back: reset and kept (up to GH_ZPOOL_KEEP_INFLATERS), or freed.
 * NULL-safe. An inflater may be handed back mid-message (the connection
 * failed): it is reset. */
void gh_inflater_put(gh_zpool *p, gh_inflater *z);

/* Inflates in[0..len), the next bytes of one compressed message, into
 * out[0..cap). fin: in ends the message; the 00 00 ff ff tail is then fed
 * after it by this call (and the calls that continue it).
 * *consumed: bytes of in used; *produced: bytes written to out (never more
 * than cap).
 * Returns:
 *   GH_OK      all of in was consumed and all output so far was written;
 *              with fin, the message is complete and the inflater is ready
 *              for the next message (no context takeover: it starts from an
 *              empty window).
 *   GH_EAGAIN  out is full (*produced == cap) and output (or input)
 *              remains: call again with in + *consumed, len - *consumed,
 *              the same fin, and more room. Whether more output really
 *              follows is only known by calling again; a caller at its size
 *              limit calls once more with one byte of room: any byte
 *              produced is over the limit.
 *   GH_EPROTO  in is not valid DEFLATE data (close 1007), or with fin the
 *              data stops inside a block (truncated). Blocks after a final
 *              block (BFINAL) are valid: RFC 7692 §7.2.1 lets a sender use
 *              BFINAL and go on with more blocks (§7.2.3.4's example ends
 *              with a final block and an empty stored block's first byte);
 *              they are inflated with the same window. An empty payload
 *              (fin with no byte at all) is taken as an empty message.
 *              The inflater must be handed back.
 * len may be 0 (then in may be NULL), e.g. to finish with fin. */
int gh_inflate(gh_inflater *z, const uint8_t *in, size_t len, bool fin,
               uint8_t *out, size_t cap, size_t *consumed, size_t *produced);

/* ---- sending ------------------------------------------------------------- */

/* Room enough for any compressed message of len input bytes, the 4 bytes
 * removed included (the flush writes them before they are dropped): zlib's
 * deflateBound() for parameters it cannot be tight for, the larger of its
 * bounds for fixed blocks (len + len/8 + len/256 + len/512 + 4) and stored
 * blocks (len + len/32 + len/128 + len/2048 + 7) plus 6, then 6 more for
 * the sync flush's empty stored block. SIZE_MAX when len > SIZE_MAX / 2. */
size_t gh_deflate_bound(size_t len);

/* Compresses the whole message in[0..len) from an empty window (no context
 * takeover) with the pool's compressor for (level, window_bits), into
 * out[0..cap), cap >= gh_deflate_bound(len). level 0..9 (zlib's; 0 stores),
 * window_bits 9..15. The pool keeps one compressor per (level, window_bits,
 * size class): small messages use a small hash table, so resetting it per
 * message stays cheap. Returns the compressed length (the tail removed; an
 * empty message gives the single byte 0x00), or GH_EINVAL (bad level, bits
 * or cap) or GH_ENOMEM. */
long gh_zpool_deflate(gh_zpool *p, int level, int window_bits, const uint8_t *in,
                      size_t len, uint8_t *out, size_t cap);

/* A compressor of one's own, for a connection with server context
 * takeover: each message is compressed with the window of the ones before.
 * NULL on ENOMEM or bad arguments. gh_deflater_free() is NULL-safe. */
gh_deflater *gh_deflater_new(int level, int window_bits);
void gh_deflater_free(gh_deflater *d);

/* Compresses the whole message in[0..len) into out[0..cap), cap >=
 * gh_deflate_bound(len), keeping the window for the next message. Returns
 * the compressed length, or GH_EINVAL / GH_ENOMEM (the deflater is then
 * unusable: free it). */
long gh_deflate(gh_deflater *d, const uint8_t *in, size_t len, uint8_t *out, size_t cap);

#endif
