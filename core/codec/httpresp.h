/* httpresp.h: building HTTP/1.1 response heads in a fixed buffer. No I/O.
 *
 * A response head is assembled with memcpy into caller storage and then
 * handed to the output buffer in one piece: no printf on the hot path. */
#ifndef GH_HTTPRESP_H
#define GH_HTTPRESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GH_RESP_HEAD_MAX 4096

typedef struct gh_resp_head {
    char   buf[GH_RESP_HEAD_MAX];
    size_t len;
    bool   overflow;      /* something did not fit: do not send this head */
} gh_resp_head;

/* The reason phrase for status, or "Unknown". Static string. */
const char *gh_http_reason(int status);

/* Starts "HTTP/1.1 <status> <reason>\r\n" (we always answer 1.1, RFC 9110 §6.2). */
void gh_resp_start(gh_resp_head *h, int status);
/* Appends "name: value\r\n"; value is len bytes and must hold no CR or LF. */
void gh_resp_add(gh_resp_head *h, const char *name, const char *value, size_t len);
void gh_resp_add_str(gh_resp_head *h, const char *name, const char *value);
void gh_resp_add_u64(gh_resp_head *h, const char *name, uint64_t v);
/* Appends raw bytes (pre-built header lines ending in CRLF). */
void gh_resp_add_raw(gh_resp_head *h, const char *raw, size_t len);
/* Appends the empty line ending the head. */
void gh_resp_end(gh_resp_head *h);

/* A small HTML body for an error status, e.g. "<h1>404 Not Found</h1>".
 * Writes into out (cap bytes) and returns its length. */
size_t gh_resp_error_body(int status, char *out, size_t cap);

#endif
