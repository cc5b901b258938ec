/* test_proxy.c: the PROXY protocol codec, v1 and v2.
 *
 * Every valid header is fed as every proper prefix (each copied into a heap
 * buffer of exactly that size, so ASan sees any over-read) and must give
 * GH_EAGAIN, then whole with the next layer's bytes after it, which must not
 * be consumed. Malformed headers must be refused, and once refused, every
 * longer prefix must be refused too. One test puts inputs right before a
 * PROT_NONE page. */
#include <check.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <unistd.h>

#include "err.h"
#include "proxy.h"

#define ALLOW_ALL (GH_PROXY_ALLOW_V1 | GH_PROXY_ALLOW_V2)

static const uint8_t V2SIG[12] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};

/* The next layer: a TLS record header. */
static const uint8_t TAIL[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 'G', 'E', 'T' };

/* AWS NLB health check: LOCAL, family 0x11, TLVs at byte 16: CRC32C then a
 * NOOP of 74 zero bytes. */
static const uint8_t NLB_HEAD[26] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
    0x20, 0x11, 0x00, 0x54,
    0x03, 0x00, 0x04, 0xbc, 0xe5, 0x95, 0x1f,
    0x04, 0x00, 0x4a,
};

static void nlb(uint8_t out[100])
{
    memset(out, 0, 100);
    memcpy(out, NLB_HEAD, sizeof(NLB_HEAD));
}

static long parse_copy(const uint8_t *buf, size_t n, int allow, gh_proxy_info *out)
{
    uint8_t *p = malloc(n ? n : 1);
    long rc;

    ck_assert_ptr_nonnull(p);
    if (n)
        memcpy(p, buf, n);
    rc = gh_proxy_parse(p, n, allow, out);
    free(p);
    return rc;
}

/* Every proper prefix: GH_EAGAIN. Whole + TAIL: exactly n consumed.
 * *out is from a parse of buf itself, so its pointers point into buf. */
static void expect_ok(const uint8_t *buf, size_t n, int allow, gh_proxy_info *out)
{
    gh_proxy_info info;
    uint8_t *p;

    for (size_t k = 0; k < n; k++) {
        long rc = parse_copy(buf, k, allow, &info);
        ck_assert_msg(rc == GH_EAGAIN, "prefix %zu of %zu: %ld (%s)", k, n, rc,
                      info.reason ? info.reason : "-");
    }
    ck_assert_int_eq(parse_copy(buf, n, allow, &info), (long)n);
    p = malloc(n + sizeof(TAIL));
    ck_assert_ptr_nonnull(p);
    memcpy(p, buf, n);
    memcpy(p + n, TAIL, sizeof(TAIL));
    ck_assert_int_eq(gh_proxy_parse(p, n + sizeof(TAIL), allow, &info), (long)n);
    free(p);
    ck_assert_int_eq(gh_proxy_parse(buf, n, allow, out), (long)n);
    ck_assert_ptr_null(out->reason);
}

/* Refused with reason; prefixes are GH_EAGAIN up to some point, then
 * GH_EPROTO for good. Returns the shortest refused prefix length. */
static size_t expect_refused(const uint8_t *buf, size_t n, int allow, const char *reason)
{
    gh_proxy_info info;
    size_t first = 0;
    bool refused = false;

    for (size_t k = 0; k <= n; k++) {
        long rc = parse_copy(buf, k, allow, &info);
        if (refused) {
            ck_assert_msg(rc == GH_EPROTO, "prefix %zu: refused before, now %ld", k, rc);
        } else if (rc == GH_EPROTO) {
            refused = true;
            first = k;
        } else {
            ck_assert_msg(rc == GH_EAGAIN, "prefix %zu of %zu: %ld", k, n, rc);
        }
    }
    ck_assert_msg(refused, "never refused");
    ck_assert_int_eq(parse_copy(buf, n, allow, &info), GH_EPROTO);
    ck_assert_ptr_nonnull(info.reason);
    ck_assert_str_eq(info.reason, reason);
    return first;
}

static void expect_ok_str(const char *s, int allow, gh_proxy_info *out)
{
    expect_ok((const uint8_t *)s, strlen(s), allow, out);
}

static size_t expect_refused_str(const char *s, int allow, const char *reason)
{
    return expect_refused((const uint8_t *)s, strlen(s), allow, reason);
}

static void assert_in4(const struct sockaddr_storage *ss, const char *addr, unsigned port)
{
    const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
    struct in_addr want;

    ck_assert_int_eq(s->sin_family, AF_INET);
    ck_assert_int_eq(inet_pton(AF_INET, addr, &want), 1);
    ck_assert_uint_eq(s->sin_addr.s_addr, want.s_addr);
    ck_assert_uint_eq(ntohs(s->sin_port), port);
}

static void assert_in6(const struct sockaddr_storage *ss, const char *addr, unsigned port)
{
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
    struct in6_addr want;

    ck_assert_int_eq(s->sin6_family, AF_INET6);
    ck_assert_int_eq(inet_pton(AF_INET6, addr, &want), 1);
    ck_assert_mem_eq(&s->sin6_addr, &want, 16);
    ck_assert_uint_eq(ntohs(s->sin6_port), port);
}

static void assert_bytes(const uint8_t *p, size_t n, const char *want)
{
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(n, strlen(want));
    ck_assert_mem_eq(p, want, n);
}

/* ---- a v2 header builder ---- */

typedef struct hb {
    uint8_t b[16 + 65535 + 64];
    size_t n;
} hb;

static hb *hb_new(uint8_t ver_cmd, uint8_t fam)
{
    hb *h = calloc(1, sizeof(*h));

    ck_assert_ptr_nonnull(h);
    memcpy(h->b, V2SIG, 12);
    h->b[12] = ver_cmd;
    h->b[13] = fam;
    h->n = 16;
    return h;
}

static void hb_put(hb *h, const void *p, size_t n)
{
    memcpy(h->b + h->n, p, n);
    h->n += n;
}

static void hb_byte(hb *h, uint8_t v)
{
    h->b[h->n++] = v;
}

static void hb_tlv(hb *h, uint8_t type, const void *v, size_t n)
{
    hb_byte(h, type);
    hb_byte(h, (uint8_t)(n >> 8));
    hb_byte(h, (uint8_t)n);
    if (n)
        hb_put(h, v, n);
}

static void hb_tlv_str(hb *h, uint8_t type, const char *s)
{
    hb_tlv(h, type, s, strlen(s));
}

/* A zeroed CRC32C TLV; returns the offset of its value. */
static size_t hb_crc(hb *h)
{
    static const uint8_t z[4];

    hb_tlv(h, 0x03, z, 4);
    return h->n - 4;
}

/* Sets the length field to what was written after byte 16. */
static void hb_finish(hb *h)
{
    size_t len = h->n - 16;

    h->b[14] = (uint8_t)(len >> 8);
    h->b[15] = (uint8_t)len;
}

static void hb_seal_crc(hb *h, size_t off)
{
    memset(h->b + off, 0, 4);
    uint32_t c = gh_proxy_crc32c(0, h->b, h->n);
    h->b[off] = (uint8_t)(c >> 24);
    h->b[off + 1] = (uint8_t)(c >> 16);
    h->b[off + 2] = (uint8_t)(c >> 8);
    h->b[off + 3] = (uint8_t)c;
}

static void hb_inet(hb *h, const char *src, const char *dst, uint16_t sport, uint16_t dport)
{
    struct in_addr a;
    uint16_t p;

    ck_assert_int_eq(inet_pton(AF_INET, src, &a), 1);
    hb_put(h, &a, 4);
    ck_assert_int_eq(inet_pton(AF_INET, dst, &a), 1);
    hb_put(h, &a, 4);
    p = htons(sport);
    hb_put(h, &p, 2);
    p = htons(dport);
    hb_put(h, &p, 2);
}

static void hb_inet6(hb *h, const char *src, const char *dst, uint16_t sport, uint16_t dport)
{
    struct in6_addr a;
    uint16_t p;

    ck_assert_int_eq(inet_pton(AF_INET6, src, &a), 1);
    hb_put(h, &a, 16);
    ck_assert_int_eq(inet_pton(AF_INET6, dst, &a), 1);
    hb_put(h, &a, 16);
    p = htons(sport);
    hb_put(h, &p, 2);
    p = htons(dport);
    hb_put(h, &p, 2);
}

/* ---- CRC32C and detect ---- */

START_TEST(crc32c_matches_the_check_value_and_chains)
{
    const uint8_t *s = (const uint8_t *)"123456789";

    ck_assert_uint_eq(gh_proxy_crc32c(0, s, 9), 0xE3069283u);
    ck_assert_uint_eq(gh_proxy_crc32c(gh_proxy_crc32c(0, s, 4), s + 4, 5), 0xE3069283u);
    ck_assert_uint_eq(gh_proxy_crc32c(0, NULL, 0), 0);
}
END_TEST

START_TEST(detect_tells_v1_v2_plain_and_prefixes)
{
    uint8_t nlb100[100];

    nlb(nlb100);
    ck_assert_int_eq(gh_proxy_detect((const uint8_t *)"", 0), GH_EAGAIN);
    ck_assert_int_eq(gh_proxy_detect((const uint8_t *)"PROXY TCP4", 10), 1);
    ck_assert_int_eq(gh_proxy_detect((const uint8_t *)"PROXY ", 6), 1);
    for (size_t k = 1; k < 6; k++)
        ck_assert_int_eq(gh_proxy_detect((const uint8_t *)"PROXY ", k), GH_EAGAIN);
    ck_assert_int_eq(gh_proxy_detect(nlb100, 100), 2);
    ck_assert_int_eq(gh_proxy_detect(nlb100, 12), 2);
    for (size_t k = 1; k < 12; k++)
        ck_assert_int_eq(gh_proxy_detect(nlb100, k), GH_EAGAIN);
    ck_assert_int_eq(gh_proxy_detect((const uint8_t *)"GET / HTTP/1.1\r\n", 16), 0);
    ck_assert_int_eq(gh_proxy_detect((const uint8_t *)"POST", 4), 0);
    ck_assert_int_eq(gh_proxy_detect((const uint8_t *)"PROXYX", 6), 0);
    ck_assert_int_eq(gh_proxy_detect(TAIL, sizeof(TAIL)), 0);
    ck_assert_int_eq(gh_proxy_detect((const uint8_t *)"\r\n\r\n\0\r\nQUIX", 11), 0);
}
END_TEST

/* ---- v1 ---- */

START_TEST(v1_tcp4_is_parsed)
{
    gh_proxy_info in;

    expect_ok_str("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", ALLOW_ALL, &in);
    ck_assert_int_eq(in.version, 1);
    ck_assert(!in.local);
    ck_assert_int_eq(in.family, AF_INET);
    assert_in4(&in.src, "192.168.0.1", 56324);
    assert_in4(&in.dst, "192.168.0.11", 443);
    ck_assert_ptr_null(in.alpn);
    ck_assert(!in.crc32c_checked);

    expect_ok_str("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", GH_PROXY_ALLOW_V1, &in);
    assert_in4(&in.src, "0.0.0.0", 0);
    assert_in4(&in.dst, "255.255.255.255", 65535);
}
END_TEST

START_TEST(v1_tcp6_is_parsed)
{
    gh_proxy_info in;

    expect_ok_str("PROXY TCP6 2001:db8::1 ::1 1 65535\r\n", ALLOW_ALL, &in);
    ck_assert_int_eq(in.family, AF_INET6);
    ck_assert(!in.local);
    assert_in6(&in.src, "2001:db8::1", 1);
    assert_in6(&in.dst, "::1", 65535);

    expect_ok_str("PROXY TCP6 FFFF:ffff:0:0:0:0:0:1 ::ffff:10.1.2.3 80 8080\r\n", ALLOW_ALL, &in);
    assert_in6(&in.src, "ffff:ffff::1", 80);
    assert_in6(&in.dst, "::ffff:10.1.2.3", 8080);
}
END_TEST

START_TEST(v1_unknown_is_local_with_or_without_addresses)
{
    gh_proxy_info in;

    expect_ok_str("PROXY UNKNOWN\r\n", ALLOW_ALL, &in);
    ck_assert(in.local);
    ck_assert_int_eq(in.family, AF_UNSPEC);
    ck_assert_int_eq(in.version, 1);
    expect_ok_str("PROXY UNKNOWN whatever: 1.2.3.4 is ignored\r\n", ALLOW_ALL, &in);
    ck_assert(in.local);
    expect_ok_str("PROXY UNKNOWN \r\n", ALLOW_ALL, &in);
    ck_assert(in.local);
}
END_TEST

START_TEST(v1_of_exactly_107_bytes_is_accepted)
{
    const char *unk = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    const char *tcp6 = "PROXY TCP6 0000:0000:0000:0000:0000:ffff:255.255.255.255 "
                       "1111:2222:3333:4444:5555:6666:7777:8 65535 65535\r\n";
    gh_proxy_info in;

    ck_assert_uint_eq(strlen(unk), GH_PROXY_V1_MAX);
    ck_assert_uint_eq(strlen(tcp6), GH_PROXY_V1_MAX);
    expect_ok_str(unk, ALLOW_ALL, &in);
    ck_assert(in.local);
    expect_ok_str(tcp6, ALLOW_ALL, &in);
    assert_in6(&in.src, "::ffff:255.255.255.255", 65535);
    assert_in6(&in.dst, "1111:2222:3333:4444:5555:6666:7777:8", 65535);
}
END_TEST

START_TEST(v1_without_crlf_within_107_bytes_is_refused_at_byte_107)
{
    char line[200];

    /* 108 bytes with the CRLF at the very end */
    memset(line, 0, sizeof(line));
    strcpy(line, "PROXY UNKNOWN ");
    memset(line + 14, 'x', 108 - 14 - 2);
    strcpy(line + 106, "\r\n");
    ck_assert_uint_eq(strlen(line), 108);
    ck_assert_uint_eq(expect_refused_str(line, ALLOW_ALL, "v1_too_long"), GH_PROXY_V1_MAX);

    /* a CR as the 107th byte: its LF would be the 108th */
    line[106] = '\r';
    line[107] = '\0';
    ck_assert_uint_eq(expect_refused_str(line, ALLOW_ALL, "v1_too_long"), GH_PROXY_V1_MAX);

    /* no CRLF at all, a long buffer of valid-looking bytes */
    memset(line + 14, 'y', sizeof(line) - 15);
    line[sizeof(line) - 1] = '\0';
    ck_assert_uint_eq(expect_refused_str(line, ALLOW_ALL, "v1_too_long"), GH_PROXY_V1_MAX);

    /* TCP6 with two 45-character addresses can't fit either */
    ck_assert_uint_eq(expect_refused_str("PROXY TCP6 0000:0000:0000:0000:0000:ffff:255.255.255.255 "
                                         "0000:0000:0000:0000:0000:ffff:255.255.255.255 1 2\r\n",
                                         ALLOW_ALL, "v1_too_long"),
                      GH_PROXY_V1_MAX);
}
END_TEST

START_TEST(v1_address_text_must_match_the_family)
{
    ck_assert_uint_eq(expect_refused_str("PROXY TCP4 ::1 ::1 1 2\r\n", ALLOW_ALL, "v1_address"), 12);
    expect_refused_str("PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n", ALLOW_ALL, "v1_address");
    expect_refused_str("PROXY TCP4 10.0.0.1 ::ffff:1.2.3.4 1 2\r\n", ALLOW_ALL, "v1_address");
    expect_refused_str("PROXY TCP6 10.0.0.1 10.0.0.2 1 2\r\n", ALLOW_ALL, "v1_address");
    expect_refused_str("PROXY TCP6 ::1 10.0.0.2 1 2\r\n", ALLOW_ALL, "v1_address");
}
END_TEST

START_TEST(v1_leading_zeros_are_refused)
{
    /* refused at the digit after the zero */
    ck_assert_uint_eq(expect_refused_str("PROXY TCP4 010.0.0.1 10.0.0.2 1 2\r\n", ALLOW_ALL,
                                         "v1_address"), 13);
    expect_refused_str("PROXY TCP4 10.00.0.1 10.0.0.2 1 2\r\n", ALLOW_ALL, "v1_address");
    expect_refused_str("PROXY TCP4 10.0.0.1 10.0.0.02 1 2\r\n", ALLOW_ALL, "v1_address");
    ck_assert_uint_eq(expect_refused_str("PROXY TCP4 10.0.0.1 10.0.0.2 080 2\r\n", ALLOW_ALL,
                                         "v1_port"), 31);
    expect_refused_str("PROXY TCP4 10.0.0.1 10.0.0.2 1 00\r\n", ALLOW_ALL, "v1_port");
    expect_refused_str("PROXY TCP6 ::1 ::2 01 2\r\n", ALLOW_ALL, "v1_port");
}
END_TEST

START_TEST(v1_numbers_out_of_range_are_refused)
{
    ck_assert_uint_eq(expect_refused_str("PROXY TCP4 10.0.0.1 10.0.0.2 65536 2\r\n", ALLOW_ALL,
                                         "v1_port"), 34);
    expect_refused_str("PROXY TCP4 10.0.0.1 10.0.0.2 1 65536\r\n", ALLOW_ALL, "v1_port");
    expect_refused_str("PROXY TCP4 10.0.0.1 10.0.0.2 1 99999\r\n", ALLOW_ALL, "v1_port");
    expect_refused_str("PROXY TCP4 10.0.0.1 10.0.0.2 1 655350\r\n", ALLOW_ALL, "v1_port");
    expect_refused_str("PROXY TCP4 10.0.0.1 10.0.0.2 -1 2\r\n", ALLOW_ALL, "v1_port");
    expect_refused_str("PROXY TCP4 256.0.0.1 10.0.0.2 1 2\r\n", ALLOW_ALL, "v1_address");
    expect_refused_str("PROXY TCP4 10.0.0.1 10.0.0.1000 1 2\r\n", ALLOW_ALL, "v1_address");
    expect_refused_str("PROXY TCP4 1.2.3 10.0.0.2 1 2\r\n", ALLOW_ALL, "v1_address");
    expect_refused_str("PROXY TCP4 1.2.3.4.5 10.0.0.2 1 2\r\n", ALLOW_ALL, "v1_address");
    expect_refused_str("PROXY TCP4 1..3.4 10.0.0.2 1 2\r\n", ALLOW_ALL, "v1_address");
    expect_refused_str("PROXY TCP6 ::1::2 ::1 1 2\r\n", ALLOW_ALL, "v1_address");
    expect_refused_str("PROXY TCP6 12345::1 ::1 1 2\r\n", ALLOW_ALL, "v1_address");
    expect_refused_str("PROXY TCP6 0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0 ::1 1 2\r\n",
                       ALLOW_ALL, "v1_address");
    /* longer than any IPv6 text (45): refused at the 46th character */
    ck_assert_uint_eq(expect_refused_str("PROXY TCP6 0000:0000:0000:0000:0000:0000:0000:0000:"
                                         "0000:0000:0000:0000:0000 ::1 1 2\r\n",
                                         ALLOW_ALL, "v1_address"), 11 + 46);
}
END_TEST

START_TEST(v1_syntax_errors_are_refused_early)
{
    ck_assert_uint_eq(expect_refused_str("PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", ALLOW_ALL,
                                         "v1_syntax"), 10);
    ck_assert_uint_eq(expect_refused_str("PROXY  TCP4 1.2.3.4 1.2.3.4 1 2\r\n", ALLOW_ALL,
                                         "v1_syntax"), 7);
    expect_refused_str("PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n", ALLOW_ALL, "v1_address");
    expect_refused_str("PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n", ALLOW_ALL, "v1_address");
    expect_refused_str("PROXY TCP4 1.2.3.4 1.2.3.4 1  2\r\n", ALLOW_ALL, "v1_port");
    expect_refused_str("PROXY TCP4 1.2.3.4\t1.2.3.4 1 2\r\n", ALLOW_ALL, "v1_address");
    expect_refused_str("PROXY TCP6  ::1 ::1 1 2\r\n", ALLOW_ALL, "v1_address");
    ck_assert_uint_eq(expect_refused_str("PROXY TCP6 ::1\t::1 1 2\r\n", ALLOW_ALL, "v1_address"), 15);
    expect_refused_str("PROXY TCP6 [::1] ::1 1 2\r\n", ALLOW_ALL, "v1_address");
    expect_refused_str("PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n", ALLOW_ALL, "v1_syntax");
    expect_refused_str("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n", ALLOW_ALL, "v1_syntax");
    expect_refused_str("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX", ALLOW_ALL, "v1_syntax");
    expect_refused_str("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\r\n", ALLOW_ALL, "v1_syntax");
    expect_refused_str("PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", ALLOW_ALL, "v1_syntax");
    expect_refused_str("PROXY tcp4 1.2.3.4 1.2.3.4 1 2\r\n", ALLOW_ALL, "v1_syntax");
    expect_refused_str("PROXY UNKNOWNX\r\n", ALLOW_ALL, "v1_syntax");
    expect_refused_str("PROXY UNKNOWN\n", ALLOW_ALL, "v1_syntax");
    expect_refused_str("PROXY UNKNOWN foo\nbar\r\n", ALLOW_ALL, "v1_syntax");
    expect_refused_str("PROXY UNKNOWN foo\rbar\r\n", ALLOW_ALL, "v1_syntax");
    expect_refused_str("PROXY \r\n", ALLOW_ALL, "v1_syntax");
}
END_TEST

START_TEST(v1_does_not_need_a_nul_and_stops_at_len)
{
    /* A NUL inside the line is just a bad byte; bytes after len are never seen. */
    static const uint8_t nul[] = "PROXY TCP4 1.2.3.4\0 1.2.3.4 1 2\r\n";
    char buf[64];
    gh_proxy_info in;
    size_t n;

    expect_refused(nul, sizeof(nul) - 1, ALLOW_ALL, "v1_address");
    strcpy(buf, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nXXXX");
    n = strlen("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n");
    ck_assert_int_eq(gh_proxy_parse((const uint8_t *)buf, n - 1, ALLOW_ALL, &in), GH_EAGAIN);
    ck_assert_int_eq(gh_proxy_parse((const uint8_t *)buf, n, ALLOW_ALL, &in), (long)n);
}
END_TEST

/* ---- signatures and the allow mask ---- */

START_TEST(neither_signature_is_bad_signature_at_the_first_bad_byte)
{
    ck_assert_uint_eq(expect_refused_str("GET / HTTP/1.1\r\n\r\n", ALLOW_ALL, "bad_signature"), 1);
    ck_assert_uint_eq(expect_refused_str("PUT / HTTP/1.1\r\n\r\n", ALLOW_ALL, "bad_signature"), 2);
    ck_assert_uint_eq(expect_refused_str("PROXYTCP4", ALLOW_ALL, "bad_signature"), 6);
    ck_assert_uint_eq(expect_refused_str("proxy TCP4", ALLOW_ALL, "bad_signature"), 1);
    ck_assert_uint_eq(expect_refused(TAIL, sizeof(TAIL), ALLOW_ALL, "bad_signature"), 1);
    ck_assert_uint_eq(expect_refused((const uint8_t *)"\r\n\r\n\0\r\nQUIX\n\x21\x11\0\0", 16,
                                     ALLOW_ALL, "bad_signature"), 11);
    /* a prefix of the v2 signature is not refused yet */
    ck_assert_int_eq(parse_copy((const uint8_t *)"\r\n\r\n", 4, ALLOW_ALL, &(gh_proxy_info){0}), GH_EAGAIN);
}
END_TEST

START_TEST(a_version_outside_allow_is_refused)
{
    uint8_t h[100];
    gh_proxy_info in;

    nlb(h);
    ck_assert_uint_eq(expect_refused_str("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\n", GH_PROXY_ALLOW_V2,
                                         "not_allowed_version"), 6);
    ck_assert_uint_eq(expect_refused(h, 100, GH_PROXY_ALLOW_V1, "not_allowed_version"), 12);
    expect_refused(h, 100, 0, "not_allowed_version");
    expect_refused_str("PROXY UNKNOWN\r\n", 0, "not_allowed_version");
    expect_refused_str("GET /", GH_PROXY_ALLOW_V2, "bad_signature");
    expect_ok(h, 100, GH_PROXY_ALLOW_V2, &in);
    expect_ok_str("PROXY UNKNOWN\r\n", GH_PROXY_ALLOW_V1, &in);
}
END_TEST

/* ---- v2 fixed part and addresses ---- */

START_TEST(v2_inet_proxy_is_parsed)
{
    hb *h = hb_new(0x21, 0x11);
    gh_proxy_info in;

    hb_inet(h, "203.0.113.7", "10.0.0.5", 51234, 443);
    hb_finish(h);
    ck_assert_uint_eq(h->n, 28);
    expect_ok(h->b, h->n, ALLOW_ALL, &in);
    ck_assert_int_eq(in.version, 2);
    ck_assert(!in.local);
    ck_assert_int_eq(in.family, AF_INET);
    assert_in4(&in.src, "203.0.113.7", 51234);
    assert_in4(&in.dst, "10.0.0.5", 443);
    ck_assert(!in.crc32c_checked);
    ck_assert(!in.ssl_present);
    free(h);
}
END_TEST

START_TEST(v2_inet6_proxy_is_parsed)
{
    hb *h = hb_new(0x21, 0x21);
    gh_proxy_info in;

    hb_inet6(h, "2001:db8::7", "fe80::1", 1, 65535);
    hb_finish(h);
    ck_assert_uint_eq(h->n, 52);
    expect_ok(h->b, h->n, ALLOW_ALL, &in);
    ck_assert_int_eq(in.family, AF_INET6);
    ck_assert(!in.local);
    assert_in6(&in.src, "2001:db8::7", 1);
    assert_in6(&in.dst, "fe80::1", 65535);
    free(h);
}
END_TEST

START_TEST(v2_unix_proxy_is_parsed)
{
    hb *h = hb_new(0x21, 0x31);
    uint8_t path[108] = "/run/src.sock", dpath[108];
    const struct sockaddr_un *s, *d;
    gh_proxy_info in;

    memset(dpath, 'd', sizeof(dpath));          /* all 108 bytes used, no NUL */
    hb_put(h, path, 108);
    hb_put(h, dpath, 108);
    hb_tlv_str(h, 0x02, "example.com");
    hb_finish(h);
    expect_ok(h->b, h->n, ALLOW_ALL, &in);
    ck_assert_int_eq(in.family, AF_UNIX);
    ck_assert(!in.local);
    s = (const struct sockaddr_un *)&in.src;
    d = (const struct sockaddr_un *)&in.dst;
    ck_assert_int_eq(s->sun_family, AF_UNIX);
    ck_assert_str_eq(s->sun_path, "/run/src.sock");
    ck_assert_mem_eq(d->sun_path, dpath, 108);
    assert_bytes(in.authority, in.authority_len, "example.com");
    free(h);
}
END_TEST

START_TEST(v2_proxy_with_unspec_family_is_local)
{
    hb *h = hb_new(0x21, 0x00);
    gh_proxy_info in;

    hb_finish(h);
    expect_ok(h->b, h->n, ALLOW_ALL, &in);
    ck_assert(in.local);
    ck_assert_int_eq(in.family, AF_UNSPEC);
    free(h);

    h = hb_new(0x21, 0x00);
    hb_tlv_str(h, 0x01, "h2");
    hb_finish(h);
    expect_ok(h->b, h->n, ALLOW_ALL, &in);
    ck_assert(in.local);
    assert_bytes(in.alpn, in.alpn_len, "h2");
    free(h);
}
END_TEST

START_TEST(v2_bad_version_command_family_and_length_are_refused)
{
    hb *h = hb_new(0x21, 0x11);

    hb_inet(h, "1.2.3.4", "5.6.7.8", 1, 2);
    hb_finish(h);
    for (unsigned v = 0; v < 16; v++) {
        if (v == 2)
            continue;
        h->b[12] = (uint8_t)(v << 4 | 1);
        ck_assert_uint_eq(expect_refused(h->b, h->n, ALLOW_ALL, "v2_version"), 13);
    }
    for (unsigned c = 2; c < 16; c++) {
        h->b[12] = (uint8_t)(0x20 | c);
        ck_assert_uint_eq(expect_refused(h->b, h->n, ALLOW_ALL, "v2_command"), 13);
    }
    h->b[12] = 0x21;
    for (unsigned f = 0; f < 256; f++) {
        if (f == 0x00 || f == 0x11 || f == 0x21 || f == 0x31)
            continue;
        h->b[13] = (uint8_t)f;              /* DGRAM, unknown families and transports */
        ck_assert_uint_eq(expect_refused(h->b, h->n, ALLOW_ALL, "v2_family"), 14);
    }
    h->b[13] = 0x11;
    h->b[15] = 11;                          /* shorter than the INET block */
    ck_assert_uint_eq(expect_refused(h->b, 27, ALLOW_ALL, "v2_length"), 16);
    h->b[13] = 0x21;
    h->b[15] = 35;
    expect_refused(h->b, 27, ALLOW_ALL, "v2_length");
    h->b[13] = 0x31;
    h->b[14] = 0;
    h->b[15] = 215;
    expect_refused(h->b, 27, ALLOW_ALL, "v2_length");
    free(h);
}
END_TEST

START_TEST(v2_local_ignores_the_family_byte)
{
    gh_proxy_info in;

    for (unsigned f = 0; f < 256; f++) {
        hb *h = hb_new(0x20, (uint8_t)f);
        hb_finish(h);
        expect_ok(h->b, h->n, ALLOW_ALL, &in);
        ck_assert(in.local);
        ck_assert_uint_eq(h->n, 16);
        free(h);
    }
}
END_TEST

START_TEST(v2_local_with_an_address_block_is_skipped)
{
    gh_proxy_info in;
    hb *h = hb_new(0x20, 0x11);

    hb_inet(h, "10.0.0.1", "10.0.0.2", 0x1234, 80);
    hb_finish(h);
    expect_ok(h->b, h->n, ALLOW_ALL, &in);
    ck_assert(in.local);
    ck_assert_int_eq(in.family, AF_INET);
    ck_assert_uint_eq(h->n, 28);
    free(h);

    /* address block, then TLVs with a CRC */
    h = hb_new(0x20, 0x21);
    hb_inet6(h, "2001:db8::1", "2001:db8::2", 443, 8443);
    hb_tlv_str(h, 0x02, "example.org");
    size_t off = hb_crc(h);
    hb_finish(h);
    hb_seal_crc(h, off);
    expect_ok(h->b, h->n, ALLOW_ALL, &in);
    ck_assert(in.local);
    ck_assert(in.crc32c_checked);
    assert_bytes(in.authority, in.authority_len, "example.org");
    h->b[off] ^= 1;
    expect_refused(h->b, h->n, ALLOW_ALL, "crc32c_mismatch");
    free(h);

    /* neither reading works */
    h = hb_new(0x20, 0x11);
    hb_inet(h, "10.0.0.1", "10.0.0.2", 1, 2);
    hb_byte(h, 0x04);
    hb_byte(h, 0x00);
    hb_finish(h);
    expect_refused(h->b, h->n, ALLOW_ALL, "tlv_framing");
    free(h);

    /* UNSPEC: one reading only, its own reason */
    h = hb_new(0x20, 0x00);
    hb_byte(h, 0x04);
    hb_finish(h);
    expect_refused(h->b, h->n, ALLOW_ALL, "tlv_bounds");
    free(h);
}
END_TEST

/* ---- the AWS NLB health check ---- */

START_TEST(v2_nlb_health_check_is_accepted)
{
    uint8_t h[100];
    gh_proxy_info in;

    nlb(h);
    expect_ok(h, 100, ALLOW_ALL, &in);
    ck_assert_int_eq(in.version, 2);
    ck_assert(in.local);
    ck_assert(in.crc32c_checked);
    ck_assert_int_eq(in.family, AF_INET);
    ck_assert_ptr_null(in.alpn);
    ck_assert_ptr_null(in.aws_vpce_id);
}
END_TEST

/* The NLB header with one byte inverted (XOR 0xFF) at each position is
 * refused, except where no receiver can tell: 14 and 15 make the length
 * field longer, so the 100 bytes are a valid prefix of a longer header
 * (GH_EAGAIN, never accepted: the glue's timeout closes it); 16 turns the
 * CRC32C TLV into an unknown type 0xFC, leaving a well-formed header with no
 * checksum. */
START_TEST(v2_nlb_health_check_with_a_byte_inverted_is_refused)
{
    uint8_t h[100];
    gh_proxy_info in;

    for (size_t pos = 0; pos < 100; pos++) {
        nlb(h);
        h[pos] ^= 0xFF;
        long rc = parse_copy(h, 100, ALLOW_ALL, &in);
        if (pos == 14 || pos == 15) {
            ck_assert_msg(rc == GH_EAGAIN, "pos %zu: %ld", pos, rc);
        } else if (pos == 16) {
            ck_assert_int_eq(rc, 100);
            ck_assert(!in.crc32c_checked);
        } else {
            ck_assert_msg(rc == GH_EPROTO, "pos %zu: %ld", pos, rc);
        }
    }
}
END_TEST

/* The same with every single bit: 780 of 800 refused. Not refused, and
 * undetectable: 12 ^ 0x01 (LOCAL becomes PROXY; the CRC TLV now sits in the
 * INET address block and the zero padding reads as 24 empty TLVs of unknown
 * type 0); any bit of 14, and the bits of 15 that raise the length (a valid
 * prefix: GH_EAGAIN); any bit of 16 (the CRC TLV becomes another TLV). */
START_TEST(v2_nlb_health_check_with_a_bit_flipped_is_refused)
{
    uint8_t h[100];
    gh_proxy_info in;
    int refused = 0;

    for (size_t pos = 0; pos < 100; pos++) {
        for (int bit = 0; bit < 8; bit++) {
            nlb(h);
            h[pos] ^= (uint8_t)(1 << bit);
            long rc = parse_copy(h, 100, ALLOW_ALL, &in);
            if (pos == 12 && bit == 0) {
                ck_assert_int_eq(rc, 100);
                ck_assert(!in.local);
                ck_assert(!in.crc32c_checked);
            } else if (pos == 14 || (pos == 15 && h[15] > 0x54)) {
                ck_assert_msg(rc == GH_EAGAIN || rc == GH_EPROTO, "pos %zu bit %d: %ld", pos, bit, rc);
                refused += rc == GH_EPROTO;
            } else if (pos == 16) {
                ck_assert_int_eq(rc, 100);
                ck_assert(!in.crc32c_checked);
            } else {
                ck_assert_msg(rc == GH_EPROTO, "pos %zu bit %d: %ld", pos, bit, rc);
                refused++;
            }
        }
    }
    ck_assert_int_eq(refused, 780);
}
END_TEST

/* ---- TLVs ---- */

START_TEST(v2_tlvs_are_handed_out)
{
    static const uint8_t vpce[] = "\x01vpce-08d2bf15fac5001c9";
    static const uint8_t aws_other[] = "\x02zzz";
    uint8_t uid[128];
    hb *h = hb_new(0x21, 0x11);
    gh_proxy_info in;
    uint8_t ssl[128];
    size_t sn = 0;

    memset(uid, 0xAB, sizeof(uid));
    hb_inet(h, "198.51.100.1", "10.0.0.1", 40000, 443);
    hb_tlv_str(h, 0x01, "h2");
    hb_tlv_str(h, 0x02, "www.example.com");
    hb_tlv(h, 0x04, NULL, 0);               /* NOOP, empty */
    hb_tlv(h, 0x05, uid, sizeof(uid));
    hb_tlv_str(h, 0x30, "blue");
    hb_tlv_str(h, 0x04, "pad");
    hb_tlv_str(h, 0x00, "unknown type zero");
    hb_tlv_str(h, 0xF0, "experimental");
    hb_tlv(h, 0xEA, aws_other, sizeof(aws_other) - 1);
    hb_tlv(h, 0xEA, vpce, sizeof(vpce) - 1);
    hb_tlv(h, 0xEA, aws_other, sizeof(aws_other) - 1);
    /* SSL: client = SSL|CERT_CONN, verify = 0x01020304, sub-TLVs */
    ssl[sn++] = 0x03;
    ssl[sn++] = 1; ssl[sn++] = 2; ssl[sn++] = 3; ssl[sn++] = 4;
    struct { uint8_t t; const char *v; } subs[] = {
        { 0x21, "TLSv1.3" }, { 0x22, "client.example" }, { 0x23, "TLS_AES_128_GCM_SHA256" },
        { 0x24, "RSA-SHA256" }, { 0x25, "RSA2048" }, { 0x2F, "unknown sub" },
    };
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        size_t l = strlen(subs[i].v);
        ssl[sn++] = subs[i].t;
        ssl[sn++] = 0;
        ssl[sn++] = (uint8_t)l;
        memcpy(ssl + sn, subs[i].v, l);
        sn += l;
    }
    ck_assert_uint_le(sn, sizeof(ssl));
    hb_tlv(h, 0x20, ssl, sn);
    size_t off = hb_crc(h);
    hb_finish(h);
    hb_seal_crc(h, off);

    expect_ok(h->b, h->n, ALLOW_ALL, &in);
    ck_assert(!in.local);
    assert_in4(&in.src, "198.51.100.1", 40000);
    assert_bytes(in.alpn, in.alpn_len, "h2");
    assert_bytes(in.authority, in.authority_len, "www.example.com");
    ck_assert_uint_eq(in.unique_id_len, 128);
    ck_assert_mem_eq(in.unique_id, uid, 128);
    assert_bytes(in.netns, in.netns_len, "blue");
    assert_bytes(in.aws_vpce_id, in.aws_vpce_id_len, "vpce-08d2bf15fac5001c9");
    ck_assert(in.ssl_present);
    ck_assert_uint_eq(in.ssl_client, 0x03);
    ck_assert_uint_eq(in.ssl_verify, 0x01020304u);
    assert_bytes(in.ssl_version, in.ssl_version_len, "TLSv1.3");
    assert_bytes(in.ssl_cn, in.ssl_cn_len, "client.example");
    assert_bytes(in.ssl_cipher, in.ssl_cipher_len, "TLS_AES_128_GCM_SHA256");
    assert_bytes(in.ssl_sig_alg, in.ssl_sig_alg_len, "RSA-SHA256");
    assert_bytes(in.ssl_key_alg, in.ssl_key_alg_len, "RSA2048");
    ck_assert(in.crc32c_checked);
    /* pointers into the caller's buffer */
    ck_assert(in.alpn > h->b && in.alpn < h->b + h->n);
    free(h);
}
END_TEST

START_TEST(v2_empty_tlvs_are_present_but_empty)
{
    hb *h = hb_new(0x21, 0x11);
    gh_proxy_info in;
    uint8_t ssl[5] = { 0 };

    hb_inet(h, "1.2.3.4", "5.6.7.8", 1, 2);
    hb_tlv(h, 0x01, NULL, 0);
    hb_tlv(h, 0x05, NULL, 0);
    hb_tlv(h, 0x20, ssl, 5);
    hb_tlv(h, 0xEA, "\x01", 1);
    hb_finish(h);
    expect_ok(h->b, h->n, ALLOW_ALL, &in);
    ck_assert_ptr_nonnull(in.alpn);
    ck_assert_uint_eq(in.alpn_len, 0);
    ck_assert_ptr_nonnull(in.unique_id);
    ck_assert_ptr_null(in.authority);
    ck_assert(in.ssl_present);
    ck_assert_ptr_null(in.ssl_version);
    ck_assert_ptr_nonnull(in.aws_vpce_id);
    ck_assert_uint_eq(in.aws_vpce_id_len, 0);
    free(h);
}
END_TEST

START_TEST(v2_tlv_overrunning_the_length_is_refused_before_its_value_arrives)
{
    hb *h = hb_new(0x21, 0x11);

    hb_inet(h, "1.2.3.4", "5.6.7.8", 1, 2);
    hb_tlv_str(h, 0x02, "example.com");
    hb_finish(h);
    h->b[15] -= 1;                          /* the length ends inside the TLV */
    ck_assert_uint_eq(expect_refused(h->b, h->n - 1, ALLOW_ALL, "tlv_bounds"), 31);
    /* an unknown type is bounds-checked too */
    h->b[28] = 0x99;
    expect_refused(h->b, h->n - 1, ALLOW_ALL, "tlv_bounds");
    free(h);
}
END_TEST

START_TEST(v2_tlvs_ending_short_of_the_length_are_refused)
{
    for (int extra = 1; extra <= 2; extra++) {
        hb *h = hb_new(0x21, 0x11);
        hb_inet(h, "1.2.3.4", "5.6.7.8", 1, 2);
        hb_tlv_str(h, 0x01, "http/1.1");
        for (int i = 0; i < extra; i++)
            hb_byte(h, 0x04);
        hb_finish(h);
        expect_refused(h->b, h->n, ALLOW_ALL, "tlv_bounds");
        free(h);
    }
}
END_TEST

START_TEST(v2_ssl_sub_tlvs_must_end_with_the_ssl_tlv)
{
    /* sub-TLV overruns the SSL TLV */
    hb *h = hb_new(0x21, 0x11);
    uint8_t ssl[32] = { 0x01, 0, 0, 0, 0, 0x21, 0x00, 0x07, 'T', 'L', 'S', 'v', '1', '.', '3' };

    hb_inet(h, "1.2.3.4", "5.6.7.8", 1, 2);
    hb_tlv(h, 0x20, ssl, 14);
    hb_tlv(h, 0x04, NULL, 0);
    hb_finish(h);
    expect_refused(h->b, h->n, ALLOW_ALL, "tlv_bounds");
    free(h);

    /* a partial sub-TLV header at the end */
    h = hb_new(0x21, 0x11);
    hb_inet(h, "1.2.3.4", "5.6.7.8", 1, 2);
    hb_tlv(h, 0x20, ssl, 17);
    hb_finish(h);
    expect_refused(h->b, h->n, ALLOW_ALL, "tlv_bounds");
    free(h);

    /* too short for client and verify */
    h = hb_new(0x21, 0x11);
    hb_inet(h, "1.2.3.4", "5.6.7.8", 1, 2);
    hb_tlv(h, 0x20, ssl, 4);
    hb_finish(h);
    expect_refused(h->b, h->n, ALLOW_ALL, "tlv_value");
    free(h);

    /* a sub-TLV twice */
    h = hb_new(0x21, 0x11);
    memcpy(ssl + 15, ssl + 5, 10);
    hb_inet(h, "1.2.3.4", "5.6.7.8", 1, 2);
    hb_tlv(h, 0x20, ssl, 25);
    hb_finish(h);
    expect_refused(h->b, h->n, ALLOW_ALL, "tlv_duplicate");
    free(h);
}
END_TEST

START_TEST(v2_impossible_tlv_lengths_are_refused)
{
    uint8_t v[200] = { 0 };
    struct { uint8_t type; size_t len; } bad[] = {
        { 0x03, 0 }, { 0x03, 3 }, { 0x03, 5 }, { 0x05, 129 }, { 0x20, 0 }, { 0x20, 4 }, { 0xEA, 0 },
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hb *h = hb_new(0x21, 0x11);
        hb_inet(h, "1.2.3.4", "5.6.7.8", 1, 2);
        hb_tlv(h, bad[i].type, v, bad[i].len);
        hb_finish(h);
        /* known from the TLV header alone */
        ck_assert_uint_eq(expect_refused(h->b, h->n, ALLOW_ALL, "tlv_value"), 31);
        free(h);
    }
}
END_TEST

START_TEST(v2_duplicate_tlvs_are_refused_noop_and_unknown_may_repeat)
{
    static const uint8_t types[] = { 0x01, 0x02, 0x03, 0x05, 0x20, 0x30 };
    uint8_t v[5] = { 0 };

    for (size_t i = 0; i < sizeof(types); i++) {
        hb *h = hb_new(0x21, 0x11);
        size_t n = types[i] == 0x03 ? 4 : 5;
        hb_inet(h, "1.2.3.4", "5.6.7.8", 1, 2);
        hb_tlv(h, types[i], v, n);
        hb_tlv(h, types[i], v, n);
        hb_finish(h);
        expect_refused(h->b, h->n, ALLOW_ALL, "tlv_duplicate");
        free(h);
    }
    hb *h = hb_new(0x21, 0x11);
    hb_inet(h, "1.2.3.4", "5.6.7.8", 1, 2);
    hb_tlv(h, 0xEA, "\x01" "a", 2);
    hb_tlv(h, 0xEA, "\x01" "b", 2);
    hb_finish(h);
    expect_refused(h->b, h->n, ALLOW_ALL, "tlv_duplicate");
    free(h);

    gh_proxy_info in;
    h = hb_new(0x21, 0x11);
    hb_inet(h, "1.2.3.4", "5.6.7.8", 1, 2);
    hb_tlv(h, 0x04, v, 2);
    hb_tlv(h, 0x04, v, 2);
    hb_tlv(h, 0x77, v, 1);
    hb_tlv(h, 0x77, v, 1);
    hb_finish(h);
    expect_ok(h->b, h->n, ALLOW_ALL, &in);
    free(h);
}
END_TEST

START_TEST(v2_crc32c_is_verified)
{
    hb *h = hb_new(0x21, 0x21);
    gh_proxy_info in;

    hb_inet6(h, "2001:db8::1", "2001:db8::2", 1, 2);
    hb_tlv_str(h, 0x01, "h2");
    size_t off = hb_crc(h);
    hb_tlv_str(h, 0x04, "padding");
    hb_finish(h);
    hb_seal_crc(h, off);
    expect_ok(h->b, h->n, ALLOW_ALL, &in);
    ck_assert(in.crc32c_checked);
    for (size_t pos = 0; pos < h->n; pos++) {
        /* any change is a mismatch or worse, but in the length field (a
         * longer header: GH_EAGAIN) and in the CRC32C TLV's type byte (it
         * becomes an unknown TLV and the header has no checksum) */
        if (pos == 14 || pos == 15 || pos == off - 3)
            continue;
        h->b[pos] ^= 0x10;
        ck_assert_int_eq(parse_copy(h->b, h->n, ALLOW_ALL, &in), GH_EPROTO);
        h->b[pos] ^= 0x10;
    }
    h->b[h->n - 1] ^= 1;
    expect_refused(h->b, h->n, ALLOW_ALL, "crc32c_mismatch");
    free(h);
}
END_TEST

START_TEST(v2_longest_header_is_accepted)
{
    hb *h = hb_new(0x21, 0x11);
    gh_proxy_info in;

    hb_inet(h, "1.2.3.4", "5.6.7.8", 1, 2);
    h->b[h->n++] = 0x04;
    size_t vlen = 65535 - 12 - 3;
    h->b[h->n++] = (uint8_t)(vlen >> 8);
    h->b[h->n++] = (uint8_t)vlen;
    memset(h->b + h->n, 'z', vlen);
    h->n += vlen;
    hb_finish(h);
    ck_assert_uint_eq(h->n, GH_PROXY_V2_MAX);
    ck_assert_int_eq(gh_proxy_parse(h->b, h->n - 1, ALLOW_ALL, &in), GH_EAGAIN);
    ck_assert_int_eq(gh_proxy_parse(h->b, h->n, ALLOW_ALL, &in), GH_PROXY_V2_MAX);
    memcpy(h->b + h->n, TAIL, sizeof(TAIL));
    ck_assert_int_eq(gh_proxy_parse(h->b, h->n + sizeof(TAIL), ALLOW_ALL, &in), GH_PROXY_V2_MAX);
    free(h);
}
END_TEST

/* ---- over-reads ---- */

/* Each input, and each of its prefixes, ends right before a PROT_NONE page. */
START_TEST(parse_never_reads_past_len)
{
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t nlb100[100];
    hb *h = hb_new(0x21, 0x21), *l = hb_new(0x20, 0x11);
    gh_proxy_info in;

    ck_assert_ptr_ne(map, MAP_FAILED);
    ck_assert_int_eq(mprotect(map + page, (size_t)page, PROT_NONE), 0);
    nlb(nlb100);
    hb_inet6(h, "2001:db8::1", "2001:db8::2", 1, 2);
    hb_tlv(h, 0x20, "\x01\0\0\0\0\x21\0\x03" "TLS", 11);
    hb_tlv_str(h, 0x02, "a.example");
    hb_finish(h);
    hb_inet(l, "1.2.3.4", "5.6.7.8", 1, 2);
    hb_tlv_str(l, 0x02, "b.example");
    hb_finish(l);

    struct { const uint8_t *p; size_t n; } in_[] = {
        { (const uint8_t *)"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", 0 },
        { (const uint8_t *)"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n", 0 },
        { (const uint8_t *)"PROXY UNKNOWN ffff::1 ffff::2 65535 65535\r\n", 0 },
        { (const uint8_t *)"PROXY TCP4 1.2.3.4 1.2.3.4 65535 6553", 0 },
        { (const uint8_t *)"PROXY UNKNOWN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                           "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 0 },
        { nlb100, 100 },
        { h->b, h->n },
        { l->b, l->n },
    };
    for (size_t i = 0; i < sizeof(in_) / sizeof(in_[0]); i++) {
        if (in_[i].n == 0)
            in_[i].n = strlen((const char *)in_[i].p);
        for (size_t k = 0; k <= in_[i].n; k++) {
            uint8_t *p = map + page - k;
            memcpy(p, in_[i].p, k);
            long rc = gh_proxy_parse(p, k, ALLOW_ALL, &in);
            ck_assert(rc == GH_EAGAIN || rc == GH_EPROTO || rc == (long)k);
            (void)gh_proxy_detect(p, k);
        }
    }
    munmap(map, (size_t)page * 2);
    free(h);
    free(l);
}
END_TEST

/* ---- encoding ---------------------------------------------------------- */

static struct sockaddr_storage addr_of(const char *ip, unsigned port)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        ck_assert_int_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        ck_assert_int_eq(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return ss;
}

START_TEST(encode_writes_v1_and_v2_that_parse_back_to_the_same_addresses)
{
    static const struct {
        const char *src, *dst;
        unsigned    sp, dp;
        int         family;
        const char *as;         /* the source as the header gives it */
    } cases[] = {
        { "203.0.113.7", "10.0.0.5", 51234, 443, AF_INET, "203.0.113.7" },
        { "2001:db8::7", "2001:db8::1", 1, 65535, AF_INET6, "2001:db8::7" },
        { "::ffff:192.0.2.1", "192.0.2.9", 80, 8080, AF_INET, "192.0.2.1" },   /* mapped */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int version = 1; version <= 2; version++) {
            struct sockaddr_storage src = addr_of(cases[i].src, cases[i].sp);
            struct sockaddr_storage dst = addr_of(cases[i].dst, cases[i].dp);
            uint8_t buf[GH_PROXY_ENCODE_MAX];
            gh_proxy_info info;
            long n = gh_proxy_encode(version, (struct sockaddr *)&src, (struct sockaddr *)&dst,
                                     buf, sizeof(buf));

            ck_assert_int_gt(n, 0);
            ck_assert_int_eq(gh_proxy_parse(buf, (size_t)n, GH_PROXY_ALLOW_V1 | GH_PROXY_ALLOW_V2,
                                            &info), n);
            ck_assert_int_eq(info.version, version);
            ck_assert(!info.local);
            ck_assert_int_eq(info.family, cases[i].family);
            ck_assert_int_eq(info.src.ss_family, cases[i].family);
            if (cases[i].family == AF_INET) {
                const struct sockaddr_in *a = (const struct sockaddr_in *)&info.src;
                const struct sockaddr_in *b = (const struct sockaddr_in *)&info.dst;
                char t[INET_ADDRSTRLEN];
                inet_ntop(AF_INET, &a->sin_addr, t, sizeof(t));
                ck_assert_str_eq(t, cases[i].as);
                ck_assert_uint_eq(ntohs(a->sin_port), cases[i].sp);
                ck_assert_uint_eq(ntohs(b->sin_port), cases[i].dp);
            } else {
                const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&info.src;
                const struct sockaddr_in6 *want = (const struct sockaddr_in6 *)&src;
                ck_assert_mem_eq(&a->sin6_addr, &want->sin6_addr, 16);
                ck_assert_uint_eq(ntohs(a->sin6_port), cases[i].sp);
            }
        }
    }
}
END_TEST

START_TEST(encode_says_unknown_or_local_for_what_it_cannot_name_and_refuses_a_short_buffer)
{
    struct sockaddr_storage v4 = addr_of("192.0.2.1", 1), v6 = addr_of("2001:db8::1", 2);
    uint8_t buf[GH_PROXY_ENCODE_MAX];
    gh_proxy_info info;
    long n;

    n = gh_proxy_encode(1, (struct sockaddr *)&v4, (struct sockaddr *)&v6, buf, sizeof(buf));
    ck_assert_int_eq(n, 15);
    ck_assert_mem_eq(buf, "PROXY UNKNOWN\r\n", 15);
    n = gh_proxy_encode(2, NULL, NULL, buf, sizeof(buf));
    ck_assert_int_eq(n, 16);
    ck_assert_int_eq(gh_proxy_parse(buf, 16, GH_PROXY_ALLOW_V2, &info), 16);
    ck_assert(info.local);
    for (size_t cap = 0; cap < 16; cap++)
        ck_assert_int_eq(gh_proxy_encode(2, NULL, NULL, buf, cap), GH_E2BIG);
    for (size_t cap = 0; cap < 15; cap++)
        ck_assert_int_eq(gh_proxy_encode(1, NULL, NULL, buf, cap), GH_E2BIG);
}
END_TEST

static Suite *proxy_suite(void)
{
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, crc32c_matches_the_check_value_and_chains);
    tcase_add_test(tc, detect_tells_v1_v2_plain_and_prefixes);
    tcase_add_test(tc, v1_tcp4_is_parsed);
    tcase_add_test(tc, v1_tcp6_is_parsed);
    tcase_add_test(tc, v1_unknown_is_local_with_or_without_addresses);
    tcase_add_test(tc, v1_of_exactly_107_bytes_is_accepted);
    tcase_add_test(tc, v1_without_crlf_within_107_bytes_is_refused_at_byte_107);
    tcase_add_test(tc, v1_address_text_must_match_the_family);
    tcase_add_test(tc, v1_leading_zeros_are_refused);
    tcase_add_test(tc, v1_numbers_out_of_range_are_refused);
    tcase_add_test(tc, v1_syntax_errors_are_refused_early);
    tcase_add_test(tc, v1_does_not_need_a_nul_and_stops_at_len);
    tcase_add_test(tc, neither_signature_is_bad_signature_at_the_first_bad_byte);
    tcase_add_test(tc, a_version_outside_allow_is_refused);
    tcase_add_test(tc, v2_inet_proxy_is_parsed);
    tcase_add_test(tc, v2_inet6_proxy_is_parsed);
    tcase_add_test(tc, v2_unix_proxy_is_parsed);
    tcase_add_test(tc, v2_proxy_with_unspec_family_is_local);
    tcase_add_test(tc, v2_bad_version_command_family_and_length_are_refused);
    tcase_add_test(tc, v2_local_ignores_the_family_byte);
    tcase_add_test(tc, v2_local_with_an_address_block_is_skipped);
    tcase_add_test(tc, v2_nlb_health_check_is_accepted);
    tcase_add_test(tc, v2_nlb_health_check_with_a_byte_inverted_is_refused);
    tcase_add_test(tc, v2_nlb_health_check_with_a_bit_flipped_is_refused);
    tcase_add_test(tc, v2_tlvs_are_handed_out);
    tcase_add_test(tc, v2_empty_tlvs_are_present_but_empty);
    tcase_add_test(tc, v2_tlv_overrunning_the_length_is_refused_before_its_value_arrives);
    tcase_add_test(tc, v2_tlvs_ending_short_of_the_length_are_refused);
    tcase_add_test(tc, v2_ssl_sub_tlvs_must_end_with_the_ssl_tlv);
    tcase_add_test(tc, v2_impossible_tlv_lengths_are_refused);
    tcase_add_test(tc, v2_duplicate_tlvs_are_refused_noop_and_unknown_may_repeat);
    tcase_add_test(tc, v2_crc32c_is_verified);
    tcase_add_test(tc, v2_longest_header_is_accepted);
    tcase_add_test(tc, parse_never_reads_past_len);
    tcase_add_test(tc, encode_writes_v1_and_v2_that_parse_back_to_the_same_addresses);
    tcase_add_test(tc, encode_says_unknown_or_local_for_what_it_cannot_name_and_refuses_a_short_buffer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(proxy_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
