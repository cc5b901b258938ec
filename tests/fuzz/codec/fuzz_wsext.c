/* fuzz_wsext.c: libFuzzer driver for the permessage-deflate negotiation.
 *
 * Input: byte 0 is the policy (low nibble: server_window_bits 0..15, so
 * out-of-range values that must be clamped come up too; bit 4:
 * server_no_context_takeover). The rest splits at its first three 0x00
 * bytes into one to four field values; later 0x00 bytes stay inside the
 * last one. Each field is copied into a buffer of exactly its size so any
 * over-read trips ASan.
 * Checked: declined means an empty answer and zeroed params; accepted means
 * an answer that starts with "permessage-deflate", ends with a NUL inside
 * GH_PMD_ANSWER_MAX, is exactly what the params say, was offered at all,
 * and obeys the policy; and the same input gives the same result twice. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsext.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static char *dup_exact(const uint8_t *d, size_t n)
{
    char *p = malloc(n ? n : 1);

    if (p == NULL)
        abort();
    if (n > 0)
        memcpy(p, d, n);
    return p;
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Whether word (lower case) occurs in any field, ignoring ASCII case. */
static bool offered(char *const *f, const size_t *lens, size_t n, const char *word)
{
    size_t wlen = strlen(word);

    for (size_t i = 0; i < n; i++)
        for (size_t at = 0; at + wlen <= lens[i]; at++) {
            size_t k = 0;

            while (k < wlen && lower(f[i][at + k]) == word[k])
                k++;
            if (k == wlen)
                return true;
        }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *fields[4];
    size_t lens[4];
    size_t n = 0, at = 1;
    gh_pmd_policy pol;
    gh_pmd_params out, again;
    char answer[GH_PMD_ANSWER_MAX], answer2[GH_PMD_ANSWER_MAX];
    uint8_t pol_bits;
    bool ok;

    if (size < 1)
        return 0;
    pol.server_window_bits = data[0] & 0x0f;
    pol.server_no_context_takeover = (data[0] & 0x10) != 0;
    pol_bits = pol.server_window_bits < 9 ? 9 : pol.server_window_bits;
    while (n < 4) {
        const uint8_t *nul = n < 3 ? memchr(data + at, 0, size - at) : NULL;
        size_t end = nul != NULL ? (size_t)(nul - data) : size;

        fields[n] = dup_exact(data + at, end - at);
        lens[n] = end - at;
        n++;
        if (nul == NULL)
            break;
        at = end + 1;
    }

    memset(answer, 0x5a, sizeof(answer));
    ok = gh_pmd_negotiate((const char *const *)fields, lens, n, &pol, &out, answer);
    if (!ok) {
        CHECK(answer[0] == '\0');
        CHECK(out.server_window_bits == 0);
        CHECK(!out.server_no_context_takeover && !out.client_no_context_takeover);
    } else {
        char want[GH_PMD_ANSWER_MAX];
        bool has_bits = strstr(answer, "server_max_window_bits=") != NULL;

        CHECK(memchr(answer, '\0', sizeof(answer)) != NULL);
        CHECK(strncmp(answer, "permessage-deflate", 18) == 0);
        CHECK(offered(fields, lens, n, "permessage-deflate"));
        CHECK(out.client_no_context_takeover);
        CHECK(out.server_window_bits >= 9 && out.server_window_bits <= pol_bits);
        if (pol.server_no_context_takeover)
            CHECK(out.server_no_context_takeover);
        else if (out.server_no_context_takeover)
            CHECK(offered(fields, lens, n, "server_no_context_takeover"));
        if (has_bits)
            CHECK(offered(fields, lens, n, "server_max_window_bits"));
        else
            CHECK(out.server_window_bits == pol_bits);
        /* The answer is exactly what the params say, in the fixed order. */
        snprintf(want, sizeof(want), "permessage-deflate%s; client_no_context_takeover",
                 out.server_no_context_takeover ? "; server_no_context_takeover" : "");
        if (has_bits)
            snprintf(want + strlen(want), sizeof(want) - strlen(want),
                     "; server_max_window_bits=%u", (unsigned)out.server_window_bits);
        CHECK(strcmp(answer, want) == 0);
    }

    /* Deterministic, and nothing carried over between calls. */
    CHECK(gh_pmd_negotiate((const char *const *)fields, lens, n, &pol, &again, answer2) == ok);
    CHECK(strcmp(answer, answer2) == 0);
    CHECK(memcmp(&out, &again, sizeof(out)) == 0);

    for (size_t i = 0; i < n; i++)
        free(fields[i]);
    return 0;
}
