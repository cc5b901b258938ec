/* wshandshake.c: the value checks of the RFC 6455 opening handshake.
 *
 * Why this shape: the HTTP side (request parsing, status codes, writing the
 * 101 response) belongs to the glue; what is left here are small pure
 * functions over header values that are easy to test and fuzz one by one.
 * Parsing is strict where leniency would weaken a check (key encoding,
 * origin syntax) and tolerant only of optional whitespace.
 *
 * What it does not do: negotiate extensions (none are offered), normalise
 * hosts beyond ASCII case (no IDNA, no IPv6 canonical form, no trailing
 * dot), or look at anything other than the values it is given. SHA-1 is
 * sha1.c's (see there why not libcrypto's). */
#include "wshandshake.h"

#include <string.h>

#include "err.h"
#include "sha1.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";  /* §1.3 */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void trim_ows(const char **s, size_t *len)
{
    while (*len > 0 && is_ows((*s)[0])) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && is_ows((*s)[*len - 1]))
        (*len)--;
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool eq_ci(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

/* Whether the comma list v[0..len) has an element equal to tok[0..tlen). */
static bool list_has(const char *v, size_t len, const char *tok, size_t tlen,
                     bool ci)
{
    size_t i = 0;

    if (v == NULL || tlen == 0)
        return false;
    while (i < len) {
        const char *e = v + i;
        size_t elen = 0;

        while (i < len && v[i] != ',') {
            i++;
            elen++;
        }
        i++;                            /* skip the comma (or run past the end) */
        trim_ows(&e, &elen);
        if (elen == tlen && (ci ? eq_ci(e, tok, tlen) : memcmp(e, tok, tlen) == 0))
            return true;
    }
    return false;
}

bool gh_ws_token_list_has(const char *v, size_t len, const char *token)
{
    return list_has(v, len, token, strlen(token), true);
}

/* Value of a base64 alphabet character (RFC 4648 table 1), or -1. */
static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int gh_ws_key_check(const char *key, size_t len)
{
    if (key == NULL)
        return GH_EPROTO;
    trim_ows(&key, &len);
    /* 16 bytes = 5 groups of 3 + 1 byte: 22 data characters and "==". */
    if (len != 24 || key[22] != '=' || key[23] != '=')
        return GH_EPROTO;
    for (size_t i = 0; i < 22; i++)
        if (b64_value(key[i]) < 0)
            return GH_EPROTO;
    /* The last data character carries 2 bits of byte 16 and 4 zero bits. */
    if ((b64_value(key[21]) & 0x0F) != 0)
        return GH_EPROTO;
    return 0;
}

int gh_ws_accept(const char *key, size_t len, char out[GH_WS_ACCEPT_LEN + 1])
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char in[24 + sizeof(ws_guid) - 1];
    uint8_t md[GH_SHA1_LEN];
    char *o = out;

    out[0] = '\0';
    if (gh_ws_key_check(key, len) != 0)
        return GH_EPROTO;
    trim_ows(&key, &len);               /* now exactly 24 characters */
    memcpy(in, key, 24);
    memcpy(in + 24, ws_guid, sizeof(ws_guid) - 1);
    gh_sha1(in, sizeof(in), md);
    /* 20 bytes -> 7 groups of 4 characters (RFC 4648 §4), the last with
     * one '=' for the byte it lacks */
    for (size_t i = 0; i < GH_SHA1_LEN; i += 3) {
        uint32_t g = (uint32_t)md[i] << 16 | (uint32_t)md[i + 1] << 8 |
                     (i + 2 < GH_SHA1_LEN ? md[i + 2] : 0);
        *o++ = b64[g >> 18 & 63];
        *o++ = b64[g >> 12 & 63];
        *o++ = b64[g >> 6 & 63];
        *o++ = i + 2 < GH_SHA1_LEN ? b64[g & 63] : '=';
    }
    *o = '\0';
    return 0;
}

/* ---- origins ---- */

typedef struct origin {
    const char *scheme; size_t scheme_len;
    const char *host;   size_t host_len;   /* brackets kept for IPv6 */
    long        port;                      /* -1 when absent */
} origin;

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* reg-name or IPv4 characters we accept: RFC 3986 unreserved plus '%' for
 * pct-encoding. Sub-delims are refused: browsers never put them in an
 * Origin, and "host!x" matching nothing is the safe outcome anyway. */
static bool is_host_char(char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_'
        || c == '~' || c == '%';
}

/* Parses "host[:port]" covering all of s[0..len). canonical: refuse a port
 * with leading zeros (an origin is serialized without them, RFC 6454 §6.2;
 * a Host header port is any *DIGIT, RFC 3986 §3.2.3). */
static bool parse_hostport(const char *s, size_t len, bool canonical, origin *o)
{
    size_t i = 0;

    if (len == 0)
        return false;
    if (s[0] == '[') {                  /* IP-literal: IPv6 (no zone id) */
        i = 1;
        while (i < len && (is_hex(s[i]) || s[i] == ':' || s[i] == '.'))
            i++;
        if (i >= len || s[i] != ']' || i == 1)
            return false;
        i++;
    } else {
        while (i < len && is_host_char(s[i]))
            i++;
        if (i == 0)
            return false;
    }
    o->host = s;
    o->host_len = i;
    o->port = -1;
    if (i == len)
        return true;
    if (s[i] != ':')
        return false;
    i++;
    if (i == len || len - i > 5)        /* empty port, or more than 5 digits */
        return false;
    if (canonical && s[i] == '0' && len - i > 1)
        return false;
    o->port = 0;
    for (; i < len; i++) {
        if (!is_digit(s[i]))
            return false;
        o->port = o->port * 10 + (s[i] - '0');
    }
    return o->port <= 65535;
}

/* Parses a serialized origin "scheme://host[:port]" covering s[0..len). */
static bool parse_origin(const char *s, size_t len, origin *o)
{
    size_t i = 0;

    if (s == NULL || len == 0 || !is_alpha(s[0]))
        return false;                   /* also refuses "null" below */
    while (i < len && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+'
                       || s[i] == '-' || s[i] == '.'))
        i++;
    if (len - i < 3 || memcmp(s + i, "://", 3) != 0)
        return false;
    o->scheme = s;
    o->scheme_len = i;
    return parse_hostport(s + i + 3, len - i - 3, true, o);
}

/* 80 for http, 443 for https, -1 for any other scheme. */
static long default_port(const char *scheme, size_t len)
{
    if (len == 4 && eq_ci(scheme, "http", 4))
        return 80;
    if (len == 5 && eq_ci(scheme, "https", 5))
        return 443;
    return -1;
}

static long effective_port(const origin *o)
{
    return o->port >= 0 ? o->port : default_port(o->scheme, o->scheme_len);
}

bool gh_ws_origin_is_valid(const char *s, size_t len)
{
    origin o;

    return parse_origin(s, len, &o);
}

static bool same_host(const char *origin_s, size_t origin_len,
                      const char *host_s, size_t host_len)
{
    origin o, h;
    long dflt;

    if (!parse_origin(origin_s, origin_len, &o))
        return false;
    if ((dflt = default_port(o.scheme, o.scheme_len)) < 0)
        return false;                   /* only http and https pages */
    if (host_s == NULL)
        return false;
    trim_ows(&host_s, &host_len);
    if (!parse_hostport(host_s, host_len, false, &h))
        return false;
    if (o.host_len != h.host_len || !eq_ci(o.host, h.host, o.host_len))
        return false;
    return effective_port(&o) == (h.port >= 0 ? h.port : dflt);
}

static bool in_list(const char *const *list, size_t nlist,
                    const char *origin_s, size_t origin_len)
{
    origin o;

    if (list == NULL || !parse_origin(origin_s, origin_len, &o))
        return false;
    for (size_t i = 0; i < nlist; i++) {
        origin e;

        if (list[i] == NULL || !parse_origin(list[i], strlen(list[i]), &e))
            continue;
        if (e.scheme_len == o.scheme_len && eq_ci(e.scheme, o.scheme, o.scheme_len)
            && e.host_len == o.host_len && eq_ci(e.host, o.host, o.host_len)
            && effective_port(&e) == effective_port(&o))
            return true;
    }
    return false;
}

bool gh_ws_origin_allowed(gh_ws_origins mode, const char *const *list,
                          size_t nlist, const char *origin_s, size_t origin_len,
                          const char *host, size_t host_len)
{
    if (origin_s == NULL)
        return true;                    /* no Origin: not a browser */
    trim_ows(&origin_s, &origin_len);
    switch (mode) {
    case GH_WS_ORIGINS_ANY:
        return true;
    case GH_WS_ORIGINS_SAME_HOST:
        return same_host(origin_s, origin_len, host, host_len);
    case GH_WS_ORIGINS_LIST:
        return in_list(list, nlist, origin_s, origin_len);
    }
    return false;
}

int gh_ws_pick_subprotocol(const char *offered, size_t len,
                           const char *const *server, size_t nserver)
{
    if (offered == NULL || server == NULL)
        return -1;
    for (size_t i = 0; i < nserver && i <= (size_t)0x7FFFFFFF; i++)
        if (server[i] != NULL && list_has(offered, len, server[i], strlen(server[i]), false))
            return (int)i;
    return -1;
}
