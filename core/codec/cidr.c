/* cidr.c: address ranges for trusted_proxies and similar allow-lists.
 *
 * Addresses are parsed with inet_pton only (no resolver, no inet_aton
 * shorthands such as "10.1" or octal "010.0.0.1"), so what a config says is
 * what is matched. IPv4 lives in two spellings on a dual-stack socket: a peer
 * arriving as ::ffff:a.b.c.d is compared as the IPv4 address a.b.c.d, and a
 * range written as ::ffff:a.b.c.d/p (p >= 96) is stored as a.b.c.d/(p-96).
 * Families are otherwise kept apart: ::/0 matches IPv6 peers only.
 * No I/O, no allocation. */
#include "cidr.h"
#include "err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const uint8_t v4mapped_prefix[12] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
};

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;

    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

static bool host_bits_zero(const uint8_t *a, unsigned nbytes, unsigned prefix)
{
    for (unsigned i = 0; i < nbytes; i++) {
        unsigned lo = i * 8;
        uint8_t mask;

        if (lo + 8 <= prefix)
            continue;
        mask = lo >= prefix ? 0xff : (uint8_t)(0xff >> (prefix - lo));
        if (a[i] & mask)
            return false;
    }
    return true;
}

int gh_cidr_parse(const char *s, gh_cidr *out)
{
    char host[INET6_ADDRSTRLEN];
    const char *slash;
    size_t hlen;
    unsigned prefix = 0, max;
    bool has_prefix = false;
    gh_cidr c;

    if (s == NULL)
        return GH_EINVAL;
    slash = strchr(s, '/');
    hlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
    if (hlen == 0 || hlen >= sizeof(host))
        return GH_EINVAL;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    if (slash != NULL) {
        const char *p = slash + 1;
        size_t nd = 0;

        /* at most three digits: no sign, no spaces, no overflow */
        while (p[nd] >= '0' && p[nd] <= '9' && nd < 4)
            nd++;
        if (nd == 0 || nd > 3 || p[nd] != '\0')
            return GH_EINVAL;
        for (size_t i = 0; i < nd; i++)
            prefix = prefix * 10 + (unsigned)(p[i] - '0');
        has_prefix = true;
    }
    memset(&c, 0, sizeof(c));
    if (inet_pton(AF_INET, host, c.addr) == 1) {
        c.family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, c.addr) == 1) {
        c.family = AF_INET6;
        max = 128;
    } else {
        return GH_EINVAL;
    }
    if (!has_prefix)
        prefix = max;
    if (prefix > max)
        return GH_EINVAL;
    if (!host_bits_zero(c.addr, max / 8, prefix))
        return GH_EINVAL;
    if (c.family == AF_INET6 && prefix >= 96 &&
        memcmp(c.addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
        memmove(c.addr, c.addr + 12, 4);
        memset(c.addr + 4, 0, 12);
        c.family = AF_INET;
        prefix -= 96;
    }
    c.prefix = prefix;
    *out = c;
    return GH_OK;
}

bool gh_cidr_match(const gh_cidr *c, const struct sockaddr *sa)
{
    const uint8_t *a;
    int family;

    if (c == NULL || sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
        family = AF_INET;
    } else if (sa->sa_family == AF_INET6) {
        a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        family = AF_INET6;
        if (memcmp(a, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
            a += 12;
            family = AF_INET;
        }
    } else {
        return false;
    }
    if (family != c->family)
        return false;
    if (c->prefix > (family == AF_INET ? 32u : 128u))
        return false;
    return prefix_equal(a, c->addr, c->prefix);
}

bool gh_cidr_list_match(const gh_cidr *list, size_t n, const struct sockaddr *sa)
{
    for (size_t i = 0; i < n; i++)
        if (gh_cidr_match(&list[i], sa))
            return true;
    return false;
}

size_t gh_cidr_defaults(gh_cidr *out, size_t cap)
{
    static const char *const defaults[] = {
        "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
        "::1/128", "fc00::/7",
    };
    size_t n = sizeof(defaults) / sizeof(defaults[0]);

    for (size_t i = 0; i < n && i < cap && out != NULL; i++)
        (void)gh_cidr_parse(defaults[i], &out[i]);  /* constant and valid */
    return n;
}
