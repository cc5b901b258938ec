/* utf8.c: incremental, fail-fast UTF-8 validation.
 *
 * Why this shape: WebSocket text arrives in arbitrary chunks, so the state
 * between calls must be tiny (one word) and validation must reject at the
 * first impossible byte. The state says how many continuation bytes are
 * still expected and which range the next one must fall in; RFC 3629 §4
 * only narrows the range of the byte right after E0, ED, F0 and F4, so
 * eight states cover every rule. Chat traffic is mostly ASCII: runs of
 * ASCII are skipped 8 bytes at a time.
 *
 * What it does not do: decode code points, or report where in a chunk the
 * bad byte was (callers here only need "valid so far" and "complete"). */
#include "utf8.h"

#include <string.h>

#include "err.h"

enum {
    S_ACCEPT = 0,   /* between code points */
    S_TAIL1,        /* 1 more continuation byte, 80..BF */
    S_TAIL2,        /* 2 more, next 80..BF */
    S_TAIL3,        /* 3 more, next 80..BF */
    S_E0,           /* after E0: next A0..BF (no overlong), then 1 more */
    S_ED,           /* after ED: next 80..9F (no surrogate), then 1 more */
    S_F0,           /* after F0: next 90..BF (no overlong), then 2 more */
    S_F4,           /* after F4: next 80..8F (<= U+10FFFF), then 2 more */
    S_REJECT,
};

/* For each "inside a sequence" state: the allowed range of the next byte and
 * the state after it. */
static const struct {
    uint8_t lo, hi, next;
} tails[S_REJECT] = {
    [S_TAIL1] = { .lo = 0x80, .hi = 0xBF, .next = S_ACCEPT },
    [S_TAIL2] = { .lo = 0x80, .hi = 0xBF, .next = S_TAIL1 },
    [S_TAIL3] = { .lo = 0x80, .hi = 0xBF, .next = S_TAIL2 },
    [S_E0]    = { .lo = 0xA0, .hi = 0xBF, .next = S_TAIL1 },
    [S_ED]    = { .lo = 0x80, .hi = 0x9F, .next = S_TAIL1 },
    [S_F0]    = { .lo = 0x90, .hi = 0xBF, .next = S_TAIL2 },
    [S_F4]    = { .lo = 0x80, .hi = 0x8F, .next = S_TAIL2 },
};

/* The state after a byte >= 0x80 seen between code points. */
static uint32_t lead_state(uint8_t b)
{
    if (b < 0xC2)               /* stray continuation, or overlong C0/C1 */
        return S_REJECT;
    if (b < 0xE0)
        return S_TAIL1;
    if (b == 0xE0)
        return S_E0;
    if (b == 0xED)
        return S_ED;
    if (b < 0xF0)
        return S_TAIL2;
    if (b == 0xF0)
        return S_F0;
    if (b < 0xF4)
        return S_TAIL3;
    if (b == 0xF4)
        return S_F4;
    return S_REJECT;            /* F5..FF can only start > U+10FFFF */
}

void gh_utf8_init(gh_utf8 *u)
{
    u->state = S_ACCEPT;
}

int gh_utf8_feed(gh_utf8 *u, const uint8_t *buf, size_t len)
{
    uint32_t s = u->state;
    size_t i = 0;

    if (s == S_REJECT)
        return GH_EPROTO;
    while (i < len) {
        if (s == S_ACCEPT) {
            /* ASCII fast path: 8 bytes with no high bit set. */
            while (len - i >= 8) {
                uint64_t w;

                memcpy(&w, buf + i, sizeof(w));
                if ((w & UINT64_C(0x8080808080808080)) != 0)
                    break;
                i += 8;
            }
            if (i == len)
                break;
            if (buf[i] < 0x80) {
                i++;
                continue;
            }
            s = lead_state(buf[i]);
        } else {
            uint8_t b = buf[i];

            s = (b >= tails[s].lo && b <= tails[s].hi) ? tails[s].next : S_REJECT;
        }
        if (s == S_REJECT) {
            u->state = S_REJECT;
            return GH_EPROTO;
        }
        i++;
    }
    u->state = s;
    return 0;
}

bool gh_utf8_is_complete(const gh_utf8 *u)
{
    return u->state == S_ACCEPT;
}
