/* climit.c: the per-client table (climit.h).
 *
 * Set-associative: a client's key hashes (keyed with a random seed, so
 * that addresses cannot be picked to collide) to a set of 8 slots; a new
 * client takes a free slot of its set or else the least recently seen one
 * without an open connection. A slot with open connections is never taken
 * (its count would be lost); when all 8 have some, the newcomer goes
 * untracked: admitted, not counted, which only a flood of as many distinct
 * clients with open connections as the table has slots can cause.
 *
 * Buckets hold millitokens: count tokens per per_ms come back at
 * count * 1000 / per_ms millitokens a millisecond, exact in integers. */
#include "climit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define WAYS 8

typedef struct slot {
    gh_climit_key key;
    uint64_t      mtok[2];       /* requests, upgrades: millitokens left */
    uint64_t      at_ms[2];      /* when they were last brought up to date */
    uint64_t      seen_ms;       /* last use, for eviction */
    uint32_t      conns;         /* open now */
    bool          used;
    bool          fresh[2];      /* the bucket starts full */
} slot;

/* One table for the process: every worker's connections count together,
 * each call under the table's mutex (one short critical section per
 * connection and per limited request). */
struct gh_climits {
    pthread_mutex_t mu;
    slot     *slots;
    uint64_t  nsets;             /* a power of two */
    uint64_t  seed[2];
    uint64_t  tracked;
};

void gh_climit_key_of(const struct sockaddr *sa, unsigned v6_prefix, gh_climit_key *k)
{
    memset(k, 0, sizeof(*k));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        k->b[10] = k->b[11] = 0xff;             /* ::ffff:a.b.c.d */
        memcpy(k->b + 12, &s4->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        memcpy(k->b, &s6->sin6_addr, 16);
        if (memcmp(k->b, mapped, 12) == 0)
            return;                             /* an IPv4 client */
        if (v6_prefix < 128) {
            unsigned full = v6_prefix / 8, bits = v6_prefix % 8;
            if (bits != 0)
                k->b[full++] &= (uint8_t)(0xff00 >> bits);
            memset(k->b + full, 0, 16 - full);
        }
    }
}

gh_climits *gh_climits_new(uint64_t clients)
{
    gh_climits *t = calloc(1, sizeof(*t));
    uint64_t n = WAYS;

    if (t == NULL)
        return NULL;
    while (n < clients && n < ((uint64_t)1 << 30))
        n *= 2;
    t->nsets = n / WAYS;
    /* calloc: pages the table never touches cost no memory */
    if ((t->slots = calloc(n, sizeof(*t->slots))) == NULL) {
        free(t);
        return NULL;
    }
    if (getrandom(t->seed, sizeof(t->seed), 0) != (ssize_t)sizeof(t->seed)) {
        t->seed[0] = (uint64_t)(uintptr_t)t * 0x9e3779b97f4a7c15u;
        t->seed[1] = (uint64_t)(uintptr_t)t->slots;
    }
    pthread_mutex_init(&t->mu, NULL);
    return t;
}

void gh_climits_free(gh_climits *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t->slots);
    free(t);
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static slot *find(gh_climits *t, const gh_climit_key *k, bool create, uint64_t now_ms)
{
    uint64_t a, b;
    slot *set, *victim = NULL;

    memcpy(&a, k->b, 8);
    memcpy(&b, k->b + 8, 8);
    set = t->slots + (mix(a ^ t->seed[0]) ^ mix(b ^ t->seed[1] ^ a)) % t->nsets * WAYS;
    for (int i = 0; i < WAYS; i++) {
        slot *s = &set[i];
        if (s->used && memcmp(&s->key, k, sizeof(*k)) == 0) {
            s->seen_ms = now_ms;
            return s;
        }
        if (!create)
            continue;
        if (!s->used) {
            if (victim == NULL || victim->used)
                victim = s;
        } else if (s->conns == 0 && (victim == NULL ||
                                     (victim->used && s->seen_ms < victim->seen_ms))) {
            victim = s;
        }
    }
    if (victim == NULL)
        return NULL;
    if (!victim->used)
        t->tracked++;
    memset(victim, 0, sizeof(*victim));
    victim->key = *k;
    victim->used = true;
    victim->fresh[0] = victim->fresh[1] = true;
    victim->seen_ms = now_ms;
    return victim;
}

uint32_t gh_climits_conn_open(gh_climits *t, const gh_climit_key *k, uint64_t max,
                              uint64_t now_ms)
{
    slot *s;
    uint32_t rc;

    pthread_mutex_lock(&t->mu);
    if ((s = find(t, k, true, now_ms)) == NULL) {
        rc = GH_CLIMIT_UNTRACKED;
    } else if (max != 0 && s->conns >= max) {
        rc = 0;
    } else {
        s->conns++;
        rc = (uint32_t)(s - t->slots) + 1;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

void gh_climits_conn_close(gh_climits *t, uint32_t slot_plus_one)
{
    if (slot_plus_one == 0 || slot_plus_one == GH_CLIMIT_UNTRACKED ||
        slot_plus_one > t->nsets * WAYS)
        return;
    pthread_mutex_lock(&t->mu);
    if (t->slots[slot_plus_one - 1].conns > 0)
        t->slots[slot_plus_one - 1].conns--;
    pthread_mutex_unlock(&t->mu);
}

static uint64_t take(gh_climits *t, const gh_climit_key *k, gh_limit_kind kind,
                     const gh_rate_conf *rate, uint64_t now_ms);

uint64_t gh_climits_take(gh_climits *t, const gh_climit_key *k, gh_limit_kind kind,
                         const gh_rate_conf *rate, uint64_t now_ms)
{
    uint64_t wait;

    if (rate->count == 0 || rate->per_ms == 0)
        return 0;
    pthread_mutex_lock(&t->mu);
    wait = take(t, k, kind, rate, now_ms);
    pthread_mutex_unlock(&t->mu);
    return wait;
}

static uint64_t take(gh_climits *t, const gh_climit_key *k, gh_limit_kind kind,
                     const gh_rate_conf *rate, uint64_t now_ms)
{
    int i = kind == GH_LIMIT_UPGRADES;
    uint64_t burst, cap, per_ms_gain_num, elapsed;
    slot *s;

    if (rate->count == 0 || rate->per_ms == 0)
        return 0;
    if ((s = find(t, k, true, now_ms)) == NULL)
        return 0;
    burst = rate->burst != 0 ? rate->burst : rate->count;
    cap = burst * 1000;
    per_ms_gain_num = rate->count * 1000;       /* millitokens per per_ms */
    if (s->fresh[i]) {
        s->fresh[i] = false;
        s->mtok[i] = cap;
        s->at_ms[i] = now_ms;
    } else if (now_ms > s->at_ms[i]) {
        elapsed = now_ms - s->at_ms[i];
        /* a full bucket gains nothing: avoid the multiplication's overflow
         * after a long silence */
        if (elapsed >= rate->per_ms * burst / rate->count + 1) {
            s->mtok[i] = cap;
        } else {
            uint64_t gain = elapsed * per_ms_gain_num / rate->per_ms;
            s->mtok[i] = s->mtok[i] + gain > cap ? cap : s->mtok[i] + gain;
        }
        s->at_ms[i] = now_ms;
    }
    if (s->mtok[i] >= 1000) {
        s->mtok[i] -= 1000;
        return 0;
    }
    /* until 1000 - mtok millitokens have come back, rounded up */
    return ((1000 - s->mtok[i]) * rate->per_ms + per_ms_gain_num - 1) / per_ms_gain_num;
}

uint64_t gh_climits_tracked(gh_climits *t)
{
    uint64_t n;

    pthread_mutex_lock(&t->mu);
    n = t->tracked;
    pthread_mutex_unlock(&t->mu);
    return n;
}
