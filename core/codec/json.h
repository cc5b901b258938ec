/* json.h: writing JSON text (RFC 8259) into a growing buffer. No I/O.
 *
 * For documents the daemon makes of its own state (the status page's
 * feed): strings that come from outside (topic names, plugin versions,
 * addresses) are escaped, and bytes that are not UTF-8 become U+FFFD, so
 * the output is always valid JSON in valid UTF-8 whatever the input.
 * There is no parser here: gatehouse reads no JSON of its own. */
#ifndef GH_JSON_H
#define GH_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* s[0..n) as the inside of a JSON string (no quotes): '"' and '\' are
 * escaped, control characters (U+0000..U+001F and U+007F) are written as
 * \b \f \n \r \t or \u00XX, valid UTF-8 is copied as is, and every byte
 * that does not start a valid, complete UTF-8 sequence (RFC 3629: no
 * overlong forms, surrogates or code points past U+10FFFF) becomes
 * \ufffd. Writes at most cap bytes to out (out may be NULL when cap is 0;
 * no NUL is added) and returns the length of the whole escaped text, as
 * snprintf does: the output is complete when the result is at most cap. */
size_t gh_json_escape(char *out, size_t cap, const char *s, size_t n);

#define GH_JSON_MAX_DEPTH 32

/* A document being written. Start it zeroed ({0}); buf is the caller's to
 * free. Each call adds one value: key names it inside an object and must
 * be NULL inside an array and at the top. failed is set, and everything
 * after ignored, when an allocation fails or the calls do not make one
 * well-formed document (a key where none belongs or none where one does,
 * an end that does not match its begin, nesting past GH_JSON_MAX_DEPTH, a
 * second top-level value); gh_json_done() tells whether the text is whole. */
typedef struct gh_json {
    char    *buf;
    size_t   len, cap;
    bool     failed;
    bool     top_done;      /* the top-level value is written */
    unsigned depth;         /* open objects and arrays */
    uint64_t in_array;      /* bit d-1: the container at depth d is an array */
    uint64_t has_item;      /* bit d-1: it holds a value already */
} gh_json;

void gh_json_begin_object(gh_json *j, const char *key);
void gh_json_end_object(gh_json *j);
void gh_json_begin_array(gh_json *j, const char *key);
void gh_json_end_array(gh_json *j);

/* A string: NUL-terminated (s NULL writes null), or n bytes. */
void gh_json_string(gh_json *j, const char *key, const char *s);
void gh_json_string_n(gh_json *j, const char *key, const char *s, size_t n);
void gh_json_u64(gh_json *j, const char *key, uint64_t v);
/* v with digits (0..9) decimals, as printf's %.*f; NaN and infinities,
 * which JSON cannot hold, are written as null. */
void gh_json_fixed(gh_json *j, const char *key, double v, int digits);
void gh_json_bool(gh_json *j, const char *key, bool v);
void gh_json_null(gh_json *j, const char *key);

/* True when the document is whole: one top-level value, every container
 * closed, nothing failed. */
bool gh_json_done(const gh_json *j);

#endif
