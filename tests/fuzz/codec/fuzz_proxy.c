/* fuzz_proxy.c: libFuzzer driver for the PROXY protocol codec.
 *
 * Runs detect and parse with every allow mask on the input as given (the
 * harness allocates exactly size bytes, so ASan catches any over-read), and
 * checks the contract: a success consumes at most size bytes, never more
 * than the version's maximum, and agrees with detect; every refusal carries
 * a reason; a success stays a success, with the same length, when more bytes
 * follow; and a proper prefix of an accepted header is never accepted. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "err.h"
#include "proxy.h"

static void check(const uint8_t *data, size_t size, int allow)
{
    gh_proxy_info in;
    long rc = gh_proxy_parse(data, size, allow, &in);
    int d = gh_proxy_detect(data, size);

    if (rc > 0) {
        if ((size_t)rc > size)
            abort();
        if (in.reason != NULL || (in.version != 1 && in.version != 2) || d != in.version)
            abort();
        if (!(allow & (in.version == 1 ? GH_PROXY_ALLOW_V1 : GH_PROXY_ALLOW_V2)))
            abort();
        if (in.version == 1 && rc > GH_PROXY_V1_MAX)
            abort();
        if (in.version == 2 && rc > GH_PROXY_V2_MAX)
            abort();
        if (in.unique_id_len > 128)
            abort();
        /* the same bytes as a shorter buffer: never accepted */
        gh_proxy_info shorter;
        if (gh_proxy_parse(data, (size_t)rc - 1, allow, &shorter) > 0)
            abort();
        /* the header alone: the same length */
        if (gh_proxy_parse(data, (size_t)rc, allow, &shorter) != rc)
            abort();
        /* what it said, encoded again in both versions, parses back to the
         * same addresses and ports */
        if (!in.local && (in.family == AF_INET || in.family == AF_INET6)) {
            for (int v = 1; v <= 2; v++) {
                uint8_t enc[GH_PROXY_ENCODE_MAX];
                gh_proxy_info back;
                long n = gh_proxy_encode(v, (struct sockaddr *)&in.src,
                                         (struct sockaddr *)&in.dst, enc, sizeof(enc));
                size_t alen = in.family == AF_INET ? sizeof(struct sockaddr_in)
                                                   : sizeof(struct sockaddr_in6);

                bool mapped = in.family == AF_INET6 &&
                    IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&in.src)->sin6_addr) &&
                    IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&in.dst)->sin6_addr);

                if (n <= 0 || gh_proxy_parse(enc, (size_t)n, GH_PROXY_ALLOW_V1 |
                                             GH_PROXY_ALLOW_V2, &back) != n)
                    abort();
                if (mapped) {           /* IPv4 in IPv6 clothing is written as IPv4 */
                    if (back.family != AF_INET)
                        abort();
                } else if (back.family != in.family || memcmp(&back.src, &in.src, alen) != 0 ||
                           memcmp(&back.dst, &in.dst, alen) != 0) {
                    abort();
                }
            }
        }
    } else if (rc == GH_EPROTO) {
        if (in.reason == NULL)
            abort();
    } else if (rc == GH_EAGAIN) {
        if (d == 0)
            abort();                    /* plain traffic cannot need more */
        if (d == 1 && size >= GH_PROXY_V1_MAX)
            abort();
        if (size >= GH_PROXY_V2_MAX)
            abort();
        if (d == 2 && size >= 16 && size >= 16 + ((size_t)data[14] << 8 | data[15]))
            abort();                    /* the whole v2 header is there */
    } else {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int allow = 0; allow <= (GH_PROXY_ALLOW_V1 | GH_PROXY_ALLOW_V2); allow++)
        check(data, size, allow);
    (void)gh_proxy_crc32c(0, data, size);
    return 0;
}
