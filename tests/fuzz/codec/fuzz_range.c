/* fuzz_range.c: libFuzzer driver for gh_range_parse.
 *
 * The first 8 bytes (when there are more than 8) pick the representation
 * size; the value is the rest. Each value is also tried against a few fixed
 * sizes. Beyond "no crash, no over-read", it checks the result contract:
 * one of the three codes, and on 0 a range inside the representation. */
#include "range.h"
#include "err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(const char *value, size_t len, uint64_t size)
{
    uint64_t first = 1, last = 0;
    int rc = gh_range_parse(value, len, size, &first, &last);

    if (rc == GH_OK) {
        if (!(first <= last && last < size))
            abort();
    } else if (rc != GH_ERANGE && rc != GH_ENOENT) {
        abort();
    } else if (first != 1 || last != 0) {
        abort();                        /* outputs written on failure */
    }
    /* size 0 can never give a range */
    if (size == 0 && rc == GH_OK)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t sizes[] = { 0, 1, 500, 10000, UINT64_MAX };
    const char *value = (const char *)data;
    size_t len = size;

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        check(value, len, sizes[i]);
    if (size > 8) {
        uint64_t rep;

        memcpy(&rep, data, sizeof(rep));
        check(value + 8, len - 8, rep);
    }
    return 0;
}
