/* test_wsframe.c: the RFC 6455 frame parser and encoder.
 *
 * Every stream is parsed whole, one byte at a time and split in two at every
 * offset (a sample of offsets for the large payloads); each way must give
 * the same transcript (whole messages reassembled from the DATA chunks,
 * control frames) and, for malformed streams, the same close code. Streams
 * are built with the module's own masked-header encoder, or by hand where
 * the encoder cannot produce the malformed shape.
 *
 * Control-frame storage (GH_WS_EV_NEED_BUFFER) is lent the way the glue
 * lends it: a malloc'd block of exactly GH_WS_MAX_CONTROL bytes, so that
 * ASan sees any write past it and LeakSanitizer any block never handed
 * back; a stream parsed whole must never ask for one.
 *
 * permessage-deflate's RSV1 (p->rsv1_ok) is tested the same ways; a
 * compressed message shows in the transcript as "TEXT+z" / "BINARY+z", and
 * every one of its chunks must carry the flag. */
#include <check.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "err.h"
#include "wsframe.h"

static const uint8_t mask_key[4] = { 0x37, 0xfa, 0x21, 0x3d };   /* RFC 6455 §5.7 */

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
        ck_assert_ptr_nonnull(b->p);
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void gb_printf(gbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void gb_printf(gbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    ck_assert(n > 0 && (size_t)n < sizeof(tmp));
    gb_put(b, tmp, (size_t)n);
}

static void gb_free(gbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ---- building client streams ---- */

/* Appends a masked frame, with RSV1 set or not. */
static void put_frame_ex(gbuf *s, int opcode, bool fin, bool rsv1, const void *payload,
                         size_t len)
{
    uint8_t h[GH_WS_MAX_HEADER];
    size_t hl = gh_ws_frame_header_masked_ex(h, opcode, fin, rsv1, len, mask_key);
    size_t at;

    gb_put(s, h, hl);
    at = s->len;
    gb_put(s, payload, len);
    gh_ws_mask(s->p + at, len, mask_key, 0);
}

/* Appends a masked frame. */
static void put_frame(gbuf *s, int opcode, bool fin, const void *payload, size_t len)
{
    uint8_t h[GH_WS_MAX_HEADER];
    size_t hl = gh_ws_frame_header_masked(h, opcode, fin, len, mask_key);
    size_t at;

    gb_put(s, h, hl);
    at = s->len;
    gb_put(s, payload, len);
    gh_ws_mask(s->p + at, len, mask_key, 0);
}

static void put_str(gbuf *s, int opcode, bool fin, const char *str)
{
    put_frame(s, opcode, fin, str, strlen(str));
}

/* A frame with RSV1 set (the first frame of a compressed message). */
static void put_zstr(gbuf *s, int opcode, bool fin, const char *str)
{
    put_frame_ex(s, opcode, fin, true, str, strlen(str));
}

static void put_close(gbuf *s, uint16_t code, const char *reason, size_t rlen)
{
    uint8_t pl[GH_WS_MAX_CONTROL];

    pl[0] = (uint8_t)(code >> 8);
    pl[1] = (uint8_t)code;
    memcpy(pl + 2, reason, rlen);
    put_frame(s, GH_WS_OP_CLOSE, true, pl, 2 + rlen);
}

/* ---- transcripts ---- */

static void log_msg_z(gbuf *log, int opcode, bool compressed, const void *d, size_t n)
{
    gb_printf(log, "%s%s %zu:", opcode == GH_WS_OP_TEXT ? "TEXT" : "BINARY",
              compressed ? "+z" : "", n);
    gb_put(log, d, n);
    gb_put(log, "\n", 1);
}

static void log_msg(gbuf *log, int opcode, const void *d, size_t n)
{
    log_msg_z(log, opcode, false, d, n);
}

static void log_ctrl(gbuf *log, const char *what, const void *d, size_t n)
{
    gb_printf(log, "%s %zu:", what, n);
    gb_put(log, d, n);
    gb_put(log, "\n", 1);
}

static void log_close(gbuf *log, uint16_t code, const void *reason, size_t n)
{
    gb_printf(log, "CLOSE %u %zu:", code, n);
    gb_put(log, reason, n);
    gb_put(log, "\n", 1);
}

typedef struct run {
    gbuf     log;        /* whole messages and control frames, in order */
    gbuf     msg;        /* message being reassembled */
    int      msg_opcode;
    bool     msg_compressed;
    bool     in_msg;
    long     rc;         /* 0, or GH_EPROTO */
    uint16_t error_code;
    size_t   err_at;     /* stream offset where the failing call started */
    size_t   ncalls;
    uint8_t *lent;       /* control storage given to the parser, not yet back */
    size_t   nlent;      /* how many times storage was asked for */
    bool     ctrl_held;  /* the parser still held storage after the last byte */
    uint8_t *fixed_lend; /* lend this (not freed) instead of malloc'ing */
} run;

/* Feeds buf[start..end) to p the way the glue does: loop while bytes remain,
 * checking the parser's promises on every call. */
/* ck_assert costs a syscall per call in fork mode; the byte-by-byte runs
 * make millions of checks, so the hot ones use this. */
static void require(bool ok, const char *what)
{
    if (!ok)
        ck_abort_msg("%s", what);
}

static void feed(gh_ws_parser *p, uint8_t *buf, size_t start, size_t end, run *r)
{
    size_t off = start;

    while (off < end && r->rc == 0) {
        gh_ws_event ev;
        long n = gh_ws_parse(p, buf + off, end - off, &ev);

        r->ncalls++;
        /* Storage comes back with the event that ends its control frame
         * (or with the error that refuses it), and only storage we lent. */
        require(ev.release == NULL || (ev.release == r->lent && p->ctrl == NULL),
                "handed back storage that was not lent");
        if (n < 0) {
            require(n == GH_EPROTO, "error other than GH_EPROTO");
            require(ev.type == GH_WS_EV_NONE, "event with an error");
            r->rc = n;
            r->error_code = p->error_code;
            r->err_at = off;
            if (ev.release != NULL) {
                if (ev.release != r->fixed_lend)
                    free(ev.release);
                r->lent = NULL;
            }
            return;
        }
        require(n > 0, "no progress");
        require((size_t)n <= end - off, "consumed more than given");
        require(ev.type != GH_WS_EV_NONE || p->closed || (size_t)n == end - off,
                "NONE without consuming everything");
        switch (ev.type) {
        case GH_WS_EV_NONE:
            break;
        case GH_WS_EV_NEED_BUFFER:
            require(p->ctrl == NULL && r->lent == NULL, "asked for storage while holding some");
            p->ctrl = r->fixed_lend != NULL ? r->fixed_lend : malloc(GH_WS_MAX_CONTROL);
            require(p->ctrl != NULL, "malloc");
            r->lent = p->ctrl;
            r->nlent++;
            break;
        case GH_WS_EV_DATA:
            /* The chunk lies within the bytes this call consumed. */
            require(ev.data >= buf + off && ev.data + ev.len <= buf + off + n,
                    "DATA chunk outside the consumed bytes");
            require(ev.opcode == GH_WS_OP_TEXT || ev.opcode == GH_WS_OP_BINARY,
                    "DATA with a bad opcode");
            require(ev.len > 0 || ev.message_end, "empty DATA that ends nothing");
            require(!r->in_msg || ev.opcode == r->msg_opcode, "opcode changed mid-message");
            /* Every chunk of a compressed message says so, and only when
             * the caller allowed RSV1. */
            require(!r->in_msg || ev.compressed == r->msg_compressed,
                    "compressed flag changed mid-message");
            require(!ev.compressed || p->rsv1_ok, "compressed without rsv1_ok");
            r->in_msg = true;
            r->msg_opcode = ev.opcode;
            r->msg_compressed = ev.compressed;
            gb_put(&r->msg, ev.data, ev.len);
            if (ev.message_end) {
                log_msg_z(&r->log, ev.opcode, ev.compressed, r->msg.p, r->msg.len);
                r->msg.len = 0;
                r->in_msg = false;
            }
            break;
        case GH_WS_EV_PING:
        case GH_WS_EV_PONG:
        case GH_WS_EV_CLOSE:
            /* In place within the bytes this call consumed when the frame
             * came whole, else at the start of the storage we lent. */
            require(ev.len <= GH_WS_MAX_CONTROL, "control payload too long");
            require((ev.data >= buf + off && ev.data + ev.len <= buf + off + n)
                    || (ev.release != NULL && ev.data == ev.release),
                    "control payload neither in place nor in the lent storage");
            require(r->lent == NULL || ev.release == r->lent,
                    "lent storage not handed back at the end of the frame");
            if (ev.type == GH_WS_EV_CLOSE) {
                require(p->closed && ev.opcode == GH_WS_OP_CLOSE
                        && ev.close_reason_len <= GH_WS_MAX_REASON
                        && ev.close_reason + ev.close_reason_len == ev.data + ev.len,
                        "close event");
                log_close(&r->log, ev.close_code, ev.close_reason, ev.close_reason_len);
            } else {
                require(ev.opcode == (ev.type == GH_WS_EV_PING ? GH_WS_OP_PING
                                                               : GH_WS_OP_PONG),
                        "control opcode");
                log_ctrl(&r->log, ev.type == GH_WS_EV_PING ? "PING" : "PONG", ev.data,
                         ev.len);
            }
            break;
        default:
            require(false, "unknown event type");
        }
        if (ev.release != NULL) {
            /* poison it: nothing may read it after the event */
            memset(ev.release, 0xA5, GH_WS_MAX_CONTROL);
            if (ev.release != r->fixed_lend)
                free(ev.release);
            r->lent = NULL;
        }
        off += (size_t)n;
    }
}

static void run_free(run *r)
{
    gb_free(&r->log);
    gb_free(&r->msg);
}

/* When set, a parser at rest between two chunks is replaced by a new one
 * (gh_ws_parser_at_rest()), counted in renewed. */
static bool renew_at_rest;
static size_t renewed;

/* Parses a copy of stream[0..n) as chunks ending at the cut points: cuts
 * lists offsets (ascending, < n); the last chunk ends at n. rsv1: the
 * parser's rsv1_ok. */
static run parse_cut_ex(const uint8_t *stream, size_t n, uint64_t max, bool rsv1,
                        const size_t *cuts, size_t ncuts)
{
    gh_ws_parser p;
    run r;
    uint8_t *buf = malloc(n ? n : 1);
    size_t from = 0;

    memset(&r, 0, sizeof(r));
    ck_assert_ptr_nonnull(buf);
    if (n > 0)
        memcpy(buf, stream, n);
    gh_ws_parser_init(&p, max);
    require(!p.rsv1_ok, "rsv1_ok set by init");
    p.rsv1_ok = rsv1;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : n;

        feed(&p, buf, from, to, &r);
        from = to;
        if (renew_at_rest && gh_ws_parser_at_rest(&p)) {
            /* the glue drops a parser at rest: poison it, start a new one */
            memset(&p, 0xA5, sizeof(p));
            gh_ws_parser_init(&p, max);
            p.rsv1_ok = rsv1;
            renewed++;
        }
    }
    require(p.ctrl == r.lent, "the parser lost track of the lent storage");
    r.ctrl_held = p.ctrl != NULL;
    free(p.ctrl);               /* dropping the parser: ours to free */
    free(buf);
    return r;
}

static run parse_cut(const uint8_t *stream, size_t n, uint64_t max,
                     const size_t *cuts, size_t ncuts)
{
    return parse_cut_ex(stream, n, max, false, cuts, ncuts);
}

static run parse_whole_ex(const uint8_t *s, size_t n, uint64_t max, bool rsv1)
{
    return parse_cut_ex(s, n, max, rsv1, NULL, 0);
}

static run parse_whole(const uint8_t *s, size_t n, uint64_t max)
{
    return parse_whole_ex(s, n, max, false);
}

static run parse_split_ex(const uint8_t *s, size_t n, uint64_t max, bool rsv1, size_t k)
{
    return parse_cut_ex(s, n, max, rsv1, &k, 1);
}

static run parse_bytewise_ex(const uint8_t *s, size_t n, uint64_t max, bool rsv1)
{
    size_t *cuts = malloc((n ? n : 1) * sizeof(*cuts));
    run r;

    ck_assert_ptr_nonnull(cuts);
    for (size_t i = 0; i + 1 < n; i++)
        cuts[i] = i + 1;
    r = parse_cut_ex(s, n, max, rsv1, cuts, n ? n - 1 : 0);
    free(cuts);
    return r;
}


static void assert_same(const run *got, const gbuf *want_log, long want_rc,
                        uint16_t want_code, const char *how, size_t k)
{
    ck_assert_msg(got->rc == want_rc, "%s %zu: rc %ld want %ld", how, k, got->rc, want_rc);
    if (want_rc != 0)
        ck_assert_msg(got->error_code == want_code, "%s %zu: close code %u want %u",
                      how, k, got->error_code, want_code);
    ck_assert_msg(got->log.len == want_log->len
                  && (want_log->len == 0 || memcmp(got->log.p, want_log->p, want_log->len) == 0),
                  "%s %zu: transcript differs (%zu vs %zu bytes): got\n%.*s", how, k,
                  got->log.len, want_log->len, (int)(got->log.len < 300 ? got->log.len : 300),
                  (const char *)got->log.p);
}

/* Parses the stream every way and checks the transcript and outcome. A
 * valid stream leaves no storage with the parser; one parsed whole never
 * asks for any, and one cut asks at most once (only the control frame the
 * cut falls in needs it). rsv1: the parser's rsv1_ok. */
static void check_stream_ex(const gbuf *stream, uint64_t max, bool rsv1, const gbuf *want,
                            long want_rc, uint16_t want_code)
{
    const uint8_t *s = stream->p;
    size_t n = stream->len;
    run r;

    r = parse_whole_ex(s, n, max, rsv1);
    assert_same(&r, want, want_rc, want_code, "whole", 0);
    ck_assert_msg(r.nlent == 0, "whole: asked for control storage");
    ck_assert_msg(want_rc != 0 || !r.ctrl_held, "whole: storage still held");
    run_free(&r);

    r = parse_bytewise_ex(s, n, max, rsv1);
    assert_same(&r, want, want_rc, want_code, "bytewise", 0);
    ck_assert_msg(want_rc != 0 || !r.ctrl_held, "bytewise: storage still held");
    run_free(&r);

    for (size_t k = 0; k <= n; k++) {
        /* All offsets for small streams; around the start, the end and a
         * stride for large ones. */
        if (n > 4096 && k > 40 && n - k > 40 && k % 997 != 0)
            continue;
        r = parse_split_ex(s, n, max, rsv1, k);
        assert_same(&r, want, want_rc, want_code, "split", k);
        ck_assert_msg(r.nlent <= 1, "split %zu: asked for storage %zu times", k, r.nlent);
        ck_assert_msg(want_rc != 0 || !r.ctrl_held, "split %zu: storage still held", k);
        run_free(&r);
    }
}

static void check_stream(const gbuf *stream, uint64_t max, const gbuf *want,
                         long want_rc, uint16_t want_code)
{
    check_stream_ex(stream, max, false, want, want_rc, want_code);
}

/* A payload of n bytes; valid UTF-8 when text (ASCII with a few 2- and
 * 3-byte characters that straddle fragment and mask boundaries). */
static uint8_t *make_payload(size_t n, bool text)
{
    uint8_t *d = malloc(n ? n : 1);

    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)(text ? 'a' + i % 26 : (i * 131 + 7) & 0xFF);
    if (text) {
        for (size_t i = 5; i + 3 <= n; i += 37) {
            d[i] = 0xE2;                /* U+20AC € */
            d[i + 1] = 0x82;
            d[i + 2] = 0xAC;
        }
    }
    return d;
}

/* ---- valid shapes ---- */

START_TEST(parse_reassembles_messages_of_every_length_encoding)
{
    static const size_t sizes[] = { 0, 1, 2, 3, 4, 5, 124, 125, 126, 127, 1000, 65535, 65536, 70001 };

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (int text = 0; text <= 1; text++) {
            int op = text ? GH_WS_OP_TEXT : GH_WS_OP_BINARY;
            uint8_t *d = make_payload(sizes[i], text);
            gbuf s = { 0 }, want = { 0 };

            put_frame(&s, op, true, d, sizes[i]);
            log_msg(&want, op, d, sizes[i]);
            check_stream(&s, 0, &want, 0, 0);
            gb_free(&s);
            gb_free(&want);
            free(d);
        }
    }
}
END_TEST

START_TEST(parse_reassembles_fragmented_text_with_a_ping_in_the_middle)
{
    gbuf s = { 0 }, want = { 0 };

    put_str(&s, GH_WS_OP_TEXT, false, "Hel");
    put_str(&s, GH_WS_OP_PING, true, "are you there?");
    put_str(&s, GH_WS_OP_CONT, false, "lo w\xc3");          /* ö split across frames */
    put_str(&s, GH_WS_OP_PONG, true, "");
    put_str(&s, GH_WS_OP_CONT, true, "\xb6rld");
    put_frame(&s, GH_WS_OP_BINARY, true, "\x00\xff", 2);
    log_ctrl(&want, "PING", "are you there?", 14);
    log_ctrl(&want, "PONG", "", 0);
    log_msg(&want, GH_WS_OP_TEXT, "Hello w\xc3\xb6rld", 12);
    log_msg(&want, GH_WS_OP_BINARY, "\x00\xff", 2);
    check_stream(&s, 0, &want, 0, 0);
    gb_free(&s);
    gb_free(&want);
}
END_TEST

START_TEST(parse_reports_an_empty_final_frame_as_message_end)
{
    gbuf s = { 0 }, want = { 0 };

    put_str(&s, GH_WS_OP_TEXT, false, "abc");
    put_str(&s, GH_WS_OP_CONT, false, "");                  /* empty middle: no event */
    put_str(&s, GH_WS_OP_CONT, true, "");                   /* empty final: DATA len 0 */
    put_str(&s, GH_WS_OP_TEXT, true, "");                   /* empty message */
    put_str(&s, GH_WS_OP_BINARY, false, "");
    put_str(&s, GH_WS_OP_CONT, true, "");
    log_msg(&want, GH_WS_OP_TEXT, "abc", 3);
    log_msg(&want, GH_WS_OP_TEXT, "", 0);
    log_msg(&want, GH_WS_OP_BINARY, "", 0);
    check_stream(&s, 0, &want, 0, 0);
    gb_free(&s);
    gb_free(&want);
}
END_TEST

START_TEST(parse_emits_a_zero_length_final_chunk_with_message_end)
{
    gbuf s = { 0 };
    gh_ws_parser p;
    gh_ws_event ev;
    long n;

    put_str(&s, GH_WS_OP_TEXT, false, "ab");
    put_str(&s, GH_WS_OP_CONT, true, "");
    gh_ws_parser_init(&p, 0);
    n = gh_ws_parse(&p, s.p, s.len, &ev);
    ck_assert_int_eq(n, 8);
    ck_assert_int_eq(ev.type, GH_WS_EV_DATA);
    ck_assert_int_eq(ev.len, 2);
    ck_assert(!ev.message_end);
    ck_assert_int_eq(memcmp(ev.data, "ab", 2), 0);
    ck_assert_int_eq(gh_ws_parse(&p, s.p + n, s.len - (size_t)n, &ev), 6);
    ck_assert_int_eq(ev.type, GH_WS_EV_DATA);
    ck_assert_int_eq(ev.opcode, GH_WS_OP_TEXT);
    ck_assert_int_eq(ev.len, 0);
    ck_assert(ev.message_end);
    gb_free(&s);
}
END_TEST

START_TEST(parse_streams_data_chunks_as_they_arrive)
{
    gbuf s = { 0 };
    gh_ws_parser p;
    gh_ws_event ev;

    put_str(&s, GH_WS_OP_BINARY, true, "0123456789");
    gh_ws_parser_init(&p, 0);
    ck_assert_int_eq(gh_ws_parse(&p, s.p, 6, &ev), 6);          /* header only */
    ck_assert_int_eq(ev.type, GH_WS_EV_NONE);
    ck_assert_int_eq(gh_ws_parse(&p, s.p + 6, 4, &ev), 4);
    ck_assert_int_eq(ev.type, GH_WS_EV_DATA);
    ck_assert_int_eq(ev.len, 4);
    ck_assert(!ev.message_end);
    ck_assert_int_eq(memcmp(ev.data, "0123", 4), 0);
    ck_assert(ev.data == s.p + 6);                               /* in place */
    ck_assert_int_eq(gh_ws_parse(&p, s.p + 10, 6, &ev), 6);
    ck_assert_int_eq(ev.type, GH_WS_EV_DATA);
    ck_assert(ev.message_end);
    ck_assert_int_eq(memcmp(ev.data, "456789", 6), 0);
    gb_free(&s);
}
END_TEST

START_TEST(parse_returns_at_most_one_event_per_call)
{
    gbuf s = { 0 };
    gh_ws_parser p;
    gh_ws_event ev;
    size_t off = 0;
    int events = 0;

    put_str(&s, GH_WS_OP_PING, true, "a");
    put_str(&s, GH_WS_OP_TEXT, true, "b");
    put_str(&s, GH_WS_OP_PONG, true, "c");
    gh_ws_parser_init(&p, 0);
    while (off < s.len) {
        long n = gh_ws_parse(&p, s.p + off, s.len - off, &ev);

        ck_assert_int_eq(n, 7);                 /* exactly one frame each */
        ck_assert_int_ne(ev.type, GH_WS_EV_NONE);
        off += (size_t)n;
        events++;
    }
    ck_assert_int_eq(events, 3);
    gb_free(&s);
}
END_TEST

START_TEST(parse_accepts_control_frames_up_to_125_bytes)
{
    uint8_t big[125];
    gbuf s = { 0 }, want = { 0 };

    memset(big, 'x', sizeof(big));
    put_frame(&s, GH_WS_OP_PING, true, big, 125);
    put_frame(&s, GH_WS_OP_PONG, true, big, 125);
    put_frame(&s, GH_WS_OP_PING, true, "", 0);
    log_ctrl(&want, "PING", big, 125);
    log_ctrl(&want, "PONG", big, 125);
    log_ctrl(&want, "PING", "", 0);
    check_stream(&s, 0, &want, 0, 0);
    gb_free(&s);
    gb_free(&want);
}
END_TEST

START_TEST(parse_reports_close_code_and_reason_then_ignores_the_rest)
{
    gbuf s = { 0 }, want = { 0 };

    put_str(&s, GH_WS_OP_TEXT, true, "bye");
    put_close(&s, 1000, "done \xe2\x9c\x93", 8);
    put_str(&s, GH_WS_OP_TEXT, true, "ignored");
    gb_put(&s, "\xff\xff garbage", 10);                    /* not even a valid frame */
    log_msg(&want, GH_WS_OP_TEXT, "bye", 3);
    log_close(&want, 1000, "done \xe2\x9c\x93", 8);
    check_stream(&s, 0, &want, 0, 0);
    gb_free(&s);
    gb_free(&want);
}
END_TEST

START_TEST(parse_reports_an_empty_close_as_1005)
{
    gbuf s = { 0 }, want = { 0 };
    gh_ws_parser p;
    gh_ws_event ev;
    uint8_t junk[3] = { 1, 2, 3 };

    put_frame(&s, GH_WS_OP_CLOSE, true, "", 0);
    log_close(&want, 1005, "", 0);
    check_stream(&s, 0, &want, 0, 0);

    gh_ws_parser_init(&p, 0);
    ck_assert_int_eq(gh_ws_parse(&p, s.p, s.len, &ev), (long)s.len);
    ck_assert_int_eq(ev.type, GH_WS_EV_CLOSE);
    ck_assert_int_eq(ev.close_code, 1005);
    ck_assert_int_eq(ev.close_reason_len, 0);
    ck_assert(p.closed);
    ck_assert_int_eq(gh_ws_parse(&p, junk, sizeof(junk), &ev), 3);
    ck_assert_int_eq(ev.type, GH_WS_EV_NONE);
    gb_free(&s);
    gb_free(&want);
}
END_TEST

START_TEST(parse_accepts_every_valid_close_code)
{
    static const uint16_t codes[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                      1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999 };

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        gbuf s = { 0 }, want = { 0 };

        put_close(&s, codes[i], "", 0);
        log_close(&want, codes[i], "", 0);
        check_stream(&s, 0, &want, 0, 0);
        gb_free(&s);
        gb_free(&want);
    }
}
END_TEST

START_TEST(parse_accepts_a_close_reason_of_123_bytes)
{
    char reason[123];
    gbuf s = { 0 }, want = { 0 };

    memset(reason, 'r', sizeof(reason));
    put_close(&s, 1001, reason, sizeof(reason));
    log_close(&want, 1001, reason, sizeof(reason));
    check_stream(&s, 0, &want, 0, 0);
    gb_free(&s);
    gb_free(&want);
}
END_TEST

START_TEST(parse_accepts_non_minimal_length_encodings)
{
    /* "hi" with a 16-bit and then a 64-bit length field. */
    uint8_t hi[2] = { 'h', 'i' };
    gbuf s = { 0 }, want = { 0 };
    uint8_t h16[] = { 0x82, 0x80 | 126, 0, 2 };
    uint8_t h64[] = { 0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 2 };

    gh_ws_mask(hi, 2, mask_key, 0);
    gb_put(&s, h16, sizeof(h16));
    gb_put(&s, mask_key, 4);
    gb_put(&s, hi, 2);
    gb_put(&s, h64, sizeof(h64));
    gb_put(&s, mask_key, 4);
    gb_put(&s, hi, 2);
    log_msg(&want, GH_WS_OP_BINARY, "hi", 2);
    log_msg(&want, GH_WS_OP_BINARY, "hi", 2);
    check_stream(&s, 0, &want, 0, 0);
    gb_free(&s);
    gb_free(&want);
}
END_TEST

START_TEST(parse_accepts_a_message_of_exactly_max_message)
{
    gbuf s = { 0 }, want = { 0 };

    put_str(&s, GH_WS_OP_TEXT, false, "12345");
    put_str(&s, GH_WS_OP_PING, true, "ping payload is not counted");
    put_str(&s, GH_WS_OP_CONT, true, "67890");
    put_str(&s, GH_WS_OP_BINARY, true, "abcdefghij");       /* limit is per message */
    log_ctrl(&want, "PING", "ping payload is not counted", 27);
    log_msg(&want, GH_WS_OP_TEXT, "1234567890", 10);
    log_msg(&want, GH_WS_OP_BINARY, "abcdefghij", 10);
    check_stream(&s, 10, &want, 0, 0);
    gb_free(&s);
    gb_free(&want);
}
END_TEST

/* ---- control-frame storage ---- */

START_TEST(parse_reports_a_whole_control_frame_in_place_without_asking_for_storage)
{
    gbuf s = { 0 };
    gh_ws_parser p;
    gh_ws_event ev;

    put_str(&s, GH_WS_OP_PING, true, "hello");
    put_close(&s, 1000, "bye", 3);
    gh_ws_parser_init(&p, 0);
    ck_assert_int_eq(gh_ws_parse(&p, s.p, s.len, &ev), 11);
    ck_assert_int_eq(ev.type, GH_WS_EV_PING);
    ck_assert_ptr_eq(ev.data, s.p + 6);                 /* unmasked in place */
    ck_assert_int_eq(ev.len, 5);
    ck_assert_int_eq(memcmp(ev.data, "hello", 5), 0);
    ck_assert_ptr_null(ev.release);
    ck_assert_int_eq(gh_ws_parse(&p, s.p + 11, s.len - 11, &ev), (long)s.len - 11);
    ck_assert_int_eq(ev.type, GH_WS_EV_CLOSE);
    ck_assert_ptr_eq(ev.data, s.p + 11 + 6);
    ck_assert_ptr_eq(ev.close_reason, s.p + 11 + 6 + 2);
    ck_assert_int_eq(memcmp(ev.close_reason, "bye", 3), 0);
    ck_assert_ptr_null(ev.release);
    ck_assert_ptr_null(p.ctrl);
    gb_free(&s);
}
END_TEST

START_TEST(parse_asks_for_storage_once_the_header_of_a_split_control_frame_is_in)
{
    uint8_t big[125];
    gbuf s = { 0 };
    gh_ws_parser p;
    gh_ws_event ev;
    uint8_t *store;

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 3);
    put_frame(&s, GH_WS_OP_PING, true, big, sizeof(big));
    gh_ws_parser_init(&p, 0);
    /* Header and 10 payload bytes: only the header is taken. */
    ck_assert_int_eq(gh_ws_parse(&p, s.p, 16, &ev), 6);
    ck_assert_int_eq(ev.type, GH_WS_EV_NEED_BUFFER);
    ck_assert_ptr_null(ev.release);
    store = malloc(GH_WS_MAX_CONTROL);
    ck_assert_ptr_nonnull(store);
    p.ctrl = store;
    ck_assert_int_eq(gh_ws_parse(&p, s.p + 6, 10, &ev), 10);
    ck_assert_int_eq(ev.type, GH_WS_EV_NONE);
    ck_assert_ptr_eq(p.ctrl, store);
    ck_assert_int_eq(gh_ws_parse(&p, s.p + 16, s.len - 16, &ev), (long)s.len - 16);
    ck_assert_int_eq(ev.type, GH_WS_EV_PING);
    ck_assert_ptr_eq(ev.data, store);
    ck_assert_ptr_eq(ev.release, store);                /* handed back */
    ck_assert_ptr_null(p.ctrl);
    ck_assert_int_eq(ev.len, 125);
    ck_assert_int_eq(memcmp(ev.data, big, 125), 0);
    free(ev.release);
    gb_free(&s);

    /* A header that ends exactly at the end of the input asks too. */
    put_str(&s, GH_WS_OP_PONG, true, "xy");
    gh_ws_parser_init(&p, 0);
    ck_assert_int_eq(gh_ws_parse(&p, s.p, 4, &ev), 4);
    ck_assert_int_eq(ev.type, GH_WS_EV_NONE);
    ck_assert_int_eq(gh_ws_parse(&p, s.p + 4, 2, &ev), 2);
    ck_assert_int_eq(ev.type, GH_WS_EV_NEED_BUFFER);
    gb_free(&s);

    /* ... but an empty control frame never does. */
    put_str(&s, GH_WS_OP_PONG, true, "");
    gh_ws_parser_init(&p, 0);
    ck_assert_int_eq(gh_ws_parse(&p, s.p, 2, &ev), 2);
    ck_assert_int_eq(ev.type, GH_WS_EV_NONE);
    ck_assert_int_eq(gh_ws_parse(&p, s.p + 2, 4, &ev), 4);
    ck_assert_int_eq(ev.type, GH_WS_EV_PONG);
    ck_assert_int_eq(ev.len, 0);
    ck_assert_ptr_null(ev.release);
    gb_free(&s);
}
END_TEST

START_TEST(parse_asks_again_while_no_storage_was_given)
{
    gbuf s = { 0 };
    gh_ws_parser p;
    gh_ws_event ev;

    put_str(&s, GH_WS_OP_PING, true, "abcd");
    gh_ws_parser_init(&p, 0);
    ck_assert_int_eq(gh_ws_parse(&p, s.p, 7, &ev), 6);
    ck_assert_int_eq(ev.type, GH_WS_EV_NEED_BUFFER);
    /* Ignored: part of the payload cannot be kept, so nothing is taken. */
    ck_assert_int_eq(gh_ws_parse(&p, s.p + 6, 1, &ev), 0);
    ck_assert_int_eq(ev.type, GH_WS_EV_NEED_BUFFER);
    ck_assert_ptr_null(p.ctrl);
    /* The whole payload in one call needs no storage after all. */
    ck_assert_int_eq(gh_ws_parse(&p, s.p + 6, 4, &ev), 4);
    ck_assert_int_eq(ev.type, GH_WS_EV_PING);
    ck_assert_ptr_eq(ev.data, s.p + 6);
    ck_assert_int_eq(memcmp(ev.data, "abcd", 4), 0);
    ck_assert_ptr_null(ev.release);
    gb_free(&s);
}
END_TEST

START_TEST(parse_hands_back_storage_set_ahead_at_the_end_of_the_next_control_frame)
{
    uint8_t store[GH_WS_MAX_CONTROL];
    gbuf s = { 0 };
    gh_ws_parser p;
    gh_ws_event ev;

    put_str(&s, GH_WS_OP_TEXT, true, "abc");
    put_str(&s, GH_WS_OP_PING, true, "p");
    gh_ws_parser_init(&p, 0);
    p.ctrl = store;
    ck_assert_int_eq(gh_ws_parse(&p, s.p, s.len, &ev), 9);
    ck_assert_int_eq(ev.type, GH_WS_EV_DATA);
    ck_assert_ptr_null(ev.release);                     /* data frames leave it */
    ck_assert_ptr_eq(p.ctrl, store);
    ck_assert_int_eq(gh_ws_parse(&p, s.p + 9, s.len - 9, &ev), 7);
    ck_assert_int_eq(ev.type, GH_WS_EV_PING);
    ck_assert_ptr_eq(ev.data, s.p + 15);                /* whole: still in place */
    ck_assert_ptr_eq(ev.release, store);                /* unused, but back */
    ck_assert_ptr_null(p.ctrl);
    gb_free(&s);
}
END_TEST

START_TEST(parse_hands_back_control_storage_with_the_error_that_refuses_its_frame)
{
    static const struct {
        uint16_t    code;
        const char *reason;
        uint16_t    want;
    } cases[] = {
        { 999, "x", 1002 },                 /* invalid code */
        { 1000, "ok\xc3", 1007 },           /* reason not UTF-8 */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gbuf s = { 0 };
        gh_ws_parser p;
        gh_ws_event ev;
        uint8_t *store = malloc(GH_WS_MAX_CONTROL);

        ck_assert_ptr_nonnull(store);
        put_close(&s, cases[i].code, cases[i].reason, strlen(cases[i].reason));
        gh_ws_parser_init(&p, 0);
        ck_assert_int_eq(gh_ws_parse(&p, s.p, 7, &ev), 6);
        ck_assert_int_eq(ev.type, GH_WS_EV_NEED_BUFFER);
        p.ctrl = store;
        ck_assert_int_eq(gh_ws_parse(&p, s.p + 6, 1, &ev), 1);
        ck_assert_int_eq(gh_ws_parse(&p, s.p + 7, s.len - 7, &ev), GH_EPROTO);
        ck_assert_int_eq(p.error_code, cases[i].want);
        ck_assert_int_eq(ev.type, GH_WS_EV_NONE);
        ck_assert_ptr_eq(ev.release, store);
        ck_assert_ptr_null(p.ctrl);
        free(ev.release);
        ck_assert_int_eq(gh_ws_parse(&p, s.p, s.len, &ev), GH_EPROTO);
        ck_assert_ptr_null(ev.release);
        gb_free(&s);
    }
}
END_TEST

START_TEST(parse_reassembles_split_control_frames_inside_a_message_at_any_two_cuts)
{
    uint8_t big[125], mid[40];
    gbuf s = { 0 }, want = { 0 };

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(255 - i);
    memset(mid, 'm', sizeof(mid));
    put_str(&s, GH_WS_OP_TEXT, false, "H\xc3");             /* é split across fragments */
    put_frame(&s, GH_WS_OP_PING, true, big, sizeof(big));
    put_str(&s, GH_WS_OP_CONT, false, "\xa9l");
    put_frame(&s, GH_WS_OP_PONG, true, mid, sizeof(mid));
    put_str(&s, GH_WS_OP_CONT, true, "lo");
    put_close(&s, 1001, "bye \xe2\x9c\x93", 7);
    log_ctrl(&want, "PING", big, sizeof(big));
    log_ctrl(&want, "PONG", mid, sizeof(mid));
    log_msg(&want, GH_WS_OP_TEXT, "H\xc3\xa9llo", 6);
    log_close(&want, 1001, "bye \xe2\x9c\x93", 7);
    check_stream(&s, 0, &want, 0, 0);
    for (size_t i = 1; i < s.len; i++) {
        for (size_t j = i + 1; j < s.len; j++) {
            size_t cuts[2] = { i, j };
            run r = parse_cut(s.p, s.len, 0, cuts, 2);

            assert_same(&r, &want, 0, 0, "two cuts", i * 1000 + j);
            require(r.nlent <= 2 && !r.ctrl_held, "two cuts: storage");
            run_free(&r);
        }
    }
    gb_free(&s);
    gb_free(&want);
}
END_TEST

START_TEST(parser_at_rest_only_between_frames_with_nothing_pending)
{
    static uint8_t ping_hdr[] = { 0x89, 0x85, 1, 2, 3, 4 };    /* PING, 5 bytes, masked */
    gbuf s = { 0 };
    gh_ws_parser p;
    gh_ws_event ev;
    size_t off;
    long n;

    gh_ws_parser_init(&p, 0);
    ck_assert(gh_ws_parser_at_rest(&p));
    put_str(&s, GH_WS_OP_TEXT, true, "hi");         /* [0, 8): a whole message */
    put_str(&s, GH_WS_OP_TEXT, false, "Hel");       /* [8, 17): a first fragment */
    put_str(&s, GH_WS_OP_CONT, true, "lo");         /* [17, 25): the last one */
    /* one header byte; the header without the payload */
    ck_assert_int_eq(gh_ws_parse(&p, s.p, 1, &ev), 1);
    ck_assert(!gh_ws_parser_at_rest(&p));
    ck_assert_int_eq(gh_ws_parse(&p, s.p + 1, 5, &ev), 5);
    ck_assert(!gh_ws_parser_at_rest(&p));
    ck_assert_int_eq(gh_ws_parse(&p, s.p + 6, 2, &ev), 2);
    ck_assert_int_eq(ev.type, GH_WS_EV_DATA);
    ck_assert(ev.message_end);
    ck_assert(gh_ws_parser_at_rest(&p));
    /* a message between its fragments */
    for (off = 8; off < 17; off += (size_t)n)
        ck_assert_int_gt(n = gh_ws_parse(&p, s.p + off, 17 - off, &ev), 0);
    ck_assert(!gh_ws_parser_at_rest(&p));
    for (off = 17; off < s.len; off += (size_t)n)
        ck_assert_int_gt(n = gh_ws_parse(&p, s.p + off, s.len - off, &ev), 0);
    ck_assert(gh_ws_parser_at_rest(&p));
    /* a control frame split after its header: asks for storage */
    ck_assert_int_eq(gh_ws_parse(&p, ping_hdr, sizeof(ping_hdr), &ev), (long)sizeof(ping_hdr));
    ck_assert_int_eq(ev.type, GH_WS_EV_NEED_BUFFER);
    ck_assert(!gh_ws_parser_at_rest(&p));
    gb_free(&s);

    /* closed, and failed */
    put_str(&s, GH_WS_OP_CLOSE, true, "");
    gh_ws_parser_init(&p, 0);
    ck_assert_int_eq(gh_ws_parse(&p, s.p, s.len, &ev), (long)s.len);
    ck_assert_int_eq(ev.type, GH_WS_EV_CLOSE);
    ck_assert(!gh_ws_parser_at_rest(&p));
    gh_ws_parser_init(&p, 0);
    s.p[1] &= 0x7f;                                 /* unmasked: 1002 */
    ck_assert_int_eq(gh_ws_parse(&p, s.p, s.len, &ev), GH_EPROTO);
    ck_assert(!gh_ws_parser_at_rest(&p));
    gb_free(&s);
}
END_TEST

START_TEST(parse_gives_the_same_transcript_when_a_parser_at_rest_is_replaced)
{
    gbuf s = { 0 }, want = { 0 };
    uint8_t *d = make_payload(70001, true);

    put_str(&s, GH_WS_OP_TEXT, false, "Hel");
    put_str(&s, GH_WS_OP_PING, true, "are you there?");
    put_str(&s, GH_WS_OP_CONT, true, "lo");
    put_frame(&s, GH_WS_OP_BINARY, true, "\x00\xff", 2);
    put_frame_ex(&s, GH_WS_OP_TEXT, true, true, "zz", 2);
    put_str(&s, GH_WS_OP_PONG, true, "");
    put_frame(&s, GH_WS_OP_TEXT, true, d, 70001);
    put_str(&s, GH_WS_OP_CLOSE, true, "\x03\xe8" "bye");
    log_ctrl(&want, "PING", "are you there?", 14);
    log_msg(&want, GH_WS_OP_TEXT, "Hello", 5);
    log_msg(&want, GH_WS_OP_BINARY, "\x00\xff", 2);
    log_msg_z(&want, GH_WS_OP_TEXT, true, "zz", 2);
    log_ctrl(&want, "PONG", "", 0);
    log_msg(&want, GH_WS_OP_TEXT, d, 70001);
    log_close(&want, 1000, "bye", 3);
    renew_at_rest = true;
    renewed = 0;
    check_stream_ex(&s, 0, true, &want, 0, 0);
    renew_at_rest = false;
    ck_assert_uint_gt(renewed, 0);
    gb_free(&s);
    gb_free(&want);
    free(d);
}
END_TEST

#define FIELD_SIZE(f) sizeof(((gh_ws_parser *)0)->f)

START_TEST(parser_state_stays_small)
{
    /* It lives in every connection (most of them idle): no payload buffer
     * and no padding: the fields add up to the struct. 72 bytes on LP64. */
    size_t fields = FIELD_SIZE(max_message) + FIELD_SIZE(ctrl) + FIELD_SIZE(error_code)
                    + FIELD_SIZE(closed) + FIELD_SIZE(rsv1_ok) + FIELD_SIZE(failed)
                    + FIELD_SIZE(state) + FIELD_SIZE(hdr_have) + FIELD_SIZE(in_message)
                    + FIELD_SIZE(msg_opcode) + FIELD_SIZE(msg_compressed) + FIELD_SIZE(mask)
                    + FIELD_SIZE(hdr) + FIELD_SIZE(utf8) + FIELD_SIZE(frame_len)
                    + FIELD_SIZE(frame_done) + FIELD_SIZE(msg_bytes);

    ck_assert_uint_eq(fields, sizeof(gh_ws_parser));
    if (sizeof(void *) == 8) {
        ck_assert_uint_eq(sizeof(gh_ws_parser), 72);
        ck_assert_uint_eq(offsetof(gh_ws_parser, rsv1_ok), 19);
        ck_assert_uint_eq(offsetof(gh_ws_parser, msg_compressed), 25);
        ck_assert_uint_eq(offsetof(gh_ws_parser, utf8), 44);
        ck_assert_uint_eq(offsetof(gh_ws_parser, frame_len), 48);
        ck_assert_uint_eq(offsetof(gh_ws_parser, msg_bytes), 64);
    }
}
END_TEST

/* ---- violations ---- */

/* Parses raw bytes byte by byte (and every other way) and expects a
 * protocol error with code at stream offset at. rsv1: the parser's
 * rsv1_ok. */
static void expect_error_at_ex(const gbuf *s, uint64_t max, bool rsv1, uint16_t code,
                               size_t at, const gbuf *want)
{
    gbuf empty = { 0 };
    run r;

    check_stream_ex(s, max, rsv1, want ? want : &empty, GH_EPROTO, code);
    r = parse_bytewise_ex(s->p, s->len, max, rsv1);
    ck_assert_msg(r.err_at == at, "failed at byte %zu, want %zu", r.err_at, at);
    run_free(&r);
}

static void expect_error_at(const gbuf *s, uint64_t max, uint16_t code, size_t at,
                            const gbuf *want)
{
    expect_error_at_ex(s, max, false, code, at, want);
}

static void expect_raw_error(const uint8_t *bytes, size_t n, uint16_t code, size_t at)
{
    gbuf s = { 0 };

    gb_put(&s, bytes, n);
    expect_error_at(&s, 0, code, at, NULL);
    gb_free(&s);
}

START_TEST(parse_refuses_an_unmasked_frame_with_1002)
{
    static const uint8_t f[] = { 0x81, 0x02, 'h', 'i' };

    expect_raw_error(f, sizeof(f), 1002, 1);
}
END_TEST

START_TEST(parse_refuses_rsv_bits_with_1002)
{
    for (unsigned bit = 0x10; bit <= 0x40; bit <<= 1) {
        uint8_t f[] = { (uint8_t)(0x81 | bit), 0x80, 1, 2, 3, 4 };

        expect_raw_error(f, sizeof(f), 1002, 0);
    }
}
END_TEST

START_TEST(parse_refuses_reserved_opcodes_with_1002)
{
    static const uint8_t ops[] = { 3, 4, 5, 6, 7, 11, 12, 13, 14, 15 };

    for (size_t i = 0; i < sizeof(ops); i++) {
        uint8_t f[] = { (uint8_t)(0x80 | ops[i]), 0x80, 1, 2, 3, 4 };

        expect_raw_error(f, sizeof(f), 1002, 0);
    }
}
END_TEST

START_TEST(parse_refuses_long_or_fragmented_control_frames_with_1002)
{
    static const int ops[] = { GH_WS_OP_CLOSE, GH_WS_OP_PING, GH_WS_OP_PONG };

    for (size_t i = 0; i < 3; i++) {
        uint8_t nofin[] = { (uint8_t)ops[i], 0x80, 1, 2, 3, 4 };
        uint8_t len126[] = { (uint8_t)(0x80 | ops[i]), 0x80 | 126, 0, 126, 1, 2, 3, 4 };
        uint8_t len16small[] = { (uint8_t)(0x80 | ops[i]), 0x80 | 126, 0, 5, 1, 2, 3, 4 };

        expect_raw_error(nofin, sizeof(nofin), 1002, 0);
        expect_raw_error(len126, sizeof(len126), 1002, 1);
        /* Any extended length is over 125 for a control frame (§5.5). */
        expect_raw_error(len16small, sizeof(len16small), 1002, 1);
    }
}
END_TEST

START_TEST(parse_refuses_a_continuation_without_a_message_with_1002)
{
    gbuf s = { 0 };

    put_str(&s, GH_WS_OP_CONT, true, "x");
    expect_error_at(&s, 0, 1002, 0, NULL);
    gb_free(&s);

    /* ... also right after a complete message. */
    put_str(&s, GH_WS_OP_TEXT, true, "a");
    put_str(&s, GH_WS_OP_CONT, false, "b");
    {
        gbuf want = { 0 };

        log_msg(&want, GH_WS_OP_TEXT, "a", 1);
        expect_error_at(&s, 0, 1002, 7, &want);
        gb_free(&want);
    }
    gb_free(&s);
}
END_TEST

START_TEST(parse_refuses_a_new_message_inside_a_fragmented_one_with_1002)
{
    gbuf s = { 0 };

    put_str(&s, GH_WS_OP_TEXT, false, "a");
    put_str(&s, GH_WS_OP_BINARY, true, "b");
    expect_error_at(&s, 0, 1002, 7, NULL);
    gb_free(&s);

    put_str(&s, GH_WS_OP_BINARY, false, "a");
    put_str(&s, GH_WS_OP_PING, true, "");
    put_str(&s, GH_WS_OP_TEXT, false, "b");
    {
        gbuf want = { 0 };

        log_ctrl(&want, "PING", "", 0);
        expect_error_at(&s, 0, 1002, 13, &want);
        gb_free(&want);
    }
    gb_free(&s);
}
END_TEST

START_TEST(parse_refuses_a_64_bit_length_with_the_top_bit_set_with_1002)
{
    static const uint8_t f[] = { 0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4 };

    expect_raw_error(f, sizeof(f), 1002, 13);
}
END_TEST

START_TEST(parse_refuses_a_one_byte_close_payload_with_1002)
{
    static const uint8_t f[] = { 0x88, 0x81, 1, 2, 3, 4, 0x03 };

    expect_raw_error(f, sizeof(f), 1002, 1);
}
END_TEST

START_TEST(parse_refuses_invalid_close_codes_with_1002)
{
    static const uint16_t codes[] = { 0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100,
                                      2000, 2999, 5000, 65535 };

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        gbuf s = { 0 };

        put_close(&s, codes[i], "x", 1);
        expect_error_at(&s, 0, 1002, s.len - 1, NULL);
        gb_free(&s);
    }
}
END_TEST

START_TEST(parse_refuses_a_close_reason_that_is_not_utf8_with_1007)
{
    static const char *const bad[] = { "\xff", "ok\xc3", "\xed\xa0\x80", "\xc0\xaf" };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gbuf s = { 0 };

        put_close(&s, 1000, bad[i], strlen(bad[i]));
        expect_error_at(&s, 0, 1007, s.len - 1, NULL);
        gb_free(&s);
    }
}
END_TEST

START_TEST(parse_refuses_invalid_utf8_text_with_1007_at_the_bad_byte)
{
    gbuf s = { 0 };

    put_str(&s, GH_WS_OP_TEXT, true, "abc\xed\xa0\x80xyz");
    expect_error_at(&s, 0, 1007, 6 + 4, NULL);      /* the 0xA0 */
    gb_free(&s);

    put_str(&s, GH_WS_OP_TEXT, true, "\xff");
    expect_error_at(&s, 0, 1007, 6, NULL);
    gb_free(&s);
}
END_TEST

START_TEST(parse_refuses_invalid_utf8_split_across_fragments_with_1007)
{
    gbuf s = { 0 }, want = { 0 };

    /* U+110000 would start F4 90: F4 ends fragment 1 (still valid), 90 opens
     * fragment 3, after a ping. The failure is at the 0x90 byte. */
    put_str(&s, GH_WS_OP_TEXT, false, "ab\xf4");
    put_str(&s, GH_WS_OP_PING, true, "p");
    put_str(&s, GH_WS_OP_CONT, true, "\x90\x80\x80");
    log_ctrl(&want, "PING", "p", 1);
    expect_error_at(&s, 0, 1007, 9 + 7 + 6, &want);
    gb_free(&s);
    gb_free(&want);
}
END_TEST

START_TEST(parse_emits_the_valid_prefix_before_a_utf8_error)
{
    gbuf s = { 0 };
    gh_ws_parser p;
    gh_ws_event ev;

    put_str(&s, GH_WS_OP_TEXT, false, "ab\xf4");
    put_str(&s, GH_WS_OP_CONT, true, "\x90");
    gh_ws_parser_init(&p, 0);
    ck_assert_int_eq(gh_ws_parse(&p, s.p, s.len, &ev), 9);
    ck_assert_int_eq(ev.type, GH_WS_EV_DATA);
    ck_assert_int_eq(ev.len, 3);
    ck_assert_int_eq(gh_ws_parse(&p, s.p + 9, s.len - 9, &ev), GH_EPROTO);
    ck_assert_int_eq(p.error_code, 1007);
    ck_assert_int_eq(ev.type, GH_WS_EV_NONE);
    gb_free(&s);
}
END_TEST

START_TEST(parse_refuses_text_ending_inside_a_character_with_1007)
{
    gbuf s = { 0 };

    put_str(&s, GH_WS_OP_TEXT, true, "abc\xe2\x82");
    expect_error_at(&s, 0, 1007, 10, NULL);
    gb_free(&s);

    /* Incomplete at the end of a fragmented message, ended by an empty frame. */
    put_str(&s, GH_WS_OP_TEXT, false, "\xf0\x9f");
    put_str(&s, GH_WS_OP_CONT, true, "");
    expect_error_at(&s, 0, 1007, 8 + 5, NULL);
    gb_free(&s);
}
END_TEST

START_TEST(parse_does_not_check_binary_messages_as_utf8)
{
    gbuf s = { 0 }, want = { 0 };

    put_str(&s, GH_WS_OP_BINARY, false, "\xff\xc3");
    put_str(&s, GH_WS_OP_CONT, true, "\xed\xa0\x80");
    log_msg(&want, GH_WS_OP_BINARY, "\xff\xc3\xed\xa0\x80", 5);
    check_stream(&s, 0, &want, 0, 0);
    gb_free(&s);
    gb_free(&want);
}
END_TEST

START_TEST(parse_refuses_a_too_big_message_from_its_header_with_1009)
{
    gbuf s = { 0 };
    uint8_t h[GH_WS_MAX_HEADER];
    size_t hl;

    /* A single frame over the limit: refused once its header is in, with
     * no payload sent at all. */
    hl = gh_ws_frame_header_masked(h, GH_WS_OP_BINARY, true, 11, mask_key);
    gb_put(&s, h, hl);
    expect_error_at(&s, 10, 1009, hl - 1, NULL);
    gb_free(&s);

    /* A huge 64-bit length. */
    hl = gh_ws_frame_header_masked(h, GH_WS_OP_TEXT, true, UINT64_C(1) << 62, mask_key);
    gb_put(&s, h, hl);
    expect_error_at(&s, 1 << 20, 1009, hl - 1, NULL);
    gb_free(&s);

    /* The sum of fragments over the limit, with a ping in between. */
    put_str(&s, GH_WS_OP_TEXT, false, "123456");
    put_str(&s, GH_WS_OP_PING, true, "");
    put_str(&s, GH_WS_OP_CONT, true, "78901");
    {
        gbuf want = { 0 };

        log_ctrl(&want, "PING", "", 0);
        expect_error_at(&s, 10, 1009, 12 + 6 + 5, &want);
        gb_free(&want);
    }
    gb_free(&s);
}
END_TEST

START_TEST(parse_treats_max_message_0_as_no_limit)
{
    uint8_t *d = make_payload(100000, false);
    gbuf s = { 0 }, want = { 0 };
    run r;

    put_frame(&s, GH_WS_OP_BINARY, true, d, 100000);
    log_msg(&want, GH_WS_OP_BINARY, d, 100000);
    r = parse_whole(s.p, s.len, 0);
    assert_same(&r, &want, 0, 0, "whole", 0);
    run_free(&r);
    gb_free(&s);
    gb_free(&want);
    free(d);
}
END_TEST

START_TEST(parse_keeps_failing_after_an_error)
{
    static uint8_t f[] = { 0x81, 0x02, 'h', 'i' };
    uint8_t good[14];
    gh_ws_parser p;
    gh_ws_event ev;
    size_t n = gh_ws_frame_header_masked(good, GH_WS_OP_PING, true, 0, mask_key);

    gh_ws_parser_init(&p, 0);
    ck_assert_int_eq(gh_ws_parse(&p, f, sizeof(f), &ev), GH_EPROTO);
    ck_assert_int_eq(p.error_code, 1002);
    ck_assert_int_eq(gh_ws_parse(&p, good, n, &ev), GH_EPROTO);
    ck_assert_int_eq(ev.type, GH_WS_EV_NONE);
    ck_assert_int_eq(p.error_code, 1002);
}
END_TEST

START_TEST(parse_returns_0_for_empty_input)
{
    gh_ws_parser p;
    gh_ws_event ev;

    gh_ws_parser_init(&p, 0);
    ck_assert_int_eq(gh_ws_parse(&p, NULL, 0, &ev), 0);
    ck_assert_int_eq(ev.type, GH_WS_EV_NONE);

    /* Also in the middle of a control frame's and a data frame's payload. */
    {
        gbuf s = { 0 };

        uint8_t store[GH_WS_MAX_CONTROL];

        put_str(&s, GH_WS_OP_PING, true, "abc");
        put_str(&s, GH_WS_OP_TEXT, true, "def");
        ck_assert_int_eq(gh_ws_parse(&p, s.p, 7, &ev), 6);      /* header: split ping */
        ck_assert_int_eq(ev.type, GH_WS_EV_NEED_BUFFER);
        p.ctrl = store;
        ck_assert_int_eq(gh_ws_parse(&p, s.p + 6, 1, &ev), 1);
        ck_assert_int_eq(ev.type, GH_WS_EV_NONE);
        ck_assert_int_eq(gh_ws_parse(&p, NULL, 0, &ev), 0);
        ck_assert_int_eq(ev.type, GH_WS_EV_NONE);
        ck_assert_ptr_null(ev.release);
        ck_assert_int_eq(gh_ws_parse(&p, s.p + 7, 2, &ev), 2);
        ck_assert_int_eq(ev.type, GH_WS_EV_PING);
        ck_assert_ptr_eq(ev.release, store);
        ck_assert_int_eq(gh_ws_parse(&p, s.p + 9, 7, &ev), 7);
        ck_assert_int_eq(ev.type, GH_WS_EV_DATA);
        ck_assert_int_eq(gh_ws_parse(&p, NULL, 0, &ev), 0);
        ck_assert_int_eq(gh_ws_parse(&p, s.p + 16, 2, &ev), 2);
        ck_assert(ev.message_end);
        ck_assert_int_eq(memcmp(ev.data, "ef", 2), 0);
        gb_free(&s);
    }
}
END_TEST

/* ---- no over-read ---- */

START_TEST(parse_never_reads_past_the_end_of_its_input)
{
    long pagesz = sysconf(_SC_PAGESIZE);
    uint8_t *map = mmap(NULL, (size_t)pagesz * 2, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t *end;
    gbuf s = { 0 }, want = { 0 };
    uint8_t *d = make_payload(300, true);

    uint8_t *lmap = mmap(NULL, (size_t)pagesz * 2, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t *lend_end;

    ck_assert(map != MAP_FAILED);
    ck_assert_int_eq(mprotect(map + pagesz, (size_t)pagesz, PROT_NONE), 0);
    end = map + pagesz;
    ck_assert(lmap != MAP_FAILED);
    ck_assert_int_eq(mprotect(lmap + pagesz, (size_t)pagesz, PROT_NONE), 0);
    lend_end = lmap + pagesz;

    put_str(&s, GH_WS_OP_TEXT, false, "x\xe2");
    put_str(&s, GH_WS_OP_PING, true, "ping");
    put_str(&s, GH_WS_OP_CONT, true, "\x82\xac");
    put_frame(&s, GH_WS_OP_BINARY, true, d, 300);
    put_close(&s, 1001, "going", 5);
    log_ctrl(&want, "PING", "ping", 4);
    log_msg(&want, GH_WS_OP_TEXT, "x\xe2\x82\xac", 4);
    log_msg(&want, GH_WS_OP_BINARY, d, 300);
    log_close(&want, 1001, "going", 5);
    ck_assert_uint_lt(s.len, (size_t)pagesz);

    /* Every prefix of the stream, ending at the guard page. */
    for (size_t m = 0; m <= s.len; m++) {
        gh_ws_parser p;
        run r;

        memset(&r, 0, sizeof(r));
        memcpy(end - m, s.p, m);
        gh_ws_parser_init(&p, 0);
        feed(&p, end - m, 0, m, &r);
        ck_assert_int_eq(r.rc, 0);
        if (m == s.len)
            assert_same(&r, &want, 0, 0, "guard", m);
        ck_assert_ptr_eq(p.ctrl, r.lent);
        free(p.ctrl);
        run_free(&r);
        /* ... and byte by byte, lending control storage that also ends at
         * a guard page. */
        memset(&r, 0, sizeof(r));
        r.fixed_lend = lend_end - GH_WS_MAX_CONTROL;
        memcpy(end - m, s.p, m);
        gh_ws_parser_init(&p, 0);
        for (size_t i = 0; i < m; i++)
            feed(&p, end - m, i, i + 1, &r);
        ck_assert_int_eq(r.rc, 0);
        ck_assert_ptr_eq(p.ctrl, r.lent);
        if (m == s.len)
            ck_assert_uint_eq(r.nlent, 2);      /* the ping and the close */
        run_free(&r);
    }
    munmap(map, (size_t)pagesz * 2);
    munmap(lmap, (size_t)pagesz * 2);
    gb_free(&s);
    gb_free(&want);
    free(d);
}
END_TEST

/* ---- permessage-deflate: RSV1 ---- */

START_TEST(parser_init_leaves_rsv1_off)
{
    gh_ws_parser p;

    memset(&p, 0xff, sizeof(p));
    gh_ws_parser_init(&p, 0);
    ck_assert(!p.rsv1_ok);
}
END_TEST

START_TEST(parse_marks_every_chunk_of_a_compressed_message)
{
    gbuf s = { 0 }, want = { 0 };

    /* Whole compressed text; then compressed binary in three fragments with
     * a ping between (RSV1 only on the first); then plain text, which is
     * still checked; then an empty compressed message (0x00, §7.2.3.6). */
    put_frame_ex(&s, GH_WS_OP_TEXT, true, true, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
    put_frame_ex(&s, GH_WS_OP_BINARY, false, true, "\xf2\x48", 2);
    put_str(&s, GH_WS_OP_PING, true, "p");
    put_frame(&s, GH_WS_OP_CONT, false, "\xcd\xc9\xc9", 3);
    put_frame(&s, GH_WS_OP_CONT, false, "", 0);
    put_frame(&s, GH_WS_OP_CONT, true, "\x07\x00", 2);
    put_str(&s, GH_WS_OP_TEXT, true, "plain \xc3\xa9");
    put_frame_ex(&s, GH_WS_OP_BINARY, true, true, "\x00", 1);
    put_frame_ex(&s, GH_WS_OP_TEXT, false, true, "", 0);    /* empty first fragment */
    put_frame(&s, GH_WS_OP_CONT, true, "\x00", 1);
    log_msg_z(&want, GH_WS_OP_TEXT, true, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
    log_ctrl(&want, "PING", "p", 1);
    log_msg_z(&want, GH_WS_OP_BINARY, true, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7);
    log_msg(&want, GH_WS_OP_TEXT, "plain \xc3\xa9", 8);
    log_msg_z(&want, GH_WS_OP_BINARY, true, "\x00", 1);
    log_msg_z(&want, GH_WS_OP_TEXT, true, "\x00", 1);
    check_stream_ex(&s, 0, true, &want, 0, 0);
    gb_free(&s);
    gb_free(&want);
}
END_TEST

START_TEST(parse_sets_compressed_on_each_event_of_a_fragmented_message)
{
    gbuf s = { 0 };
    gh_ws_parser p;
    gh_ws_event ev;
    size_t off = 0;
    int data_events = 0;

    put_zstr(&s, GH_WS_OP_TEXT, false, "ab");
    put_str(&s, GH_WS_OP_CONT, false, "cd");
    put_str(&s, GH_WS_OP_CONT, true, "ef");
    put_str(&s, GH_WS_OP_BINARY, true, "gh");
    gh_ws_parser_init(&p, 0);
    p.rsv1_ok = true;
    while (off < s.len) {
        long n = gh_ws_parse(&p, s.p + off, s.len - off, &ev);

        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(ev.type, GH_WS_EV_DATA);
        ck_assert(ev.compressed == (data_events < 3));
        data_events++;
        off += (size_t)n;
    }
    ck_assert_int_eq(data_events, 4);
    gb_free(&s);
}
END_TEST

START_TEST(parse_does_not_check_compressed_text_as_utf8)
{
    gbuf s = { 0 }, want = { 0 };

    /* Invalid as UTF-8 from the first byte, split across fragments, and
     * ending inside a sequence: DEFLATE bytes, for the caller to inflate. */
    put_zstr(&s, GH_WS_OP_TEXT, false, "\xff\xc3");
    put_str(&s, GH_WS_OP_CONT, false, "\xed\xa0\x80");
    put_str(&s, GH_WS_OP_CONT, true, "\xf4\x90\xe2\x82");
    log_msg_z(&want, GH_WS_OP_TEXT, true, "\xff\xc3\xed\xa0\x80\xf4\x90\xe2\x82", 9);
    check_stream_ex(&s, 0, true, &want, 0, 0);
    gb_free(&s);
    gb_free(&want);

    /* The next plain text message is checked again. */
    log_msg_z(&want, GH_WS_OP_TEXT, true, "\xff", 1);
    put_zstr(&s, GH_WS_OP_TEXT, true, "\xff");
    put_str(&s, GH_WS_OP_TEXT, true, "ok\xff");
    expect_error_at_ex(&s, 0, true, 1007, 7 + 6 + 2, &want);
    gb_free(&s);
    gb_free(&want);
}
END_TEST

START_TEST(parse_refuses_rsv1_unless_allowed_with_1002)
{
    gbuf s = { 0 }, want = { 0 };

    put_zstr(&s, GH_WS_OP_TEXT, true, "x");
    expect_error_at_ex(&s, 0, false, 1002, 0, NULL);
    gb_free(&s);

    put_str(&s, GH_WS_OP_TEXT, true, "a");
    put_frame_ex(&s, GH_WS_OP_BINARY, true, true, "b", 1);
    log_msg(&want, GH_WS_OP_TEXT, "a", 1);
    expect_error_at_ex(&s, 0, false, 1002, 7, &want);
    gb_free(&s);
    gb_free(&want);
}
END_TEST

START_TEST(parse_refuses_rsv1_on_a_continuation_frame_with_1002)
{
    gbuf s = { 0 };

    /* Compressed message: RSV1 again on a later fragment (§6.1). */
    put_zstr(&s, GH_WS_OP_TEXT, false, "a");
    put_frame_ex(&s, GH_WS_OP_CONT, true, true, "b", 1);
    expect_error_at_ex(&s, 0, true, 1002, 7, NULL);
    gb_free(&s);

    /* Plain message: RSV1 first seen on a continuation. */
    put_str(&s, GH_WS_OP_BINARY, false, "a");
    put_frame_ex(&s, GH_WS_OP_CONT, false, true, "b", 1);
    expect_error_at_ex(&s, 0, true, 1002, 7, NULL);
    gb_free(&s);
}
END_TEST

START_TEST(parse_refuses_rsv1_on_control_frames_with_1002)
{
    static const int ops[] = { GH_WS_OP_CLOSE, GH_WS_OP_PING, GH_WS_OP_PONG };

    for (size_t i = 0; i < 3; i++) {
        gbuf s = { 0 };

        put_frame_ex(&s, ops[i], true, true, "\x03\xe8", 2);
        expect_error_at_ex(&s, 0, true, 1002, 0, NULL);
        gb_free(&s);

        /* ... also in the middle of a compressed message. */
        put_zstr(&s, GH_WS_OP_BINARY, false, "z");
        put_frame_ex(&s, ops[i], true, true, "", 0);
        expect_error_at_ex(&s, 0, true, 1002, 7, NULL);
        gb_free(&s);
    }
}
END_TEST

START_TEST(parse_refuses_rsv2_and_rsv3_with_1002_even_with_rsv1_allowed)
{
    static const uint8_t bits[] = { 0x10, 0x20, 0x30, 0x50, 0x60, 0x70 };

    for (size_t i = 0; i < sizeof(bits); i++) {
        uint8_t f[] = { (uint8_t)(0x81 | bits[i]), 0x80, 1, 2, 3, 4 };
        gbuf s = { 0 };

        gb_put(&s, f, sizeof(f));
        expect_error_at_ex(&s, 0, true, 1002, 0, NULL);
        expect_error_at_ex(&s, 0, false, 1002, 0, NULL);
        gb_free(&s);
    }
}
END_TEST

START_TEST(parse_allows_a_compressed_message_an_eighth_plus_64_over_max_message)
{
    /* max 1000: compressed payload up to 1000 + 125 + 64 = 1189. */
    uint8_t *d = make_payload(1190, false);
    uint8_t h[GH_WS_MAX_HEADER];
    gbuf s = { 0 }, want = { 0 };
    size_t hl;

    put_frame_ex(&s, GH_WS_OP_TEXT, true, true, d, 1189);
    log_msg_z(&want, GH_WS_OP_TEXT, true, d, 1189);
    check_stream_ex(&s, 1000, true, &want, 0, 0);
    gb_free(&s);
    gb_free(&want);

    /* One byte more: refused from the header. */
    hl = gh_ws_frame_header_masked_ex(h, GH_WS_OP_BINARY, true, true, 1190, mask_key);
    gb_put(&s, h, hl);
    expect_error_at_ex(&s, 1000, true, 1009, hl - 1, NULL);
    gb_free(&s);

    /* Summed over fragments, a ping between. */
    put_frame_ex(&s, GH_WS_OP_BINARY, false, true, d, 1000);
    put_str(&s, GH_WS_OP_PING, true, "");
    put_frame(&s, GH_WS_OP_CONT, false, d, 189);
    put_frame(&s, GH_WS_OP_CONT, true, d, 0);
    log_ctrl(&want, "PING", "", 0);
    {
        uint8_t *cat = malloc(1189);

        ck_assert_ptr_nonnull(cat);
        memcpy(cat, d, 1000);
        memcpy(cat + 1000, d, 189);
        log_msg_z(&want, GH_WS_OP_BINARY, true, cat, 1189);
        free(cat);
    }
    check_stream_ex(&s, 1000, true, &want, 0, 0);
    gb_free(&want);
    put_frame_ex(&s, GH_WS_OP_BINARY, false, true, d, 1189);
    put_frame(&s, GH_WS_OP_CONT, true, d, 1);
    log_ctrl(&want, "PING", "", 0);
    {
        uint8_t *cat = malloc(1189);

        ck_assert_ptr_nonnull(cat);
        memcpy(cat, d, 1000);
        memcpy(cat + 1000, d, 189);
        log_msg_z(&want, GH_WS_OP_BINARY, true, cat, 1189);
        free(cat);
    }
    expect_error_at_ex(&s, 1000, true, 1009, s.len - 1 - 1, &want);
    gb_free(&s);
    gb_free(&want);

    /* Uncompressed messages keep the exact limit, rsv1_ok or not. */
    put_frame(&s, GH_WS_OP_BINARY, true, d, 1001);
    expect_error_at_ex(&s, 1000, true, 1009, 7, NULL);
    gb_free(&s);
    free(d);
}
END_TEST

START_TEST(parse_saturates_the_compressed_limit_near_2_to_64)
{
    uint8_t h[GH_WS_MAX_HEADER];
    gh_ws_parser p;
    gh_ws_event ev;
    size_t hl = gh_ws_frame_header_masked_ex(h, GH_WS_OP_BINARY, true, true,
                                             (UINT64_C(1) << 63) - 1, mask_key);

    /* max_message + max/8 + 64 would wrap: no limit below 2^64. */
    gh_ws_parser_init(&p, UINT64_MAX - 10);
    p.rsv1_ok = true;
    ck_assert_int_eq(gh_ws_parse(&p, h, hl, &ev), (long)hl);
    ck_assert_int_eq(ev.type, GH_WS_EV_NONE);

    /* A compressed message under max_message 0 has no limit either. */
    gh_ws_parser_init(&p, 0);
    p.rsv1_ok = true;
    ck_assert_int_eq(gh_ws_parse(&p, h, hl, &ev), (long)hl);
    ck_assert_int_eq(ev.type, GH_WS_EV_NONE);
}
END_TEST

/* ---- encoder ---- */

START_TEST(frame_header_uses_7_16_and_64_bit_lengths)
{
    uint8_t h[GH_WS_MAX_HEADER];

    ck_assert_uint_eq(gh_ws_frame_header(h, GH_WS_OP_TEXT, true, 0), 2);
    ck_assert_int_eq(h[0], 0x81);
    ck_assert_int_eq(h[1], 0x00);
    ck_assert_uint_eq(gh_ws_frame_header(h, GH_WS_OP_BINARY, false, 125), 2);
    ck_assert_int_eq(h[0], 0x02);
    ck_assert_int_eq(h[1], 125);
    ck_assert_uint_eq(gh_ws_frame_header(h, GH_WS_OP_CONT, true, 126), 4);
    ck_assert_int_eq(h[0], 0x80);
    ck_assert_int_eq(h[1], 126);
    ck_assert_int_eq(h[2], 0);
    ck_assert_int_eq(h[3], 126);
    ck_assert_uint_eq(gh_ws_frame_header(h, GH_WS_OP_TEXT, true, 65535), 4);
    ck_assert_int_eq(h[2], 0xFF);
    ck_assert_int_eq(h[3], 0xFF);
    ck_assert_uint_eq(gh_ws_frame_header(h, GH_WS_OP_TEXT, true, 65536), 10);
    ck_assert_int_eq(h[1], 127);
    ck_assert_int_eq(memcmp(h + 2, "\0\0\0\0\0\x01\0\0", 8), 0);
    ck_assert_uint_eq(gh_ws_frame_header(h, GH_WS_OP_PING, true, UINT64_C(0x0102030405060708)), 10);
    ck_assert_int_eq(h[0], 0x89);
    ck_assert_int_eq(memcmp(h + 2, "\x01\x02\x03\x04\x05\x06\x07\x08", 8), 0);
}
END_TEST

START_TEST(frame_header_masked_sets_the_mask_bit_and_key)
{
    uint8_t h[GH_WS_MAX_HEADER];

    ck_assert_uint_eq(gh_ws_frame_header_masked(h, GH_WS_OP_TEXT, true, 5, mask_key), 6);
    ck_assert_int_eq(h[1], 0x85);
    ck_assert_int_eq(memcmp(h + 2, mask_key, 4), 0);
    ck_assert_uint_eq(gh_ws_frame_header_masked(h, GH_WS_OP_TEXT, true, 300, mask_key), 8);
    ck_assert_int_eq(h[1], 0x80 | 126);
    ck_assert_uint_eq(gh_ws_frame_header_masked(h, GH_WS_OP_TEXT, true, 70000, mask_key), 14);
    ck_assert_int_eq(h[1], 0x80 | 127);
    ck_assert_int_eq(memcmp(h + 10, mask_key, 4), 0);
}
END_TEST

START_TEST(frame_header_ex_sets_rsv1_and_the_old_names_do_not)
{
    uint8_t h[GH_WS_MAX_HEADER], h2[GH_WS_MAX_HEADER];
    static const uint64_t lens[] = { 0, 125, 126, 65535, 65536 };

    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t n = gh_ws_frame_header_ex(h, GH_WS_OP_TEXT, true, true, lens[i]);
        size_t n2 = gh_ws_frame_header(h2, GH_WS_OP_TEXT, true, lens[i]);

        ck_assert_uint_eq(n, n2);
        ck_assert_int_eq(h[0], 0xC1);
        ck_assert_int_eq(h2[0], 0x81);
        ck_assert_int_eq(memcmp(h + 1, h2 + 1, n - 1), 0);
        ck_assert_uint_eq(gh_ws_frame_header_ex(h, GH_WS_OP_BINARY, false, false, lens[i]), n);
        ck_assert_int_eq(h[0], 0x02);

        n = gh_ws_frame_header_masked_ex(h, GH_WS_OP_BINARY, true, true, lens[i], mask_key);
        n2 = gh_ws_frame_header_masked(h2, GH_WS_OP_BINARY, true, lens[i], mask_key);
        ck_assert_uint_eq(n, n2);
        ck_assert_int_eq(h[0], 0xC2);
        ck_assert_int_eq(h2[0], 0x82);
        ck_assert_int_eq(h[1] & 0x80, 0x80);
        ck_assert_int_eq(memcmp(h + 1, h2 + 1, n - 1), 0);
        ck_assert_int_eq(memcmp(h + n - 4, mask_key, 4), 0);
    }
}
END_TEST

START_TEST(frame_header_ex_round_trips_through_the_parser)
{
    /* RFC 7692 §7.2.3.1's "Hello", as a client would frame it. */
    static const uint8_t hello[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00 };
    uint8_t buf[GH_WS_MAX_HEADER + sizeof(hello)];
    size_t n = gh_ws_frame_header_masked_ex(buf, GH_WS_OP_TEXT, true, true, sizeof(hello),
                                            mask_key);
    gh_ws_parser p;
    gh_ws_event ev;

    ck_assert_uint_eq(n, 6);
    ck_assert_int_eq(buf[0], 0xC1);
    memcpy(buf + n, hello, sizeof(hello));
    gh_ws_mask(buf + n, sizeof(hello), mask_key, 0);
    gh_ws_parser_init(&p, 0);
    p.rsv1_ok = true;
    ck_assert_int_eq(gh_ws_parse(&p, buf, n + sizeof(hello), &ev), (long)(n + sizeof(hello)));
    ck_assert_int_eq(ev.type, GH_WS_EV_DATA);
    ck_assert(ev.compressed && ev.message_end);
    ck_assert_int_eq(ev.opcode, GH_WS_OP_TEXT);
    ck_assert_uint_eq(ev.len, sizeof(hello));
    ck_assert_int_eq(memcmp(ev.data, hello, sizeof(hello)), 0);
}
END_TEST

START_TEST(mask_matches_the_rfc_example)
{
    /* RFC 6455 §5.7: a masked "Hello". */
    static const uint8_t frame[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                     0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    uint8_t buf[sizeof(frame)];
    gh_ws_parser p;
    gh_ws_event ev;

    memcpy(buf, frame, sizeof(buf));
    gh_ws_parser_init(&p, 0);
    ck_assert_int_eq(gh_ws_parse(&p, buf, sizeof(buf), &ev), (long)sizeof(buf));
    ck_assert_int_eq(ev.type, GH_WS_EV_DATA);
    ck_assert_int_eq(ev.opcode, GH_WS_OP_TEXT);
    ck_assert(ev.message_end);
    ck_assert_int_eq(ev.len, 5);
    ck_assert_int_eq(memcmp(ev.data, "Hello", 5), 0);
}
END_TEST

START_TEST(mask_matches_a_bytewise_xor_at_every_offset_and_alignment)
{
    static const uint8_t key[4] = { 0xde, 0xad, 0xbe, 0xef };
    uint8_t src[200], buf[208];

    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (uint8_t)(i * 7);
    for (size_t align = 0; align < 8; align++)
        for (size_t off = 0; off < 9; off++)
            for (size_t len = 0; len <= sizeof(src); len++) {
                memcpy(buf + align, src, len);
                gh_ws_mask(buf + align, len, key, off);
                for (size_t i = 0; i < len; i++)
                    if (buf[align + i] != (src[i] ^ key[(off + i) % 4]))
                        ck_abort_msg("align %zu off %zu len %zu byte %zu", align, off, len, i);
            }
}
END_TEST

START_TEST(close_payload_writes_code_and_reason)
{
    uint8_t out[GH_WS_MAX_CONTROL];

    ck_assert_uint_eq(gh_ws_close_payload(out, 1000, "bye", 3), 5);
    ck_assert_int_eq(memcmp(out, "\x03\xe8" "bye", 5), 0);
    ck_assert_uint_eq(gh_ws_close_payload(out, 4001, NULL, 0), 2);
    ck_assert_int_eq(memcmp(out, "\x0f\xa1", 2), 0);
    ck_assert_uint_eq(gh_ws_close_payload(out, 1005, "x", 1), 0);
}
END_TEST

START_TEST(close_payload_cuts_the_reason_at_a_utf8_boundary)
{
    char reason[200];
    uint8_t out[GH_WS_MAX_CONTROL];

    /* 122 ASCII then "é" (2 bytes) would be 124: cut before the é. */
    memset(reason, 'a', 122);
    memcpy(reason + 122, "\xc3\xa9zz", 4);
    ck_assert_uint_eq(gh_ws_close_payload(out, 1001, reason, 126), 2 + 122);
    /* 121 ASCII then é fits exactly 123. */
    memset(reason, 'a', 121);
    memcpy(reason + 121, "\xc3\xa9zz", 4);
    ck_assert_uint_eq(gh_ws_close_payload(out, 1001, reason, 125), 2 + 123);
    ck_assert_int_eq(memcmp(out + 2 + 121, "\xc3\xa9", 2), 0);
    /* A 4-byte character straddling 123. */
    memset(reason, 'a', 120);
    memcpy(reason + 120, "\xf0\x9f\x98\x80", 4);
    ck_assert_uint_eq(gh_ws_close_payload(out, 1001, reason, 124), 2 + 120);
    /* Plain ASCII is cut at 123. */
    memset(reason, 'b', sizeof(reason));
    ck_assert_uint_eq(gh_ws_close_payload(out, 1000, reason, sizeof(reason)), 125);
}
END_TEST

START_TEST(close_payload_round_trips_through_the_parser)
{
    uint8_t pl[GH_WS_MAX_CONTROL];
    size_t n = gh_ws_close_payload(pl, 1011, "internal \xe2\x9c\x97", 12);
    gbuf s = { 0 }, want = { 0 };

    put_frame(&s, GH_WS_OP_CLOSE, true, pl, n);
    log_close(&want, 1011, "internal \xe2\x9c\x97", 12);
    check_stream(&s, 0, &want, 0, 0);
    gb_free(&s);
    gb_free(&want);
}
END_TEST

START_TEST(close_code_is_valid_follows_the_registry)
{
    for (uint32_t c = 0; c <= 0xFFFF; c++) {
        bool want = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014)
                    || (c >= 3000 && c <= 4999);

        if (gh_ws_close_code_is_valid((uint16_t)c) != want)
            ck_abort_msg("code %u", c);
    }
}
END_TEST

START_TEST(frame_size_covers_every_length_form_and_waits_for_the_whole_header)
{
    static const struct {
        uint8_t  hdr[14];
        size_t   hlen;
        uint64_t size;
    } cases[] = {
        { { 0x81, 0x05 }, 2, 2 + 5 },                                   /* 7-bit */
        { { 0x89, 0x00 }, 2, 2 },                                       /* empty ping */
        { { 0x81, 0x85, 1, 2, 3, 4 }, 6, 6 + 5 },                       /* masked */
        { { 0x82, 0x7e, 0x01, 0x00 }, 4, 4 + 256 },                     /* 16-bit */
        { { 0x82, 0xfe, 0xff, 0xff, 9, 9, 9, 9 }, 8, 8 + 65535 },       /* 16-bit, masked */
        { { 0x82, 0x7f, 0, 0, 0, 1, 0, 0, 0, 0 }, 10, 10 + 4294967296ULL },   /* 64-bit */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t size = 0;

        for (size_t n = 0; n < cases[i].hlen; n++)
            ck_assert_int_eq(gh_ws_frame_size(cases[i].hdr, n, &size), GH_EAGAIN);
        ck_assert_int_eq(gh_ws_frame_size(cases[i].hdr, cases[i].hlen, &size), GH_OK);
        ck_assert_uint_eq(size, cases[i].size);
    }
}
END_TEST

START_TEST(frame_size_refuses_a_64_bit_length_with_the_top_bit_set)
{
    static const uint8_t hdr[] = { 0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1 };
    uint64_t size = 7;

    ck_assert_int_eq(gh_ws_frame_size(hdr, sizeof(hdr), &size), GH_EPROTO);
    ck_assert_uint_eq(size, 7);
}
END_TEST

static Suite *wsframe_suite(void)
{
    Suite *s = suite_create("wsframe");
    TCase *ok = tcase_create("valid");
    TCase *bad = tcase_create("violations");
    TCase *enc = tcase_create("encoder");
    TCase *z = tcase_create("rsv1");

    tcase_set_timeout(ok, 120);
    tcase_set_timeout(bad, 120);
    tcase_set_timeout(z, 120);
    tcase_add_test(ok, parse_reassembles_messages_of_every_length_encoding);
    tcase_add_test(ok, parse_reassembles_fragmented_text_with_a_ping_in_the_middle);
    tcase_add_test(ok, parse_reports_an_empty_final_frame_as_message_end);
    tcase_add_test(ok, parse_emits_a_zero_length_final_chunk_with_message_end);
    tcase_add_test(ok, parse_streams_data_chunks_as_they_arrive);
    tcase_add_test(ok, parse_returns_at_most_one_event_per_call);
    tcase_add_test(ok, parse_accepts_control_frames_up_to_125_bytes);
    tcase_add_test(ok, parse_reports_close_code_and_reason_then_ignores_the_rest);
    tcase_add_test(ok, parse_reports_an_empty_close_as_1005);
    tcase_add_test(ok, parse_accepts_every_valid_close_code);
    tcase_add_test(ok, parse_accepts_a_close_reason_of_123_bytes);
    tcase_add_test(ok, parse_accepts_non_minimal_length_encodings);
    tcase_add_test(ok, parse_accepts_a_message_of_exactly_max_message);
    tcase_add_test(ok, parse_does_not_check_binary_messages_as_utf8);
    tcase_add_test(ok, parse_treats_max_message_0_as_no_limit);
    tcase_add_test(ok, parse_returns_0_for_empty_input);
    tcase_add_test(ok, parse_never_reads_past_the_end_of_its_input);
    tcase_add_test(ok, parse_reports_a_whole_control_frame_in_place_without_asking_for_storage);
    tcase_add_test(ok, parse_asks_for_storage_once_the_header_of_a_split_control_frame_is_in);
    tcase_add_test(ok, parse_asks_again_while_no_storage_was_given);
    tcase_add_test(ok, parse_hands_back_storage_set_ahead_at_the_end_of_the_next_control_frame);
    tcase_add_test(ok, parse_hands_back_control_storage_with_the_error_that_refuses_its_frame);
    tcase_add_test(ok, parse_reassembles_split_control_frames_inside_a_message_at_any_two_cuts);
    tcase_add_test(ok, parser_state_stays_small);
    tcase_add_test(ok, parser_at_rest_only_between_frames_with_nothing_pending);
    tcase_add_test(ok, parse_gives_the_same_transcript_when_a_parser_at_rest_is_replaced);
    tcase_add_test(bad, parse_refuses_an_unmasked_frame_with_1002);
    tcase_add_test(bad, parse_refuses_rsv_bits_with_1002);
    tcase_add_test(bad, parse_refuses_reserved_opcodes_with_1002);
    tcase_add_test(bad, parse_refuses_long_or_fragmented_control_frames_with_1002);
    tcase_add_test(bad, parse_refuses_a_continuation_without_a_message_with_1002);
    tcase_add_test(bad, parse_refuses_a_new_message_inside_a_fragmented_one_with_1002);
    tcase_add_test(bad, parse_refuses_a_64_bit_length_with_the_top_bit_set_with_1002);
    tcase_add_test(bad, parse_refuses_a_one_byte_close_payload_with_1002);
    tcase_add_test(bad, parse_refuses_invalid_close_codes_with_1002);
    tcase_add_test(bad, parse_refuses_a_close_reason_that_is_not_utf8_with_1007);
    tcase_add_test(bad, parse_refuses_invalid_utf8_text_with_1007_at_the_bad_byte);
    tcase_add_test(bad, parse_refuses_invalid_utf8_split_across_fragments_with_1007);
    tcase_add_test(bad, parse_emits_the_valid_prefix_before_a_utf8_error);
    tcase_add_test(bad, parse_refuses_text_ending_inside_a_character_with_1007);
    tcase_add_test(bad, parse_refuses_a_too_big_message_from_its_header_with_1009);
    tcase_add_test(bad, parse_keeps_failing_after_an_error);
    tcase_add_test(z, parser_init_leaves_rsv1_off);
    tcase_add_test(z, parse_marks_every_chunk_of_a_compressed_message);
    tcase_add_test(z, parse_sets_compressed_on_each_event_of_a_fragmented_message);
    tcase_add_test(z, parse_does_not_check_compressed_text_as_utf8);
    tcase_add_test(z, parse_refuses_rsv1_unless_allowed_with_1002);
    tcase_add_test(z, parse_refuses_rsv1_on_a_continuation_frame_with_1002);
    tcase_add_test(z, parse_refuses_rsv1_on_control_frames_with_1002);
    tcase_add_test(z, parse_refuses_rsv2_and_rsv3_with_1002_even_with_rsv1_allowed);
    tcase_add_test(z, parse_allows_a_compressed_message_an_eighth_plus_64_over_max_message);
    tcase_add_test(z, parse_saturates_the_compressed_limit_near_2_to_64);
    tcase_add_test(enc, frame_header_uses_7_16_and_64_bit_lengths);
    tcase_add_test(enc, frame_header_ex_sets_rsv1_and_the_old_names_do_not);
    tcase_add_test(enc, frame_header_ex_round_trips_through_the_parser);
    tcase_add_test(enc, frame_header_masked_sets_the_mask_bit_and_key);
    tcase_add_test(enc, mask_matches_the_rfc_example);
    tcase_add_test(enc, mask_matches_a_bytewise_xor_at_every_offset_and_alignment);
    tcase_add_test(enc, close_payload_writes_code_and_reason);
    tcase_add_test(enc, close_payload_cuts_the_reason_at_a_utf8_boundary);
    tcase_add_test(enc, close_payload_round_trips_through_the_parser);
    tcase_add_test(enc, close_code_is_valid_follows_the_registry);
    tcase_add_test(enc, frame_size_covers_every_length_form_and_waits_for_the_whole_header);
    tcase_add_test(enc, frame_size_refuses_a_64_bit_length_with_the_top_bit_set);
    suite_add_tcase(s, ok);
    suite_add_tcase(s, bad);
    suite_add_tcase(s, z);
    suite_add_tcase(s, enc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(wsframe_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
