/* theap.h: a binary min-heap of deadlines whose nodes live inside their
 * owners. One event per loop watches the earliest, instead of one libevent
 * timer (128 bytes) per connection: a node costs 16 bytes in its owner and
 * one pointer in the heap's array. */
#ifndef GH_THEAP_H
#define GH_THEAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct gh_theap_node {
    uint64_t due;               /* the deadline, in the caller's unit */
    uint32_t pos;               /* 1 + index in the heap; 0 when not in it */
} gh_theap_node;

typedef struct gh_theap {
    gh_theap_node **v;
    uint32_t        n, cap;
} gh_theap;

/* Puts x in h with deadline due, or moves it there when it is in h already.
 * Returns 0, or GH_ENOMEM (x is then not in h). */
int gh_theap_set(gh_theap *h, gh_theap_node *x, uint64_t due);

/* Takes x out of h; nothing when it is not in it. */
void gh_theap_del(gh_theap *h, gh_theap_node *x);

/* The node with the earliest deadline, or NULL when h is empty. */
static inline gh_theap_node *gh_theap_top(const gh_theap *h)
{
    return h->n > 0 ? h->v[0] : NULL;
}

/* Frees the array (the nodes belong to their owners). */
void gh_theap_fini(gh_theap *h);

#endif
