/* fuzz_json.c: libFuzzer driver for gh_json_escape and the document
 * writer.
 *
 * Beyond "no crash, no over-read": the escaped text of any input is valid
 * UTF-8 with no control byte and no unescaped '"'; the measured length is
 * the length written; a cut output buffer gets a prefix of the whole and
 * nothing past its end; and a document holding the input as a key and as
 * a value is whole. */
#include "json.h"
#include "utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_inside(const char *s, size_t n)
{
    gh_utf8 u;

    gh_utf8_init(&u);
    if (gh_utf8_feed(&u, (const uint8_t *)s, n) != 0 || !gh_utf8_is_complete(&u))
        abort();
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '"')
            abort();
        if (s[i] == '\\') {
            if (i + 1 >= n || strchr("\"\\bfnrtu", s[i + 1]) == NULL)
                abort();
            i++;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    size_t need = gh_json_escape(NULL, 0, in, size), cut;
    char *out, *part, *key;
    gh_json j = { 0 };

    if (need < size || need > size * 6)
        abort();
    if ((out = malloc(need + 1)) == NULL)
        return 0;
    if (gh_json_escape(out, need, in, size) != need)
        abort();
    check_inside(out, need);

    cut = size > 0 ? data[0] % (need + 1) : 0;
    if ((part = malloc(cut + 1)) != NULL) {
        part[cut] = 0x5a;
        if (gh_json_escape(part, cut, in, size) != need || memcmp(part, out, cut) != 0 ||
            part[cut] != 0x5a)
            abort();
        free(part);
    }

    if ((key = malloc(size + 1)) != NULL) {
        memcpy(key, in, size);
        key[size] = '\0';           /* up to the first NUL */
        gh_json_begin_object(&j, NULL);
        gh_json_string_n(&j, key, in, size);
        gh_json_begin_array(&j, "a");
        gh_json_string_n(&j, NULL, in, size);
        gh_json_end_array(&j);
        gh_json_end_object(&j);
        if (!j.failed && (!gh_json_done(&j) || j.buf[0] != '{' || j.buf[j.len - 1] != '}'))
            abort();
        free(j.buf);
        free(key);
    }
    free(out);
    return 0;
}
