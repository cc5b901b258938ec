/* range.h: the Range request header (RFC 9110 §14.2), single ranges only.
 * No I/O. */
#ifndef GH_RANGE_H
#define GH_RANGE_H

#include <stddef.h>
#include <stdint.h>

/* Parses a Range value against a representation of size bytes.
 * Returns:
 *   0          *first and *last (inclusive) are the one satisfiable range:
 *              answer 206;
 *   GH_ERANGE  a well-formed bytes range set none of whose ranges is
 *              satisfiable: answer 416 with Content-Range: bytes * /size;
 *   GH_ENOENT  ignore the header and answer 200 with the whole file: not the
 *              "bytes" unit, malformed, or more than one range (we do not
 *              send multipart/byteranges).
 * Precisely: the value's own leading/trailing OWS is skipped;
 * "bytes" matches in any case; OWS is allowed only around commas and empty
 * list elements are skipped. Malformed anywhere (a number over 19 digits,
 * first > last, junk) wins: GH_ENOENT. Of the well-formed sets, one with no
 * satisfiable range (first >= size, "-0", any range when size is 0) is
 * GH_ERANGE, one with two or more ranges otherwise GH_ENOENT. last >= size
 * is clamped to size - 1; a suffix longer than size means the whole file.
 * *first and *last are written only on 0. */
int gh_range_parse(const char *value, size_t len, uint64_t size,
                   uint64_t *first, uint64_t *last);

#endif
