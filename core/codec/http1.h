/* http1.h: HTTP/1.x request- and response-head codec (RFC 9112). No I/O,
 * no allocation.
 *
 * gh_http1_parse_head() finds the syntax of a request head;
 * gh_http1_analyse() applies the message-framing and smuggling rules to it.
 * gh_http1_parse_response_head() and gh_http1_analyse_response() do the same
 * for a response head read from an upstream. Every pointer in the outputs
 * points into the caller's buffer and lives as long as it does. */
#ifndef GH_HTTP1_H
#define GH_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GH_HTTP1_MAX_FIELDS 100

typedef struct gh_http1_field {
    const char *name;   size_t name_len;
    const char *value;  size_t value_len;   /* OWS trimmed on both sides */
} gh_http1_field;

typedef struct gh_http1_head {
    const char    *method;  size_t method_len;
    const char    *target;  size_t target_len;
    int            minor;                    /* HTTP/1.<minor>: 0 or 1 */
    gh_http1_field fields[GH_HTTP1_MAX_FIELDS];
    size_t         nfields;
} gh_http1_head;

/* Parses one request head from buf[0..len).
 * Returns:
 *   > 0        bytes consumed, through the empty line ending the head
 *              (leading empty lines before the request line are consumed too);
 *   GH_EAGAIN  the head is incomplete and still within max_head: read more;
 *   GH_E2BIG   the head is longer than max_head bytes, or has more than
 *              GH_HTTP1_MAX_FIELDS fields: answer 431 and close;
 *   GH_EPROTO  malformed (bad request line, bad token characters, bare CR or
 *              LF, obs-fold, whitespace before a colon, a version other than
 *              HTTP/1.0 or HTTP/1.1): answer 400 and close.
 * An incomplete head that is already malformed returns GH_EPROTO at once. */
long gh_http1_parse_head(const char *buf, size_t len, size_t max_head,
                         gh_http1_head *out);

/* The framing and routing facts of a request, from gh_http1_analyse(). */
typedef struct gh_http1_req {
    const char *host;   size_t host_len;     /* Host (or the absolute-form
                                                authority), port included;
                                                NULL when absent (1.0 only) */
    const char *path;   size_t path_len;     /* raw, still percent-encoded,
                                                starts with '/' (or is "*");
                                                for an absolute-form target
                                                with an empty path it is a
                                                static "/" */
    const char *query;  size_t query_len;    /* after '?', NULL when none */
    int64_t     content_length;              /* -1 when absent */
    bool        chunked;                     /* Transfer-Encoding ends in chunked */
    bool        keep_alive;                  /* 1.1 unless "close"; 1.0 only with "keep-alive" */
    bool        upgrade;                     /* Connection lists "upgrade" */
    bool        expect_continue;             /* Expect: 100-continue */
} gh_http1_req;

/* Applies RFC 9112 §3.2, §6.1, §6.3 and §9.3 to a parsed head.
 * Returns 0, or GH_EPROTO (answer 400 and close) for: Content-Length with
 * Transfer-Encoding; conflicting or malformed Content-Length values;
 * Transfer-Encoding whose final coding is not chunked, or any
 * Transfer-Encoding in HTTP/1.0; no Host in HTTP/1.1; more than one Host; a
 * Host that is not a valid authority; a target that is neither origin-form,
 * absolute-form (http/https), nor "*" with OPTIONS. */
int gh_http1_analyse(const gh_http1_head *h, gh_http1_req *out);

/* Case-insensitive lookup of the first field named name, or NULL. */
const gh_http1_field *gh_http1_find(const gh_http1_head *h, const char *name);

/* True when the comma-separated list value contains token (case-insensitive,
 * OWS around elements ignored). */
bool gh_http1_list_has(const char *value, size_t len, const char *token);

/* A parsed response head (status-line and fields). */
typedef struct gh_http1_resp_head {
    int            minor;                    /* HTTP/1.<minor>: 0 or 1 */
    int            status;                   /* 100..999 */
    const char    *reason;  size_t reason_len;  /* raw reason-phrase; may be
                                                   empty (reason_len 0) */
    gh_http1_field fields[GH_HTTP1_MAX_FIELDS];
    size_t         nfields;
} gh_http1_resp_head;

/* Parses one response head from buf[0..len): a status-line
 * "HTTP/1.x SP 3DIGIT SP reason CRLF" (the SP and reason may both be left
 * out: "HTTP/1.1 200\r\n"), then fields validated exactly as in requests.
 * Unlike requests, no leading empty lines are skipped.
 * Returns:
 *   > 0        bytes consumed, through the empty line ending the head;
 *   GH_EAGAIN  the head is incomplete and still within max_head: read more;
 *   GH_E2BIG   the head is longer than max_head bytes, or has more than
 *              GH_HTTP1_MAX_FIELDS fields: answer 502 and close upstream;
 *   GH_EPROTO  malformed (a version other than HTTP/1.0 or HTTP/1.1, a
 *              status that is not three digits from 100 to 999, a CTL in
 *              the reason, bare CR or LF, and every field error
 *              gh_http1_parse_head() refuses): answer 502 and close.
 * An incomplete head that is already malformed returns GH_EPROTO at once. */
long gh_http1_parse_response_head(const char *buf, size_t len, size_t max_head,
                                  gh_http1_resp_head *out);

/* How the body of a response ends (RFC 9112 §6.3). */
typedef enum gh_http1_body {
    GH_HTTP1_BODY_NONE = 0,     /* no body: 1xx, 204, 304, or a HEAD response;
                                   the next response starts right after */
    GH_HTTP1_BODY_LENGTH,       /* content_length bytes */
    GH_HTTP1_BODY_CHUNKED,      /* chunked: decode with gh_http1_chunked_* */
    GH_HTTP1_BODY_CLOSE,        /* until the upstream closes the connection */
} gh_http1_body;

/* The framing facts of a response, from gh_http1_analyse_response(). */
typedef struct gh_http1_resp {
    int           status;           /* the status code, 100..999 */
    gh_http1_body body;             /* how the body is delimited */
    int64_t       content_length;   /* the valid Content-Length, -1 when
                                       absent or ignored; set with BODY_NONE
                                       too (a HEAD or 304 response tells the
                                       length it would have had) */
    bool          drop_content_length;  /* Transfer-Encoding and
                                           Content-Length both present: the
                                           length was ignored and the proxy
                                           must not forward Content-Length */
    bool          keep_alive;       /* the upstream connection can carry
                                       another request after this response:
                                       1.1 unless "close", 1.0 only with
                                       "keep-alive", never with BODY_CLOSE */
    bool          upgrade;          /* 101 with an Upgrade field: after this
                                       head the connection speaks the
                                       upgraded protocol */
} gh_http1_resp;

/* Applies RFC 9112 §6.1 and §6.3 to a parsed response head.
 * request_method_is_head is non-zero when the request this answers was
 * HEAD. Precedence: 1xx, 204, 304 and HEAD responses have no body; then
 * Transfer-Encoding (chunked when it is the final coding, else until close;
 * Content-Length is then ignored and drop_content_length set); then
 * Content-Length; else until close.
 * Returns 0, or GH_EPROTO (answer 502 and close the upstream) for:
 * Content-Length values that differ or are not all digits (even when
 * ignored: an upstream that sends one is not framing what we think it is);
 * chunked applied more than once; Transfer-Encoding in HTTP/1.0 (§6.1:
 * faulty framing). */
int gh_http1_analyse_response(const gh_http1_resp_head *h,
                              int request_method_is_head, gh_http1_resp *out);

/* Incremental chunked-body decoder (RFC 9112 §7.1), for bodies that are read
 * and discarded: it reports how many body bytes went by, not where. */
typedef struct gh_http1_chunked {
    int      state;
    uint64_t remaining;     /* bytes left in the current chunk */
    uint64_t body_bytes;    /* chunk data seen so far */
    size_t   line_len;      /* length of the current size/trailer line */
    bool     done;          /* last chunk and trailer section consumed */
} gh_http1_chunked;

void gh_http1_chunked_init(gh_http1_chunked *c);

/* Consumes buf[0..len). Returns bytes consumed (may be less than len only
 * when c->done became true: the rest is the next request), or GH_EPROTO
 * for a malformed size line, a missing CRLF after data, a chunk-size
 * overflow, or a size/trailer line over 4 KiB. */
long gh_http1_chunked_feed(gh_http1_chunked *c, const char *buf, size_t len);

#endif
