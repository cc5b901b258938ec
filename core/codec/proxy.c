/* proxy.c: PROXY protocol v1/v2 header codec.
 *
 * Why it is shaped this way: a load balancer writes the header once, at the
 * start of the connection, before TLS. The glue peeks at whatever bytes
 * arrived and asks "is a whole, valid header there?". So the parser is
 * stateless and re-run on the growing buffer: the header is at most
 * GH_PROXY_V2_MAX bytes (in practice ~100), and carrying state between calls
 * would buy nothing but bugs. It refuses as soon as the bytes seen cannot
 * start a valid header, so a misconfigured peer is dropped at once instead
 * of after a timeout.
 *
 * v1 is scanned field by field without a NUL terminator; IPv4 text is
 * parsed here (inet_pton would accept forms the spec forbids), IPv6 text is
 * copied to a small NUL-terminated buffer for inet_pton.
 *
 * v2 LOCAL headers are read in up to two ways because senders disagree on
 * where their TLVs start (see gh_proxy_parse in proxy.h); the CRC32C, when
 * present, then guards the whole header.
 *
 * What it does not do: I/O, allocation, logging, deciding whether a peer may
 * send a header at all (that is the listener's trusted_proxies), or
 * interpreting TLVs beyond handing out pointers. */
#include "proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "err.h"

static const uint8_t v1_sig[6] = { 'P', 'R', 'O', 'X', 'Y', ' ' };
static const uint8_t v2_sig[12] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};

/* v2 TLV types (doc/proxy-protocol.txt §2.2) and the AWS extension. */
enum {
    PP2_TYPE_ALPN = 0x01,
    PP2_TYPE_AUTHORITY = 0x02,
    PP2_TYPE_CRC32C = 0x03,
    PP2_TYPE_NOOP = 0x04,
    PP2_TYPE_UNIQUE_ID = 0x05,
    PP2_TYPE_SSL = 0x20,
    PP2_SUBTYPE_SSL_VERSION = 0x21,
    PP2_SUBTYPE_SSL_CN = 0x22,
    PP2_SUBTYPE_SSL_CIPHER = 0x23,
    PP2_SUBTYPE_SSL_SIG_ALG = 0x24,
    PP2_SUBTYPE_SSL_KEY_ALG = 0x25,
    PP2_TYPE_NETNS = 0x30,
    PP2_TYPE_AWS = 0xEA,
    PP2_SUBTYPE_AWS_VPCE_ID = 0x01,
};

#define V2_FIXED      16     /* signature, ver_cmd, fam, len */
#define TLV_HEAD      3      /* type, length hi, length lo */
#define UNIQUE_ID_MAX 128
#define SSL_FIXED     5      /* client u8, verify u32 */
#define V1_ADDR6_MAX  45     /* INET6_ADDRSTRLEN - 1 */

/* CRC32C, reflected polynomial 0x82F63B78, one entry per byte value. */
static const uint32_t crc32c_table[256] = {
    0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c,
    0x26a1e7e8, 0xd4ca64eb, 0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b,
    0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24, 0x105ec76f, 0xe235446c,
    0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
    0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc,
    0xbc267848, 0x4e4dfb4b, 0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a,
    0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35, 0xaa64d611, 0x580f5512,
    0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
    0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad,
    0x1642ae59, 0xe4292d5a, 0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a,
    0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595, 0x417b1dbc, 0xb3109ebf,
    0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
    0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f,
    0xed03a29b, 0x1f682198, 0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927,
    0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38, 0xdbfc821c, 0x2997011f,
    0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
    0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e,
    0x4767748a, 0xb50cf789, 0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859,
    0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46, 0x7198540d, 0x83f3d70e,
    0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
    0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de,
    0xdde0eb2a, 0x2f8b6829, 0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c,
    0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93, 0x082f63b7, 0xfa44e0b4,
    0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
    0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b,
    0xb4091bff, 0x466298fc, 0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c,
    0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033, 0xa24bb5a6, 0x502036a5,
    0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
    0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975,
    0x0e330a81, 0xfc588982, 0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d,
    0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622, 0x38cc2a06, 0xcaa7a905,
    0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
    0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8,
    0xe52cc12c, 0x1747422f, 0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff,
    0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0, 0xd3d3e1ab, 0x21b862a8,
    0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
    0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78,
    0x7fab5e8c, 0x8dc0dd8f, 0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee,
    0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1, 0x69e9f0d5, 0x9b8273d6,
    0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
    0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69,
    0xd5cf889d, 0x27a40b9e, 0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e,
    0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

uint32_t gh_proxy_crc32c(uint32_t crc, const uint8_t *buf, size_t len)
{
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = crc32c_table[(crc ^ buf[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

enum { SIG_NO, SIG_PARTIAL, SIG_FULL };

/* Does buf[0..len) agree with sig as far as both go? */
static int sig_match(const uint8_t *buf, size_t len, const uint8_t *sig, size_t sig_len)
{
    size_t n = len < sig_len ? len : sig_len;

    if (n > 0 && memcmp(buf, sig, n) != 0)
        return SIG_NO;
    return len >= sig_len ? SIG_FULL : SIG_PARTIAL;
}

int gh_proxy_detect(const uint8_t *buf, size_t len)
{
    int m1 = sig_match(buf, len, v1_sig, sizeof(v1_sig));
    int m2 = sig_match(buf, len, v2_sig, sizeof(v2_sig));

    if (m1 == SIG_FULL)
        return 1;
    if (m2 == SIG_FULL)
        return 2;
    if (m1 == SIG_PARTIAL || m2 == SIG_PARTIAL)
        return GH_EAGAIN;
    return 0;
}

/* ---- v1 ---------------------------------------------------------------- */

/* A cursor over the first min(len, GH_PROXY_V1_MAX) bytes. Each field
 * parser returns 0 (field done, cursor past it), GH_EAGAIN (ran out of
 * bytes while everything so far was valid) or GH_EPROTO (reason set). */
typedef struct v1cur {
    const uint8_t *b;
    size_t n;            /* bytes we may look at */
    size_t i;            /* next byte */
    bool capped;         /* n was cut at GH_PROXY_V1_MAX: running out means too long */
    const char *reason;
} v1cur;

static int v1_more(v1cur *c)
{
    if (c->capped) {
        c->reason = "v1_too_long";
        return GH_EPROTO;
    }
    return GH_EAGAIN;
}

static int v1_bad(v1cur *c, const char *reason)
{
    c->reason = reason;
    return GH_EPROTO;
}

static int v1_expect(v1cur *c, uint8_t ch)
{
    if (c->i == c->n)
        return v1_more(c);
    if (c->b[c->i] != ch)
        return v1_bad(c, "v1_syntax");
    c->i++;
    return 0;
}

static bool is_digit(uint8_t ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_xdigit(uint8_t ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* A decimal number up to max, no leading zero (but "0" itself). Stops at
 * the first non-digit, which is left for the caller. */
static int v1_number(v1cur *c, unsigned max, const char *reason, unsigned *out)
{
    unsigned v = 0;
    size_t digits = 0;

    for (;;) {
        if (c->i == c->n)
            return v1_more(c);
        uint8_t ch = c->b[c->i];
        if (!is_digit(ch))
            break;
        if (digits == 1 && v == 0)
            return v1_bad(c, reason);          /* leading zero: octal confusion */
        v = v * 10 + (unsigned)(ch - '0');
        digits++;
        if (v > max)
            return v1_bad(c, reason);
        c->i++;
    }
    if (digits == 0)
        return v1_bad(c, reason);
    *out = v;
    return 0;
}

/* Dotted quad followed by a space (not consumed). */
static int v1_ipv4(v1cur *c, struct in_addr *out)
{
    uint8_t octets[4];
    int rc;

    for (int k = 0; k < 4; k++) {
        unsigned v;
        if ((rc = v1_number(c, 255, "v1_address", &v)) != 0)
            return rc;
        octets[k] = (uint8_t)v;
        /* v1_number stopped at an available non-digit */
        if (c->b[c->i] != (k < 3 ? '.' : ' '))
            return v1_bad(c, "v1_address");
        if (k < 3)
            c->i++;
    }
    memcpy(&out->s_addr, octets, 4);
    return 0;
}

/* IPv6 text followed by a space (not consumed). */
static int v1_ipv6(v1cur *c, struct in6_addr *out)
{
    char text[V1_ADDR6_MAX + 1];
    size_t start = c->i, n;

    for (;;) {
        if (c->i == c->n)
            return v1_more(c);
        uint8_t ch = c->b[c->i];
        if (ch == ' ')
            break;
        if (!is_xdigit(ch) && ch != ':' && ch != '.')
            return v1_bad(c, "v1_address");
        if (c->i - start == V1_ADDR6_MAX)
            return v1_bad(c, "v1_address");
        c->i++;
    }
    n = c->i - start;
    if (n == 0)
        return v1_bad(c, "v1_address");
    memcpy(text, c->b + start, n);
    text[n] = '\0';
    if (inet_pton(AF_INET6, text, out) != 1)
        return v1_bad(c, "v1_address");
    return 0;
}

static int v1_port(v1cur *c, in_port_t *out)
{
    unsigned v;
    int rc;

    if ((rc = v1_number(c, 65535, "v1_port", &v)) != 0)
        return rc;
    *out = htons((uint16_t)v);
    return 0;
}

/* "TCP4 ", "TCP6 " or "UNKNOWN": returns the index, or GH_EAGAIN/GH_EPROTO. */
static int v1_keyword(v1cur *c)
{
    static const char *const kw[] = { "TCP4 ", "TCP6 ", "UNKNOWN" };
    size_t avail = c->n - c->i;
    bool partial = false;

    for (int k = 0; k < 3; k++) {
        size_t kl = strlen(kw[k]);
        size_t m = avail < kl ? avail : kl;
        if (memcmp(c->b + c->i, kw[k], m) != 0)
            continue;
        if (avail >= kl) {
            c->i += kl;
            return k;
        }
        partial = true;
    }
    return partial ? v1_more(c) : v1_bad(c, "v1_syntax");
}

/* After "UNKNOWN": CRLF, or a space and anything but CR/LF up to CRLF. */
static int v1_unknown_rest(v1cur *c)
{
    if (c->i == c->n)
        return v1_more(c);
    if (c->b[c->i] == ' ') {
        for (c->i++;; c->i++) {
            if (c->i == c->n)
                return v1_more(c);
            if (c->b[c->i] == '\n')
                return v1_bad(c, "v1_syntax");
            if (c->b[c->i] == '\r')
                break;
        }
    }
    int rc = v1_expect(c, '\r');
    return rc != 0 ? rc : v1_expect(c, '\n');
}

/* buf starts with "PROXY ". */
static long parse_v1(const uint8_t *buf, size_t len, gh_proxy_info *out)
{
    v1cur c = {
        .b = buf,
        .n = len < GH_PROXY_V1_MAX ? len : GH_PROXY_V1_MAX,
        .i = sizeof(v1_sig),
        .capped = len >= GH_PROXY_V1_MAX,
    };
    struct sockaddr_in *s4 = (struct sockaddr_in *)&out->src;
    struct sockaddr_in *d4 = (struct sockaddr_in *)&out->dst;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->src;
    struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&out->dst;
    int rc, kw;

    out->version = 1;
    if ((kw = v1_keyword(&c)) < 0) {
        rc = kw;
        goto bad;
    }
    if (kw == 2) {
        if ((rc = v1_unknown_rest(&c)) != 0)
            goto bad;
        out->local = true;
        out->family = AF_UNSPEC;
        return (long)c.i;
    }
    if (kw == 0) {
        out->family = AF_INET;
        s4->sin_family = d4->sin_family = AF_INET;
        if ((rc = v1_ipv4(&c, &s4->sin_addr)) != 0 || (rc = v1_expect(&c, ' ')) != 0 ||
            (rc = v1_ipv4(&c, &d4->sin_addr)) != 0 || (rc = v1_expect(&c, ' ')) != 0 ||
            (rc = v1_port(&c, &s4->sin_port)) != 0 || (rc = v1_expect(&c, ' ')) != 0 ||
            (rc = v1_port(&c, &d4->sin_port)) != 0)
            goto bad;
    } else {
        out->family = AF_INET6;
        s6->sin6_family = d6->sin6_family = AF_INET6;
        if ((rc = v1_ipv6(&c, &s6->sin6_addr)) != 0 || (rc = v1_expect(&c, ' ')) != 0 ||
            (rc = v1_ipv6(&c, &d6->sin6_addr)) != 0 || (rc = v1_expect(&c, ' ')) != 0 ||
            (rc = v1_port(&c, &s6->sin6_port)) != 0 || (rc = v1_expect(&c, ' ')) != 0 ||
            (rc = v1_port(&c, &d6->sin6_port)) != 0)
            goto bad;
    }
    if ((rc = v1_expect(&c, '\r')) != 0 || (rc = v1_expect(&c, '\n')) != 0)
        goto bad;
    return (long)c.i;
bad:
    out->reason = c.reason;
    return rc;
}

/* ---- v2 ---------------------------------------------------------------- */

/* One reading of a TLV area: the TLV fields of info, and where the CRC is. */
typedef struct tlv_walk {
    gh_proxy_info info;
    size_t crc_off;          /* offset of the CRC32C value in the header; 0: none */
    const char *reason;
} tlv_walk;

static int walk_bad(tlv_walk *w, const char *reason)
{
    w->reason = reason;
    return GH_EPROTO;
}

/* Records a value the first time; false when it was already there. */
static bool set_once(const uint8_t **p, size_t *plen, const uint8_t *v, size_t n)
{
    if (*p != NULL)
        return false;
    *p = v;
    *plen = n;
    return true;
}

/* The value of a PP2_TYPE_SSL TLV, all present: client, verify, sub-TLVs
 * that end exactly where the SSL TLV does. */
static int walk_ssl(const uint8_t *v, size_t vlen, tlv_walk *w)
{
    gh_proxy_info *in = &w->info;
    size_t q = SSL_FIXED;

    in->ssl_present = true;
    in->ssl_client = v[0];
    in->ssl_verify = be32(v + 1);
    while (q < vlen) {
        if (vlen - q < TLV_HEAD)
            return walk_bad(w, "tlv_bounds");
        uint8_t st = v[q];
        size_t sl = be16(v + q + 1);
        if (sl > vlen - q - TLV_HEAD)
            return walk_bad(w, "tlv_bounds");
        const uint8_t *sv = v + q + TLV_HEAD;
        bool fresh = true;
        switch (st) {
        case PP2_SUBTYPE_SSL_VERSION: fresh = set_once(&in->ssl_version, &in->ssl_version_len, sv, sl); break;
        case PP2_SUBTYPE_SSL_CN:      fresh = set_once(&in->ssl_cn, &in->ssl_cn_len, sv, sl); break;
        case PP2_SUBTYPE_SSL_CIPHER:  fresh = set_once(&in->ssl_cipher, &in->ssl_cipher_len, sv, sl); break;
        case PP2_SUBTYPE_SSL_SIG_ALG: fresh = set_once(&in->ssl_sig_alg, &in->ssl_sig_alg_len, sv, sl); break;
        case PP2_SUBTYPE_SSL_KEY_ALG: fresh = set_once(&in->ssl_key_alg, &in->ssl_key_alg_len, sv, sl); break;
        default: break;                 /* unknown sub-TLVs are skipped */
        }
        if (!fresh)
            return walk_bad(w, "tlv_duplicate");
        q += TLV_HEAD + sl;
    }
    return 0;
}

/* Reads the TLVs in b[p..end) of which only b[0..avail) is there
 * (avail <= end). Returns 0 when they are well-formed and end exactly at
 * end (so avail == end), GH_EAGAIN when every TLV complete so far is fine,
 * GH_EPROTO (w->reason) otherwise. Limits that the TLV header alone shows
 * are judged before its value arrives. zero_misframed: a TLV of type 0x00
 * means this reading is wrong (see the LOCAL notes in proxy.h). */
static int walk_tlvs(const uint8_t *b, size_t p, size_t end, size_t avail,
                     bool zero_misframed, tlv_walk *w)
{
    gh_proxy_info *in = &w->info;

    if (avail < p)
        return GH_EAGAIN;
    while (p < end) {                   /* invariant: p <= avail */
        if (end - p < TLV_HEAD)
            return walk_bad(w, "tlv_bounds");
        if (avail - p < TLV_HEAD)
            return GH_EAGAIN;
        uint8_t type = b[p];
        size_t vlen = be16(b + p + 1);
        if (vlen > end - p - TLV_HEAD)
            return walk_bad(w, "tlv_bounds");
        if (type == 0x00 && zero_misframed)
            return walk_bad(w, "tlv_framing");
        switch (type) {
        case PP2_TYPE_ALPN:
            if (in->alpn != NULL)
                return walk_bad(w, "tlv_duplicate");
            break;
        case PP2_TYPE_AUTHORITY:
            if (in->authority != NULL)
                return walk_bad(w, "tlv_duplicate");
            break;
        case PP2_TYPE_CRC32C:
            if (vlen != 4)
                return walk_bad(w, "tlv_value");
            if (w->crc_off != 0)
                return walk_bad(w, "tlv_duplicate");
            break;
        case PP2_TYPE_UNIQUE_ID:
            if (vlen > UNIQUE_ID_MAX)
                return walk_bad(w, "tlv_value");
            if (in->unique_id != NULL)
                return walk_bad(w, "tlv_duplicate");
            break;
        case PP2_TYPE_SSL:
            if (vlen < SSL_FIXED)
                return walk_bad(w, "tlv_value");
            if (in->ssl_present)
                return walk_bad(w, "tlv_duplicate");
            break;
        case PP2_TYPE_NETNS:
            if (in->netns != NULL)
                return walk_bad(w, "tlv_duplicate");
            break;
        case PP2_TYPE_AWS:
            if (vlen < 1)
                return walk_bad(w, "tlv_value");
            break;
        default:
            break;                      /* NOOP and unknown types are skipped */
        }
        if (avail - p - TLV_HEAD < vlen)
            return GH_EAGAIN;
        const uint8_t *v = b + p + TLV_HEAD;
        switch (type) {
        case PP2_TYPE_ALPN:      set_once(&in->alpn, &in->alpn_len, v, vlen); break;
        case PP2_TYPE_AUTHORITY: set_once(&in->authority, &in->authority_len, v, vlen); break;
        case PP2_TYPE_CRC32C:    w->crc_off = p + TLV_HEAD; break;
        case PP2_TYPE_UNIQUE_ID: set_once(&in->unique_id, &in->unique_id_len, v, vlen); break;
        case PP2_TYPE_NETNS:     set_once(&in->netns, &in->netns_len, v, vlen); break;
        case PP2_TYPE_SSL: {
            int rc = walk_ssl(v, vlen, w);
            if (rc != 0)
                return rc;
            break;
        }
        case PP2_TYPE_AWS:
            if (v[0] == PP2_SUBTYPE_AWS_VPCE_ID &&
                !set_once(&in->aws_vpce_id, &in->aws_vpce_id_len, v + 1, vlen - 1))
                return walk_bad(w, "tlv_duplicate");
            break;
        default:
            break;
        }
        p += TLV_HEAD + vlen;
    }
    return 0;
}

/* RFC 4960 appendix B, as the spec asks: the CRC of the whole header with
 * the checksum field taken as zeros. */
static bool crc_matches(const uint8_t *b, size_t total, size_t off)
{
    static const uint8_t zeros[4];
    uint32_t crc = gh_proxy_crc32c(0, b, off);

    crc = gh_proxy_crc32c(crc, zeros, sizeof(zeros));
    crc = gh_proxy_crc32c(crc, b + off + 4, total - off - 4);
    return crc == be32(b + off);
}

/* Address block size of a v2 address family nibble; 0 for UNSPEC/unknown. */
static size_t family_addr_len(unsigned fam)
{
    switch (fam) {
    case 0x1: return 12;                /* 2 * 4 + 2 * 2 */
    case 0x2: return 36;                /* 2 * 16 + 2 * 2 */
    case 0x3: return 216;               /* 2 * 108 */
    default:  return 0;
    }
}

static int family_af(unsigned fam)
{
    switch (fam) {
    case 0x1: return AF_INET;
    case 0x2: return AF_INET6;
    case 0x3: return AF_UNIX;
    default:  return AF_UNSPEC;
    }
}

static void fill_addresses(const uint8_t *a, uint8_t fam, gh_proxy_info *out)
{
    switch (fam) {
    case 0x11: {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&d->sin_addr, a + 4, 4);
        memcpy(&s->sin_port, a + 8, 2);
        memcpy(&d->sin_port, a + 10, 2);
        break;
    }
    case 0x21: {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&d->sin6_addr, a + 16, 16);
        memcpy(&s->sin6_port, a + 32, 2);
        memcpy(&d->sin6_port, a + 34, 2);
        break;
    }
    case 0x31: {
        struct sockaddr_un *s = (struct sockaddr_un *)&out->src;
        struct sockaddr_un *d = (struct sockaddr_un *)&out->dst;
        _Static_assert(sizeof(s->sun_path) == 108, "sun_path is 108 bytes");
        s->sun_family = d->sun_family = AF_UNIX;
        memcpy(s->sun_path, a, 108);
        memcpy(d->sun_path, a + 108, 108);
        break;
    }
    default:
        out->local = true;              /* UNSPEC: use the socket's addresses */
        break;
    }
}

/* buf starts with the 12-byte v2 signature. */
static long parse_v2(const uint8_t *buf, size_t len, gh_proxy_info *out)
{
    tlv_walk wa = { .reason = NULL }, wb = { .reason = NULL };
    const tlv_walk *w;
    const char *reason = NULL;
    size_t addr_len = 0, hlen, total, avail;
    unsigned cmd;
    uint8_t fam;
    int rc;

    if (len < 13)
        return GH_EAGAIN;
    if (buf[12] >> 4 != 2) {
        reason = "v2_version";
        goto bad;
    }
    cmd = buf[12] & 0x0F;
    if (cmd > 1) {
        reason = "v2_command";
        goto bad;
    }
    if (len < 14)
        return GH_EAGAIN;
    fam = buf[13];
    if (cmd == 1) {                     /* PROXY: only what we can carry */
        switch (fam) {
        case 0x00: addr_len = 0; break;
        case 0x11: case 0x21: case 0x31: addr_len = family_addr_len(fam >> 4); break;
        default:
            reason = "v2_family";
            goto bad;
        }
    }
    if (len < V2_FIXED)
        return GH_EAGAIN;
    hlen = be16(buf + 14);
    total = V2_FIXED + hlen;
    avail = len < total ? len : total;

    if (cmd == 1) {
        if (hlen < addr_len) {
            reason = "v2_length";
            goto bad;
        }
        /* the spec: do not parse an address before the block is all there */
        if (avail < V2_FIXED + addr_len)
            return GH_EAGAIN;
        rc = walk_tlvs(buf, V2_FIXED + addr_len, total, avail, false, &wa);
        if (rc == GH_EPROTO) {
            reason = wa.reason;
            goto bad;
        }
        if (rc != 0)
            return rc;
        w = &wa;
    } else {
        /* LOCAL: the family is ignored, except that it may name an address
         * block sitting before the TLVs. Read TLVs at byte 16 first (AWS NLB),
         * then after that block. Type 0x00 counts as a misreading in both,
         * else zero padding read from the wrong start would pass for 3-byte
         * empty TLVs and rescue a header whose first TLVs were damaged.
         * What no receiver can catch: a CRC32C TLV whose type byte changed
         * (it is then just another TLV, and the header has no checksum),
         * and a LOCAL command byte turned into PROXY when that puts the CRC
         * TLV inside the address block. */
        size_t alt = family_addr_len(fam >> 4);
        bool two = alt != 0 && hlen >= alt;

        rc = walk_tlvs(buf, V2_FIXED, total, avail, two, &wa);
        if (rc == GH_EAGAIN)
            return rc;
        if (rc == GH_EPROTO && !two) {
            reason = wa.reason;
            goto bad;
        }
        w = &wa;
        if (rc == GH_EPROTO) {
            rc = walk_tlvs(buf, V2_FIXED + alt, total, avail, true, &wb);
            if (rc == GH_EPROTO) {
                reason = "tlv_framing";
                goto bad;
            }
            if (rc != 0)
                return rc;
            w = &wb;
        }
    }
    /* a walk returns 0 only once all total bytes are there */
    if (w->crc_off != 0 && !crc_matches(buf, total, w->crc_off)) {
        reason = "crc32c_mismatch";
        goto bad;
    }
    *out = w->info;
    out->version = 2;
    out->crc32c_checked = w->crc_off != 0;
    if (cmd == 1) {
        out->family = family_af(fam >> 4);
        fill_addresses(buf + V2_FIXED, fam, out);
    } else {
        out->local = true;
        out->family = family_af(fam >> 4);
    }
    return (long)total;
bad:
    out->version = 2;
    out->reason = reason;
    return GH_EPROTO;
}

long gh_proxy_parse(const uint8_t *buf, size_t len, int allow, gh_proxy_info *out)
{
    int m1 = sig_match(buf, len, v1_sig, sizeof(v1_sig));
    int m2 = sig_match(buf, len, v2_sig, sizeof(v2_sig));

    memset(out, 0, sizeof(*out));
    if (m1 == SIG_FULL || m2 == SIG_FULL) {
        int v = m1 == SIG_FULL ? 1 : 2;
        if (!(allow & (v == 1 ? GH_PROXY_ALLOW_V1 : GH_PROXY_ALLOW_V2))) {
            out->version = v;
            out->reason = "not_allowed_version";
            return GH_EPROTO;
        }
        return v == 1 ? parse_v1(buf, len, out) : parse_v2(buf, len, out);
    }
    if (m1 == SIG_PARTIAL || m2 == SIG_PARTIAL)
        return GH_EAGAIN;
    out->reason = "bad_signature";
    return GH_EPROTO;
}

/* ---- encoding ---------------------------------------------------------- */

/* The IPv4 address of an AF_INET or IPv4-mapped AF_INET6 sockaddr. */
static bool as_v4(const struct sockaddr *sa, struct in_addr *a, uint16_t *port)
{
    if (sa->sa_family == AF_INET) {
        *a = ((const struct sockaddr_in *)sa)->sin_addr;
        *port = ((const struct sockaddr_in *)sa)->sin_port;
        return true;
    }
    if (sa->sa_family == AF_INET6 &&
        IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
        memcpy(a, &((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr[12], 4);
        *port = ((const struct sockaddr_in6 *)sa)->sin6_port;
        return true;
    }
    return false;
}

long gh_proxy_encode(int version, const struct sockaddr *src, const struct sockaddr *dst,
                     uint8_t *out, size_t cap)
{
    static const uint8_t sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
                                     0x55, 0x49, 0x54, 0x0A };
    struct in_addr s4, d4;
    uint16_t sp = 0, dp = 0;
    bool v4 = src != NULL && dst != NULL && as_v4(src, &s4, &sp) && as_v4(dst, &d4, &dp);
    bool v6 = !v4 && src != NULL && dst != NULL && src->sa_family == AF_INET6 &&
              dst->sa_family == AF_INET6;

    if (v6) {
        sp = ((const struct sockaddr_in6 *)src)->sin6_port;
        dp = ((const struct sockaddr_in6 *)dst)->sin6_port;
    }
    if (version == 1) {
        char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN], line[GH_PROXY_ENCODE_MAX + 1];
        int n;

        if (v4) {
            inet_ntop(AF_INET, &s4, a, sizeof(a));
            inet_ntop(AF_INET, &d4, b, sizeof(b));
        } else if (v6) {
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)src)->sin6_addr, a, sizeof(a));
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)dst)->sin6_addr, b, sizeof(b));
        }
        if (v4 || v6)
            n = snprintf(line, sizeof(line), "PROXY %s %s %s %u %u\r\n", v4 ? "TCP4" : "TCP6",
                         a, b, ntohs(sp), ntohs(dp));
        else
            n = snprintf(line, sizeof(line), "PROXY UNKNOWN\r\n");
        if (n < 0 || (size_t)n > cap)
            return GH_E2BIG;
        memcpy(out, line, (size_t)n);
        return n;
    }
    {
        size_t alen = v4 ? 12 : v6 ? 36 : 0;

        if (cap < 16 + alen)
            return GH_E2BIG;
        memcpy(out, sig, 12);
        out[12] = (v4 || v6) ? 0x21 : 0x20;          /* version 2; PROXY or LOCAL */
        out[13] = v4 ? 0x11 : v6 ? 0x21 : 0x00;      /* TCP over IPv4 / IPv6, or UNSPEC */
        out[14] = (uint8_t)(alen >> 8);
        out[15] = (uint8_t)alen;
        if (v4) {
            memcpy(out + 16, &s4, 4);
            memcpy(out + 20, &d4, 4);
            memcpy(out + 24, &sp, 2);
            memcpy(out + 26, &dp, 2);
        } else if (v6) {
            memcpy(out + 16, &((const struct sockaddr_in6 *)src)->sin6_addr, 16);
            memcpy(out + 32, &((const struct sockaddr_in6 *)dst)->sin6_addr, 16);
            memcpy(out + 48, &sp, 2);
            memcpy(out + 50, &dp, 2);
        }
        return (long)(16 + alen);
    }
}
