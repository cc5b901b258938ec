/* wsext.c: the Sec-WebSocket-Extensions list (RFC 6455 §9.1) and the
 * server's side of the permessage-deflate negotiation (RFC 7692 §5, §7.1).
 *
 * Why this shape: one pass over each field value, left to right, with no
 * copy of the input and no allocation. Each offer's parameters are checked
 * as they are read; the first permessage-deflate offer that survives is
 * answered and parsing stops there, so what follows it (even garbage) is
 * never looked at. A syntax error abandons the rest of its field only:
 * offers already complete before it were judged on their own, and the next
 * field starts afresh at an element boundary.
 *
 * The grammar is RFC 6455's extension-list read with RFC 7230 rules:
 * OWS (SP / HTAB) is allowed around ",", ";" and "=" (RFC 6455 uses
 * RFC 2616's implied *LWS), empty list elements are ignored (RFC 7230 §7),
 * a value is a token or a quoted-string (§3.2.6: qdtext, quoted-pair,
 * obs-text). A quoted value is judged on its unescaped content; one that
 * does not unescape to a token (RFC 6455 §9.1) cannot be a valid value of
 * any permessage-deflate parameter, so it only declines its offer: the
 * element boundaries are still sound.
 *
 * What it does not do: fail the handshake. RFC 6455 §9.1 says the
 * recipient of a malformed value MUST fail the connection; wsext.h chooses
 * to decline instead (the connection goes on uncompressed, and no offer is
 * ever answered wrongly), and a bool cannot say "malformed" anyway. It does
 * not negotiate any other extension, nor answer client_max_window_bits
 * (the inflater reads any window). A policy window outside 9..15 is
 * clamped into it; a NULL policy means 15 bits and context takeover. */
#include "wsext.h"

#include <string.h>

static const char pmd_name[] = "permessage-deflate";

/* The longest answer must fit; wsext.h promises GH_PMD_ANSWER_MAX. */
_Static_assert(sizeof("permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
                      " server_max_window_bits=15") <= GH_PMD_ANSWER_MAX,
               "GH_PMD_ANSWER_MAX too small for the longest answer");

enum {
    P_SERVER_NO_CTX = 1u << 0,
    P_CLIENT_NO_CTX = 1u << 1,
    P_SERVER_BITS   = 1u << 2,
    P_CLIENT_BITS   = 1u << 3,
};

static const struct {
    const char *name;
    size_t len;
    unsigned bit;
} pmd_params[] = {
    { .name = "server_no_context_takeover", .len = 26, .bit = P_SERVER_NO_CTX },
    { .name = "client_no_context_takeover", .len = 26, .bit = P_CLIENT_NO_CTX },
    { .name = "server_max_window_bits",     .len = 22, .bit = P_SERVER_BITS },
    { .name = "client_max_window_bits",     .len = 22, .bit = P_CLIENT_BITS },
};

/* One permessage-deflate offer as it is read. */
typedef struct offer {
    bool ok;                    /* still honourable */
    unsigned seen;              /* P_* of the parameters read so far */
    uint8_t server_bits;        /* 0: server_max_window_bits not offered */
} offer;

/* A parameter value, unescaped. Only its first bytes are kept: no value we
 * accept is longer than two; len is the whole unescaped length. */
typedef struct pvalue {
    bool present;
    size_t len;
    char head[4];
} pvalue;

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 7230 §3.2.6 tchar. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* qdtext: HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text. */
static bool is_qdtext(unsigned char c)
{
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5B)
        || (c >= 0x5D && c <= 0x7E) || c >= 0x80;
}

/* What may follow a backslash: HTAB / SP / VCHAR / obs-text. */
static bool is_quotable(unsigned char c)
{
    return c == '\t' || c == ' ' || (c >= 0x21 && c <= 0x7E) || c >= 0x80;
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Whether s[0..n) equals the lower-case word w[0..wlen), ignoring ASCII case. */
static bool eq_ci(const char *s, size_t n, const char *w, size_t wlen)
{
    if (n != wlen)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != (unsigned char)w[i])
            return false;
    return true;
}

static void skip_ows(const char *v, size_t len, size_t *i)
{
    while (*i < len && is_ows((unsigned char)v[*i]))
        (*i)++;
}

/* Reads a token at *i; returns its length (0: none there). */
static size_t read_token(const char *v, size_t len, size_t *i)
{
    size_t start = *i;

    while (*i < len && is_tchar((unsigned char)v[*i]))
        (*i)++;
    return *i - start;
}

static void value_put(pvalue *pv, char c)
{
    if (pv->len < sizeof(pv->head))
        pv->head[pv->len] = c;
    pv->len++;
}

/* Reads a token or a quoted-string at *i into *pv. false: neither is there
 * (a syntax error). */
static bool read_value(const char *v, size_t len, size_t *i, pvalue *pv)
{
    pv->present = true;
    pv->len = 0;
    if (*i < len && v[*i] == '"') {
        for ((*i)++; *i < len; (*i)++) {
            unsigned char c = (unsigned char)v[*i];

            if (c == '"') {
                (*i)++;
                return true;
            }
            if (c == '\\') {
                if (++(*i) == len || !is_quotable((unsigned char)v[*i]))
                    return false;
                value_put(pv, v[*i]);
            } else if (is_qdtext(c)) {
                value_put(pv, (char)c);
            } else {
                return false;
            }
        }
        return false;                   /* no closing quote */
    }
    {
        size_t start = *i;
        size_t n = read_token(v, len, i);

        for (size_t k = 0; k < n; k++)
            value_put(pv, v[start + k]);
        return n > 0;
    }
}

/* A window bits value (RFC 7692 §7.1.2): 1*DIGIT without a leading zero,
 * 8..15. Returns it, or 0 when the value is anything else. */
static uint8_t window_bits(const pvalue *pv)
{
    if (pv->len == 1 && (pv->head[0] == '8' || pv->head[0] == '9'))
        return (uint8_t)(pv->head[0] - '0');
    if (pv->len == 2 && pv->head[0] == '1' && pv->head[1] >= '0' && pv->head[1] <= '5')
        return (uint8_t)(10 + pv->head[1] - '0');
    return 0;
}

/* Judges one parameter of a permessage-deflate offer (RFC 7692 §7: an
 * unknown parameter, a repeated one or an invalid value declines it). */
static void offer_param(offer *o, const char *name, size_t nlen, const pvalue *pv)
{
    unsigned bit = 0;

    for (size_t k = 0; k < sizeof(pmd_params) / sizeof(pmd_params[0]); k++)
        if (eq_ci(name, nlen, pmd_params[k].name, pmd_params[k].len))
            bit = pmd_params[k].bit;
    if (bit == 0 || (o->seen & bit) != 0) {
        o->ok = false;
        return;
    }
    o->seen |= bit;
    switch (bit) {
    case P_SERVER_NO_CTX:
    case P_CLIENT_NO_CTX:
        if (pv->present)                /* §7.1.1: these have no value */
            o->ok = false;
        break;
    case P_SERVER_BITS:
        /* §7.1.2.1: a value is required. 8 cannot be honoured: zlib's raw
         * deflate refuses a 256-byte window and the answer may not be
         * larger than the offer. */
        o->server_bits = pv->present ? window_bits(pv) : 0;
        if (o->server_bits < 9)
            o->ok = false;
        break;
    case P_CLIENT_BITS:
        /* §7.1.2.2: no value, or 8..15; the inflater reads any window. */
        if (pv->present && window_bits(pv) == 0)
            o->ok = false;
        break;
    default:
        break;
    }
}

static size_t append(char *dst, size_t at, const char *s)
{
    size_t n = strlen(s);

    memcpy(dst + at, s, n);
    return at + n;
}

/* Writes the answer to an accepted offer and what was agreed. */
static void accept_offer(const offer *o, const gh_pmd_policy *policy, gh_pmd_params *out,
                         char answer[GH_PMD_ANSWER_MAX])
{
    uint8_t bits = policy != NULL ? policy->server_window_bits : 15;
    bool server_no_ctx = (o->seen & P_SERVER_NO_CTX) != 0
                      || (policy != NULL && policy->server_no_context_takeover);
    size_t at = 0;

    if (bits < 9)
        bits = 9;
    if (bits > 15)
        bits = 15;
    if (o->server_bits != 0 && o->server_bits < bits)
        bits = o->server_bits;

    at = append(answer, at, pmd_name);
    if (server_no_ctx)
        at = append(answer, at, "; server_no_context_takeover");
    at = append(answer, at, "; client_no_context_takeover");
    if (o->server_bits != 0) {
        at = append(answer, at, "; server_max_window_bits=");
        if (bits >= 10)
            answer[at++] = '1';
        answer[at++] = (char)('0' + bits % 10);
    }
    answer[at] = '\0';

    out->server_window_bits = bits;
    out->server_no_context_takeover = server_no_ctx;
    out->client_no_context_takeover = true;
}

/* Reads the field value v[0..len) until an offer can be accepted (true,
 * *o is that offer) or the field ends or breaks (false). */
static bool scan_field(const char *v, size_t len, offer *o)
{
    size_t i = 0;

    for (;;) {
        const char *name;
        size_t nlen;
        bool is_pmd;

        skip_ows(v, len, &i);
        if (i == len)
            return false;
        if (v[i] == ',') {              /* an empty element */
            i++;
            continue;
        }
        name = v + i;
        if ((nlen = read_token(v, len, &i)) == 0)
            return false;
        is_pmd = eq_ci(name, nlen, pmd_name, sizeof(pmd_name) - 1);
        *o = (offer){ .ok = is_pmd };
        skip_ows(v, len, &i);
        while (i < len && v[i] == ';') {
            const char *pname;
            size_t plen;
            pvalue pv = { .present = false };

            i++;
            skip_ows(v, len, &i);
            pname = v + i;
            if ((plen = read_token(v, len, &i)) == 0)
                return false;
            skip_ows(v, len, &i);
            if (i < len && v[i] == '=') {
                i++;
                skip_ows(v, len, &i);
                if (!read_value(v, len, &i, &pv))
                    return false;
                skip_ows(v, len, &i);
            }
            if (o->ok)
                offer_param(o, pname, plen, &pv);
        }
        /* The element must end here; anything else breaks the field. */
        if (i < len && v[i] != ',')
            return false;
        if (o->ok)
            return true;
    }
}

bool gh_pmd_negotiate(const char *const *values, const size_t *lens, size_t n,
                      const gh_pmd_policy *policy, gh_pmd_params *out,
                      char answer[GH_PMD_ANSWER_MAX])
{
    memset(out, 0, sizeof(*out));
    answer[0] = '\0';
    if (values == NULL || lens == NULL)
        return false;
    for (size_t f = 0; f < n; f++) {
        offer o;

        if (values[f] != NULL && scan_field(values[f], lens[f], &o)) {
            accept_offer(&o, policy, out, answer);
            return true;
        }
    }
    return false;
}
