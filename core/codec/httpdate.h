/* httpdate.h: HTTP dates (RFC 9110 §5.6.7) and entity tags (§8.8.3). No I/O. */
#ifndef GH_HTTPDATE_H
#define GH_HTTPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define GH_HTTPDATE_LEN 29   /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* Writes the IMF-fixdate of t into out (at least GH_HTTPDATE_LEN + 1 bytes,
 * NUL-terminated). A t outside years 0000..9999 is clamped to that range. */
void gh_httpdate_format(time_t t, char *out);

/* Parses IMF-fixdate, and the obsolete RFC 850 and asctime forms.
 * Returns 0 with *t set, or GH_EINVAL.
 * Strict: exact length, case-sensitive names, fields in range (day checked
 * against the month, second 60 allowed), no surrounding whitespace. The
 * weekday must be a valid name but is not checked against the date. An RFC
 * 850 year more than 50 years ahead of the current year is taken from the
 * previous century (§5.6.7). */
int gh_httpdate_parse(const char *s, size_t len, time_t *t);

#define GH_ETAG_MAX 44   /* bytes gh_etag_format needs at most, NUL included */

/* Writes a strong ETag for a file, "\"<hex size>-<hex mtime ns>\"" style,
 * into out (cap bytes). Returns the length, or GH_E2BIG.
 * Exactly: '"', size in hex, '-', mtime_sec in hex (a negative one as its
 * 64-bit two's complement), mtime_nsec as 8 hex digits, '"'; lower case,
 * NUL-terminated, e.g. "\"1a2b-5f5e100000000000\"". */
int gh_etag_format(uint64_t size, int64_t mtime_sec, long mtime_nsec,
                   char *out, size_t cap);

/* If-None-Match (weak comparison, §13.1.2): true when value is "*" or lists
 * an entity tag equal to etag ignoring W/ prefixes. OWS and empty list
 * elements are allowed; a malformed list (an unquoted tag, "*" inside a
 * list) and a NULL or malformed etag match nothing. */
bool gh_etag_match(const char *value, size_t len, const char *etag);

#endif
