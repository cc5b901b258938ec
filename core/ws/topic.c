/* topic.c: WebSocket fan-out by topic.
 *
 * Why this shape: fan-out is where a gateway spends its memory and its
 * copies, so a publish frames the message exactly once, into one
 * reference-counted block, and every subscriber's output queue points at
 * that block (the sink, wsconn.c). Nothing is copied or re-framed per
 * subscriber; the block is freed when the last socket has written it.
 * Across workers the same holds with one more level: the block is the
 * hub's message's (gh_frame_set, atomic count), and each worker's
 * subscribers share a handle of that worker's (a plain count holding one
 * atomic reference), so a delivery never touches a count another thread
 * writes.
 *
 * Topics live in a chained hash table keyed by "namespace\0name"; each
 * keeps its subscriptions in an array so that a publish is one tight loop,
 * and each subscription remembers its index so unsubscribing is O(1)
 * (swap with the last). A subscriber keeps its subscriptions in a list of
 * its own so that closing a connection drops them all. A topic disappears
 * with its last subscriber.
 *
 * It deliberately knows nothing of connections: a sink function decides
 * what "queue this frame to that subscriber" means, and may refuse. The
 * sink must not change subscriptions, so the publish loop needs no guard.
 * Nothing here is a bus: gh_topics_publish() is the seam where one goes,
 * and the bus's watch callback hears of a topic's first and last local
 * subscriber (so a Redis bus SUBSCRIBEs only to channels someone here
 * listens on). */
#include "topic.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "err.h"
#include "wsframe.h"

typedef struct topic {
    struct topic  *next;        /* hash chain */
    uint64_t       hash;
    gh_topic_sub **subs;
    size_t         nsubs, cap;
    uint64_t       messages;    /* delivered here since the topic was made */
    size_t        *count;       /* where the bus keeps nsubs (count_at), or NULL */
    size_t         keylen;      /* ns, NUL, name */
    char           key[];
} topic;

struct gh_topic_sub {
    topic        *t;
    void         *subscriber;
    size_t        index;        /* in t->subs */
    uint64_t      serial;       /* when it was made (gh_topics_serial) */
    bool          held;         /* gets nothing until released */
    gh_topic_sub *next;         /* the subscriber's list */
};

struct gh_topics {
    topic       **buckets;
    size_t        nbuckets;     /* a power of two */
    size_t        ntopics;
    gh_topic_sink sink;
    gh_topic_bus  bus;
    bool          has_bus;
    uint64_t      serial;       /* of the latest subscription */
};

#define INITIAL_BUCKETS 64

/* Drops one of the atomic references on a set's frame. */
static void shared_release(gh_frame_ref *f)
{
    if (__atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(f);
}

static void shared_ref(gh_frame_ref *f)
{
    __atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
}

void gh_frame_ref_release(const void *data, size_t len, void *extra)
{
    gh_frame_ref *f = extra;

    (void)data;
    (void)len;
    if (--f->refs == 0) {
        if (f->under != NULL)
            shared_release(f->under);
        free(f);
    }
}

gh_frame_ref *gh_frame_ref_new(size_t len)
{
    gh_frame_ref *f;

    if (len > SIZE_MAX - sizeof(*f) || (f = malloc(sizeof(*f) + len)) == NULL)
        return NULL;
    f->refs = 1;
    f->len = len;
    f->under = NULL;
    return f;
}

/* A handle of this thread's on the set's frame sf (one reference, the
 * caller's), or NULL on ENOMEM. */
static gh_frame_ref *handle_of(gh_frame_ref *sf)
{
    gh_frame_ref *f = malloc(sizeof(*f));

    if (f == NULL)
        return NULL;
    f->refs = 1;
    f->len = sf->len;
    f->under = sf;
    shared_ref(sf);
    return f;
}

/* The frame of a message: header, then the payload. */
static gh_frame_ref *frame_of(int opcode, const void *data, size_t len)
{
    uint8_t hdr[GH_WS_MAX_HEADER];
    size_t hlen = gh_ws_frame_header(hdr, opcode, true, len);
    gh_frame_ref *f;

    if (len > SIZE_MAX - hlen || (f = gh_frame_ref_new(hlen + len)) == NULL)
        return NULL;
    memcpy(f->data, hdr, hlen);
    if (len > 0)
        memcpy(f->data + hlen, data, len);
    return f;
}

int gh_frame_set_init(gh_frame_set *s, int opcode, const void *data, size_t len)
{
    memset(s, 0, sizeof(*s));
    if ((s->plain = frame_of(opcode, data, len)) == NULL)
        return GH_ENOMEM;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s->plain);
        return GH_ENOMEM;
    }
    s->opcode = opcode;
    s->len = len;
    s->data = s->plain->data + (s->plain->len - len);
    return GH_OK;
}

void gh_frame_set_clear(gh_frame_set *s)
{
    shared_release(s->plain);
    for (size_t i = 0; i < s->nvariants; i++)
        shared_release(s->variant[i]);
    pthread_mutex_destroy(&s->mu);
}

gh_frame_ref *gh_topic_msg_plain(gh_topic_msg *m)
{
    if (m->plain == NULL)
        m->plain = m->set != NULL ? handle_of(m->set->plain)
                                  : frame_of(m->opcode, m->data, m->len);
    return m->plain;
}

/* Keeps f (taking a reference of its own) under key, when a slot is free. */
static void keep(gh_topic_msg *m, unsigned key, gh_frame_ref *f)
{
    if (m->ndeflated == GH_TOPIC_MSG_VARIANTS)
        return;
    m->deflated_key[m->ndeflated] = key;
    m->deflated[m->ndeflated++] = f;
    f->refs++;
}

/* make()'s frame, or the plain one when it says so; a reference for the
 * caller. */
static gh_frame_ref *made(gh_topic_msg *m, gh_topic_make_fn make, void *ctx, int *err)
{
    gh_frame_ref *f;

    *err = 0;
    if ((f = make(ctx, m, err)) != NULL || *err < 0)
        return f;
    if ((f = gh_topic_msg_plain(m)) == NULL) {
        *err = GH_ENOMEM;
        return NULL;
    }
    f->refs++;
    return f;
}

/* The set's frame for key, made by this worker when no other has (the
 * set's reference; the plain frame when make says so). NULL: made for this
 * worker alone (every slot used) or an error (*err < 0). Takes the set's
 * lock: a worker making a frame others need next makes them wait for it,
 * so that it is made once. */
static gh_frame_ref *set_variant(gh_topic_msg *m, unsigned key, gh_topic_make_fn make,
                                 void *ctx, int *err)
{
    gh_frame_set *s = m->set;
    gh_frame_ref *sf = NULL;

    *err = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nvariants && sf == NULL; i++)
        if (s->key[i] == key)
            sf = s->variant[i];
    if (sf == NULL && s->nvariants < GH_TOPIC_MSG_VARIANTS) {
        if ((sf = make(ctx, m, err)) == NULL && *err == 0) {
            sf = s->plain;
            shared_ref(sf);
        }
        if (sf != NULL) {
            s->key[s->nvariants] = key;
            s->variant[s->nvariants++] = sf;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return sf;
}

gh_frame_ref *gh_topic_msg_variant(gh_topic_msg *m, unsigned key, gh_topic_make_fn make,
                                   void *ctx, int *err)
{
    gh_frame_ref *f, *sf;

    *err = 0;
    for (size_t i = 0; i < m->ndeflated; i++)
        if (m->deflated_key[i] == key) {
            m->deflated[i]->refs++;
            return m->deflated[i];
        }
    if (m->set != NULL && (sf = set_variant(m, key, make, ctx, err)) != NULL) {
        if (sf == m->set->plain) {
            if ((f = gh_topic_msg_plain(m)) != NULL)
                f->refs++;
        } else {
            f = handle_of(sf);
        }
        if (f == NULL)
            *err = GH_ENOMEM;
    } else if (*err < 0) {
        return NULL;
    } else {
        f = made(m, make, ctx, err);
    }
    if (f != NULL)
        keep(m, key, f);
    return f;
}

/* Drops the delivery's own references on the frames it made. */
static void topic_msg_done(gh_topic_msg *m)
{
    if (m->plain != NULL)
        gh_frame_ref_release(NULL, 0, m->plain);
    for (size_t i = 0; i < m->ndeflated; i++)
        gh_frame_ref_release(NULL, 0, m->deflated[i]);
}

/* FNV-1a over the key. */
uint64_t gh_topics_key_hash(const char *ns, size_t nslen, const char *name, size_t len)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < nslen; i++)
        h = (h ^ (uint8_t)ns[i]) * 1099511628211ULL;
    h = (h ^ 0) * 1099511628211ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)name[i]) * 1099511628211ULL;
    return h;
}

bool gh_topics_key_ok(const char *ns, const char *name, size_t len, size_t *nslen)
{
    if (ns == NULL || name == NULL || len == 0 || len > GH_TOPIC_MAX_NAME)
        return false;
    *nslen = strnlen(ns, GH_TOPIC_MAX_NS + 1);
    return *nslen > 0 && *nslen <= GH_TOPIC_MAX_NS;
}

static topic *find(const struct gh_topics *t, const char *ns, size_t nslen,
                   const char *name, size_t len, uint64_t h)
{
    size_t keylen = nslen + 1 + len;

    for (topic *p = t->buckets[h & (t->nbuckets - 1)]; p != NULL; p = p->next) {
        if (p->hash == h && p->keylen == keylen &&
            memcmp(p->key, ns, nslen) == 0 && p->key[nslen] == '\0' &&
            memcmp(p->key + nslen + 1, name, len) == 0)
            return p;
    }
    return NULL;
}

static void grow_table(struct gh_topics *t)
{
    size_t n = t->nbuckets * 2;
    topic **b = calloc(n, sizeof(*b));

    if (b == NULL)
        return;                 /* keep the longer chains; still correct */
    for (size_t i = 0; i < t->nbuckets; i++) {
        topic *p = t->buckets[i], *next;
        for (; p != NULL; p = next) {
            next = p->next;
            p->next = b[p->hash & (n - 1)];
            b[p->hash & (n - 1)] = p;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

static void topic_remove(struct gh_topics *t, topic *tp)
{
    topic **pp = &t->buckets[tp->hash & (t->nbuckets - 1)];

    while (*pp != tp)
        pp = &(*pp)->next;
    *pp = tp->next;
    t->ntopics--;
    free(tp->subs);
    free(tp);
}

struct gh_topics *gh_topics_create(gh_topic_sink sink)
{
    struct gh_topics *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    if ((t->buckets = calloc(INITIAL_BUCKETS, sizeof(*t->buckets))) == NULL) {
        free(t);
        return NULL;
    }
    t->nbuckets = INITIAL_BUCKETS;
    t->sink = sink;
    return t;
}

void gh_topics_destroy(struct gh_topics *t)
{
    if (t == NULL)
        return;
    /* subscriptions belong to subscribers, which must be gone; free what a
     * leak would otherwise hold */
    for (size_t i = 0; i < t->nbuckets; i++) {
        topic *p = t->buckets[i], *next;
        for (; p != NULL; p = next) {
            next = p->next;
            for (size_t k = 0; k < p->nsubs; k++)
                p->subs[k]->t = NULL;
            free(p->subs);
            free(p);
        }
    }
    free(t->buckets);
    free(t);
}

/* Heap growth glibc keeps instead of trimming. A publish makes libevent
 * allocate one small chain per subscriber and frees them all once written;
 * with glibc's default 128 KiB trim threshold every such round shrank the
 * heap with brk() and the next one faulted the pages back in, about a
 * third of fan-out throughput with 1,000 subscribers. */
#define HEAP_TRIM_THRESHOLD (4 * 1024 * 1024)

int gh_topics_new(gh_loop *loop, gh_topic_sink sink)
{
#ifdef __GLIBC__
    (void)mallopt(M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD);
#endif
    loop->topics = gh_topics_create(sink);
    return loop->topics != NULL ? GH_OK : GH_ENOMEM;
}

void gh_topics_free(gh_loop *loop)
{
    gh_topics_destroy(loop->topics);
    loop->topics = NULL;
}

/* Tells the bus tp's subscriber count, where it asked for it. */
static void put_count(const topic *tp)
{
    if (tp->count != NULL)
        __atomic_store_n(tp->count, tp->nsubs, __ATOMIC_RELAXED);
}

/* The bus's watch callback for tp (on: 1 first subscriber, 0 last gone),
 * and where it keeps the count while the topic lives. */
static void watch(struct gh_topics *t, topic *tp, int on)
{
    size_t nslen;
    const char *name;

    if (!on)
        tp->count = NULL;
    if (!t->has_bus || t->bus.watch == NULL)
        return;
    nslen = strlen(tp->key);
    name = tp->key + nslen + 1;
    t->bus.watch(t->bus.ctx, tp->key, name, tp->keylen - nslen - 1, on);
    if (on && t->bus.count_at != NULL) {
        tp->count = t->bus.count_at(t->bus.ctx, tp->key, name, tp->keylen - nslen - 1);
        put_count(tp);
    }
}

void gh_topics_set_bus(struct gh_topics *t, const gh_topic_bus *bus)
{
    t->has_bus = bus != NULL;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (topic *p = t->buckets[i]; p != NULL; p = p->next)
            p->count = NULL;            /* the old bus's */
    if (bus == NULL)
        return;
    t->bus = *bus;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (topic *p = t->buckets[i]; p != NULL; p = p->next)
            watch(t, p, 1);
}

int gh_topics_subscribe(struct gh_topics *t, const char *ns, const char *name,
                        size_t len, void *subscriber, gh_topic_sub **list)
{
    size_t nslen;
    uint64_t h;
    topic *tp;
    gh_topic_sub *s;
    bool created = false;

    if (!gh_topics_key_ok(ns, name, len, &nslen))
        return GH_EINVAL;
    h = gh_topics_key_hash(ns, nslen, name, len);
    tp = find(t, ns, nslen, name, len, h);
    if (tp != NULL) {
        for (s = *list; s != NULL; s = s->next)
            if (s->t == tp)
                return GH_OK;   /* already subscribed */
    } else {
        size_t keylen = nslen + 1 + len;
        if ((tp = calloc(1, sizeof(*tp) + keylen)) == NULL)
            return GH_ENOMEM;
        tp->hash = h;
        tp->keylen = keylen;
        memcpy(tp->key, ns, nslen);
        tp->key[nslen] = '\0';
        memcpy(tp->key + nslen + 1, name, len);
        tp->next = t->buckets[h & (t->nbuckets - 1)];
        t->buckets[h & (t->nbuckets - 1)] = tp;
        t->ntopics++;
        created = true;
    }
    if (tp->nsubs == tp->cap) {
        size_t cap = tp->cap ? tp->cap * 2 : 4;
        gh_topic_sub **subs = realloc(tp->subs, cap * sizeof(*subs));
        if (subs == NULL)
            goto nomem;
        tp->subs = subs;
        tp->cap = cap;
    }
    if ((s = malloc(sizeof(*s))) == NULL)
        goto nomem;
    s->t = tp;
    s->subscriber = subscriber;
    s->index = tp->nsubs;
    s->serial = ++t->serial;
    s->held = false;
    s->next = *list;
    *list = s;
    tp->subs[tp->nsubs++] = s;
    if (created && t->ntopics > t->nbuckets)
        grow_table(t);
    if (created)
        watch(t, tp, 1);
    else
        put_count(tp);
    return GH_OK;
nomem:
    if (created)
        topic_remove(t, tp);
    return GH_ENOMEM;
}

/* Unlinks s from its topic (not from the subscriber's list) and frees it. */
static void sub_drop(struct gh_topics *t, gh_topic_sub *s)
{
    topic *tp = s->t;

    if (tp != NULL) {
        gh_topic_sub *last = tp->subs[--tp->nsubs];
        tp->subs[s->index] = last;
        last->index = s->index;
        if (tp->nsubs == 0) {
            watch(t, tp, 0);
            topic_remove(t, tp);
        } else {
            put_count(tp);
        }
    }
    free(s);
}

int gh_topics_unsubscribe(struct gh_topics *t, const char *ns, const char *name,
                          size_t len, gh_topic_sub **list)
{
    size_t nslen;
    topic *tp;

    if (!gh_topics_key_ok(ns, name, len, &nslen))
        return GH_ENOENT;
    tp = find(t, ns, nslen, name, len, gh_topics_key_hash(ns, nslen, name, len));
    if (tp == NULL)
        return GH_ENOENT;
    for (gh_topic_sub **pp = list; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->t == tp) {
            gh_topic_sub *s = *pp;
            *pp = s->next;
            sub_drop(t, s);
            return GH_OK;
        }
    }
    return GH_ENOENT;
}

void gh_topics_unsubscribe_all(struct gh_topics *t, gh_topic_sub **list)
{
    gh_topic_sub *s = *list, *next;

    for (; s != NULL; s = next) {
        next = s->next;
        sub_drop(t, s);
    }
    *list = NULL;
}

long gh_topics_deliver(struct gh_topics *t, const char *ns, const char *name,
                       size_t len, int opcode, const void *data, size_t dlen)
{
    return gh_topics_deliver_upto(t, ns, name, len, opcode, data, dlen, UINT64_MAX);
}

uint64_t gh_topics_serial(const struct gh_topics *t)
{
    return t->serial;
}

long gh_topics_deliver_upto(struct gh_topics *t, const char *ns, const char *name,
                            size_t len, int opcode, const void *data, size_t dlen,
                            uint64_t upto)
{
    return gh_topics_deliver_ex(t, ns, name, len, opcode, data, dlen, upto, 0);
}

/* Hands m to every subscriber of (ns, name) made up to upto, but skip. */
static long deliver(struct gh_topics *t, const char *ns, const char *name, size_t len,
                    gh_topic_msg *m, uint64_t upto, uint64_t skip)
{
    size_t nslen;
    topic *tp;
    long taken = 0;

    if (!gh_topics_key_ok(ns, name, len, &nslen) ||
        (m->opcode != GH_WS_OP_TEXT && m->opcode != GH_WS_OP_BINARY) ||
        m->len > SIZE_MAX - sizeof(gh_frame_ref) - GH_WS_MAX_HEADER ||
        (m->len > 0 && m->data == NULL))
        return GH_EINVAL;
    tp = find(t, ns, nslen, name, len, gh_topics_key_hash(ns, nslen, name, len));
    if (tp == NULL || tp->nsubs == 0)
        return 0;
    tp->messages++;
    for (size_t i = 0; i < tp->nsubs; i++) {
        const gh_topic_sub *s = tp->subs[i];
        if (s->serial <= upto && s->serial != skip && !s->held &&
            t->sink(s->subscriber, m) == 0)
            taken++;
    }
    topic_msg_done(m);
    return taken;
}

long gh_topics_deliver_ex(struct gh_topics *t, const char *ns, const char *name,
                          size_t len, int opcode, const void *data, size_t dlen,
                          uint64_t upto, uint64_t skip)
{
    gh_topic_msg m = { .opcode = opcode, .data = data, .len = dlen };

    return deliver(t, ns, name, len, &m, upto, skip);
}

long gh_topics_deliver_set(struct gh_topics *t, const char *ns, const char *name,
                           size_t len, gh_frame_set *set, uint64_t upto, uint64_t skip)
{
    gh_topic_msg m = { .opcode = set->opcode, .data = set->data, .len = set->len, .set = set };

    return deliver(t, ns, name, len, &m, upto, skip);
}

/* The subscription of *list's owner to (ns, name), or NULL. */
static gh_topic_sub *sub_of(struct gh_topics *t, const char *ns, const char *name,
                            size_t len, gh_topic_sub *list)
{
    size_t nslen;
    topic *tp;

    if (!gh_topics_key_ok(ns, name, len, &nslen))
        return NULL;
    tp = find(t, ns, nslen, name, len, gh_topics_key_hash(ns, nslen, name, len));
    for (gh_topic_sub *s = list; tp != NULL && s != NULL; s = s->next)
        if (s->t == tp)
            return s;
    return NULL;
}

int gh_topics_hold(struct gh_topics *t, const char *ns, const char *name, size_t len,
                   gh_topic_sub *list, bool held)
{
    gh_topic_sub *s = sub_of(t, ns, name, len, list);

    if (s == NULL)
        return GH_ENOENT;
    s->held = held;
    return GH_OK;
}

uint64_t gh_topics_sub_serial(struct gh_topics *t, const char *ns, const char *name,
                              size_t len, gh_topic_sub *list)
{
    gh_topic_sub *s = sub_of(t, ns, name, len, list);

    return s != NULL ? s->serial : 0;
}

int gh_topics_publish(struct gh_topics *t, const char *ns, const char *name,
                      size_t len, int opcode, const void *data, size_t dlen)
{
    long n;

    if (t->has_bus)
        return t->bus.publish(t->bus.ctx, ns, name, len, opcode, data, dlen);
    n = gh_topics_deliver(t, ns, name, len, opcode, data, dlen);
    return n < 0 ? (int)n : GH_OK;
}

size_t gh_topics_count(const struct gh_topics *t, const char *ns, const char *name,
                       size_t len)
{
    size_t nslen;
    topic *tp;

    if (!gh_topics_key_ok(ns, name, len, &nslen))
        return 0;
    tp = find(t, ns, nslen, name, len, gh_topics_key_hash(ns, nslen, name, len));
    return tp != NULL ? tp->nsubs : 0;
}

size_t gh_topics_size(const struct gh_topics *t)
{
    return t->ntopics;
}

void gh_topics_each(const struct gh_topics *t, gh_topics_each_fn fn, void *arg)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (const topic *tp = t->buckets[i]; tp != NULL; tp = tp->next) {
            size_t nslen = strlen(tp->key);

            fn(arg, tp->key, tp->key + nslen + 1, tp->keylen - nslen - 1, tp->nsubs,
               tp->messages);
        }
    }
}
