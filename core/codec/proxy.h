/* proxy.h: PROXY protocol v1 and v2 header codec (HAProxy's
 * doc/proxy-protocol.txt). No I/O, no allocation.
 *
 * The glue peeks at the first bytes of a connection, calls gh_proxy_parse()
 * until it stops returning GH_EAGAIN, then drains exactly the bytes it
 * consumed; the bytes after them belong to TLS or HTTP. Every pointer in a
 * gh_proxy_info points into the caller's buffer and lives as long as it does.
 *
 * Not thread-bound, no global state: every function is reentrant. */
#ifndef GH_PROXY_H
#define GH_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define GH_PROXY_V1_MAX 107             /* bytes including CRLF */
#define GH_PROXY_V2_MAX (16 + 65535)    /* fixed part + largest length field */

typedef struct gh_proxy_info {
    int  version;                  /* 1 or 2 */
    bool local;                    /* v2 LOCAL command, or v1 UNKNOWN, or v2 PROXY with family UNSPEC:
                                      use the socket's own addresses (src/dst are zeroed) */
    int  family;                   /* AF_INET, AF_INET6, AF_UNIX or AF_UNSPEC as declared
                                      (v1 UNKNOWN: AF_UNSPEC; v2 LOCAL: the family nibble,
                                      AF_UNSPEC when it is not 1..3; informative only) */
    struct sockaddr_storage src, dst;  /* set when !local: AF_INET/AF_INET6 as sockaddr_in/_in6
                                          (ports in network order, as in sockaddr_in); AF_UNIX as
                                          sockaddr_un whose sun_path holds the 108 bytes as sent
                                          (NUL-padded by a sane sender, but not guaranteed to be
                                          NUL-terminated: bound every read by sizeof(sun_path)) */
    /* v2 TLVs; pointers into the caller's buffer, NULL/0 when absent
       (present but empty: non-NULL with length 0) */
    const uint8_t *alpn;       size_t alpn_len;
    const uint8_t *authority;  size_t authority_len;
    const uint8_t *unique_id;  size_t unique_id_len;   /* <= 128 */
    const uint8_t *netns;      size_t netns_len;
    bool     crc32c_checked;   /* a CRC32C TLV was present and matched */
    bool     ssl_present;      /* PP2_TYPE_SSL present */
    uint8_t  ssl_client;       /* its client bit field (PP2_CLIENT_SSL 0x01, CERT_CONN 0x02, CERT_SESS 0x04) */
    uint32_t ssl_verify;       /* host order; 0 = client certificate verified */
    const uint8_t *ssl_version; size_t ssl_version_len;
    const uint8_t *ssl_cn;      size_t ssl_cn_len;
    const uint8_t *ssl_cipher;  size_t ssl_cipher_len;
    const uint8_t *ssl_sig_alg; size_t ssl_sig_alg_len;
    const uint8_t *ssl_key_alg; size_t ssl_key_alg_len;
    const uint8_t *aws_vpce_id; size_t aws_vpce_id_len;  /* TLV 0xEA subtype 0x01 */
    const char *reason;        /* on GH_EPROTO: a static, stable snake_case string usable as a
                                  metrics label (list below); NULL otherwise */
} gh_proxy_info;

/* The reasons gh_proxy_parse() may set (stable: dashboards use them):
 *   bad_signature        neither "PROXY " nor the v2 signature
 *   not_allowed_version  a complete v1 or v2 signature whose version `allow` excludes
 *   v1_syntax            v1: wrong keyword, spacing, character, bare CR or LF
 *   v1_too_long          v1: no CRLF within GH_PROXY_V1_MAX bytes
 *   v1_address           v1: address text not valid for the declared TCP4/TCP6
 *   v1_port              v1: port not 0..65535 or with a leading zero
 *   v2_version           v2: version nibble is not 2
 *   v2_command           v2: command is neither LOCAL nor PROXY
 *   v2_family            v2 PROXY: family/transport byte not 0x00, 0x11, 0x21 or 0x31
 *   v2_length            v2 PROXY: length shorter than the family's address block
 *   tlv_bounds           v2: a TLV (or SSL sub-TLV) runs past the end of its container, or
 *                        the TLVs end short of it (a partial TLV header at the end)
 *   tlv_value            v2: a TLV with an impossible length (CRC32C not 4 bytes,
 *                        UNIQUE_ID over 128, SSL under 5, AWS empty)
 *   tlv_duplicate        v2: a TLV we interpret appears twice
 *   tlv_framing          v2 LOCAL with an INET/INET6/UNIX family byte: neither reading of the
 *                        TLV area (see gh_proxy_parse) gives well-formed TLVs
 *   crc32c_mismatch      v2: the CRC32C TLV does not match the header */

#define GH_PROXY_ALLOW_V1 1
#define GH_PROXY_ALLOW_V2 2

/* Looks at the first bytes of a connection. Returns 1 (starts with
 * "PROXY "), 2 (starts with the 12-byte v2 signature), 0 (cannot be either:
 * plain traffic), or GH_EAGAIN (len is 0 or buf is a proper prefix of a
 * signature: read more). Needed for `optional` mode. Never reads past len. */
int  gh_proxy_detect(const uint8_t *buf, size_t len);

/* Parses exactly one header at buf[0..len); buf need not be NUL-terminated
 * and is never read past len. `allow` is a mask of GH_PROXY_ALLOW_V1/_V2.
 * Returns:
 *   > 0        bytes consumed (the bytes after belong to TLS/HTTP); *out is
 *              filled, its pointers point into buf;
 *   GH_EAGAIN  buf is a proper prefix of a header that may still be valid:
 *              read more and call again with the whole buffer. Never when
 *              len >= GH_PROXY_V1_MAX for v1, or len >= 16 + the length field
 *              for v2 (at most GH_PROXY_V2_MAX);
 *   GH_EPROTO  malformed, or a version not in `allow`; out->reason is set
 *              (the rest of *out is unspecified, as it is after GH_EAGAIN;
 *              out must not be NULL). Returned as soon as the
 *              bytes seen cannot begin a valid header (v1: at the first bad
 *              byte; v2: at a bad fixed field, or at a TLV that is already
 *              complete and wrong; the CRC32C is checked once all is there).
 * Decisions beyond the spec:
 *   - v1 UNKNOWN must be followed by CRLF or by a space; what follows the
 *     space up to the first CR is ignored, but must not contain LF, and that
 *     CR must be followed by LF. TCP6 addresses are what inet_pton accepts
 *     (so "::ffff:1.2.3.4" is fine), at most 45 characters.
 *   - v2 LOCAL ignores the family byte, except to locate the TLVs: the AWS
 *     NLB sends LOCAL with family 0x11 and TLVs right at byte 16, other
 *     senders put an address block first. TLVs are read from byte 16; if
 *     that does not give well-formed TLVs and the family names an address
 *     block that fits, they are read after it. In both readings of such a
 *     LOCAL header a TLV of type 0x00 (unassigned; what zero padding or a
 *     misplaced start looks like) means "wrong reading". Elsewhere type 0x00
 *     is an unknown type and skipped like any other. The CRC32C, when
 *     present, is checked on the reading chosen; no second chance.
 *   - v2 PROXY with family UNSPEC (0x00) is accepted as local; its TLVs are
 *     read from byte 16.
 *   - Duplicates of ALPN, AUTHORITY, CRC32C, UNIQUE_ID, SSL, NETNS, an SSL
 *     sub-TLV or the AWS VPC endpoint id are refused (tlv_duplicate): two
 *     parties could disagree on which one counts. NOOP, unknown types and
 *     other AWS subtypes may repeat. */
long gh_proxy_parse(const uint8_t *buf, size_t len, int allow, gh_proxy_info *out);

/* Writes a PROXY header telling src (the client) and dst (the address it
 * connected to), for gatehouse's own connections to an upstream. version
 * is 1 or 2. Both must be AF_INET, or both AF_INET6 (IPv4-mapped IPv6
 * addresses, as a dual-stack socket reports IPv4 peers, are written as
 * IPv4 when both are IPv4 or mapped); anything else, or
 * NULL, gives v1 "PROXY UNKNOWN" or a v2 LOCAL header. Returns the length
 * written (at most GH_PROXY_ENCODE_MAX) or GH_E2BIG when cap is too small.
 * No TLVs. */
#define GH_PROXY_ENCODE_MAX 108
long gh_proxy_encode(int version, const struct sockaddr *src, const struct sockaddr *dst,
                     uint8_t *out, size_t cap);

/* CRC32C (Castagnoli, reflected, as in RFC 4960 appendix B and iSCSI) of
 * buf[0..len), continuing from crc: pass 0 to start; chaining calls over
 * consecutive pieces gives the CRC of the whole. crc32c("123456789") is
 * 0xE3069283. */
uint32_t gh_proxy_crc32c(uint32_t crc, const uint8_t *buf, size_t len);

#endif
