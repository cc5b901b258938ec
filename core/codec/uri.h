/* uri.h: request-path normalisation for file lookups. No I/O.
 *
 * Percent-decoding happens before dot-segment removal, so "%2e%2e" is "..",
 * and a path may never climb above "/". */
#ifndef GH_URI_H
#define GH_URI_H

#include <stddef.h>

/* Decodes and normalises an origin-form path (the part before '?') into out
 * (cap bytes, NUL-terminated). The result starts with '/', has no "." or
 * ".." segments and no empty segments ("//" collapses to "/"); a trailing
 * '/' is kept. A decoded "%2f" separates segments like '/' ("/a/..%2fb" is
 * "/b"), and empty segments collapse before "." and ".." are resolved
 * ("/a//../b" is "/b", as the file system would read it).
 * Returns the length written (excluding the NUL), or
 *   GH_EPROTO  not starting with '/', a bad %-escape, an encoded or raw NUL,
 *              a control character, or a ".." that would leave the root;
 *   GH_E2BIG   the result does not fit in cap. */
long gh_uri_normalize_path(const char *path, size_t len, char *out, size_t cap);

#endif
