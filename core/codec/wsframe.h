/* wsframe.h: RFC 6455 frame codec, server side. No I/O, no allocation.
 *
 * The parser turns client bytes into events: chunks of message payload
 * (streamed as they arrive; the glue reassembles whole messages), pings,
 * pongs and the close frame. A control frame's payload is reported in place
 * in the caller's buffer when it arrives in one call; only one split across
 * calls needs storage, and the parser asks the caller for it
 * (GH_WS_EV_NEED_BUFFER) and hands it back when the frame is done, so an
 * idle parser holds no payload buffer. It enforces RFC 6455 §5 (masking,
 * opcodes, fragmentation, control frames), §5.6/§8.1 (text is UTF-8, checked
 * incrementally and fail-fast), §7.4 (close codes) and a message size
 * limit, and tells the caller which close code to answer a violation with.
 *
 * The only extension is permessage-deflate (RFC 7692), which the caller
 * turns on with p->rsv1_ok once it was negotiated: RSV1 then marks a
 * compressed message on its first frame (§6.1). The parser only frames
 * such a message: its chunks are reported with ev->compressed set and are
 * not checked as UTF-8, and the caller inflates them (pmdeflate.h) and
 * checks the inflated text. RSV2 and RSV3 must always be 0.
 *
 * The encoder writes unmasked server frame headers (RSV1 set or not) and
 * close payloads; the masked variants exist for tests and test clients. */
#ifndef GH_WSFRAME_H
#define GH_WSFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "utf8.h"

/* Opcodes (RFC 6455 §5.2, §11.8). */
enum {
    GH_WS_OP_CONT   = 0,
    GH_WS_OP_TEXT   = 1,
    GH_WS_OP_BINARY = 2,
    GH_WS_OP_CLOSE  = 8,
    GH_WS_OP_PING   = 9,
    GH_WS_OP_PONG   = 10,
};

/* Close codes (RFC 6455 §7.4.1) that the codec itself produces or reports. */
enum {
    GH_WS_CLOSE_NORMAL         = 1000,
    GH_WS_CLOSE_GOING_AWAY     = 1001,
    GH_WS_CLOSE_PROTOCOL_ERROR = 1002,
    GH_WS_CLOSE_UNSUPPORTED    = 1003,
    GH_WS_CLOSE_NO_STATUS      = 1005,  /* reported for an empty close; never sent */
    GH_WS_CLOSE_ABNORMAL       = 1006,  /* local use only; never sent */
    GH_WS_CLOSE_INVALID_DATA   = 1007,
    GH_WS_CLOSE_POLICY         = 1008,
    GH_WS_CLOSE_TOO_BIG        = 1009,
    GH_WS_CLOSE_INTERNAL_ERROR = 1011,
};

#define GH_WS_MAX_CONTROL  125   /* control payload limit (§5.5) */
#define GH_WS_MAX_REASON   123   /* close reason limit: 125 - 2-byte code */
#define GH_WS_MAX_HEADER   14    /* 2 + 8-byte length + 4-byte mask */

typedef enum {
    GH_WS_EV_NONE = 0,   /* bytes consumed, nothing to report yet */
    GH_WS_EV_DATA,       /* a chunk of a text or binary message */
    GH_WS_EV_PING,       /* a whole ping; answer with a pong of the same payload */
    GH_WS_EV_PONG,       /* a whole pong */
    GH_WS_EV_CLOSE,      /* a valid close frame; the parser ignores anything after */
    GH_WS_EV_NEED_BUFFER, /* the header of a control frame whose payload is
                             not all in this input was consumed: set p->ctrl
                             to GH_WS_MAX_CONTROL bytes of storage, go on */
} gh_ws_event_type;

typedef struct gh_ws_event {
    gh_ws_event_type type;
    int      opcode;         /* DATA: the message's opcode (TEXT or BINARY),
                                also for its continuation frames;
                                PING/PONG/CLOSE: the frame's opcode */
    uint8_t *data;           /* DATA: the chunk, unmasked in place in the
                                caller's buffer (valid as long as that buffer);
                                PING/PONG/CLOSE: the whole control payload:
                                unmasked in place in buf when it all came in
                                this call, else in the storage given in
                                p->ctrl, which is handed back in release
                                (valid as long as that storage) */
    size_t   len;
    bool     message_end;    /* DATA: this chunk ends the message. An empty
                                final frame gives a DATA event with len 0 and
                                message_end set; an empty non-final frame gives
                                no event. */
    bool     compressed;     /* DATA: the message's first frame had RSV1
                                (permessage-deflate): data is compressed,
                                and was not checked as UTF-8 */
    uint16_t close_code;     /* CLOSE: the peer's code, or 1005 when the close
                                payload was empty */
    const uint8_t *close_reason;  /* CLOSE: valid UTF-8, not NUL-terminated,
                                     in the same storage as data */
    size_t   close_reason_len;
    uint8_t *release;        /* PING/PONG/CLOSE, or NONE with GH_EPROTO:
                                the storage the caller gave in p->ctrl,
                                handed back at the end of a control frame
                                (p->ctrl is NULL again); data and
                                close_reason may point into it: free or
                                reuse it once the event is handled. NULL
                                otherwise. */
} gh_ws_event;

/* Parser state; caller's storage, set up with gh_ws_parser_init().
 * Public fields: max_message and rsv1_ok (may be changed between calls),
 * ctrl (see GH_WS_EV_NEED_BUFFER), error_code and closed (read-only). The
 * rest is private. The struct lives in every connection: its fields are
 * laid out without padding (72 bytes on LP64). */
typedef struct gh_ws_parser {
    uint64_t max_message;     /* payload limit per message; 0 = no limit.
                                 A compressed message's payload on the wire
                                 may reach max_message + max_message / 8 +
                                 64 (so that a message that does not
                                 compress is not refused for its framing
                                 overhead): the caller bounds the inflated
                                 size by max_message itself. */
    uint8_t *ctrl;            /* caller's storage of GH_WS_MAX_CONTROL bytes
                                 for a control payload split across calls:
                                 NULL until the caller sets it (on
                                 GH_WS_EV_NEED_BUFFER, or ahead of time).
                                 At the end of the next control frame, used
                                 or not, the parser sets it back to NULL and
                                 hands it back in ev->release. Still set
                                 when the caller drops the parser: the
                                 caller's to free. */
    uint16_t error_code;      /* after GH_EPROTO: the close code to send,
                                 1002, 1007 or 1009 */
    bool     closed;          /* a CLOSE event was reported */
    bool     rsv1_ok;         /* permessage-deflate was negotiated: RSV1
                                 allowed on a message's first frame. false
                                 after gh_ws_parser_init() */

    /* private */
    bool     failed;          /* GH_EPROTO was returned; it stays failed */
    uint8_t  state;
    uint8_t  hdr_have;        /* header bytes in hdr */
    bool     in_message;      /* a data message has started and not ended */
    uint8_t  msg_opcode;      /* TEXT or BINARY, while in_message */
    bool     msg_compressed;  /* its first frame had RSV1, while in_message */
    uint8_t  mask[4];
    uint8_t  hdr[GH_WS_MAX_HEADER];   /* hdr[0] (FIN, RSV, opcode) stays the
                                         current frame's until the next
                                         header begins */
    gh_utf8  utf8;            /* for a text message */
    uint64_t frame_len;       /* payload length of the current frame */
    uint64_t frame_done;      /* payload bytes of it consumed */
    uint64_t msg_bytes;       /* payload of the message announced so far */
} gh_ws_parser;

/* Starts a new connection's parser (p->ctrl NULL, p->rsv1_ok false).
 * max_message is the largest message payload accepted (summed over its
 * fragments); 0 means no limit. The parser owns nothing: to drop it, free
 * p->ctrl if the caller set it and it was not handed back. */
void gh_ws_parser_init(gh_ws_parser *p, uint64_t max_message);

/* True when p is between frames with nothing pending: no header bytes held,
 * no message in progress, no control storage set, neither closed nor
 * failed. Such a parser behaves exactly like a fresh one from
 * gh_ws_parser_init() with the same max_message and rsv1_ok, so a caller
 * may drop it and make a new one for the next bytes (an idle connection
 * then holds no parser at all). */
bool gh_ws_parser_at_rest(const gh_ws_parser *p);

/* Consumes client bytes from buf[0..len), up to and including at most one
 * event, and unmasks payload bytes IN PLACE in buf. Always sets *ev.
 * Returns:
 *   >= 0       bytes consumed. ev->type is GH_WS_EV_NONE when the bytes only
 *              advanced a header or a control frame and more input is needed
 *              (then everything given was consumed), else the event. The
 *              caller loops while bytes remain, and after every call
 *              (error returns included) frees or reuses ev->release once
 *              the call's event is handled.
 *              GH_WS_EV_NEED_BUFFER: a control frame's header was consumed
 *              (so > 0 bytes) and its payload is not all in this input: set
 *              p->ctrl to GH_WS_MAX_CONTROL bytes of storage before the next
 *              call. It is never asked for when the whole frame is in one
 *              call, nor while p->ctrl is set. Called again with p->ctrl
 *              still NULL, it returns 0 and asks again.
 *              Returns 0 only then, or when len is 0.
 *              After a CLOSE event, p->closed is set and every later call
 *              returns len with GH_WS_EV_NONE (bytes after a close are
 *              ignored, RFC 6455 §5.5.1).
 *   GH_EPROTO  protocol violation; p->error_code says which close code to
 *              send, then close the connection. Every later call returns
 *              GH_EPROTO again.
 *              1002: unmasked frame; RSV2 or RSV3 set; RSV1 set without
 *                    p->rsv1_ok, or on a control or continuation frame;
 *                    reserved opcode; control frame fragmented or longer
 *                    than 125; continuation with no message in progress;
 *                    new TEXT/BINARY while a message is in progress; 64-bit
 *                    length with the top bit set; close payload of 1 byte
 *                    or an invalid close code.
 *              1007: text message (not compressed) or close reason not
 *                    valid UTF-8 (found at the chunk holding the first bad
 *                    byte — that chunk is not reported — or at the end of
 *                    the message when it ends inside a code point).
 *              1009: the message would exceed max_message (a compressed
 *                    one: max_message + max_message / 8 + 64); detected
 *                    from the frame header, before its payload arrives.
 * Non-minimal length encodings (e.g. a 16-bit length below 126) are
 * accepted: RFC 6455 §5.2 puts the "minimal" rule on the sender, and
 * refusing them protects nothing. */
long gh_ws_parse(gh_ws_parser *p, uint8_t *buf, size_t len, gh_ws_event *ev);

/* The whole size, header and payload, of the frame that starts at buf, for
 * code that passes frames through without reading them (a proxied
 * tunnel). Masked or not. Returns 0 and *size; GH_EAGAIN when buf holds
 * less than the header; GH_EPROTO for a 64-bit length with its top bit set
 * (RFC 6455 §5.2). Nothing else is checked. */
int gh_ws_frame_size(const uint8_t *buf, size_t len, uint64_t *size);

/* Writes an unmasked (server) frame header into out and returns its length:
 * 2, 4 or 10. payload_len must be below 2^63; opcode is one of GH_WS_OP_*.
 * rsv1: set RSV1, which permessage-deflate puts on the first frame of a
 * compressed message (RFC 7692 §6.1), only when it was negotiated.
 * gh_ws_frame_header() is gh_ws_frame_header_ex() with rsv1 false. */
size_t gh_ws_frame_header_ex(uint8_t out[GH_WS_MAX_HEADER], int opcode, bool fin,
                             bool rsv1, uint64_t payload_len);
size_t gh_ws_frame_header(uint8_t out[GH_WS_MAX_HEADER], int opcode, bool fin,
                          uint64_t payload_len);

/* Writes a masked (client) frame header, mask key included, and returns its
 * length: 6, 8 or 14. For tests and test clients; the payload must then be
 * masked with gh_ws_mask(payload, len, mask, 0). gh_ws_frame_header_masked()
 * is gh_ws_frame_header_masked_ex() with rsv1 false. */
size_t gh_ws_frame_header_masked_ex(uint8_t out[GH_WS_MAX_HEADER], int opcode,
                                    bool fin, bool rsv1, uint64_t payload_len,
                                    const uint8_t mask[4]);
size_t gh_ws_frame_header_masked(uint8_t out[GH_WS_MAX_HEADER], int opcode,
                                 bool fin, uint64_t payload_len,
                                 const uint8_t mask[4]);

/* XORs buf[0..len) with the mask key, in place, as bytes offset..offset+len
 * of a frame payload (so a payload can be (un)masked in pieces). Masking
 * twice restores the input. */
void gh_ws_mask(uint8_t *buf, size_t len, const uint8_t mask[4], size_t offset);

/* Writes a close payload: code in network order, then reason cut to at most
 * 123 bytes at a UTF-8 boundary (reason is expected to be valid UTF-8; it
 * may be NULL when reason_len is 0). Returns the payload length (2..125), or
 * 0 for code 1005 ("no status": send an empty close). Never send 1006 or
 * 1015, nor any code for which gh_ws_close_code_is_valid() is false. */
size_t gh_ws_close_payload(uint8_t out[GH_WS_MAX_CONTROL], uint16_t code,
                           const char *reason, size_t reason_len);

/* True when a close code received from the peer is acceptable:
 * 1000-1003, 1007-1014, 3000-4999. False for 0-999, 1004-1006 (reserved,
 * or must never be sent), 1015 (never sent), 1016-2999 (unassigned) and
 * 5000 and above. */
bool gh_ws_close_code_is_valid(uint16_t code);

#endif
