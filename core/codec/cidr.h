/* cidr.h: IPv4/IPv6 address ranges ("10.0.0.0/8", "::1/128", "192.0.2.7").
 * No I/O. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches IPv4 ranges.
 * Otherwise families stay apart: ::/0 matches no IPv4 peer. */
#ifndef GH_CIDR_H
#define GH_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct gh_cidr {
    int      family;     /* AF_INET or AF_INET6 */
    uint8_t  addr[16];   /* network order; host bits are zero */
    unsigned prefix;     /* 0..32 or 0..128 */
} gh_cidr;

/* Parses "ADDR" (a host: /32 or /128) or "ADDR/PREFIX". Host bits set beyond
 * the prefix are an error (10.0.0.1/8 is almost always a typo).
 * Addresses are inet_pton literals only (no "10.1", no zone ids); PREFIX is
 * 1 to 3 decimal digits. An IPv4-mapped range (::ffff:a.b.c.d/p, p >= 96)
 * is stored as the IPv4 range a.b.c.d/(p-96). *out is untouched on error.
 * Returns 0 or GH_EINVAL. */
int gh_cidr_parse(const char *s, gh_cidr *out);

/* True when sa (AF_INET or AF_INET6) lies in c. */
bool gh_cidr_match(const gh_cidr *c, const struct sockaddr *sa);

/* True when sa lies in any of the n ranges. */
bool gh_cidr_list_match(const gh_cidr *list, size_t n, const struct sockaddr *sa);

/* The default trusted_proxies: loopback and private ranges
 * (127.0.0.0/8, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, ::1/128, fc00::/7).
 * Writes up to cap entries and returns how many there are in all (out may be
 * NULL when cap is 0, to ask for the count). */
size_t gh_cidr_defaults(gh_cidr *out, size_t cap);

#endif
