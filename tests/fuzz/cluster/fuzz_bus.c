/* fuzz_bus.c: libFuzzer driver for the Redis bus's codec.
 *
 * The input goes, as given (the harness allocates exactly size bytes, so
 * ASan catches any over-read), to the envelope decoder, to the topic-state
 * decoder (first with a small items array; after GH_E2BIG again with an
 * array of exactly the size it asked for, so a write past cap is caught),
 * to the PUBLISH encoder as a payload, and, NUL-terminated, to the URL
 * parser. Each result is checked against the contract in bus.h: outputs
 * point into the input, lengths add up, a decoded envelope header encodes
 * back to the same bytes, and failures are the documented codes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "err.h"
#include "wsframe.h"

#define SMALL 4

static int inside(const void *p, size_t n, const void *buf, size_t size)
{
    const uint8_t *b = buf, *q = p;

    return q >= b && q <= b + size && n <= (size_t)(b + size - q);
}

static void envelope(const uint8_t *data, size_t size)
{
    gh_bus_msg m;
    uint8_t hdr[GH_BUS_HDR_LEN];
    int rc = gh_bus_envelope_decode(data, size, &m);

    if (rc == GH_EPROTO)
        return;
    if (rc != GH_OK || size < GH_BUS_HDR_LEN)
        abort();
    if (m.opcode != GH_WS_OP_TEXT && m.opcode != GH_WS_OP_BINARY)
        abort();
    if (m.data != data + GH_BUS_HDR_LEN || m.len != size - GH_BUS_HDR_LEN)
        abort();
    /* the header is fully determined by the fields */
    if (gh_bus_envelope_header(hdr, &m) != GH_BUS_HDR_LEN ||
        memcmp(hdr, data, GH_BUS_HDR_LEN) != 0)
        abort();
}

/* What a successful decode must satisfy: every item inside buf, and the
 * fixed fields plus the items make up exactly size bytes. */
static void check_items(const char *buf, size_t size, const gh_plugin_bytes *items,
                        size_t n)
{
    size_t total = 16 + 8 + 8;

    for (size_t i = 0; i < n; i++) {
        if (!inside(items[i].data, items[i].len, buf, size))
            abort();
        total += 8 + items[i].len;
    }
    if (total != size)
        abort();
}

static void state(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    gh_plugin_bytes small[SMALL], *items = NULL;
    size_t nm = 0, nl = 0, nm2 = 0, nl2 = 0;
    uint64_t reqid = 0, reqid2 = 0;
    int rc = gh_bus_state_decode(buf, size, &reqid, small, SMALL, &nm, &nl);

    if (rc == GH_EPROTO)
        return;
    if (rc == GH_OK) {
        if (nm > SMALL || nl > SMALL - nm)
            abort();
        check_items(buf, size, small, nm + nl);
        return;
    }
    if (rc != GH_E2BIG || nm + nl <= SMALL || nm + nl < nm)
        abort();
    /* each item takes at least 8 bytes of input: the counts are bounded */
    if (nm + nl > size / 8)
        abort();
    if ((items = malloc((nm + nl) * sizeof(*items))) == NULL)
        return;
    rc = gh_bus_state_decode(buf, size, &reqid2, items, nm + nl, &nm2, &nl2);
    if (rc != GH_OK || nm2 != nm || nl2 != nl || reqid2 != reqid)
        abort();
    check_items(buf, size, items, nm + nl);
    free(items);
}

static void publish(const uint8_t *data, size_t size)
{
    gh_bus_msg m = { .opcode = size > 0 && (data[0] & 1) ? GH_WS_OP_BINARY : GH_WS_OP_TEXT,
                     .origin = size, .upto = ~(uint64_t)size, .skip = (uint64_t)size << 32,
                     .keep = (uint32_t)size, .data = data, .len = size }, d;
    size_t need = gh_bus_publish_size(3, size);
    char *out;
    long n;

    if (need == 0 || (out = malloc(need)) == NULL)
        return;
    n = gh_bus_publish_encode(out, need, "c:d", 3, &m);
    if (n < 0 || (size_t)n != need)
        abort();
    /* the envelope ends right before the closing CRLF */
    if (gh_bus_envelope_decode(out + need - 2 - GH_BUS_HDR_LEN - size, GH_BUS_HDR_LEN + size,
                               &d) != GH_OK ||
        d.opcode != m.opcode || d.origin != m.origin || d.upto != m.upto ||
        d.skip != m.skip || d.keep != m.keep || d.len != size ||
        (size > 0 && memcmp(d.data, data, size) != 0))
        abort();
    if (gh_bus_publish_encode(out, need - 1, "c:d", 3, &m) != GH_E2BIG)
        abort();
    free(out);
}

static void url(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    gh_bus_url u;
    int rc;

    if (s == NULL)
        return;
    memcpy(s, data, size);
    s[size] = '\0';
    rc = gh_bus_url_parse(s, &u);
    if (rc == GH_OK) {
        if (u.host_len == 0 || !inside(u.host, u.host_len, s, size))
            abort();
        if (u.port == 0 || u.db < 0 || u.db > 15 || (!u.has_db && u.db != 0))
            abort();
        if (u.password != NULL && (u.password_len == 0 ||
                                   !inside(u.password, u.password_len, s, size)))
            abort();
    } else if (rc != GH_EINVAL) {
        abort();
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    envelope(data, size);
    state(data, size);
    publish(data, size);
    url(data, size);
    return 0;
}
