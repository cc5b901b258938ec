/* fuzz_wsframe.c: libFuzzer driver for the RFC 6455 frame parser.
 *
 * Input: byte 0 seeds the chunk sizes the stream is fed in, byte 1 picks
 * max_message (low 3 bits) and rsv1_ok (bit 3: permessage-deflate
 * negotiated), the rest is the client byte stream. The stream is parsed
 * twice — in random chunks and whole — from malloc'd copies (the parser
 * unmasks in place). Control-frame storage is lent on GH_WS_EV_NEED_BUFFER
 * as malloc'd blocks of exactly GH_WS_MAX_CONTROL bytes (ASan sees a write
 * past one, LeakSanitizer one never handed back or freed). Checked:
 * consumed <= given and progress is made; DATA chunks lie within the
 * consumed bytes; control payloads lie within them (frame whole in the
 * call) or at the start of the lent block handed back with the event;
 * storage is asked for only when none is lent, and comes back at the end
 * of its frame; the whole run never asks except for a frame cut off by the
 * end of the input; text messages and close reasons are valid UTF-8,
 * unless compressed; compressed messages only with rsv1_ok, every chunk of
 * one marked; no message exceeds max_message (a compressed one max_message
 * + max_message / 8 + 64); errors carry 1002/1007/1009 and stick; and both
 * runs agree on the outcome and on every complete message and control
 * frame. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "utf8.h"
#include "wsframe.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

typedef struct outcome {
    long     rc;
    uint16_t error_code;
    uint64_t transcript;     /* hash of complete messages and control frames */
    size_t   events;
} outcome;

static uint64_t mix(uint64_t h, const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * UINT64_C(0x100000001b3);
    return h;
}

static uint64_t mix_u64(uint64_t h, uint64_t v)
{
    uint8_t b[8];

    memcpy(b, &v, sizeof(b));
    return mix(h, b, sizeof(b));
}

/* xorshift, for chunk sizes */
static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static outcome run(const uint8_t *stream, size_t n, uint64_t max, bool rsv1_ok, uint32_t seed)
{
    outcome o = { .rc = 0, .transcript = UINT64_C(0xcbf29ce484222325) };
    uint8_t *buf = malloc(n ? n : 1);
    gh_ws_parser p;
    uint8_t *lent = NULL;
    gh_utf8 text;
    uint64_t msg_hash = 0, msg_len = 0;
    bool in_msg = false, msg_compressed = false;
    size_t off = 0;

    if (buf == NULL)
        abort();
    if (n > 0)
        memcpy(buf, stream, n);
    gh_ws_parser_init(&p, max);
    CHECK(!p.rsv1_ok);
    p.rsv1_ok = rsv1_ok;
    gh_utf8_init(&text);
    while (off < n) {
        /* seed 0: whole; else chunks of 1..64 bytes. */
        size_t chunk = seed == 0 ? n - off : 1 + next_rand(&seed) % 64;
        size_t end = chunk < n - off ? off + chunk : n;

        while (off < end) {
            gh_ws_event ev;
            long r = gh_ws_parse(&p, buf + off, end - off, &ev);

            CHECK(ev.release == NULL || (ev.release == lent && p.ctrl == NULL));
            /* Whole run: storage only for a frame the end of the input cuts
             * off, so none ever comes back. */
            CHECK(seed != 0 || ev.release == NULL);
            if (r < 0) {
                gh_ws_event ev2;

                if (ev.release != NULL) {
                    free(ev.release);
                    lent = NULL;
                }
                CHECK(r == GH_EPROTO);
                CHECK(p.error_code == 1002 || p.error_code == 1007 || p.error_code == 1009);
                CHECK(gh_ws_parse(&p, buf + off, end - off, &ev2) == GH_EPROTO);
                CHECK(ev2.type == GH_WS_EV_NONE);
                o.rc = r;
                o.error_code = p.error_code;
                goto out;
            }
            CHECK(r > 0 && (size_t)r <= end - off);
            switch (ev.type) {
            case GH_WS_EV_NONE:
                CHECK(p.closed || (size_t)r == end - off);
                break;
            case GH_WS_EV_NEED_BUFFER:
                CHECK(p.ctrl == NULL && lent == NULL);
                if ((p.ctrl = lent = malloc(GH_WS_MAX_CONTROL)) == NULL)
                    abort();
                break;
            case GH_WS_EV_DATA:
                CHECK(ev.data >= buf + off && ev.data + ev.len <= buf + off + r);
                CHECK(ev.opcode == GH_WS_OP_TEXT || ev.opcode == GH_WS_OP_BINARY);
                CHECK(ev.len > 0 || ev.message_end);
                CHECK(!ev.compressed || rsv1_ok);
                if (!in_msg) {
                    gh_utf8_init(&text);
                    msg_hash = mix_u64(UINT64_C(0xcbf29ce484222325),
                                       (uint64_t)ev.opcode | (ev.compressed ? 0x100 : 0));
                    msg_len = 0;
                    msg_compressed = ev.compressed;
                    in_msg = true;
                }
                CHECK(ev.compressed == msg_compressed);
                msg_hash = mix(msg_hash, ev.data, ev.len);
                msg_len += ev.len;
                CHECK(max == 0 || msg_len <= (msg_compressed ? max + max / 8 + 64 : max));
                if (ev.opcode == GH_WS_OP_TEXT && !msg_compressed)
                    CHECK(gh_utf8_feed(&text, ev.data, ev.len) == 0);
                if (ev.message_end) {
                    if (ev.opcode == GH_WS_OP_TEXT && !msg_compressed)
                        CHECK(gh_utf8_is_complete(&text));
                    o.transcript = mix_u64(mix_u64(o.transcript, msg_hash), msg_len);
                    o.events++;
                    in_msg = false;
                }
                break;
            case GH_WS_EV_PING:
            case GH_WS_EV_PONG:
            case GH_WS_EV_CLOSE:
                CHECK(ev.len <= GH_WS_MAX_CONTROL);
                CHECK((ev.data >= buf + off && ev.data + ev.len <= buf + off + r)
                      || (ev.release != NULL && ev.data == ev.release));
                CHECK(lent == NULL || ev.release == lent);
                if (ev.type == GH_WS_EV_CLOSE) {
                    gh_utf8 u;

                    CHECK(p.closed);
                    CHECK(ev.close_code == 1005 || gh_ws_close_code_is_valid(ev.close_code));
                    CHECK(ev.close_reason_len <= GH_WS_MAX_REASON);
                    gh_utf8_init(&u);
                    CHECK(gh_utf8_feed(&u, ev.close_reason, ev.close_reason_len) == 0);
                    CHECK(gh_utf8_is_complete(&u));
                    o.transcript = mix_u64(o.transcript, ev.close_code);
                }
                o.transcript = mix_u64(o.transcript, (uint64_t)ev.type);
                o.transcript = mix(o.transcript, ev.data, ev.len);
                o.events++;
                break;
            default:
                CHECK(0);
            }
            if (ev.release != NULL) {
                memset(ev.release, 0xA5, GH_WS_MAX_CONTROL);
                free(ev.release);
                lent = NULL;
            }
            off += (size_t)r;
        }
    }
out:
    CHECK(p.ctrl == lent);
    free(p.ctrl);
    free(buf);
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t maxes[] = { 0, 1, 10, 125, 126, 1000, 65535, 65536 };
    outcome a, b;
    uint64_t max;
    uint32_t seed;
    bool rsv1_ok;

    if (size < 2)
        return 0;
    seed = (uint32_t)data[0] * 2654435761u | 1;
    max = maxes[data[1] % 8];
    rsv1_ok = (data[1] & 8) != 0;
    a = run(data + 2, size - 2, max, rsv1_ok, seed);
    b = run(data + 2, size - 2, max, rsv1_ok, 0);
    CHECK(a.rc == b.rc && a.error_code == b.error_code);
    CHECK(a.transcript == b.transcript && a.events == b.events);
    return 0;
}
