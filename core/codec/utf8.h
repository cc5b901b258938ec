/* utf8.h: incremental UTF-8 validator (RFC 3629). No I/O, no allocation.
 *
 * Used for WebSocket text messages and close reasons (RFC 6455 §5.6, §8.1),
 * which may arrive split anywhere, even inside a code point. The validator
 * fails fast: it rejects at the first byte that makes the input impossible
 * to complete as UTF-8 (Autobahn 6.x expects this), not at the end. */
#ifndef GH_UTF8_H
#define GH_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Validator state; caller's storage. Treat as opaque; set up with
 * gh_utf8_init(). */
typedef struct {
    uint32_t state;
} gh_utf8;

/* Starts a new text: no bytes seen, not inside a sequence. */
void gh_utf8_init(gh_utf8 *u);

/* Validates the next len bytes of the text (len may be 0; buf may be NULL
 * when len is 0). Code points may straddle calls.
 * Returns 0 while everything fed so far is a valid prefix of UTF-8, or
 * GH_EPROTO at the first byte that cannot be: a stray continuation byte,
 * 0xC0/0xC1/0xF5..0xFF, a lead byte not followed by a continuation, an
 * overlong form (0xE0 0x80..0x9F, 0xF0 0x80..0x8F), a surrogate
 * (0xED 0xA0..0xBF) or a code point above U+10FFFF (0xF4 0x90..0xBF).
 * Once it has failed it keeps returning GH_EPROTO until gh_utf8_init(). */
int gh_utf8_feed(gh_utf8 *u, const uint8_t *buf, size_t len);

/* True when the text fed so far is valid and does not end inside a
 * multi-byte sequence, i.e. it could end here. */
bool gh_utf8_is_complete(const gh_utf8 *u);

#endif
