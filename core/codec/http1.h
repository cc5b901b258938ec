/* http1.h: HTTP/1.x request-head codec (RFC 9112). No I/O, no allocation.
 *
 * gh_http1_parse_head() finds the syntax; gh_http1_analyse() applies the
 * message-framing and smuggling rules to a parsed head. Every pointer in the
 * outputs points into the caller's buffer and lives as long as it does. */
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
