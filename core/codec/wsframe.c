/* wsframe.c: RFC 6455 frame parser and encoder (server side).
 *
 * Why this shape: the parser is a byte-driven state machine that can be
 * fed any split of the input, never allocates and never copies message
 * payload: data is unmasked in place and handed out as chunks pointing into
 * the caller's buffer, so a large message costs no extra memory here and
 * the glue decides how to accumulate it. A control payload (at most 125
 * bytes) is reported whole: in place when it came in one call, the usual
 * case, else assembled in storage the caller lends for that one frame
 * (GH_WS_EV_NEED_BUFFER) and gets back with the event. The parser lives in
 * every connection, most of them idle, so it keeps no 125-byte buffer of
 * its own; asking instead of calling malloc keeps the codec free of
 * allocation and of an out-of-memory path: the glue owns both.
 * Every rule is checked at the earliest byte that decides it: a bad opcode
 * at the first header byte, an oversized message at the length field, bad
 * UTF-8 at the chunk that holds it.
 *
 * Extensions: only permessage-deflate's RSV1 (RFC 7692 §6.1), when the
 * caller says it was negotiated. A compressed message is framed, not
 * inflated: its chunks go out marked compressed, unchecked as UTF-8 (they
 * are DEFLATE bytes), under a size limit loosened by DEFLATE's worst-case
 * growth; the caller inflates and checks the text and the inflated size.
 *
 * What it does not do: other extensions (RSV2/RSV3 are refused), the client
 * side of the protocol, closing-handshake timing or anything with a
 * socket. */
#include "wsframe.h"

#include <limits.h>
#include <string.h>

#include "err.h"

enum { ST_HEADER = 0, ST_PAYLOAD };

static bool is_control(unsigned opcode)
{
    return (opcode & 0x8) != 0;
}

/* The current frame's first header byte stays in hdr[0] until the next
 * header starts: its opcode and FIN are read from there. */
static unsigned frame_opcode(const gh_ws_parser *p)
{
    return p->hdr[0] & 0x0F;
}

static bool frame_fin(const gh_ws_parser *p)
{
    return (p->hdr[0] & 0x80) != 0;
}

static long fail(gh_ws_parser *p, uint16_t code)
{
    p->failed = true;
    p->error_code = code;
    return GH_EPROTO;
}

void gh_ws_parser_init(gh_ws_parser *p, uint64_t max_message)
{
    memset(p, 0, sizeof(*p));
    p->max_message = max_message;
    p->state = ST_HEADER;
    gh_utf8_init(&p->utf8);
}

bool gh_ws_parser_at_rest(const gh_ws_parser *p)
{
    /* The rest (mask, hdr, utf8, frame and message lengths) is set afresh
     * when the next header is complete or the next message starts. */
    return p->state == ST_HEADER && p->hdr_have == 0 && !p->in_message &&
           p->ctrl == NULL && !p->closed && !p->failed;
}

/* First header byte: FIN, RSV1-3, opcode (§5.2). It is in hdr[0]. */
static long check_byte0(gh_ws_parser *p, uint8_t b)
{
    unsigned opcode = b & 0x0F;

    if ((b & 0x30) != 0)                /* RSV2, RSV3: no extension of ours uses them */
        return fail(p, GH_WS_CLOSE_PROTOCOL_ERROR);
    /* RSV1 is permessage-deflate's "compressed" bit: only when negotiated,
     * and only on a data message's first frame (RFC 7692 §6.1). */
    if ((b & 0x40) != 0 && (!p->rsv1_ok || (opcode != GH_WS_OP_TEXT && opcode != GH_WS_OP_BINARY)))
        return fail(p, GH_WS_CLOSE_PROTOCOL_ERROR);
    switch (opcode) {
    case GH_WS_OP_CONT:
        if (!p->in_message)
            return fail(p, GH_WS_CLOSE_PROTOCOL_ERROR);
        break;
    case GH_WS_OP_TEXT:
    case GH_WS_OP_BINARY:
        if (p->in_message)              /* §5.4: fragments may not interleave */
            return fail(p, GH_WS_CLOSE_PROTOCOL_ERROR);
        break;
    case GH_WS_OP_CLOSE:
    case GH_WS_OP_PING:
    case GH_WS_OP_PONG:
        if ((b & 0x80) == 0)            /* §5.5: control frames are not fragmented */
            return fail(p, GH_WS_CLOSE_PROTOCOL_ERROR);
        break;
    default:                            /* 3-7, 11-15 reserved */
        return fail(p, GH_WS_CLOSE_PROTOCOL_ERROR);
    }
    return 0;
}

/* Header bytes needed: 2 until the second byte tells the length field's
 * size, then the whole header. */
static size_t header_need(const gh_ws_parser *p)
{
    unsigned len7;

    if (p->hdr_have < 2)
        return 2;
    len7 = p->hdr[1] & 0x7F;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
}

/* Second header byte: MASK, 7-bit length. */
static long check_byte1(gh_ws_parser *p, uint8_t b)
{
    unsigned len7 = b & 0x7F;

    if ((b & 0x80) == 0)                /* §5.1: client frames are masked */
        return fail(p, GH_WS_CLOSE_PROTOCOL_ERROR);
    if (is_control(frame_opcode(p))) {
        if (len7 > GH_WS_MAX_CONTROL)
            return fail(p, GH_WS_CLOSE_PROTOCOL_ERROR);
        if (frame_opcode(p) == GH_WS_OP_CLOSE && len7 == 1)   /* §5.5.1 */
            return fail(p, GH_WS_CLOSE_PROTOCOL_ERROR);
    }
    return 0;
}

/* The payload limit of a message: max_message, or for a compressed one
 * max_message plus DEFLATE's growth on data that does not compress (stored
 * blocks: 5 bytes per 64 KiB; fixed Huffman codes: at most 9 bits a byte),
 * so that a message near max_message is not refused for its compressed
 * size. The caller holds the inflated size to max_message. */
static uint64_t message_limit(const gh_ws_parser *p, bool compressed)
{
    uint64_t max = p->max_message, extra;

    if (max == 0)
        return UINT64_MAX;
    if (!compressed)
        return max;
    extra = max / 8 + 64;
    return max > UINT64_MAX - extra ? UINT64_MAX : max + extra;
}

/* The whole header is in p->hdr: decode length and mask, apply the size
 * limit, and start the frame (and, for TEXT/BINARY, the message). */
static long start_frame(gh_ws_parser *p)
{
    unsigned opcode = frame_opcode(p);
    unsigned len7 = p->hdr[1] & 0x7F;
    uint64_t len = len7;
    size_t at = 2;

    if (len7 == 126) {
        len = ((uint64_t)p->hdr[2] << 8) | p->hdr[3];
        at = 4;
    } else if (len7 == 127) {
        len = 0;
        for (size_t i = 0; i < 8; i++)
            len = (len << 8) | p->hdr[2 + i];
        if (len >> 63)                  /* §5.2: most significant bit MUST be 0 */
            return fail(p, GH_WS_CLOSE_PROTOCOL_ERROR);
        at = 10;
    }
    memcpy(p->mask, p->hdr + at, 4);

    if (!is_control(opcode)) {
        bool cont = opcode == GH_WS_OP_CONT;
        uint64_t limit = message_limit(p, cont ? p->msg_compressed : (p->hdr[0] & 0x40) != 0);
        uint64_t so_far = cont ? p->msg_bytes : 0;

        /* so_far <= limit holds unless max_message was lowered mid-message,
         * so neither the subtraction nor the sum below can wrap. The check
         * needs only the header: a too-big message is refused before its
         * payload is read. */
        if (so_far > limit || len > limit - so_far)
            return fail(p, GH_WS_CLOSE_TOO_BIG);
        if (!cont) {
            p->in_message = true;
            p->msg_opcode = (uint8_t)opcode;
            p->msg_compressed = (p->hdr[0] & 0x40) != 0;
            p->msg_bytes = 0;
            gh_utf8_init(&p->utf8);
        }
        p->msg_bytes += len;
    }
    p->frame_len = len;
    p->frame_done = 0;
    p->state = ST_PAYLOAD;
    p->hdr_have = 0;
    return 0;
}

/* A complete control payload, unmasked, is in payload[0..frame_len): report
 * it. */
static long finish_control(gh_ws_parser *p, uint8_t *payload, gh_ws_event *ev)
{
    size_t n = (size_t)p->frame_len;

    p->state = ST_HEADER;
    ev->opcode = (int)frame_opcode(p);
    ev->data = payload;
    ev->len = n;
    switch (frame_opcode(p)) {
    case GH_WS_OP_PING:
        ev->type = GH_WS_EV_PING;
        break;
    case GH_WS_OP_PONG:
        ev->type = GH_WS_EV_PONG;
        break;
    default: {                          /* CLOSE, §5.5.1 and §7.4 */
        gh_utf8 u;

        ev->close_code = GH_WS_CLOSE_NO_STATUS;
        ev->close_reason = payload;
        if (n >= 2) {
            ev->close_code = (uint16_t)((payload[0] << 8) | payload[1]);
            if (!gh_ws_close_code_is_valid(ev->close_code))
                return fail(p, GH_WS_CLOSE_PROTOCOL_ERROR);
            ev->close_reason = payload + 2;
            ev->close_reason_len = n - 2;
            if (ev->close_reason_len > GH_WS_MAX_REASON)
                return fail(p, GH_WS_CLOSE_PROTOCOL_ERROR);
            gh_utf8_init(&u);
            if (gh_utf8_feed(&u, ev->close_reason, ev->close_reason_len) != 0
                || !gh_utf8_is_complete(&u))
                return fail(p, GH_WS_CLOSE_INVALID_DATA);
        }
        ev->type = GH_WS_EV_CLOSE;
        p->closed = true;
        break;
    }
    }
    return 0;
}

/* Control payload bytes buf[0..n) (all of what is left of the frame, or all
 * of the input). Returns the bytes consumed or GH_EPROTO, and sets *ev. */
static long control_bytes(gh_ws_parser *p, uint8_t *buf, size_t n, gh_ws_event *ev)
{
    uint8_t *payload;
    long rc;

    if (p->frame_done == 0 && n == p->frame_len) {
        /* All here: unmask in place, nothing to keep. */
        gh_ws_mask(buf, n, p->mask, 0);
        payload = buf;
    } else {
        if (p->ctrl == NULL) {          /* the caller ignored the request */
            ev->type = GH_WS_EV_NEED_BUFFER;
            return 0;
        }
        /* frame_done + n <= frame_len <= GH_WS_MAX_CONTROL: within p->ctrl */
        memcpy(p->ctrl + p->frame_done, buf, n);
        gh_ws_mask(p->ctrl + p->frame_done, n, p->mask, (size_t)p->frame_done);
        p->frame_done += n;
        if (p->frame_done < p->frame_len)
            return (long)n;             /* n was all the input: need more */
        payload = p->ctrl;
    }
    /* The frame is over, reported or refused: hand back the storage lent
     * for it (used or not), so that no idle parser holds any. */
    ev->release = p->ctrl;
    p->ctrl = NULL;
    rc = finish_control(p, payload, ev);
    return rc != 0 ? rc : (long)n;
}

/* Reports payload bytes chunk[0..n) of the current data frame (n may be 0
 * only for an empty frame). Sets *reported when an event was produced. */
static long data_chunk(gh_ws_parser *p, uint8_t *chunk, size_t n,
                       gh_ws_event *ev, bool *reported)
{
    bool frame_end, msg_end, compressed = p->msg_compressed;

    gh_ws_mask(chunk, n, p->mask, (size_t)(p->frame_done & 3));
    p->frame_done += n;
    frame_end = p->frame_done == p->frame_len;
    msg_end = frame_end && frame_fin(p);
    /* Compressed text is DEFLATE bytes: the caller checks what it inflates. */
    if (p->msg_opcode == GH_WS_OP_TEXT && !compressed) {
        if (gh_utf8_feed(&p->utf8, chunk, n) != 0)
            return fail(p, GH_WS_CLOSE_INVALID_DATA);
        if (msg_end && !gh_utf8_is_complete(&p->utf8))
            return fail(p, GH_WS_CLOSE_INVALID_DATA);
    }
    if (frame_end) {
        p->state = ST_HEADER;
        if (msg_end) {
            p->in_message = false;
            p->msg_compressed = false;
            p->msg_bytes = 0;
        }
    }
    *reported = n > 0 || msg_end;
    if (*reported) {
        ev->type = GH_WS_EV_DATA;
        ev->opcode = p->msg_opcode;
        ev->data = chunk;
        ev->len = n;
        ev->message_end = msg_end;
        ev->compressed = compressed;
    }
    return 0;
}

long gh_ws_parse(gh_ws_parser *p, uint8_t *buf, size_t len, gh_ws_event *ev)
{
    size_t pos = 0;
    long rc;

    memset(ev, 0, sizeof(*ev));
    ev->type = GH_WS_EV_NONE;
    if (p->failed)
        return GH_EPROTO;
    if (p->closed)
        return len > (size_t)LONG_MAX ? LONG_MAX : (long)len;
    if (len == 0)                       /* nothing to do; buf may be NULL */
        return 0;
    if (len > (size_t)LONG_MAX)         /* keep the return value representable */
        len = (size_t)LONG_MAX;

    for (;;) {
        if (p->state == ST_HEADER) {
            while (p->hdr_have < header_need(p) && pos < len) {
                uint8_t b = buf[pos++];

                p->hdr[p->hdr_have++] = b;
                if (p->hdr_have == 1)
                    rc = check_byte0(p, b);
                else if (p->hdr_have == 2)
                    rc = check_byte1(p, b);
                else
                    rc = 0;
                if (rc != 0)
                    return rc;
            }
            if (p->hdr_have < header_need(p))
                return (long)pos;       /* header incomplete; all consumed */
            if ((rc = start_frame(p)) != 0)
                return rc;
            if (is_control(frame_opcode(p)) && p->frame_len > len - pos &&
                p->ctrl == NULL) {
                /* Split across calls: storage for the rest, please. pos > 0:
                 * this call completed the header. */
                ev->type = GH_WS_EV_NEED_BUFFER;
                return (long)pos;
            }
        }

        /* ST_PAYLOAD */
        uint64_t left = p->frame_len - p->frame_done;
        size_t n = (size_t)((uint64_t)(len - pos) < left ? (uint64_t)(len - pos) : left);

        if (is_control(frame_opcode(p))) {
            if ((rc = control_bytes(p, buf + pos, n, ev)) < 0)
                return rc;
            return (long)pos + rc;
        }

        bool reported = false;

        if (n == 0 && left > 0)
            return (long)pos;           /* pos == len: need more */
        if ((rc = data_chunk(p, buf + pos, n, ev, &reported)) != 0)
            return rc;
        pos += n;
        if (reported || pos == len)
            return (long)pos;
        /* An empty non-final frame: nothing to report, keep going. */
    }
}

size_t gh_ws_frame_header_ex(uint8_t out[GH_WS_MAX_HEADER], int opcode, bool fin,
                             bool rsv1, uint64_t payload_len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0F));
    if (payload_len < 126) {
        out[1] = (uint8_t)payload_len;
        return 2;
    }
    if (payload_len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        return 4;
    }
    out[1] = 127;
    for (size_t i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
    return 10;
}

size_t gh_ws_frame_header(uint8_t out[GH_WS_MAX_HEADER], int opcode, bool fin,
                          uint64_t payload_len)
{
    return gh_ws_frame_header_ex(out, opcode, fin, false, payload_len);
}

size_t gh_ws_frame_header_masked_ex(uint8_t out[GH_WS_MAX_HEADER], int opcode,
                                    bool fin, bool rsv1, uint64_t payload_len,
                                    const uint8_t mask[4])
{
    size_t n = gh_ws_frame_header_ex(out, opcode, fin, rsv1, payload_len);

    out[1] |= 0x80;
    memcpy(out + n, mask, 4);
    return n + 4;
}

size_t gh_ws_frame_header_masked(uint8_t out[GH_WS_MAX_HEADER], int opcode,
                                 bool fin, uint64_t payload_len,
                                 const uint8_t mask[4])
{
    return gh_ws_frame_header_masked_ex(out, opcode, fin, false, payload_len, mask);
}

void gh_ws_mask(uint8_t *buf, size_t len, const uint8_t mask[4], size_t offset)
{
    uint8_t m[8];
    uint64_t m64;
    size_t i = 0;

    /* The key rotated to this offset, twice: an 8-byte pattern. Built from
     * bytes and memcpy'd, so it is right on either byte order and the word
     * accesses below carry no alignment or aliasing UB. */
    for (size_t k = 0; k < 8; k++)
        m[k] = mask[(offset + k) & 3];
    memcpy(&m64, m, sizeof(m64));

    for (; len - i >= 32; i += 32) {
        uint64_t w[4];

        memcpy(w, buf + i, sizeof(w));
        w[0] ^= m64;
        w[1] ^= m64;
        w[2] ^= m64;
        w[3] ^= m64;
        memcpy(buf + i, w, sizeof(w));
    }
    for (; len - i >= 8; i += 8) {
        uint64_t w;

        memcpy(&w, buf + i, sizeof(w));
        w ^= m64;
        memcpy(buf + i, &w, sizeof(w));
    }
    for (; i < len; i++)
        buf[i] ^= m[i & 7];
}

size_t gh_ws_close_payload(uint8_t out[GH_WS_MAX_CONTROL], uint16_t code,
                           const char *reason, size_t reason_len)
{
    size_t n = reason_len;

    if (code == GH_WS_CLOSE_NO_STATUS)
        return 0;
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    if (n > GH_WS_MAX_REASON) {
        n = GH_WS_MAX_REASON;
        /* Back up to a code point start so the cut stays valid UTF-8. */
        while (n > 0 && ((uint8_t)reason[n] & 0xC0) == 0x80)
            n--;
    }
    if (n > 0)
        memcpy(out + 2, reason, n);
    return 2 + n;
}

bool gh_ws_close_code_is_valid(uint16_t code)
{
    if (code >= 1000 && code <= 1003)
        return true;
    if (code >= 1007 && code <= 1014)
        return true;
    return code >= 3000 && code <= 4999;
}

int gh_ws_frame_size(const uint8_t *buf, size_t len, uint64_t *size)
{
    size_t hdr;
    uint64_t plen;

    if (len < 2)
        return GH_EAGAIN;
    plen = buf[1] & 0x7f;
    hdr = 2 + (plen == 126 ? 2 : plen == 127 ? 8 : 0) + ((buf[1] & 0x80) ? 4 : 0);
    if (len < hdr)
        return GH_EAGAIN;
    if (plen == 126) {
        plen = (uint64_t)buf[2] << 8 | buf[3];
    } else if (plen == 127) {
        if (buf[2] & 0x80)
            return GH_EPROTO;
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | buf[2 + i];
    }
    *size = hdr + plen;
    return GH_OK;
}
