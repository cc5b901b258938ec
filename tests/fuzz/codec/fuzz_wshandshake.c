/* fuzz_wshandshake.c: libFuzzer driver for the handshake helpers.
 *
 * Input: byte 0 picks where the rest splits into two values (a, b). Each
 * value is copied into a buffer of exactly its size so any over-read trips
 * ASan. Checked: a key that passes gh_ws_key_check() gets a 28-character
 * accept; an origin that gh_ws_origin_is_valid() accepts is allowed by a
 * list holding just itself, and by same-host when b is its host; a chosen
 * subprotocol is really in the offered list. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wshandshake.h"

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

static char *dup_cstr(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p == NULL)
        abort();
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const server[] = { "chat.v2", "chat.v1", "json", "Upgrade" };
    char *a, *b, *ca;
    size_t alen, blen;
    char out[GH_WS_ACCEPT_LEN + 1];
    int k;

    if (size < 1)
        return 0;
    alen = (size - 1) * data[0] / 255;
    blen = size - 1 - alen;
    a = dup_exact(data + 1, alen);
    b = dup_exact(data + 1 + alen, blen);

    if (gh_ws_key_check(a, alen) == 0) {
        CHECK(gh_ws_accept(a, alen, out) == 0);
        CHECK(strlen(out) == GH_WS_ACCEPT_LEN);
    } else {
        CHECK(gh_ws_accept(a, alen, out) != 0);
        CHECK(out[0] == '\0');
    }

    (void)gh_ws_token_list_has(a, alen, "upgrade");
    (void)gh_ws_token_list_has(a, alen, "websocket");

    for (int mode = 0; mode < 3; mode++) {
        (void)gh_ws_origin_allowed((gh_ws_origins)mode, server, 4, a, alen, b, blen);
        (void)gh_ws_origin_allowed((gh_ws_origins)mode, server, 4, b, blen, a, alen);
    }
    CHECK(gh_ws_origin_allowed(GH_WS_ORIGINS_SAME_HOST, NULL, 0, NULL, 0, b, blen));

    /* A valid origin is allowed by a list of itself. */
    ca = dup_cstr(a, alen);
    if (strlen(ca) == alen && gh_ws_origin_is_valid(a, alen)) {
        const char *const list[] = { ca };
        const char *sep = memchr(a, ':', alen);

        CHECK(gh_ws_origin_allowed(GH_WS_ORIGINS_LIST, list, 1, a, alen, NULL, 0));
        /* ... and, for http(s), by same-host with its own authority as Host. */
        if (sep != NULL && (size_t)(sep - a) + 3 <= alen
            && ((sep - a == 4 && strncasecmp(a, "http", 4) == 0)
                || (sep - a == 5 && strncasecmp(a, "https", 5) == 0))) {
            const char *auth = sep + 3;

            CHECK(gh_ws_origin_allowed(GH_WS_ORIGINS_SAME_HOST, NULL, 0, a, alen,
                                       auth, alen - (size_t)(auth - a)));
        }
    }
    free(ca);

    k = gh_ws_pick_subprotocol(a, alen, server, 4);
    CHECK(k >= -1 && k < 4);
    if (k >= 0)
        CHECK(gh_ws_token_list_has(a, alen, server[k]));

    free(a);
    free(b);
    return 0;
}
