/* sha1.h: SHA-1 (FIPS 180-4 §6.1), one-shot. For the WebSocket accept key
 * only (RFC 6455 §4.2.2), where it is a checksum, not a security measure. */
#ifndef GH_SHA1_H
#define GH_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define GH_SHA1_LEN 20

void gh_sha1(const void *data, size_t len, uint8_t out[GH_SHA1_LEN]);

#endif
