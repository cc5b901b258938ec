/* fuzz_uri.c: libFuzzer driver for request-path normalisation.
 *
 * Besides memory safety it checks what a file lookup relies on: the result
 * starts with '/', has no "//", "." or ".." segment and no control byte,
 * GH_E2BIG depends only on the result's length, and normalising a result
 * again (when it holds no '%' to decode) changes nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "uri.h"

#define CHECK(cond)                 \
    do {                            \
        if (!(cond))                \
            __builtin_trap();       \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    size_t cap = size + 2;
    char *out = malloc(cap), *again = malloc(cap);
    long n, m;

    if (out == NULL || again == NULL)
        goto out;
    n = gh_uri_normalize_path(in, size, out, cap);
    CHECK(n == GH_EPROTO || n > 0);
    if (n < 0)
        goto out;
    CHECK((size_t)n <= size);
    CHECK(out[0] == '/' && out[n] == '\0' && strlen(out) == (size_t)n);
    CHECK(strstr(out, "//") == NULL);
    CHECK(strstr(out, "/./") == NULL && strstr(out, "/../") == NULL);
    CHECK(!(n >= 2 && memcmp(out + n - 2, "/.", 2) == 0));
    CHECK(!(n >= 3 && memcmp(out + n - 3, "/..", 3) == 0));
    for (long i = 0; i < n; i++)
        CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
    /* room for exactly the result and its NUL, and one byte less */
    CHECK(gh_uri_normalize_path(in, size, again, (size_t)n + 1) == n);
    CHECK(memcmp(again, out, (size_t)n + 1) == 0);
    CHECK(gh_uri_normalize_path(in, size, again, (size_t)n) == GH_E2BIG);
    if (memchr(out, '%', (size_t)n) == NULL) {
        m = gh_uri_normalize_path(out, (size_t)n, again, cap);
        CHECK(m == n && memcmp(again, out, (size_t)n) == 0);
    }
out:
    free(out);
    free(again);
    return 0;
}
