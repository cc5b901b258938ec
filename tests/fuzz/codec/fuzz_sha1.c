/* fuzz_sha1.c: libFuzzer driver for SHA-1: any input, copied into a buffer
 * of exactly its size (an over-read trips ASan), must hash as libcrypto
 * hashes it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sha1.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *p = malloc(size ? size : 1), a[GH_SHA1_LEN], b[EVP_MAX_MD_SIZE];
    unsigned int blen = 0;

    if (p == NULL)
        abort();
    if (size > 0)
        memcpy(p, data, size);
    gh_sha1(p, size, a);
    CHECK(EVP_Digest(p, size, b, &blen, EVP_sha1(), NULL) == 1 && blen == GH_SHA1_LEN);
    CHECK(memcmp(a, b, GH_SHA1_LEN) == 0);
    free(p);
    return 0;
}
