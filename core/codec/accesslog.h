/* accesslog.h: one access-log line in Combined Log Format. No I/O.
 *
 *   client - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 200 2326 "referer" "agent"
 *
 * The first field is the real client address (the PROXY source when a
 * trusted PROXY header arrived). Bytes in the request line, referer and
 * agent that are '"', '\\', control or non-ASCII are written as \xHH so a
 * client can never forge a line or a field. */
#ifndef GH_ACCESSLOG_H
#define GH_ACCESSLOG_H

#include <stddef.h>
#include <time.h>

typedef struct gh_access_entry {
    const char *client;        /* address text, e.g. "192.0.2.7" or "2001:db8::1" */
    time_t      when;
    const char *method;  size_t method_len;     /* may be NULL: "-" */
    const char *target;  size_t target_len;
    const char *protocol;                       /* "HTTP/1.1", or NULL */
    int         status;
    unsigned long long bytes;                   /* body bytes sent; 0 is "-" */
    const char *referer; size_t referer_len;    /* NULL: "-" */
    const char *agent;   size_t agent_len;      /* NULL: "-" */
} gh_access_entry;

/* Writes the line with its trailing '\n' into out (cap bytes, NUL-terminated)
 * and returns its length; fields are cut (never the newline) when cap is too
 * small. cap must be at least 64.
 * Details: a NULL client, target, referer or agent is written as "-"; a NULL
 * protocol is left out ("GET /"); the client field also escapes ' '. The
 * time is clamped to 1970..9999. When the line does not fit, the client,
 * method and protocol keep up to 64 bytes each and the target, referer and
 * agent share the rest (longest cut first); so from cap 96 up all six
 * quotes, the status and the byte count always stay. An \xHH escape is
 * never split. A cap below 64 is
 * still safe: the line is then cut at the end (cap 1 gives "", cap 0 or a
 * NULL out writes nothing and returns 0; a NULL e gives ""). */
size_t gh_accesslog_format(const gh_access_entry *e, char *out, size_t cap);

#endif
