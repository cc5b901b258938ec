/* climit.h: per-client limits (`limits:`): open connections counted and
 * request and upgrade rates metered (token buckets) per client address, in
 * a table of fixed size that a flood of distinct addresses cannot grow: a
 * new client takes the slot of the least recently seen one that has no
 * connection open. One table serves every worker: each call is
 * thread-safe. */
#ifndef GH_CLIMIT_H
#define GH_CLIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

typedef struct gh_climits gh_climits;

typedef enum {
    GH_LIMIT_CONNECTIONS = 0,
    GH_LIMIT_REQUESTS,
    GH_LIMIT_UPGRADES,
    GH_LIMIT_KINDS
} gh_limit_kind;

/* A client's key: its IPv4 address, or its IPv6 address cut to v6_prefix
 * bits (an IPv4-mapped IPv6 address counts as the IPv4 one). */
typedef struct gh_climit_key {
    uint8_t b[16];
} gh_climit_key;

void gh_climit_key_of(const struct sockaddr *sa, unsigned v6_prefix, gh_climit_key *k);

/* A table for clients clients at most (rounded up to a power of two, at
 * least 8). NULL when out of memory. */
gh_climits *gh_climits_new(uint64_t clients);
void gh_climits_free(gh_climits *t);

/* A connection of k opens: returns its slot + 1 to give back to
 * gh_climits_conn_close(); 0 when k already has max open (refused), or
 * GH_CLIMIT_UNTRACKED when every slot it could take holds open connections
 * (admitted, not counted). max 0: counted, never refused. */
#define GH_CLIMIT_UNTRACKED UINT32_MAX
uint32_t gh_climits_conn_open(gh_climits *t, const gh_climit_key *k, uint64_t max,
                              uint64_t now_ms);
void gh_climits_conn_close(gh_climits *t, uint32_t slot);

/* Takes a token of kind (GH_LIMIT_REQUESTS or _UPGRADES) from k's bucket
 * under rate: 0 when taken (or untracked), else the milliseconds until
 * one will be there. */
uint64_t gh_climits_take(gh_climits *t, const gh_climit_key *k, gh_limit_kind kind,
                         const gh_rate_conf *rate, uint64_t now_ms);

/* Clients in the table now (for tests and metrics). */
uint64_t gh_climits_tracked(gh_climits *t);

#endif
