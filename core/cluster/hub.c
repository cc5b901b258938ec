/* hub.c: topics and topic state across the workers of one process (see
 * hub.h for what and why).
 *
 * Topics are kept in STRIPES hash tables, each under its own mutex, picked
 * by the topic's hash (topic.c's key and hash): publishes to different
 * topics rarely meet on a lock. A topic here knows which workers have a
 * local subscriber (a bit per worker, kept by the topics' watch callback)
 * and how many (each worker stores its own count in its slot, count_at:
 * a relaxed atomic store, no lock, on its subscribes), counts the
 * messages published to it, and holds the topic state: members (worker,
 * connection id, value) in join order, and the log. An entry lives while a worker subscribes or a
 * member is set; the log goes with the last member, as in tstate.c.
 *
 * Everything that reaches a worker is a task in its mailbox (loop.h),
 * posted while the topic's lock is held: that is the whole ordering
 * argument. A message is framed once and shared by the workers it is
 * posted to (and by the publisher's own delivery), its count of holders
 * atomic; its compressed frames are made once for all of them too
 * (gh_frame_set, topic.h).
 *
 * Backpressure: each worker's backlog (the bytes of messages posted to it
 * and not yet delivered) is counted. A publish that finds a worker's over
 * the limit still goes out, and tells its own loop (hub_congested), so
 * the connection whose message made it stops being read (wsconn.c): a
 * client flooding a topic is paced by the slowest worker with
 * subscribers, as one loop paces it by delivering itself, instead of
 * piling up in that worker's mailbox. When the backlog is down to a
 * quarter of that every worker is told to read its paused publishers
 * again. The limit is the config's worker_backlog (gh_hub_set_backlog). */
#include "hub.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "bus.h"
#include "log.h"
#include "topic.h"
#include "tstate.h"
#include "wsframe.h"

#define STRIPES        64
#define MASK_WORDS     ((GH_MAX_WORKERS + 63) / 64)
#define FIRST_BUCKETS  16

typedef struct hmember {
    struct hmember *prev, *next;        /* join order */
    unsigned        worker;
    uint64_t        connid;
    char           *value;
    size_t          vlen;
    char           *farewell;           /* NULL: none (re-registered with a bus) */
    size_t          flen;
} hmember;

typedef struct htopic {
    struct htopic *next;                /* hash chain */
    uint64_t       hash;
    uint64_t       mask[MASK_WORDS];    /* workers with a local subscriber */
    unsigned       nworkers;            /* bits set */
    hmember       *head, *tail;
    size_t         nmembers;
    gh_tlog        log;
    unsigned      *pending;             /* per worker: tasks posted, not yet run */
    unsigned       npending;            /* their sum */
    size_t        *subs;                /* per worker: its subscribers, stored by
                                           that worker (atomic) while its bit is set
                                           (count_at), read under the lock */
    uint64_t       messages;            /* published while someone subscribed */
    size_t         nslen, keylen;       /* key: ns, NUL, name */
    char           key[];
} htopic;

typedef struct stripe {
    pthread_mutex_t mu;
    htopic        **buckets;
    size_t          nbuckets, n;
} stripe;

/* What a worker's topics and topic state hand the hub as their bus ctx. */
typedef struct hctx {
    gh_hub  *hub;
    unsigned worker;
} hctx;

struct gh_hub {
    gh_loop **loops;
    unsigned  n;
    hctx     *ctx;
    size_t   *backlog;                  /* per worker: bytes posted, not delivered (atomic) */
    bool     *congested;                /* per worker: over the limit since (atomic) */
    size_t    high;                     /* the limit (atomic: a reload sets it) */
    bool      bused;                    /* atomic: a bus serves the process; what
                                           goes to Redis is posted to worker 0 */
    gh_bus   *bus;                      /* that bus: worker 0's thread only */
    stripe    s[STRIPES];
};

/* A message for workers: delivered with gh_topics_deliver_set() by each,
 * its frames made once for all of them (the set); the publishing worker
 * applies upto and skip (the others deliver to every subscriber they
 * have). */
typedef struct hmsg {
    gh_hub      *hub;
    unsigned     refs;                  /* atomic: workers yet to deliver it */
    unsigned     origin;
    uint64_t     upto, skip;
    size_t       nslen, name_len;
    size_t       cost;                  /* its bytes, counted in each worker's backlog */
    gh_frame_set set;
    char         buf[];                 /* ns, NUL, name */
} hmsg;

/* A state answer for one worker: the members' values and the log, copied. */
typedef struct hanswer {
    gh_hub          *hub;
    char            *key;               /* into buf: ns, NUL, name; NULL for
                                           Redis's answer (not counted pending) */
    size_t           nslen, keylen;
    uint64_t         reqid;
    int              result;            /* a claim's */
    bool             whole;
    gh_plugin_bytes *members, *log;
    size_t           nmembers, nlog;
    char             buf[];
} hanswer;

/* ---- the table ------------------------------------------------------------- */

static stripe *stripe_of(gh_hub *h, uint64_t hash)
{
    return &h->s[(hash >> 32) % STRIPES];
}

static htopic *find(const stripe *st, const char *ns, size_t nslen, const char *name,
                    size_t len, uint64_t hash)
{
    size_t keylen = nslen + 1 + len;

    if (st->nbuckets == 0)
        return NULL;
    for (htopic *t = st->buckets[hash & (st->nbuckets - 1)]; t != NULL; t = t->next)
        if (t->hash == hash && t->keylen == keylen && memcmp(t->key, ns, nslen) == 0 &&
            t->key[nslen] == '\0' && memcmp(t->key + nslen + 1, name, len) == 0)
            return t;
    return NULL;
}

static void grow(stripe *st)
{
    size_t n = st->nbuckets ? st->nbuckets * 2 : FIRST_BUCKETS;
    htopic **b = calloc(n, sizeof(*b));

    if (b == NULL)
        return;                 /* longer chains; still correct */
    for (size_t i = 0; i < st->nbuckets; i++) {
        for (htopic *t = st->buckets[i], *next; t != NULL; t = next) {
            next = t->next;
            t->next = b[t->hash & (n - 1)];
            b[t->hash & (n - 1)] = t;
        }
    }
    free(st->buckets);
    st->buckets = b;
    st->nbuckets = n;
}

static htopic *add(stripe *st, unsigned nworkers, const char *ns, size_t nslen,
                   const char *name, size_t len, uint64_t hash)
{
    size_t keylen = nslen + 1 + len;
    htopic *t;

    if ((st->n >= st->nbuckets) && (grow(st), st->nbuckets == 0))
        return NULL;
    if ((t = calloc(1, sizeof(*t) + keylen)) == NULL)
        return NULL;
    if ((t->pending = calloc(nworkers, sizeof(*t->pending))) == NULL ||
        (t->subs = calloc(nworkers, sizeof(*t->subs))) == NULL) {
        free(t->pending);
        free(t);
        return NULL;
    }
    t->hash = hash;
    t->nslen = nslen;
    t->keylen = keylen;
    memcpy(t->key, ns, nslen);
    memcpy(t->key + nslen + 1, name, len);
    t->next = st->buckets[hash & (st->nbuckets - 1)];
    st->buckets[hash & (st->nbuckets - 1)] = t;
    st->n++;
    return t;
}

/* Frees t when nothing keeps it: no worker subscribes, no member, no
 * task of it waits in a mailbox. */
static void maybe_free(stripe *st, htopic *t)
{
    htopic **pp;

    if (t->nworkers > 0 || t->nmembers > 0 || t->npending > 0)
        return;
    for (pp = &st->buckets[t->hash & (st->nbuckets - 1)]; *pp != t; pp = &(*pp)->next)
        ;
    *pp = t->next;
    st->n--;
    gh_tlog_clear(&t->log);
    free(t->pending);
    free(t->subs);
    free(t);
}

/* ---- to the workers ------------------------------------------------------------ */

static void msg_release(hmsg *m)
{
    if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        gh_frame_set_clear(&m->set);
        free(m);
    }
}

static stripe *lookup_key(gh_hub *h, const char *key, size_t nslen, size_t keylen,
                          htopic **out);

/* A task of topic key has run on worker: one less pending there. */
static void settle(gh_hub *h, const char *key, size_t nslen, size_t keylen, unsigned worker)
{
    htopic *t;
    stripe *st = lookup_key(h, key, nslen, keylen, &t);

    if (t != NULL && t->pending[worker] > 0) {
        t->pending[worker]--;
        t->npending--;
        maybe_free(st, t);
    }
    pthread_mutex_unlock(&st->mu);
}

static void task_resume_publishers(gh_loop *loop, void *arg)
{
    (void)arg;
    if (loop->publishers_resume != NULL)
        loop->publishers_resume(loop);
}

/* Worker w delivered cost bytes: down to a quarter of the limit after being
 * over it,
 * every worker reads its paused publishers again. */
static void backlog_down(gh_hub *h, unsigned w, size_t cost)
{
    bool was = true;

    if (__atomic_sub_fetch(&h->backlog[w], cost, __ATOMIC_ACQ_REL) >
            __atomic_load_n(&h->high, __ATOMIC_RELAXED) / 4 ||
        !__atomic_load_n(&h->congested[w], __ATOMIC_ACQUIRE) ||
        !__atomic_compare_exchange_n(&h->congested[w], &was, false, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return;
    for (unsigned k = 0; k < h->n; k++)
        if (gh_loop_post(h->loops[k], task_resume_publishers, NULL) != GH_OK)
            GH_LOG(GH_LOG_ERROR, "hub: out of memory: worker %u's paused publishers wait "
                   "for the next message", k);
}

static void task_deliver(gh_loop *loop, void *arg)
{
    hmsg *m = arg;
    gh_hub *h = m->hub;
    bool mine = loop->id == m->origin;

    if (loop->topics != NULL)
        (void)gh_topics_deliver_set(loop->topics, m->buf, m->buf + m->nslen + 1, m->name_len,
                                    &m->set, mine ? m->upto : UINT64_MAX, mine ? m->skip : 0);
    settle(h, m->buf, m->nslen, m->nslen + 1 + m->name_len, loop->id);
    backlog_down(h, loop->id, m->cost);
    msg_release(m);
}

/* Posts fn(arg) to worker w for topic t, counted pending. Under t's lock. */
static int post(gh_hub *h, htopic *t, unsigned w, gh_loop_task_fn fn, void *arg)
{
    if (gh_loop_post(h->loops[w], fn, arg) != GH_OK)
        return GH_ENOMEM;
    t->pending[w]++;
    t->npending++;
    return GH_OK;
}

/* Whether worker w may deliver a message of t itself, now, instead of
 * through its mailbox: it subscribes, and nothing of t waits for it there
 * (a message sequenced before, or a join's state answer). Under t's lock.
 * Its own publishes then reach its subscribers before anything it sends
 * after them, as with one worker. */
static bool here_now(const htopic *t, unsigned w)
{
    return (t->mask[w / 64] >> (w % 64) & 1) && t->pending[w] == 0;
}

/* Posts a copy of data to every worker subscribing to t but the one
 * delivering it itself (except: the origin when here_now). With pace, the
 * origin is the calling thread's worker, whose publisher is paused when a
 * backlog runs over. With mine, the message posted is also the caller's,
 * for its own delivery (*mine: NULL when none was posted; drop it with
 * msg_release): every worker then sends the same frames. Under t's
 * lock. */
static int broadcast(gh_hub *h, htopic *t, int opcode, const void *data, size_t len,
                     unsigned origin, uint64_t upto, uint64_t skip, unsigned except,
                     bool pace, hmsg **mine)
{
    size_t name_len = t->keylen - t->nslen - 1;
    unsigned n = t->nworkers - (except < h->n && (t->mask[except / 64] >> (except % 64) & 1));
    hmsg *m;
    unsigned posted = 0;

    if (mine != NULL)
        *mine = NULL;
    if (n == 0)
        return GH_OK;
    if ((m = malloc(sizeof(*m) + t->keylen)) == NULL)
        return GH_ENOMEM;
    if (gh_frame_set_init(&m->set, opcode, data, len) != GH_OK) {
        free(m);
        return GH_ENOMEM;
    }
    m->hub = h;
    m->refs = n + (mine != NULL);
    m->origin = origin;
    m->upto = upto;
    m->skip = skip;
    m->nslen = t->nslen;
    m->name_len = name_len;
    m->cost = sizeof(*m) + t->keylen + m->set.plain->len;
    memcpy(m->buf, t->key, t->keylen);
    if (mine != NULL)
        *mine = m;
    for (unsigned w = 0; w < h->n; w++) {
        if (w == except || !(t->mask[w / 64] >> (w % 64) & 1))
            continue;
        if (post(h, t, w, task_deliver, m) == GH_OK) {
            posted++;
            /* the origin is this thread: its loop's flag is ours to set */
            if (__atomic_add_fetch(&h->backlog[w], m->cost, __ATOMIC_ACQ_REL) >
                __atomic_load_n(&h->high, __ATOMIC_RELAXED)) {
                __atomic_store_n(&h->congested[w], true, __ATOMIC_RELEASE);
                if (pace && origin < h->n)
                    h->loops[origin]->hub_congested = true;
            }
        } else {
            GH_LOG(GH_LOG_ERROR, "hub: out of memory: a message to topic %s is lost on "
                   "worker %u", t->key + t->nslen + 1, w);
            msg_release(m);
        }
    }
    return posted > 0 ? GH_OK : GH_ENOMEM;
}

/* The calling worker's own delivery of what broadcast() handed it (m: the
 * frames the others send too, or NULL when it posted nothing). */
static void deliver_here(gh_loop *loop, const char *ns, const char *name, size_t len,
                         hmsg *m, int opcode, const void *data, size_t dlen, uint64_t skip)
{
    if (m != NULL) {
        (void)gh_topics_deliver_set(loop->topics, ns, name, len, &m->set, UINT64_MAX, skip);
        msg_release(m);
    } else {
        (void)gh_topics_deliver_ex(loop->topics, ns, name, len, opcode, data, dlen,
                                   UINT64_MAX, skip);
    }
}

static void task_answer(gh_loop *loop, void *arg)
{
    hanswer *a = arg;
    gh_plugin_topic_state st = {
        .whole = a->whole, .members = a->members, .nmembers = a->nmembers,
        .log = a->log, .nlog = a->nlog,
    };

    /* settled first: what the callback publishes goes out at once, in
     * order with what it sends (the hold is released before it runs) */
    if (a->key != NULL)
        settle(a->hub, a->key, a->nslen, a->keylen, loop->id);
    if (loop->tstate != NULL)
        gh_tstate_answer(loop->tstate, a->reqid, a->result, &st);
    free(a);
}

/* A state (items: nm members, then nl log entries) copied into one block
 * for request reqid, with the topic's key when t is given. NULL on
 * ENOMEM. */
static hanswer *answer_new(gh_hub *h, const htopic *t, uint64_t reqid,
                           const gh_plugin_bytes *items, size_t nm, size_t nl, bool whole)
{
    size_t bytes = t != NULL ? t->keylen : 0;
    hanswer *a;
    gh_plugin_bytes *v;
    char *p;

    for (size_t i = 0; i < nm + nl; i++)
        bytes += items[i].len;
    if ((a = malloc(sizeof(*a) + (nm + nl) * sizeof(gh_plugin_bytes) + bytes)) == NULL)
        return NULL;
    a->hub = h;
    a->reqid = reqid;
    a->result = GH_OK;
    a->whole = whole;
    a->nmembers = nm;
    a->nlog = nl;
    v = (gh_plugin_bytes *)(void *)a->buf;
    a->members = nm > 0 ? v : NULL;
    a->log = nl > 0 ? v + nm : NULL;
    p = (char *)(v + nm + nl);
    a->key = NULL;
    a->nslen = a->keylen = 0;
    if (t != NULL) {
        a->key = p;
        a->nslen = t->nslen;
        a->keylen = t->keylen;
        memcpy(p, t->key, t->keylen);
        p += t->keylen;
    }
    for (size_t i = 0; i < nm + nl; i++) {
        if (items[i].len > 0)
            memcpy(p, items[i].data, items[i].len);
        v[i] = (gh_plugin_bytes){ p, items[i].len };
        p += items[i].len;
    }
    return a;
}

/* t's state copied into one block for request reqid. Under t's lock.
 * NULL on ENOMEM. */
static hanswer *answer_of(gh_hub *h, const htopic *t, uint64_t reqid, bool whole)
{
    size_t nm = t->nmembers, nl = t->log.count, i = 0;
    gh_plugin_bytes small[32], *items = small;
    hanswer *a;

    if (nm + nl > 32 && (items = calloc(nm + nl, sizeof(*items))) == NULL)
        return NULL;
    for (const hmember *m = t->head; m != NULL; m = m->next)
        items[i++] = (gh_plugin_bytes){ m->value, m->vlen };
    for (size_t k = 0; k < nl; k++) {
        size_t len;
        const char *d = gh_tlog_at(&t->log, k, &len);
        items[i++] = (gh_plugin_bytes){ d, len };
    }
    a = answer_new(h, t, reqid, items, nm, nl, whole);
    if (items != small)
        free(items);
    return a;
}

/* t's state answered to worker. Under t's lock. Counted pending until it
 * has run: the worker's publishes to t wait behind it (a joiner's
 * subscription is held until then). whole: false when it stands in for
 * Redis's. */
static int answer(gh_hub *h, htopic *t, unsigned worker, uint64_t reqid, int result,
                  bool whole)
{
    hanswer *a = answer_of(h, t, reqid, whole);

    if (a == NULL)
        return GH_ENOMEM;
    a->result = result;
    if (post(h, t, worker, task_answer, a) != GH_OK) {
        free(a);
        return GH_ENOMEM;
    }
    return GH_OK;
}

/* ---- the buses' functions ----------------------------------------------------------- */

/* Locks the stripe of (ns, name) and finds (or with create, adds) its
 * topic. Returns the stripe, locked, whatever *out is. */
static stripe *lookup(gh_hub *h, const char *ns, const char *name, size_t len, bool create,
                      htopic **out)
{
    size_t nslen = strlen(ns);
    uint64_t hash = gh_topics_key_hash(ns, nslen, name, len);
    stripe *st = stripe_of(h, hash);

    pthread_mutex_lock(&st->mu);
    *out = find(st, ns, nslen, name, len, hash);
    if (*out == NULL && create)
        *out = add(st, h->n, ns, nslen, name, len, hash);
    return st;
}

static stripe *lookup_key(gh_hub *h, const char *key, size_t nslen, size_t keylen,
                          htopic **out)
{
    const char *name = key + nslen + 1;
    size_t len = keylen - nslen - 1;
    uint64_t hash = gh_topics_key_hash(key, nslen, name, len);
    stripe *st = stripe_of(h, hash);

    pthread_mutex_lock(&st->mu);
    *out = find(st, key, nslen, name, len, hash);
    return st;
}

/* Sets (value != NULL) or removes member (w, connid) of t. Returns
 * whether it was a member before, or GH_ENOMEM. Under t's lock. */
static int table_set(htopic *t, unsigned w, uint64_t connid, const char *value, size_t vlen,
                     const char *farewell, size_t flen)
{
    hmember *m;

    for (m = t->head; m != NULL; m = m->next)
        if (m->worker == w && m->connid == connid)
            break;
    if (value != NULL) {
        /* the farewell is the worker's to publish when the member goes;
         * kept here to register the member again with a bus */
        char *v = malloc(vlen > 0 ? vlen : 1),
             *f = farewell != NULL ? malloc(flen > 0 ? flen : 1) : NULL;
        bool was = m != NULL;

        if (v == NULL || (farewell != NULL && f == NULL) ||
            (m == NULL && (m = calloc(1, sizeof(*m))) == NULL)) {
            free(v);
            free(f);
            return GH_ENOMEM;
        }
        memcpy(v, value, vlen);
        if (f != NULL && flen > 0)
            memcpy(f, farewell, flen);
        free(m->farewell);
        m->farewell = f;
        m->flen = f != NULL ? flen : 0;
        if (m->value == NULL) {
            m->worker = w;
            m->connid = connid;
            m->prev = t->tail;
            if (t->tail != NULL)
                t->tail->next = m;
            else
                t->head = m;
            t->tail = m;
            t->nmembers++;
        }
        free(m->value);
        m->value = v;
        m->vlen = vlen;
        return was;
    }
    if (m == NULL)
        return false;
    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        t->head = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    else
        t->tail = m->prev;
    t->nmembers--;
    free(m->value);
    free(m->farewell);
    free(m);
    if (t->nmembers == 0)
        gh_tlog_clear(&t->log);
    return true;
}

/* A claim decided here: another member with value, or max members, or
 * granted. A granted member is set and its announcement posted to every
 * worker, then the state from before it is answered to worker: there the
 * announcement runs first, while a joiner's subscription is still held,
 * and what the callback publishes follows it. With pace, the caller is
 * worker's thread. Under t's lock. */
static int claim_here(gh_hub *h, htopic *t, unsigned w, uint64_t reqid, uint64_t connid,
                      const char *value, size_t vlen, uint32_t max, uint32_t flags,
                      const char *farewell, size_t flen, const char *announce, size_t alen,
                      uint64_t upto, uint64_t skip, bool whole, bool pace)
{
    size_t others = 0;
    int result = GH_OK, rc;
    hanswer *a;

    for (const hmember *m = t->head; m != NULL; m = m->next) {
        if (m->worker == w && m->connid == connid)
            continue;
        others++;
        if (gh_tstate_value_eq(m->value, m->vlen, value, vlen, (flags & GH_PLUGIN_ICASE) != 0))
            result = GH_EEXIST;
    }
    if (result == GH_OK && max > 0 && others >= max)
        result = GH_ENOSPC;
    if ((a = answer_of(h, t, reqid, whole)) == NULL)
        return GH_ENOMEM;
    a->result = result;
    if (result == GH_OK) {
        if (table_set(t, w, connid, value, vlen, farewell, flen) < 0)
            GH_LOG(GH_LOG_ERROR, "hub: out of memory: a member is not listed in topic %s",
                   t->key + t->nslen + 1);
        if (announce != NULL) {
            if (t->nworkers > 0)
                t->messages++;
            (void)broadcast(h, t, GH_WS_OP_TEXT, announce, alen, w, upto, skip, UINT_MAX,
                            pace, NULL);
        }
    }
    if ((rc = post(h, t, w, task_answer, a)) != GH_OK)
        free(a);
    return rc;
}

/* claim_here() on (ns, name), made if need be; 0 or GH_ENOMEM. Takes
 * and drops the topic's lock. */
static int claim_topic(gh_hub *h, const char *ns, const char *name, size_t len, unsigned w,
                       uint64_t reqid, uint64_t connid, const char *value, size_t vlen,
                       uint32_t max, uint32_t flags, const char *farewell, size_t flen,
                       const char *announce, size_t alen, uint64_t upto, uint64_t skip,
                       bool whole, bool pace)
{
    htopic *t;
    stripe *st = lookup(h, ns, name, len, true, &t);
    int rc = t != NULL ? claim_here(h, t, w, reqid, connid, value, vlen, max, flags, farewell,
                                    flen, announce, alen, upto, skip, whole, pace)
                       : GH_ENOMEM;

    if (t != NULL)
        maybe_free(st, t);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* The state of (ns, name) answered to worker w here; 0 or GH_ENOMEM.
 * Takes and drops the topic's lock. */
static int fetch_topic(gh_hub *h, const char *ns, const char *name, size_t len, unsigned w,
                       uint64_t reqid, bool whole)
{
    htopic *t;
    stripe *st = lookup(h, ns, name, len, true, &t);
    int rc = t != NULL ? answer(h, t, w, reqid, GH_OK, whole) : GH_ENOMEM;

    if (t != NULL)
        maybe_free(st, t);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- with a bus: one for the process, on worker 0 ----------------------------
 * What a worker sends to Redis is posted to worker 0, whose loop the bus
 * runs on, as one operation; worker 0's mailbox is first in first out, so
 * Redis gets each worker's operations in the order they were made, and a
 * topic's first SUBSCRIBE (posted by hub_watch under the topic's lock)
 * before any join of it is asked. What comes back from Redis is handed to
 * the workers from worker 0 in the order Redis sent it (every instance
 * sees Redis's order, this one too): messages through their mailboxes,
 * state answers behind exactly the messages the state includes. Nothing
 * is delivered directly in this mode: the mailboxes are the one order.
 * Redis knows a worker's members as connection (worker << 48 | id) of the
 * process's instance, and a worker's request as (worker << 56 | id). */

enum { OP_PUBLISH, OP_MEMBER, OP_LOG, OP_FETCH, OP_WATCH, OP_CLAIM };

#define CONNID(w, id)  ((uint64_t)(w) << 48 | (id))
#define REQID(w, id)   ((uint64_t)(w) << 56 | (id))

typedef struct hbusop {
    gh_hub  *hub;
    int      kind;
    unsigned worker;
    int      opcode;
    bool     flag;                      /* watch: on; fetch: after_subscribe;
                                           member: last_local */
    bool     flag2;                     /* member: if_member */
    bool     has_value, has_farewell, has_announce;
    uint64_t upto, skip, id;            /* id: connid or reqid */
    uint64_t id2;                       /* claim: connid */
    uint32_t keep;                      /* log: keep; claim: max */
    size_t   nslen, name_len;
    size_t   vlen, flen, alen;          /* member: value, farewell, announce;
                                           publish and log: alen is the data's */
    size_t   cost;
    char     buf[];                     /* ns, NUL, name, value, farewell, announce */
} hbusop;

static hbusop *busop_new(gh_hub *h, int kind, unsigned worker, const char *ns,
                         const char *name, size_t name_len, const char *value, size_t vlen,
                         const char *farewell, size_t flen, const char *announce, size_t alen)
{
    size_t nslen = strlen(ns), n = nslen + 1 + name_len;
    hbusop *op;

    if (vlen > SIZE_MAX / 4 || flen > SIZE_MAX / 4 || alen > SIZE_MAX / 4 ||
        (op = malloc(sizeof(*op) + n + vlen + flen + alen)) == NULL)
        return NULL;
    memset(op, 0, sizeof(*op));
    op->hub = h;
    op->kind = kind;
    op->worker = worker;
    op->nslen = nslen;
    op->name_len = name_len;
    memcpy(op->buf, ns, nslen + 1);
    memcpy(op->buf + nslen + 1, name, name_len);
    op->has_value = value != NULL;
    op->has_farewell = farewell != NULL;
    op->has_announce = announce != NULL;
    op->vlen = value != NULL ? vlen : 0;
    op->flen = farewell != NULL ? flen : 0;
    op->alen = announce != NULL ? alen : 0;
    if (op->vlen > 0)
        memcpy(op->buf + n, value, op->vlen);
    if (op->flen > 0)
        memcpy(op->buf + n + op->vlen, farewell, op->flen);
    if (op->alen > 0)
        memcpy(op->buf + n + op->vlen + op->flen, announce, op->alen);
    op->cost = sizeof(*op) + n + op->vlen + op->flen + op->alen;
    return op;
}

static void task_busop(gh_loop *loop, void *arg);

/* Posts op to worker 0, counted in its backlog; over the limit, the
 * calling worker's publisher is paused (pace: the caller is op->worker's
 * thread). Frees op when it cannot be posted. */
static int busop_post(gh_hub *h, hbusop *op, bool pace)
{
    size_t cost = op->cost;             /* op is worker 0's once posted */
    unsigned w = op->worker;

    /* counted first: worker 0 may run it (and count it down) at once */
    if (__atomic_add_fetch(&h->backlog[0], cost, __ATOMIC_ACQ_REL) >
        __atomic_load_n(&h->high, __ATOMIC_RELAXED)) {
        __atomic_store_n(&h->congested[0], true, __ATOMIC_RELEASE);
        if (pace)
            h->loops[w]->hub_congested = true;
    }
    if (gh_loop_post(h->loops[0], task_busop, op) != GH_OK) {
        GH_LOG(GH_LOG_ERROR, "hub: out of memory: an operation for the bus on topic %s is "
               "lost", op->buf + op->nslen + 1);
        free(op);
        backlog_down(h, 0, cost);
        return GH_ENOMEM;
    }
    return GH_OK;
}

/* The bus's deliver: a message for every worker subscribing (origin:
 * the worker it was published on, which applies upto and skip, or
 * GH_BUS_FOREIGN). On worker 0. */
static void l_deliver(void *ctx, const char *ns, const char *name, size_t len, int opcode,
                      const void *data, size_t dlen, unsigned worker, uint64_t upto,
                      uint64_t skip)
{
    gh_hub *h = ctx;
    htopic *t;
    stripe *st = lookup(h, ns, name, len, false, &t);

    if (t != NULL && t->nworkers > 0) {
        t->messages++;
        (void)broadcast(h, t, opcode, data, dlen, worker < h->n ? worker : UINT_MAX, upto,
                        skip, UINT_MAX, false, NULL);
    }
    pthread_mutex_unlock(&st->mu);
}

static bool l_subscribed(void *ctx, const char *ns, const char *name, size_t len)
{
    htopic *t;
    stripe *st = lookup(ctx, ns, name, len, false, &t);
    bool yes = t != NULL && t->nworkers > 0;

    pthread_mutex_unlock(&st->mu);
    return yes;
}

/* Redis's answer to worker (reqid >> 56)'s request, posted behind the
 * messages worker 0 has handed on before it. */
static void l_answer(void *ctx, uint64_t reqid, int result, const gh_plugin_topic_state *st)
{
    gh_hub *h = ctx;
    unsigned w = (unsigned)(reqid >> 56);
    gh_plugin_bytes *items = NULL;
    size_t nm = st->nmembers, nl = st->nlog;
    hanswer *a;

    if (w >= h->n)
        return;
    if (nm + nl > 0 && (items = calloc(nm + nl, sizeof(*items))) == NULL)
        return;                 /* the request times out and is answered locally */
    for (size_t i = 0; i < nm; i++)
        items[i] = st->members[i];
    for (size_t i = 0; i < nl; i++)
        items[nm + i] = st->log[i];
    a = answer_new(h, NULL, reqid & (((uint64_t)1 << 56) - 1), items, nm, nl, st->whole);
    free(items);
    if (a != NULL)
        a->result = result;
    if (a != NULL && gh_loop_post(h->loops[w], task_answer, a) != GH_OK)
        free(a);
}

static void task_unanswered(gh_loop *loop, void *arg)
{
    if (loop->tstate != NULL)
        gh_tstate_unanswered(loop->tstate, (uint64_t)(uintptr_t)arg);
}

static void l_unanswered(void *ctx, uint64_t reqid)
{
    gh_hub *h = ctx;
    unsigned w = (unsigned)(reqid >> 56);

    if (w < h->n)
        (void)gh_loop_post(h->loops[w], task_unanswered,
                           (void *)(uintptr_t)(reqid & (((uint64_t)1 << 56) - 1)));
}

static void task_unanswered_all(gh_loop *loop, void *arg)
{
    (void)arg;
    if (loop->tstate != NULL)
        gh_tstate_unanswered_all(loop->tstate);
}

static void l_unanswered_all(void *ctx)
{
    gh_hub *h = ctx;

    for (unsigned w = 0; w < h->n; w++)
        (void)gh_loop_post(h->loops[w], task_unanswered_all, NULL);
}

static void l_log_seen(void *ctx, const char *ns, const char *name, size_t len,
                       const char *data, size_t dlen, uint32_t keep)
{
    htopic *t;
    stripe *st = lookup(ctx, ns, name, len, false, &t);

    if (t != NULL && t->nmembers > 0 && keep > 0 && keep <= GH_TSTATE_MAX_KEEP)
        gh_tlog_append(&t->log, data, dlen, keep);
    pthread_mutex_unlock(&st->mu);
}

static void l_each_member(void *ctx, gh_tstate_member_fn fn, void *fnctx)
{
    gh_hub *h = ctx;

    for (size_t i = 0; i < STRIPES; i++) {
        stripe *st = &h->s[i];

        pthread_mutex_lock(&st->mu);
        for (size_t b = 0; b < st->nbuckets; b++)
            for (const htopic *t = st->buckets[b]; t != NULL; t = t->next)
                for (const hmember *m = t->head; m != NULL; m = m->next)
                    fn(fnctx, t->key, t->key + t->nslen + 1, t->keylen - t->nslen - 1,
                       CONNID(m->worker, m->connid), m->value, m->vlen, m->farewell,
                       m->flen);
        pthread_mutex_unlock(&st->mu);
    }
}

/* Runs a worker's operation on worker 0: to Redis, or here when the bus
 * cannot take it (down, or gone with a reload). */
static void task_busop(gh_loop *loop, void *arg)
{
    hbusop *op = arg;
    gh_hub *h = op->hub;
    gh_bus *b = h->bus;
    const char *ns = op->buf, *name = op->buf + op->nslen + 1;
    const char *value = name + op->name_len, *farewell = value + op->vlen,
               *data = farewell + op->flen;
    unsigned w = op->worker;

    (void)loop;
    switch (op->kind) {
    case OP_PUBLISH:
        if (b != NULL)
            (void)gh_bus_publish(b, w, op->upto, ns, name, op->name_len, op->opcode, data,
                                 op->alen);
        else
            l_deliver(h, ns, name, op->name_len, op->opcode, data, op->alen, w, op->upto, 0);
        break;
    case OP_MEMBER:
        if ((b == NULL ||
             gh_bus_member(b, w, op->upto, ns, name, op->name_len, CONNID(w, op->id),
                           op->has_value ? value : NULL, op->vlen,
                           op->has_farewell ? farewell : NULL, op->flen,
                           op->has_announce ? data : NULL, op->alen, op->skip,
                           op->flag, op->flag2) != GH_OK) &&
            op->has_announce)
            l_deliver(h, ns, name, op->name_len, GH_WS_OP_TEXT, data, op->alen, w, op->upto,
                      op->skip);
        break;
    case OP_LOG:
        if (b == NULL || gh_bus_log_publish(b, w, op->upto, ns, name, op->name_len, data,
                                            op->alen, op->keep) != GH_OK) {
            htopic *t;
            stripe *st = lookup(h, ns, name, op->name_len, false, &t);

            if (t != NULL && t->nmembers > 0)
                gh_tlog_append(&t->log, data, op->alen, op->keep);
            if (t != NULL && t->nworkers > 0) {
                t->messages++;
                (void)broadcast(h, t, GH_WS_OP_TEXT, data, op->alen, w, op->upto, 0,
                                UINT_MAX, false, NULL);
            }
            pthread_mutex_unlock(&st->mu);
        }
        break;
    case OP_FETCH:
        if (b == NULL ||
            gh_bus_fetch(b, ns, name, op->name_len, REQID(w, op->id), op->flag) != GH_OK) {
            /* what this process has, for the whole */
            if (fetch_topic(h, ns, name, op->name_len, w, op->id, b == NULL) != GH_OK)
                l_unanswered(h, REQID(w, op->id));
        }
        break;
    case OP_WATCH:
        if (b != NULL)
            gh_bus_watch(b, ns, name, op->name_len, op->flag);
        break;
    case OP_CLAIM:
        if ((b == NULL ||
             gh_bus_claim(b, w, op->upto, ns, name, op->name_len, REQID(w, op->id),
                          CONNID(w, op->id2), value, op->vlen, op->keep,
                          (uint32_t)op->opcode, op->has_farewell ? farewell : NULL, op->flen,
                          op->has_announce ? data : NULL, op->alen, op->skip) != GH_OK) &&
            claim_topic(h, ns, name, op->name_len, w, op->id, op->id2, value, op->vlen,
                        op->keep, (uint32_t)op->opcode, op->has_farewell ? farewell : NULL,
                        op->flen, op->has_announce ? data : NULL, op->alen, op->upto,
                        op->skip, b == NULL, false) != GH_OK)
            l_unanswered(h, REQID(w, op->id));
        break;
    }
    backlog_down(h, 0, op->cost);
    free(op);
}

static bool bused(const gh_hub *h)
{
    return __atomic_load_n(&h->bused, __ATOMIC_ACQUIRE);
}

static int hub_publish(void *ctx, const char *ns, const char *name, size_t name_len,
                       int opcode, const void *data, size_t len)
{
    hctx *c = ctx;
    gh_loop *loop = c->hub->loops[c->worker];
    uint64_t upto = gh_topics_serial(loop->topics);
    htopic *t;
    stripe *st;
    hmsg *m = NULL;
    bool here;
    int rc;

    if (bused(c->hub)) {
        hbusop *op = busop_new(c->hub, OP_PUBLISH, c->worker, ns, name, name_len, NULL, 0,
                               NULL, 0, data, len);

        if (op == NULL)
            return GH_ENOMEM;
        op->opcode = opcode;
        op->upto = upto;
        return busop_post(c->hub, op, true);
    }
    st = lookup(c->hub, ns, name, name_len, false, &t);
    here = t != NULL && here_now(t, c->worker);
    rc = t != NULL ? broadcast(c->hub, t, opcode, data, len, c->worker, upto, 0,
                               here ? c->worker : UINT_MAX, true, here ? &m : NULL)
                   : GH_OK;

    if (t != NULL && t->nworkers > 0)
        t->messages++;

    pthread_mutex_unlock(&st->mu);
    /* sequenced under the lock; delivered here before this call returns,
     * so before anything the worker's next task or read makes */
    if (here)
        deliver_here(loop, ns, name, name_len, m, opcode, data, len, 0);
    return rc;
}

/* The process's first subscriber of a topic came, or its last left:
 * SUBSCRIBE or UNSUBSCRIBE, in order with what follows. Under the topic's
 * lock. */
static void watch_post(gh_hub *h, unsigned w, const char *ns, const char *name, size_t len,
                       bool on)
{
    hbusop *op = busop_new(h, OP_WATCH, w, ns, name, len, NULL, 0, NULL, 0, NULL, 0);

    if (op == NULL) {
        GH_LOG(GH_LOG_ERROR, "hub: out of memory: topic %.*s is not %s on the bus",
               (int)(len > 200 ? 200 : len), name, on ? "subscribed" : "unsubscribed");
        return;
    }
    op->flag = on;
    (void)busop_post(h, op, false);
}

static void hub_watch(void *ctx, const char *ns, const char *name, size_t name_len, int on)
{
    hctx *c = ctx;
    unsigned w = c->worker;
    htopic *t;
    stripe *st = lookup(c->hub, ns, name, name_len, on != 0, &t);

    if (t == NULL) {
        if (on)
            GH_LOG(GH_LOG_ERROR, "hub: out of memory: topic %.*s gets no message from other "
                   "workers on worker %u", (int)(name_len > 200 ? 200 : name_len), name, w);
        pthread_mutex_unlock(&st->mu);
        return;
    }
    if (on && !(t->mask[w / 64] >> (w % 64) & 1)) {
        t->mask[w / 64] |= (uint64_t)1 << (w % 64);
        if (t->nworkers++ == 0 && bused(c->hub))
            watch_post(c->hub, w, ns, name, name_len, true);
    } else if (!on && (t->mask[w / 64] >> (w % 64) & 1)) {
        t->mask[w / 64] &= ~((uint64_t)1 << (w % 64));
        if (--t->nworkers == 0 && bused(c->hub))
            watch_post(c->hub, w, ns, name, name_len, false);
        __atomic_store_n(&t->subs[w], 0, __ATOMIC_RELAXED);
        maybe_free(st, t);
    }
    pthread_mutex_unlock(&st->mu);
}

/* Where worker c keeps its count of the topic's subscribers: valid while
 * its bit is set (its watch(on = 1) came first and nothing frees the
 * topic before its watch(on = 0)). */
static size_t *hub_count_at(void *ctx, const char *ns, const char *name, size_t name_len)
{
    hctx *c = ctx;
    htopic *t;
    stripe *st = lookup(c->hub, ns, name, name_len, false, &t);
    size_t *at = t != NULL && (t->mask[c->worker / 64] >> (c->worker % 64) & 1)
                 ? &t->subs[c->worker] : NULL;

    pthread_mutex_unlock(&st->mu);
    return at;
}

static int hub_member(void *ctx, const char *ns, const char *name, size_t len, uint64_t connid,
                      const char *value, size_t vlen, const char *farewell, size_t flen,
                      const char *announce, size_t alen, uint64_t skip, bool last_local,
                      bool if_member)
{
    hctx *c = ctx;
    gh_loop *loop = c->hub->loops[c->worker];
    uint64_t upto = gh_topics_serial(loop->topics);
    htopic *t;
    stripe *st = lookup(c->hub, ns, name, len, value != NULL, &t);
    hmsg *m = NULL;
    bool here;
    int rc = GH_OK, was;

    (void)last_local;           /* this worker's; the hub knows the process's */
    if (t == NULL) {
        pthread_mutex_unlock(&st->mu);
        return value != NULL ? GH_ENOMEM : GH_OK;
    }
    if ((was = table_set(t, c->worker, connid, value, vlen, farewell, flen)) < 0) {
        maybe_free(st, t);
        pthread_mutex_unlock(&st->mu);
        return was;
    }
    if (value == NULL && !was && if_member)
        announce = NULL;        /* a claim not granted: nobody was told of it */
    if (bused(c->hub)) {
        /* Redis has the room; the table is this process's part */
        hbusop *op = busop_new(c->hub, OP_MEMBER, c->worker, ns, name, len, value, vlen,
                               farewell, flen, announce, alen);

        if (op != NULL) {
            op->upto = upto;
            op->skip = skip;
            op->id = connid;
            op->flag = value == NULL && t->nmembers == 0;
            op->flag2 = if_member;
            rc = busop_post(c->hub, op, true);
        } else {
            rc = GH_ENOMEM;
        }
        maybe_free(st, t);
        pthread_mutex_unlock(&st->mu);
        if (rc != GH_OK)
            GH_LOG(GH_LOG_ERROR, "hub: out of memory: a member change of topic %.*s does not "
                   "reach the bus", (int)(len > 200 ? 200 : len), name);
        return GH_OK;
    }
    here = announce != NULL && here_now(t, c->worker);
    if (announce != NULL && t->nworkers > 0)
        t->messages++;
    if (announce != NULL)
        rc = broadcast(c->hub, t, GH_WS_OP_TEXT, announce, alen, c->worker, upto, skip,
                       here ? c->worker : UINT_MAX, true, here ? &m : NULL);
    maybe_free(st, t);
    pthread_mutex_unlock(&st->mu);
    if (here)
        deliver_here(loop, ns, name, len, m, GH_WS_OP_TEXT, announce, alen, skip);
    /* the member is set either way; an announcement that could not be
     * posted is logged in broadcast() */
    (void)rc;
    return GH_OK;
}

static int hub_log_publish(void *ctx, const char *ns, const char *name, size_t len,
                           const char *data, size_t dlen, uint32_t keep)
{
    hctx *c = ctx;
    gh_loop *loop = c->hub->loops[c->worker];
    uint64_t upto = gh_topics_serial(loop->topics);
    htopic *t;
    stripe *st;
    hmsg *m = NULL;
    bool here;

    if (bused(c->hub)) {
        hbusop *op = busop_new(c->hub, OP_LOG, c->worker, ns, name, len, NULL, 0, NULL, 0,
                               data, dlen);

        if (op == NULL)
            return GH_ENOMEM;
        op->upto = upto;
        op->keep = keep;
        return busop_post(c->hub, op, true);    /* logged here when it comes back */
    }
    st = lookup(c->hub, ns, name, len, false, &t);
    here = t != NULL && here_now(t, c->worker);
    if (t != NULL) {
        if (t->nmembers > 0)
            gh_tlog_append(&t->log, data, dlen, keep);
        if (t->nworkers > 0)
            t->messages++;
        (void)broadcast(c->hub, t, GH_WS_OP_TEXT, data, dlen, c->worker, upto, 0,
                        here ? c->worker : UINT_MAX, true, here ? &m : NULL);
    }
    pthread_mutex_unlock(&st->mu);
    if (here)
        deliver_here(loop, ns, name, len, m, GH_WS_OP_TEXT, data, dlen, 0);
    return GH_OK;
}

static int hub_fetch(void *ctx, const char *ns, const char *name, size_t len, uint64_t reqid,
                     bool after_subscribe)
{
    hctx *c = ctx;

    if (bused(c->hub)) {
        hbusop *op = busop_new(c->hub, OP_FETCH, c->worker, ns, name, len, NULL, 0, NULL, 0,
                               NULL, 0);

        if (op == NULL)
            return GH_ENOMEM;
        op->id = reqid;
        op->flag = after_subscribe;
        return busop_post(c->hub, op, false);
    }
    /* a join's subscription has set this worker's bit already (the watch
     * callback runs inside the subscribe): the answer follows, in this
     * worker's mailbox, every message the state includes; on an error the
     * request is answered locally */
    return fetch_topic(c->hub, ns, name, len, c->worker, reqid, true);
}

static int hub_claim(void *ctx, const char *ns, const char *name, size_t len, uint64_t reqid,
                     uint64_t connid, const char *value, size_t vlen, uint32_t max,
                     uint32_t flags, const char *farewell, size_t flen, const char *announce,
                     size_t alen, uint64_t skip)
{
    hctx *c = ctx;
    uint64_t upto = gh_topics_serial(c->hub->loops[c->worker]->topics);

    if (bused(c->hub)) {
        hbusop *op = busop_new(c->hub, OP_CLAIM, c->worker, ns, name, len, value, vlen,
                               farewell, flen, announce, alen);

        if (op == NULL)
            return GH_ENOMEM;
        op->upto = upto;
        op->skip = skip;
        op->id = reqid;
        op->id2 = connid;
        op->keep = max;
        op->opcode = (int)flags;
        return busop_post(c->hub, op, false);
    }
    /* on an error the request is answered locally */
    return claim_topic(c->hub, ns, name, len, c->worker, reqid, connid, value, vlen, max, flags,
                       farewell, flen, announce, alen, upto, skip, true, true);
}

/* A claim granted through Redis: the process's table lists it too. */
static void hub_noted(void *ctx, const char *ns, const char *name, size_t len,
                      uint64_t connid, const char *value, size_t vlen, const char *farewell,
                      size_t flen)
{
    hctx *c = ctx;
    htopic *t;
    stripe *st = lookup(c->hub, ns, name, len, true, &t);

    if (t == NULL || table_set(t, c->worker, connid, value, vlen, farewell, flen) < 0)
        GH_LOG(GH_LOG_ERROR, "hub: out of memory: a member is not listed in topic %.*s",
               (int)(len > 200 ? 200 : len), name);
    if (t != NULL)
        maybe_free(st, t);
    pthread_mutex_unlock(&st->mu);
}

/* ---- for the status page ---------------------------------------------------------------- */

void gh_hub_each(gh_hub *h, void (*fn)(void *arg, const gh_hub_topic *t), void *arg)
{
    for (size_t i = 0; i < STRIPES; i++) {
        stripe *st = &h->s[i];

        pthread_mutex_lock(&st->mu);
        for (size_t b = 0; b < st->nbuckets; b++) {
            for (const htopic *t = st->buckets[b]; t != NULL; t = t->next) {
                gh_hub_topic info;

                if (t->nworkers == 0)
                    continue;   /* members, or tasks in flight, but no subscriber */
                info = (gh_hub_topic){
                    .ns = t->key, .name = t->key + t->nslen + 1,
                    .len = t->keylen - t->nslen - 1, .members = t->nmembers,
                    .messages = t->messages,
                };
                for (unsigned w = 0; w < h->n; w++)
                    if (t->mask[w / 64] >> (w % 64) & 1)
                        info.subscribers += __atomic_load_n(&t->subs[w], __ATOMIC_RELAXED);
                fn(arg, &info);
            }
        }
        pthread_mutex_unlock(&st->mu);
    }
}

/* ---- lifetime ------------------------------------------------------------------------- */

int gh_hub_new(gh_loop **loops, unsigned n, gh_hub **out)
{
    gh_hub *h = calloc(1, sizeof(*h));

    if (h == NULL || (h->ctx = calloc(n, sizeof(*h->ctx))) == NULL ||
        (h->backlog = calloc(n, sizeof(*h->backlog))) == NULL ||
        (h->congested = calloc(n, sizeof(*h->congested))) == NULL) {
        if (h != NULL) {
            free(h->ctx);
            free(h->backlog);
        }
        free(h);
        return GH_ENOMEM;
    }
    h->loops = loops;
    h->n = n;
    h->high = 32u << 20;
    for (size_t i = 0; i < STRIPES; i++)
        pthread_mutex_init(&h->s[i].mu, NULL);
    for (unsigned w = 0; w < n; w++) {
        gh_topic_bus tb = { .ctx = &h->ctx[w], .publish = hub_publish, .watch = hub_watch,
                            .count_at = hub_count_at };
        gh_tstate_bus sb = { .ctx = &h->ctx[w], .member = hub_member,
                             .log_publish = hub_log_publish, .fetch = hub_fetch,
                             .claim = hub_claim, .noted = hub_noted, .in_process = true };

        h->ctx[w] = (hctx){ h, w };
        gh_topics_set_bus(loops[w]->topics, &tb);
        gh_tstate_set_bus(loops[w]->tstate, &sb);
    }
    *out = h;
    return GH_OK;
}

void gh_hub_set_backlog(gh_hub *h, uint64_t bytes)
{
    __atomic_store_n(&h->high, bytes > SIZE_MAX ? SIZE_MAX : (size_t)bytes, __ATOMIC_RELAXED);
}

void gh_hub_free(gh_hub *h)
{
    if (h == NULL)
        return;
    for (unsigned w = 0; w < h->n; w++) {
        if (h->loops[w]->topics != NULL)
            gh_topics_set_bus(h->loops[w]->topics, NULL);
        if (h->loops[w]->tstate != NULL)
            gh_tstate_set_bus(h->loops[w]->tstate, NULL);
    }
    for (size_t i = 0; i < STRIPES; i++) {
        stripe *st = &h->s[i];

        for (size_t b = 0; b < st->nbuckets; b++) {
            for (htopic *t = st->buckets[b], *next; t != NULL; t = next) {
                next = t->next;
                for (hmember *m = t->head, *mn; m != NULL; m = mn) {
                    mn = m->next;
                    free(m->value);
                    free(m->farewell);
                    free(m);
                }
                gh_tlog_clear(&t->log);
                free(t->pending);
                free(t->subs);
                free(t);
            }
        }
        free(st->buckets);
        pthread_mutex_destroy(&st->mu);
    }
    free(h->ctx);
    free(h->backlog);
    free(h->congested);
    free(h);
}

/* ---- a bus for the process ------------------------------------------------------------- */

/* Worker loop's topic state learns whether the hub answers for itself or
 * for Redis (its counters of answers). On that worker. */
static void task_tstate_mode(gh_loop *loop, void *arg)
{
    gh_hub *h = arg;
    gh_tstate_bus sb = { .ctx = &h->ctx[loop->id], .member = hub_member,
                         .log_publish = hub_log_publish, .fetch = hub_fetch,
                         .claim = hub_claim, .noted = hub_noted, .in_process = !bused(h) };

    if (loop->tstate != NULL)
        gh_tstate_set_bus(loop->tstate, &sb);
}

static void post_tstate_mode(gh_hub *h)
{
    for (unsigned w = 0; w < h->n; w++)
        if (gh_loop_post(h->loops[w], task_tstate_mode, h) != GH_OK)
            GH_LOG(GH_LOG_ERROR, "hub: out of memory: worker %u counts its topic-state "
                   "answers wrongly", w);
}

int gh_hub_bus_new(gh_hub *h, const gh_bus_conf *conf, gh_bus **out)
{
    gh_bus_local l = {
        .ctx = h, .deliver = l_deliver, .subscribed = l_subscribed, .answer = l_answer,
        .unanswered = l_unanswered, .unanswered_all = l_unanswered_all,
        .log_seen = l_log_seen, .each_member = l_each_member,
    };
    int rc = gh_bus_new_shared(h->loops[0], conf, &l, h->n, out);

    if (rc != GH_OK)
        return rc;
    h->bus = *out;
    /* from now on the workers post what is the bus's; the topics some
     * worker subscribes to already are subscribed here (a watch posted in
     * between asks again, which does no harm) */
    __atomic_store_n(&h->bused, true, __ATOMIC_RELEASE);
    for (size_t i = 0; i < STRIPES; i++) {
        stripe *st = &h->s[i];

        pthread_mutex_lock(&st->mu);
        for (size_t b = 0; b < st->nbuckets; b++)
            for (const htopic *t = st->buckets[b]; t != NULL; t = t->next)
                if (t->nworkers > 0)
                    gh_bus_watch(h->bus, t->key, t->key + t->nslen + 1,
                                 t->keylen - t->nslen - 1, true);
        pthread_mutex_unlock(&st->mu);
    }
    post_tstate_mode(h);
    return GH_OK;
}

void gh_hub_bus_free(gh_hub *h, gh_bus *b)
{
    if (b == NULL)
        return;
    __atomic_store_n(&h->bused, false, __ATOMIC_RELEASE);
    h->bus = NULL;              /* operations still posted are done here */
    gh_bus_free(b);
    post_tstate_mode(h);
}
